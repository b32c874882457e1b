//! Resources under this tool's names that it did not make: destroy leaves them alone and says
//! so, deploy refuses them unless `--adopt`, and repositories of earlier versions (untagged,
//! beside a stack of ours) are claimed without asking.

use aws_sdk_budgets::types::{Budget, BudgetType, Spend, TimeUnit};

use crate::common::{json_of, repository_exists, stack_status, standins};

const ACCOUNT: &str = "123456789012";

async fn repository_tag(sdk: &aws_config::SdkConfig, name: &str) -> Option<Option<String>> {
    let ecr = aws_sdk_ecr::Client::new(sdk);
    let described = ecr
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
        .ok()?;
    let arn = described.repositories()[0]
        .repository_arn()
        .unwrap()
        .to_string();
    let tags = ecr
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .unwrap();
    Some(
        tags.tags()
            .iter()
            .find(|t| t.key() == "ummatics-sentiment:stack")
            .map(|t| t.value().to_string()),
    )
}

async fn log_group_exists(sdk: &aws_config::SdkConfig, name: &str) -> bool {
    aws_sdk_cloudwatchlogs::Client::new(sdk)
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .unwrap()
        .log_groups()
        .iter()
        .any(|g| g.log_group_name() == Some(name))
}

async fn budget_exists(sdk: &aws_config::SdkConfig, name: &str) -> bool {
    aws_sdk_budgets::Client::new(sdk)
        .describe_budget()
        .account_id(ACCOUNT)
        .budget_name(name)
        .send()
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_resources_are_left_alone_refused_or_adopted() {
    let s = standins();
    let stage = "foreign";
    let (stack, repository, group) = (
        "ummatics-sentiment-stack-foreign",
        "ummatics-sentiment-foreign",
        "/aws/lambda/ummatics-sentiment-analysis-foreign",
    );
    s.destroy(stage);
    // Budget names are per account: deploy's carries the region.
    let budget = &format!("{stack}-us-east-1");
    let sdk = s.sdk().await;
    // What an earlier failed run of this test may have left (destroy leaves it, rightly).
    let _ = aws_sdk_ecr::Client::new(&sdk)
        .delete_repository()
        .repository_name(repository)
        .force(true)
        .send()
        .await;
    let _ = aws_sdk_cloudwatchlogs::Client::new(&sdk)
        .delete_log_group()
        .log_group_name(group)
        .send()
        .await;
    let _ = aws_sdk_budgets::Client::new(&sdk)
        .delete_budget()
        .account_id(ACCOUNT)
        .budget_name(budget)
        .send()
        .await;
    // Someone else's repository, log group and budget, under this stage's names.
    aws_sdk_ecr::Client::new(&sdk)
        .create_repository()
        .repository_name(repository)
        .send()
        .await
        .unwrap();
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    logs.create_log_group()
        .log_group_name(group)
        .send()
        .await
        .unwrap();
    // moto keeps a deleted group's tags for a new group of the same name (AWS does not):
    // an earlier run's stack tag would make it ours.
    let arn = format!("arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{group}");
    logs.untag_resource()
        .resource_arn(arn)
        .tag_keys("ummatics-sentiment:stack")
        .send()
        .await
        .unwrap();
    let budgets = aws_sdk_budgets::Client::new(&sdk);
    budgets
        .create_budget()
        .account_id(ACCOUNT)
        .budget(
            Budget::builder()
                .budget_name(budget)
                .budget_limit(Spend::builder().amount("1").unit("USD").build().unwrap())
                .time_unit(TimeUnit::Monthly)
                .budget_type(BudgetType::Cost)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    // destroy deletes none of it, and says what it left.
    let report = s.destroy(stage);
    assert_eq!(report["removed"], serde_json::json!([]), "{report:#}");
    let left = report["left"].to_string();
    for what in [
        format!("ECR repository {repository}"),
        format!("log group {group}"),
        format!("budget {budget}"),
    ] {
        assert!(left.contains(&what), "{what} not reported left: {report:#}");
    }
    assert_eq!(repository_tag(&sdk, repository).await, Some(None));
    assert!(log_group_exists(&sdk, group).await);
    assert!(budget_exists(&sdk, budget).await);

    // deploy refuses someone else's log group (CloudFormation could not create the stack's
    // own), then — once its owner deleted it — the repository, before pushing anything, and
    // makes no stack.
    // The registry's log spans the stand-ins' life: count from here.
    let uploads = s.registry_uploads(repository);
    let refused = |expected: &[&str]| {
        let out = s
            .deploy(stage, &["--model", "mini", "--builder", "oci"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "deploy took a foreign resource");
        for text in expected {
            assert!(stderr.contains(text), "{text:?} not in: {stderr}");
        }
    };
    refused(&[
        &format!("log group {group} exists and is not this tool's"),
        "aws logs delete-log-group",
    ]);
    aws_sdk_cloudwatchlogs::Client::new(&sdk)
        .delete_log_group()
        .log_group_name(group)
        .send()
        .await
        .unwrap();
    refused(&[
        &format!("ECR repository {repository} exists and this tool did not make it"),
        "--adopt",
    ]);
    assert_eq!(
        s.registry_uploads(repository),
        uploads,
        "deploy pushed first"
    );
    assert_eq!(stack_status(&sdk, stack).await, None);

    // --adopt takes it: tagged as this stack's, and the deploy goes through.
    let adopted =
        json_of(&mut s.deploy(stage, &["--model", "mini", "--builder", "oci", "--adopt"]));
    assert_eq!(adopted["outcome"], "created", "{adopted:#}");
    assert_eq!(
        repository_tag(&sdk, repository).await,
        Some(Some(stack.to_string()))
    );
    // The stack's log group carries the stack's tag (what lets a later destroy or deploy
    // know it).
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    let arn = logs
        .describe_log_groups()
        .log_group_name_prefix(group)
        .send()
        .await
        .unwrap()
        .log_groups()[0]
        .arn()
        .unwrap()
        .trim_end_matches(":*")
        .to_string();
    let tags = logs
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags.tags().and_then(|t| t.get("ummatics-sentiment:stack")),
        Some(&stack.to_string())
    );

    // A repository an earlier version made (no tag) beside a stack of ours is claimed
    // without --adopt.
    let ecr = aws_sdk_ecr::Client::new(&sdk);
    let arn = ecr
        .describe_repositories()
        .repository_names(repository)
        .send()
        .await
        .unwrap()
        .repositories()[0]
        .repository_arn()
        .unwrap()
        .to_string();
    ecr.untag_resource()
        .resource_arn(&arn)
        .tag_keys("ummatics-sentiment:stack")
        .send()
        .await
        .unwrap();
    let again = json_of(&mut s.deploy(stage, &["--model", "mini", "--builder", "oci"]));
    assert_eq!(again["outcome"], "unchanged", "{again:#}");
    assert_eq!(
        repository_tag(&sdk, repository).await,
        Some(Some(stack.to_string()))
    );

    // Now the stack, repository and log group are ours and go; the budget no stack of ours
    // records stays.
    let report = s.destroy(stage);
    let removed = report["removed"].to_string();
    assert!(removed.contains(&format!("stack {stack}")), "{report:#}");
    assert!(
        removed.contains(&format!("ECR repository {repository}")),
        "{report:#}"
    );
    assert!(repository_tag(&sdk, repository).await.is_none());
    assert!(!log_group_exists(&sdk, group).await);
    assert!(
        budget_exists(&sdk, budget).await,
        "someone else's budget was deleted"
    );
    budgets
        .delete_budget()
        .account_id(ACCOUNT)
        .budget_name(budget)
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_this_tool_did_not_make_is_neither_updated_nor_deleted() {
    let s = standins();
    let stage = "alien";
    let stack = "ummatics-sentiment-stack-alien";
    let sdk = s.sdk().await;
    let stacks = aws_sdk_cloudformation::Client::new(&sdk);
    let _ = stacks.delete_stack().stack_name(stack).send().await;
    s.destroy(stage);
    stacks
        .create_stack()
        .stack_name(stack)
        .template_body(
            "Resources:\n  Handle:\n    Type: AWS::CloudFormation::WaitConditionHandle\n",
        )
        .send()
        .await
        .unwrap();

    let out = s
        .deploy(stage, &["--model", "mini", "--builder", "oci"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "deploy updated a foreign stack");
    assert!(
        stderr.contains(&format!(
            "stack {stack} exists and this tool did not make it"
        )),
        "{stderr}"
    );
    let report = s.destroy(stage);
    assert!(
        report["left"]
            .to_string()
            .contains(&format!("stack {stack}")),
        "{report:#}"
    );
    assert_eq!(
        stack_status(&sdk, stack).await.as_deref(),
        Some("CREATE_COMPLETE")
    );
    stacks
        .delete_stack()
        .stack_name(stack)
        .send()
        .await
        .unwrap();
}

/// A function under this stage's name that no stack of ours made (the old SAM deployment's,
/// here made by another stack): deploy names it and the ways out before pushing anything, and
/// leaves it, its stack and the names alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_same_named_function_outside_the_stack_is_named_and_left_alone() {
    let s = standins();
    let stage = "samold";
    let (function, repository) = (
        "ummatics-sentiment-analysis-samold",
        "ummatics-sentiment-samold",
    );
    let old_stack = "sam-app-samold";
    let sdk = s.sdk().await;
    let stacks = aws_sdk_cloudformation::Client::new(&sdk);
    let _ = stacks.delete_stack().stack_name(old_stack).send().await;
    s.destroy(stage);
    let template = format!(
        "Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      RoleName: sam-app-samold-role
      AssumeRolePolicyDocument:
        Version: '2012-10-17'
        Statement:
          - Effect: Allow
            Principal: {{Service: lambda.amazonaws.com}}
            Action: sts:AssumeRole
  Old:
    Type: AWS::Lambda::Function
    Properties:
      FunctionName: {function}
      Runtime: python3.12
      Handler: app.handler
      Role: !GetAtt Role.Arn
      Code:
        ZipFile: \"def handler(event, context): return {{}}\"
"
    );
    stacks
        .create_stack()
        .stack_name(old_stack)
        .template_body(template)
        .capabilities(aws_sdk_cloudformation::types::Capability::CapabilityNamedIam)
        .send()
        .await
        .unwrap();
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    assert!(lambda
        .get_function()
        .function_name(function)
        .send()
        .await
        .is_ok());

    let uploads = s.registry_uploads(repository);
    let out = s
        .deploy(stage, &["--model", "mini", "--builder", "oci"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "deploy went ahead: {stderr}");
    for expected in [
        &format!("function {function} exists in us-east-1 and no stack of this stage made it")[..],
        "--stage",
        &format!("aws lambda delete-function --function-name {function}"),
    ] {
        assert!(stderr.contains(expected), "{expected:?} not in: {stderr}");
    }
    // Nothing made, nothing pushed, the old function untouched.
    assert_eq!(
        s.registry_uploads(repository),
        uploads,
        "deploy pushed first"
    );
    assert_eq!(
        stack_status(&sdk, "ummatics-sentiment-stack-samold").await,
        None
    );
    assert!(!repository_exists(&sdk, repository).await);
    assert!(lambda
        .get_function()
        .function_name(function)
        .send()
        .await
        .is_ok());
    stacks
        .delete_stack()
        .stack_name(old_stack)
        .send()
        .await
        .unwrap();
}
