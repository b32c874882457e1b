"""moto's server, made to fail CloudFormation creates and updates the way AWS does.

moto (5.x) runs change sets synchronously and, when a resource cannot be created, answers the
ExecuteChangeSet call itself with the resource's error and leaves the stack in
CREATE_IN_PROGRESS forever. AWS instead accepts the call, records a `*_FAILED` event with the
reason on the resource, rolls back and leaves the stack in ROLLBACK_COMPLETE (or
UPDATE_ROLLBACK_COMPLETE). The deploy command's recovery paths depend on that behaviour, so
this wrapper gives moto exactly that, and the stack the change set's tags as AWS does.

It also fills in calls moto lacks, as AWS documents them (each below, with its source): Lambda
GetAccountSettings, Budgets UpdateBudget and IAM SimulatePrincipalPolicy. Every other request
is plain moto.

Usage: python3 tests/standins/moto_server.py -H 127.0.0.1 -p PORT
"""

import traceback

from moto.cloudformation import models
from moto.server import main


def _failing_resource(stack, template):
    """The first template resource moto had not created when the error was raised."""
    parsed = getattr(stack.resource_map, "_parsed_resources", {})
    for logical_id, spec in (template.get("Resources") or {}).items():
        if logical_id not in parsed:
            return logical_id, spec.get("Type", "AWS::CloudFormation::CustomResource")
    return stack.name, "AWS::CloudFormation::Stack"


def _event(stack, logical_id, resource_type, status, reason=None):
    stack.events.append(
        models.Event(
            stack_id=stack.stack_id,
            stack_name=stack.name,
            logical_resource_id=logical_id,
            physical_resource_id="",
            resource_type=resource_type,
            resource_status=status,
            resource_status_reason=reason,
            resource_properties=None,
        )
    )


_execute = models.CloudFormationBackend.execute_change_set


def _change_set(self, change_set_name, stack_name):
    # Change set names are unique per stack only: match the stack too.
    return self.change_sets.get(change_set_name) or next(
        cs
        for cs in self.change_sets.values()
        if cs.change_set_name == change_set_name
        and stack_name in (cs.stack_name, cs.stack_id)
    )


def execute_change_set(self, change_set_name, stack_name=None):
    try:
        result = _execute(self, change_set_name, stack_name)
        # AWS gives the stack the change set's tags (CreateChangeSet `Tags`); moto keeps the
        # first ones forever.
        change_set = _change_set(self, change_set_name, stack_name)
        if change_set.tags is not None:
            self.stacks[change_set.stack_id].tags = change_set.tags
        return result
    except Exception as error:  # what AWS would report on the resource, asynchronously
        traceback.print_exc()  # into moto's log, for whoever reads why
        # Change set names are unique per stack only: match the stack too.
        change_set = self.change_sets.get(change_set_name) or next(
            cs
            for cs in self.change_sets.values()
            if cs.change_set_name == change_set_name
            and stack_name in (cs.stack_name, cs.stack_id)
        )
        stack = self.stacks[change_set.stack_id]
        logical_id, resource_type = _failing_resource(stack, change_set.template_dict)
        reason = getattr(error, "message", None) or str(error)
        kind = change_set.change_set_type  # CREATE or UPDATE
        _event(stack, logical_id, resource_type, f"{kind}_FAILED", reason)
        if kind == "CREATE":
            stack._add_stack_event("ROLLBACK_IN_PROGRESS", resource_status_reason=(
                f"The following resource(s) failed to create: [{logical_id}]. "
                "Rollback requested by user."))
            try:
                stack.resource_map.delete()
            except Exception:
                pass
            stack._add_stack_event("ROLLBACK_COMPLETE")
            stack.status = "ROLLBACK_COMPLETE"
        else:
            stack._add_stack_event("UPDATE_ROLLBACK_IN_PROGRESS", resource_status_reason=(
                f"The following resource(s) failed to update: [{logical_id}]."))
            stack._add_stack_event("UPDATE_ROLLBACK_COMPLETE")
            stack.status = "UPDATE_ROLLBACK_COMPLETE"
        change_set.execution_status = "EXECUTE_FAILED"


models.CloudFormationBackend.execute_change_set = execute_change_set

# Lambda GetAccountSettings, which moto lacks: the account's concurrency in a region, and how
# much of it no function has reserved (AWS keeps at least 100 unreserved). One region plays a
# new account, whose concurrency quota is reduced ("Lambda quotas"): NEW_ACCOUNT_REGION.
import json  # noqa: E402

from moto.awslambda import urls as lambda_urls  # noqa: E402
from moto.awslambda.responses import LambdaResponse  # noqa: E402

NEW_ACCOUNT_REGION = "ca-west-1"
CONCURRENCY = {NEW_ACCOUNT_REGION: 10}
DEFAULT_CONCURRENCY = 1000


