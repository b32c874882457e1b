//! Every AWS action this tool needs, in one list: the SDK operations the code calls (a test
//! reads the source and fails on a call the list lacks), the ECR actions behind the registry
//! API it pushes through, and what CloudFormation does with the deployer's credentials for
//! each resource of `templates/stack.yaml` (a test fails on a resource type the list lacks).
//! `policy --deployer` is built from it, and `doctor` simulates the caller against it.

use serde_json::{json, Value};

use crate::aws::Names;

/// What an action may touch: this tool's resources by name (any stage, any region), or
/// anything (actions without resource-level permissions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Stack,
    Repository,
    Function,
    LogGroup,
    Role,
    Topic,
    Alarm,
    Dashboard,
    Budget,
    Any,
}

impl Scope {
    /// Every resource of this kind the tool may make, in `account`, for every stage and
    /// region (the names' stage suffix and CloudFormation's generated suffixes included).
    pub fn pattern(self, partition: &str, account: &str) -> String {
        let stack = crate::aws::DEFAULT_STACK;
        let function = crate::aws::DEFAULT_FUNCTION;
        let repository = crate::aws::DEFAULT_REPOSITORY;
        match self {
            Scope::Stack => format!("arn:{partition}:cloudformation:*:{account}:stack/{stack}*/*"),
            Scope::Repository => {
                format!("arn:{partition}:ecr:*:{account}:repository/{repository}*")
            }
            Scope::Function => format!("arn:{partition}:lambda:*:{account}:function:{function}*"),
            Scope::LogGroup => {
                format!("arn:{partition}:logs:*:{account}:log-group:/aws/lambda/{function}*")
            }
            Scope::Role => format!("arn:{partition}:iam::{account}:role/{stack}*"),
            Scope::Topic => format!("arn:{partition}:sns:*:{account}:{stack}*"),
            Scope::Alarm => format!("arn:{partition}:cloudwatch:*:{account}:alarm:{stack}*"),
            Scope::Dashboard => {
                format!("arn:{partition}:cloudwatch::{account}:dashboard/{function}*")
            }
            Scope::Budget => format!("arn:{partition}:budgets::{account}:budget/{stack}*"),
            Scope::Any => "*".to_string(),
        }
    }

    /// One resource of this kind for the deployment `names` in `region` (what `doctor`
    /// simulates against); `None` for [`Scope::Any`].
    pub fn example(
        self,
        partition: &str,
        account: &str,
        region: &str,
        names: &Names,
    ) -> Option<String> {
        let (stack, function, repository) = (&names.stack, &names.function, &names.repository);
        Some(match self {
            Scope::Stack => {
                format!("arn:{partition}:cloudformation:{region}:{account}:stack/{stack}/00000000-0000-0000-0000-000000000000")
            }
            Scope::Repository => {
                format!("arn:{partition}:ecr:{region}:{account}:repository/{repository}")
            }
            Scope::Function => {
                format!("arn:{partition}:lambda:{region}:{account}:function:{function}")
            }
            Scope::LogGroup => {
                format!("arn:{partition}:logs:{region}:{account}:log-group:/aws/lambda/{function}")
            }
            Scope::Role => {
                format!("arn:{partition}:iam::{account}:role/{stack}-ExecutionRole-EXAMPLE")
            }
            Scope::Topic => {
                format!("arn:{partition}:sns:{region}:{account}:{stack}-AlarmTopic-EXAMPLE")
            }
            Scope::Alarm => {
                format!("arn:{partition}:cloudwatch:{region}:{account}:alarm:{stack}-ErrorsAlarm-EXAMPLE")
            }
            Scope::Dashboard => {
                format!("arn:{partition}:cloudwatch::{account}:dashboard/{function}-{region}")
            }
            Scope::Budget => format!("arn:{partition}:budgets::{account}:budget/{stack}-{region}"),
            Scope::Any => return None,
        })
    }

    fn sid(self) -> &'static str {
        match self {
            Scope::Stack => "Stack",
            Scope::Repository => "Repository",
            Scope::Function => "Function",
            Scope::LogGroup => "LogGroup",
            Scope::Role => "ExecutionRole",
            Scope::Topic => "AlarmTopic",
            Scope::Alarm => "Alarm",
            Scope::Dashboard => "Dashboard",
            Scope::Budget => "Budget",
            Scope::Any => "AccountWide",
        }
    }
}

