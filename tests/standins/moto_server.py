"""moto's server, made to fail CloudFormation creates and updates the way AWS does.

moto (5.x) runs change sets synchronously and, when a resource cannot be created, answers the
ExecuteChangeSet call itself with the resource's error and leaves the stack in
CREATE_IN_PROGRESS forever. AWS instead accepts the call, records a `*_FAILED` event with the
reason on the resource, rolls back and leaves the stack in ROLLBACK_COMPLETE (or
UPDATE_ROLLBACK_COMPLETE). The deploy command's recovery paths depend on that behaviour, so
this wrapper gives moto exactly that, and nothing else: every other request is plain moto.

Usage: python3 tests/standins/moto_server.py -H 127.0.0.1 -p PORT
"""

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


def execute_change_set(self, change_set_name, stack_name=None):
    try:
        return _execute(self, change_set_name, stack_name)
    except Exception as error:  # what AWS would report on the resource, asynchronously
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

if __name__ == "__main__":
    main()