def get_account_settings(self):
    total = CONCURRENCY.get(self.region, DEFAULT_CONCURRENCY)
    reserved = sum(
        int(fn.reserved_concurrency or 0) for fn in self.backend.list_functions()
    )
    return 200, {}, json.dumps({
        "AccountLimit": {
            "TotalCodeSize": 80530636800,
            "CodeSizeUnzipped": 262144000,
            "CodeSizeZipped": 52428800,
            "ConcurrentExecutions": total,
            "UnreservedConcurrentExecutions": total - reserved,
        },
        "AccountUsage": {
            "TotalCodeSize": 0,
            "FunctionCount": len(list(self.backend.list_functions())),
        },
    })


LambdaResponse.get_account_settings = get_account_settings
lambda_urls.url_paths[r"{0}/(?P<api_version>[^/]+)/account-settings/?$"] = LambdaResponse.dispatch

# Budgets UpdateBudget, which moto lacks: AWS changes a budget's definition in place and
# keeps its notifications ("UpdateBudget", AWS Budgets API).
from moto.budgets.exceptions import NotFoundException  # noqa: E402
from moto.budgets.responses import BudgetsResponse  # noqa: E402
from moto.core.utils import unix_time  # noqa: E402


def update_budget(self):
    account_id = self._get_param("AccountId")
    new = self._get_param("NewBudget")
    name = new["BudgetName"]
    budgets = self.backend.budgets[account_id]
    if name not in budgets:
        raise NotFoundException(
            f"Unable to update budget: {name} - the budget doesn't exist."
        )
    budget = budgets[name].budget
    budget.update(new)
    budget["LastUpdatedTime"] = unix_time()
    return json.dumps({})


BudgetsResponse.update_budget = update_budget

# IAM SimulatePrincipalPolicy, which moto lacks: the decision for each action and resource
# from an IAM user's inline and attached policies (Allow and Deny statements, `*` and `?`
# wildcards in actions and resources; conditions are not evaluated, as a simulation without
# context values also leaves them unmatched). Enough for `doctor` to list what is missing.
from fnmatch import fnmatchcase  # noqa: E402

from moto.iam.responses import IamResponse  # noqa: E402


def _documents(user):
    for text in user.policies.values():
        yield json.loads(text) if isinstance(text, str) else text
    for policy in user.managed_policies.values():
        for version in getattr(policy, "versions", []):
            if getattr(version, "is_default", False):
                doc = version.document
                yield json.loads(doc) if isinstance(doc, str) else doc


def _listed(value):
    return value if isinstance(value, list) else [value]


def _decision(docs, action, resource):
    allowed = False
    for doc in docs:
        for st in _listed(doc.get("Statement", [])):
            actions = [a.lower() for a in _listed(st.get("Action", []))]
            resources = _listed(st.get("Resource", "*"))
            if not any(fnmatchcase(action.lower(), a) for a in actions):
                continue
            if not any(fnmatchcase(resource, r) for r in resources):
                continue
            if st.get("Effect") == "Deny":
                return "explicitDeny"
            allowed = True
    return "allowed" if allowed else "implicitDeny"


def simulate_principal_policy(self):
    source = self._get_param("PolicySourceArn")
    actions = self._get_param("ActionNames", [])
    resources = self._get_param("ResourceArns", []) or ["*"]
    user = self.backend.get_user(source.rsplit("/", 1)[-1])  # NoSuchEntity for others
    docs = list(_documents(user))
    members = "".join(
        f"<member><EvalActionName>{a}</EvalActionName><EvalResourceName>{r}</EvalResourceName>"
        f"<EvalDecision>{_decision(docs, a, r)}</EvalDecision>"
        "<MatchedStatements/><MissingContextValues/></member>"
        for a in actions
        for r in resources
    )
    return (
        '<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
        "<SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated>"
        f"<EvaluationResults>{members}</EvaluationResults></SimulatePrincipalPolicyResult>"
        "<ResponseMetadata><RequestId>simulated</RequestId></ResponseMetadata>"
        "</SimulatePrincipalPolicyResponse>"
    )


IamResponse.simulate_principal_policy = simulate_principal_policy

# CloudFormation's AWS::CloudWatch::Alarm, which moto's CloudFormation skips: the stack's
# alarms are made with PutMetricAlarm's model (metric alarms, metric-math alarms with
# `Metrics`), replaced on update and deleted with the stack, as AWS documents the resource
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-cloudwatch-alarm.html).
from moto.cloudwatch import models as cw  # noqa: E402
from moto.core.common_models import CloudFormationModel  # noqa: E402


def _dimensions(raw):
    return [{"Name": d["Name"], "Value": str(d["Value"])} for d in raw or []]