/// An SDK call: the client, the operation as the code calls it (snake case), the IAM action
/// it needs (not always the operation's name: Budgets has its own) and what it may touch.
pub struct Call {
    pub client: &'static str,
    pub operation: &'static str,
    pub action: &'static str,
    pub scope: Scope,
}

const fn call(
    client: &'static str,
    operation: &'static str,
    action: &'static str,
    scope: Scope,
) -> Call {
    Call {
        client,
        operation,
        action,
        scope,
    }
}

/// Every SDK operation the CLI calls (deploy, rollback, destroy, info, metrics, logs, doctor,
/// policy, invoke).
pub const CALLS: &[Call] = &[
    call(
        "sts",
        "get_caller_identity",
        "sts:GetCallerIdentity",
        Scope::Any,
    ),
    call(
        "iam",
        "simulate_principal_policy",
        "iam:SimulatePrincipalPolicy",
        Scope::Any,
    ),
    call(
        "ecr",
        "get_authorization_token",
        "ecr:GetAuthorizationToken",
        Scope::Any,
    ),
    call(
        "ecr",
        "create_repository",
        "ecr:CreateRepository",
        Scope::Repository,
    ),
    call(
        "ecr",
        "delete_repository",
        "ecr:DeleteRepository",
        Scope::Repository,
    ),
    call(
        "ecr",
        "describe_repositories",
        "ecr:DescribeRepositories",
        Scope::Repository,
    ),
    call(
        "ecr",
        "describe_images",
        "ecr:DescribeImages",
        Scope::Repository,
    ),
    call(
        "ecr",
        "list_tags_for_resource",
        "ecr:ListTagsForResource",
        Scope::Repository,
    ),
    call("ecr", "tag_resource", "ecr:TagResource", Scope::Repository),
    call(
        "ecr",
        "put_lifecycle_policy",
        "ecr:PutLifecyclePolicy",
        Scope::Repository,
    ),
    call(
        "cloudformation",
        "create_change_set",
        "cloudformation:CreateChangeSet",
        Scope::Stack,
    ),
    call(
        "cloudformation",
        "describe_change_set",
        "cloudformation:DescribeChangeSet",
        Scope::Stack,
    ),
    call(
        "cloudformation",
        "execute_change_set",
        "cloudformation:ExecuteChangeSet",
        Scope::Stack,
    ),
    call(
        "cloudformation",
        "delete_change_set",
        "cloudformation:DeleteChangeSet",
        Scope::Stack,
    ),
    call(
        "cloudformation",
        "list_change_sets",
        "cloudformation:ListChangeSets",
        Scope::Stack,
    ),
    call(
        "cloudformation",
        "describe_stacks",
        "cloudformation:DescribeStacks",
        Scope::Stack,
    ),
    call(
        "cloudformation",
        "describe_stack_events",
        "cloudformation:DescribeStackEvents",
        Scope::Stack,
    ),
    call(
        "cloudformation",
        "describe_stack_resources",
        "cloudformation:DescribeStackResources",
        Scope::Stack,
    ),
    call(
        "cloudformation",
        "get_template",
        "cloudformation:GetTemplate",
        Scope::Stack,
    ),
    call(
        "cloudformation",
        "delete_stack",
        "cloudformation:DeleteStack",
        Scope::Stack,
    ),
    call(
        "lambda",
        "get_account_settings",
        "lambda:GetAccountSettings",
        Scope::Any,
    ),
    call(
        "lambda",
        "get_function",
        "lambda:GetFunction",
        Scope::Function,
    ),
    call(
        "lambda",
        "get_function_concurrency",
        "lambda:GetFunctionConcurrency",
        Scope::Function,
    ),
    call(
        "lambda",
        "get_function_url_config",
        "lambda:GetFunctionUrlConfig",
        Scope::Function,
    ),
    call("lambda", "get_policy", "lambda:GetPolicy", Scope::Function),
    call("lambda", "invoke", "lambda:InvokeFunction", Scope::Function),
    call(
        "logs",
        "describe_log_groups",
        "logs:DescribeLogGroups",
        Scope::Any,
    ),
    call(
        "logs",
        "list_tags_for_resource",
        "logs:ListTagsForResource",
        Scope::LogGroup,
    ),
    call(
        "logs",
        "delete_log_group",
        "logs:DeleteLogGroup",
        Scope::LogGroup,
    ),
    call(
        "logs",
        "filter_log_events",
        "logs:FilterLogEvents",
        Scope::LogGroup,
    ),
    call(
        "cloudwatch",
        "get_metric_data",
        "cloudwatch:GetMetricData",
        Scope::Any,
    ),
    call(
        "cloudwatch",
        "list_metrics",
        "cloudwatch:ListMetrics",
        Scope::Any,
    ),
    call(
        "budgets",
        "describe_budget",
        "budgets:ViewBudget",
        Scope::Budget,
    ),
    call(
        "budgets",
        "describe_notifications_for_budget",
        "budgets:ViewBudget",
        Scope::Budget,
    ),
    call(
        "budgets",
        "create_budget",
        "budgets:ModifyBudget",
        Scope::Budget,
    ),
    call(
        "budgets",
        "update_budget",
        "budgets:ModifyBudget",
        Scope::Budget,
    ),
    call(
        "budgets",
        "delete_budget",
        "budgets:ModifyBudget",
        Scope::Budget,
    ),
    call(
        "budgets",
        "create_notification",
        "budgets:ModifyBudget",
        Scope::Budget,
    ),
    call(
        "budgets",
        "delete_notification",
        "budgets:ModifyBudget",
        Scope::Budget,
    ),
];