def _queries(raw):
    if not raw:
        return None
    queries = []
    for q in raw:
        stat = q.get("MetricStat")
        metric_stat = None
        if stat:
            metric = stat["Metric"]
            metric_stat = cw.MetricStat(
                metric=cw.Metric(
                    metric_name=metric["MetricName"],
                    namespace=metric["Namespace"],
                    dimensions=[
                        cw.Dimension(d["Name"], str(d["Value"]))
                        for d in metric.get("Dimensions") or []
                    ],
                ),
                period=stat["Period"],
                stat=stat["Stat"],
                unit=stat.get("Unit"),
            )
        queries.append(
            cw.MetricDataQuery(
                query_id=q["Id"],
                label=q.get("Label", ""),
                period=q.get("Period"),
                return_data=q.get("ReturnData", True),
                expression=q.get("Expression"),
                metric_stat=metric_stat,
            )
        )
    return queries


class StackAlarm(CloudFormationModel):
    # moto files its models by the service named in their module's path.
    __module__ = "moto.cloudwatch.stack_alarm"

    @staticmethod
    def cloudformation_name_type():
        return "AlarmName"

    @staticmethod
    def cloudformation_type():
        return "AWS::CloudWatch::Alarm"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
    ):
        props = cloudformation_json["Properties"]
        backend = cw.cloudwatch_backends[account_id][region_name]
        actions = props.get("AlarmActions") or []
        alarm = backend.put_metric_alarm(
            name=props.get("AlarmName") or resource_name,
            namespace=props.get("Namespace"),
            metric_name=props.get("MetricName"),
            comparison_operator=props["ComparisonOperator"],
            evaluation_periods=int(props["EvaluationPeriods"]),
            period=int(props["Period"]) if props.get("Period") else None,
            threshold=float(props["Threshold"]),
            statistic=props.get("Statistic"),
            description=props.get("AlarmDescription", ""),
            dimensions=_dimensions(props.get("Dimensions")),
            alarm_actions=[a for a in actions if isinstance(a, str)],
            metric_data_queries=_queries(props.get("Metrics")),
            treat_missing_data=props.get("TreatMissingData"),
        )
        # What the stack deletes it by (moto's Alarm has no physical id of its own).
        alarm.physical_resource_id = alarm.name
        return alarm

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
    ):
        cls.delete_from_cloudformation_json(
            original_resource.name, cloudformation_json, account_id, region_name
        )
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name
        )

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name, cloudformation_json, account_id, region_name
    ):
        backend = cw.cloudwatch_backends[account_id][region_name]
        backend.delete_alarms([resource_name])


# On a stack update, AWS deletes a resource whose Condition has turned false (and creates one
# whose Condition has turned true); moto updates it in place whatever its condition. The update
# is given the template without the resources whose condition is false under the new
# parameters, so moto's own diff removes them. Conditions are evaluated for the functions the
# template uses (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition, Ref to a parameter).
import copy  # noqa: E402

from moto.cloudformation import parsing  # noqa: E402

_update = parsing.ResourceMap.update


def _condition(expr, conditions, values):
    if isinstance(expr, dict):
        (name, args), = expr.items()
        if name == "Ref":
            return values.get(args, "")
        if name == "Condition":
            return _condition(conditions[args], conditions, values)
        if name == "Fn::Equals":
            a, b = (_condition(x, conditions, values) for x in args)
            return str(a) == str(b)
        if name == "Fn::Not":
            return not _condition(args[0], conditions, values)
        if name == "Fn::And":
            return all(_condition(x, conditions, values) for x in args)
        if name == "Fn::Or":
            return any(_condition(x, conditions, values) for x in args)
        raise ValueError(f"condition function {name} is not evaluated here")
    return expr


def update(self, template, parameters=None):
    conditions = template.get("Conditions") or {}
    values = {
        key: spec.get("Default", "")
        for key, spec in (template.get("Parameters") or {}).items()
    }
    values.update(parameters or {})
    kept = copy.copy(template)
    kept["Resources"] = {
        logical_id: spec
        for logical_id, spec in template.get("Resources", {}).items()
        if "Condition" not in spec
        or _condition(conditions[spec["Condition"]], conditions, values)
    }
    result = _update(self, kept, parameters)
    # Change sets list what changes against the template, conditions and all (moto compares
    # texts): keep the whole one for that.
    self._template_resources = template.get("Resources", {})
    return result


_change_set_actions = parsing.ResourceMap.build_change_set_actions


def build_change_set_actions(self, template):
    live = self._resource_json_map
    self._resource_json_map = getattr(self, "_template_resources", live)
    try:
        return _change_set_actions(self, template)
    finally:
        self._resource_json_map = live


parsing.ResourceMap.update = update
parsing.ResourceMap.build_change_set_actions = build_change_set_actions

if __name__ == "__main__":
    main()