/// Actions no deployer needs: the backend's (`invoke`), and one every principal may call.
const NOT_DEPLOYER: [&str; 2] = ["lambda:InvokeFunction", "sts:GetCallerIdentity"];

/// What the registry API deploy pushes through (and destroy deletes through) needs of ECR.
pub const REGISTRY: &[&str] = &[
    "ecr:BatchCheckLayerAvailability",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
    "ecr:BatchGetImage",
    "ecr:ListImages",
    "ecr:BatchDeleteImage",
];

/// What CloudFormation does with the deployer's credentials (the stack has no service role)
/// for each resource type of the template: create, update, delete, tag (the stack's tags
/// reach every resource), and read back.
pub const TEMPLATE: &[(&str, Scope, &[&str])] = &[
    (
        "AWS::IAM::Role",
        Scope::Role,
        &[
            "iam:CreateRole",
            "iam:DeleteRole",
            "iam:GetRole",
            "iam:PassRole",
            "iam:TagRole",
            "iam:UntagRole",
            "iam:AttachRolePolicy",
            "iam:DetachRolePolicy",
            "iam:UpdateAssumeRolePolicy",
        ],
    ),
    (
        "AWS::Logs::LogGroup",
        Scope::LogGroup,
        &[
            "logs:CreateLogGroup",
            "logs:DeleteLogGroup",
            "logs:PutRetentionPolicy",
            "logs:DeleteRetentionPolicy",
            "logs:TagResource",
            "logs:UntagResource",
            "logs:ListTagsForResource",
        ],
    ),
    (
        "AWS::Lambda::Function",
        Scope::Function,
        &[
            "lambda:CreateFunction",
            "lambda:DeleteFunction",
            "lambda:GetFunction",
            "lambda:GetFunctionConfiguration",
            "lambda:UpdateFunctionCode",
            "lambda:UpdateFunctionConfiguration",
            "lambda:PutFunctionConcurrency",
            "lambda:DeleteFunctionConcurrency",
            "lambda:TagResource",
            "lambda:UntagResource",
            "lambda:ListTags",
        ],
    ),
    (
        "AWS::Lambda::Url",
        Scope::Function,
        &[
            "lambda:CreateFunctionUrlConfig",
            "lambda:UpdateFunctionUrlConfig",
            "lambda:DeleteFunctionUrlConfig",
            "lambda:GetFunctionUrlConfig",
        ],
    ),
    (
        "AWS::Lambda::Permission",
        Scope::Function,
        &[
            "lambda:AddPermission",
            "lambda:RemovePermission",
            "lambda:GetPolicy",
        ],
    ),
    (
        "AWS::SNS::Topic",
        Scope::Topic,
        &[
            "sns:CreateTopic",
            "sns:DeleteTopic",
            "sns:GetTopicAttributes",
            "sns:SetTopicAttributes",
            "sns:Subscribe",
            "sns:Unsubscribe",
            "sns:ListSubscriptionsByTopic",
            "sns:TagResource",
            "sns:UntagResource",
        ],
    ),
    (
        "AWS::CloudWatch::Alarm",
        Scope::Alarm,
        &[
            "cloudwatch:PutMetricAlarm",
            "cloudwatch:DeleteAlarms",
            "cloudwatch:DescribeAlarms",
            "cloudwatch:TagResource",
            "cloudwatch:UntagResource",
        ],
    ),
    (
        "AWS::CloudWatch::Dashboard",
        Scope::Dashboard,
        &[
            "cloudwatch:PutDashboard",
            "cloudwatch:DeleteDashboards",
            "cloudwatch:GetDashboard",
        ],
    ),
];

/// A function made from an ECR image needs its creator to read the image (and lets Lambda
/// add itself to the repository policy): "Lambda permissions for container images".
const IMAGE_FUNCTION: &[&str] = &[
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:GetRepositoryPolicy",
    "ecr:SetRepositoryPolicy",
];

/// Every action a deployer needs (deploy, rollback, destroy, and info, metrics, logs and
/// doctor), with its scope, sorted and without repeats.
pub fn deployer_actions() -> Vec<(Scope, &'static str)> {
    let mut all: Vec<(Scope, &'static str)> = CALLS
        .iter()
        .filter(|c| !NOT_DEPLOYER.contains(&c.action))
        .map(|c| (c.scope, c.action))
        .chain(REGISTRY.iter().map(|a| (Scope::Repository, *a)))
        .chain(IMAGE_FUNCTION.iter().map(|a| (Scope::Repository, *a)))
        .chain(
            TEMPLATE
                .iter()
                .flat_map(|(_, scope, actions)| actions.iter().map(move |a| (*scope, *a))),
        )
        .collect();
    all.sort();
    all.dedup();
    all
}

/// The least-privilege IAM policy for the identity that deploys, in `account`: one statement
/// per kind of resource, each limited to this tool's names (every stage and region).
pub fn deployer_policy(partition: &str, account: &str) -> Value {
    let actions = deployer_actions();
    let mut statements = Vec::new();
    let mut scopes: Vec<Scope> = actions.iter().map(|(s, _)| *s).collect();
    scopes.dedup();
    for scope in scopes {
        let names: Vec<&str> = actions
            .iter()
            .filter(|(s, _)| *s == scope)
            .map(|(_, a)| *a)
            .collect();
        let mut statement = json!({
            "Sid": format!("UmmaticsSentiment{}", scope.sid()),
            "Effect": "Allow",
            "Action": names,
            "Resource": scope.pattern(partition, account),
        });
        if scope == Scope::Role {
            // The execution role may be passed to Lambda only.
            statement = json!([
                {
                    "Sid": "UmmaticsSentimentExecutionRole",
                    "Effect": "Allow",
                    "Action": names.iter().filter(|a| **a != "iam:PassRole").collect::<Vec<_>>(),
                    "Resource": scope.pattern(partition, account),
                },
                {
                    "Sid": "UmmaticsSentimentPassRole",
                    "Effect": "Allow",
                    "Action": "iam:PassRole",
                    "Resource": scope.pattern(partition, account),
                    "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}},
                }
            ]);
        }
        match statement {
            Value::Array(many) => statements.extend(many),
            one => statements.push(one),
        }
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every `.SERVICE().operation(` (and the invoking client's `.lambda.operation(`) in the
    /// source, whitespace ignored.
    fn calls_in_source() -> BTreeSet<(String, String, String)> {
        fn walk(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, files);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    files.push(path);
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        walk(&root, &mut files);
        let clients = [
            "sts",
            "iam",
            "ecr",
            "cloudformation",
            "lambda",
            "logs",
            "cloudwatch",
            "budgets",
        ];
        let mut found = BTreeSet::new();
        for file in files {
            if file.ends_with("aws/actions.rs") {
                continue;
            }
            let text: String = std::fs::read_to_string(&file)
                .unwrap()
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            for client in clients {
                for opener in [format!(".{client}()."), format!(".{client}.")] {
                    for (at, _) in text.match_indices(&opener) {
                        let rest = &text[at + opener.len()..];
                        let op: String = rest
                            .chars()
                            .take_while(|c| {
                                c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit()
                            })
                            .collect();
                        // An operation is called; a client's own methods (config) are not AWS calls.
                        if !op.is_empty() && rest[op.len()..].starts_with('(') && op != "config" {
                            found.insert((client.to_string(), op, file.display().to_string()));
                        }
                    }
                }
            }
        }
        found
    }

    #[test]
    fn every_sdk_call_in_the_source_is_in_the_list() {
        let found = calls_in_source();
        assert!(found.len() > 30, "the scan found too little: {found:?}");
        let missing: Vec<_> = found
            .iter()
            .filter(|(client, op, _)| {
                !CALLS
                    .iter()
                    .any(|c| c.client == client && c.operation == op)
            })
            .collect();
        assert!(
            missing.is_empty(),
            "AWS calls missing from aws::actions::CALLS (add each with its IAM action): {missing:#?}"
        );
        // And nothing listed that the code no longer calls.
        let stale: Vec<_> = CALLS
            .iter()
            .filter(|c| {
                !found
                    .iter()
                    .any(|(client, op, _)| client == c.client && op == c.operation)
            })
            .map(|c| c.action)
            .collect();
        assert!(stale.is_empty(), "listed but never called: {stale:?}");
    }

    #[test]
    fn every_resource_type_of_the_template_is_in_the_list() {
        let template = include_str!("../../templates/stack.yaml");
        let types: BTreeSet<&str> = template
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Type: "))
            .filter(|t| t.starts_with("AWS::"))
            .collect();
        assert!(types.len() >= 8, "{types:?}");
        for t in types {
            assert!(
                TEMPLATE.iter().any(|(listed, _, _)| *listed == t),
                "{t} is in templates/stack.yaml but not in aws::actions::TEMPLATE"
            );
        }
    }

    #[test]
    fn the_deployer_policy_is_scoped_to_the_tools_names() {
        let policy = deployer_policy("aws", "123456789012");
        let text = policy.to_string();
        for action in [
            "cloudformation:CreateChangeSet",
            "ecr:PutImage",
            "iam:PassRole",
            "iam:TagRole",
            "budgets:ModifyBudget",
            "lambda:GetAccountSettings",
            "lambda:CreateFunction",
        ] {
            assert!(text.contains(action), "{action} missing: {policy:#}");
        }
        assert!(!text.contains("lambda:InvokeFunction\""), "{policy:#}");
        let statements = policy["Statement"].as_array().unwrap();
        for s in statements {
            let resource = s["Resource"].as_str().unwrap();
            if s["Sid"] != "UmmaticsSentimentAccountWide" {
                assert!(resource.contains("123456789012"), "{s:#}");
                assert!(resource.contains("ummatics-sentiment"), "{s:#}");
            }
        }
        let pass = statements
            .iter()
            .find(|s| s["Action"] == "iam:PassRole")
            .unwrap();
        assert_eq!(
            pass["Condition"]["StringEquals"]["iam:PassedToService"],
            "lambda.amazonaws.com"
        );
        // The account-wide statement holds only actions without resource-level permissions.
        let any = statements
            .iter()
            .find(|s| s["Sid"] == "UmmaticsSentimentAccountWide")
            .unwrap();
        assert_eq!(
            any["Action"],
            json!([
                "cloudwatch:GetMetricData",
                "cloudwatch:ListMetrics",
                "ecr:GetAuthorizationToken",
                "iam:SimulatePrincipalPolicy",
                "lambda:GetAccountSettings",
                "logs:DescribeLogGroups"
            ])
        );
    }
}
