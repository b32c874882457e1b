//! The stage's life beyond one deploy: the AWS Budgets budget deploy makes, keeps, replaces
//! and removes (read back from the Budgets API, not from our reports), and destroy removing it.

use crate::common::{assert_refused_before_aws, json_of, shape, standins};

/// moto's account id.
const ACCOUNT: &str = "123456789012";

async fn stack_tags(
    sdk: &aws_config::SdkConfig,
    stack: &str,
) -> std::collections::BTreeMap<String, String> {
    aws_sdk_cloudformation::Client::new(sdk)
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .unwrap()
        .stacks()[0]
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// A $3 budget named after `stack` alone, as versions before region-qualified names made.
async fn old_named_budget(sdk: &aws_config::SdkConfig, stack: &str) {
    use aws_sdk_budgets::types::{Budget, BudgetType, Spend, TimeUnit};
    aws_sdk_budgets::Client::new(sdk)
        .create_budget()
        .account_id("123456789012")
        .budget(
            Budget::builder()
                .budget_name(stack)
                .budget_limit(Spend::builder().amount("3.00").unit("USD").build().unwrap())
                .time_unit(TimeUnit::Monthly)
                .budget_type(BudgetType::Cost)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

async fn budget_limit(sdk: &aws_config::SdkConfig, name: &str) -> Option<String> {
    match aws_sdk_budgets::Client::new(sdk)
        .describe_budget()
        .account_id(ACCOUNT)
        .budget_name(name)
        .send()
        .await
    {
        Ok(out) => out
            .budget()
            .and_then(|b| b.budget_limit())
            .map(|l| format!("{} {}", l.amount(), l.unit())),
        Err(e) => {
            let text = format!("{e:?}");
            assert!(text.contains("NotFoundException"), "{text}");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_makes_keeps_replaces_and_removes_the_budget_and_destroy_deletes_it() {
    let s = standins();
    let stage = "budget";
    s.destroy(stage);
    let sdk = s.sdk().await;
    // Budget names are per account: the region is in the name.
    let name = "ummatics-sentiment-stack-budget-us-east-1";
    let budget = |extra: &[&str]| {
        let mut args = vec!["--model", "mini"];
        args.extend_from_slice(extra);
        json_of(&mut s.deploy(stage, &args))
    };

    let report = budget(&["--budget", "5", "--budget-email", "ops@example.com"]);
    assert_eq!(report["budget"]["action"], "created", "{report:#}");
    assert_eq!(budget_limit(&sdk, name).await.as_deref(), Some("5.00 USD"));
    // What Budgets holds: a monthly cost budget over the function's services, e-mailing at
    // 80 % forecast and 100 % actual.
    let client = aws_sdk_budgets::Client::new(&sdk);
    let held = client
        .describe_budget()
        .account_id(ACCOUNT)
        .budget_name(name)
        .send()
        .await
        .unwrap();
    let held = held.budget().unwrap();
    assert_eq!(held.time_unit().as_str(), "MONTHLY");
    assert_eq!(held.budget_type().as_str(), "COST");
    let services = held
        .filter_expression()
        .and_then(|e| e.dimensions())
        .map(|d| d.values().to_vec())
        .unwrap_or_default();
    assert!(services.contains(&"AWS Lambda".to_string()), "{services:?}");
    let notifications = client
        .describe_notifications_for_budget()
        .account_id(ACCOUNT)
        .budget_name(name)
        .send()
        .await
        .unwrap();
    let mut alerts: Vec<(String, f64)> = notifications
        .notifications()
        .iter()
        .map(|n| (n.notification_type().as_str().to_string(), n.threshold()))
        .collect();
    alerts.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        alerts,
        [
            ("ACTUAL".to_string(), 100.0),
            ("FORECASTED".to_string(), 80.0)
        ]
    );

    // info shows it, with this month's spend and the address.
    let info = json_of(s.cli(stage).args(["--output", "json", "info"]));
    assert_eq!(info["budget"]["limit_usd"], 5.0, "{info:#}");
    assert_eq!(info["budget"]["actual_usd"], 0.0);
    assert_eq!(info["budget"]["email"], "ops@example.com");
    let text = s.cli(stage).arg("info").output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(
            "budget      ummatics-sentiment-stack-budget-us-east-1 $5.00/month; $0.00 spent this month"
        ),
        "{text}"
    );

    // The same again changes nothing; a new limit replaces it; left out, it stays.
    let report = budget(&["--budget", "5", "--budget-email", "ops@example.com"]);
    assert_eq!(report["budget"]["action"], "unchanged", "{report:#}");
    // A new limit changes the budget in place (UpdateBudget), its alerts kept.
    let report = budget(&["--budget", "$7.50", "--budget-email", "ops@example.com"]);
    assert_eq!(report["budget"]["action"], "updated", "{report:#}");
    assert_eq!(budget_limit(&sdk, name).await.as_deref(), Some("7.50 USD"));
    let alerts = |sdk: aws_config::SdkConfig| async move {
        aws_sdk_budgets::Client::new(&sdk)
            .describe_notifications_for_budget()
            .account_id("123456789012")
            .budget_name(name)
            .send()
            .await
            .unwrap()
            .notifications()
            .len()
    };
    assert_eq!(alerts(sdk.clone()).await, 2);
    // A new address: the alerts are made again for it, still two.
    let report = budget(&["--budget", "$7.50", "--budget-email", "new@example.com"]);
    assert_eq!(report["budget"]["action"], "updated", "{report:#}");
    assert_eq!(report["budget"]["spec"]["email"], "new@example.com");
    assert_eq!(alerts(sdk.clone()).await, 2);

    // Budgets unreachable: the deploy stops before the stack, whose tags still record the
    // budget as it is (they never run ahead of it).
    let out = s
        .deploy(
            stage,
            &[
                "--model",
                "mini",
                "--budget",
                "9",
                "--budget-email",
                "new@example.com",
            ],
        )
        .env("AWS_ENDPOINT_URL_BUDGETS", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info = json_of(s.cli(stage).args(["--output", "json", "info"]));
    assert_eq!(info["budget"]["limit_usd"], 7.5, "{info:#}");
    let tags = stack_tags(&sdk, "ummatics-sentiment-stack-budget").await;
    assert_eq!(
        tags.get("ummatics-sentiment:budget-usd")
            .map(String::as_str),
        Some("7.50"),
        "{tags:?}"
    );
    let report = budget(&["--budget", "$7.50", "--budget-email", "ops@example.com"]);
    assert_eq!(report["budget"]["action"], "updated", "{report:#}");
    let report = budget(&[]);
    assert_eq!(report["budget"]["action"], "kept", "{report:#}");
    assert_eq!(budget_limit(&sdk, name).await.as_deref(), Some("7.50 USD"));
    // --budget 0 removes it.
    let report = budget(&["--budget", "0"]);
    assert_eq!(report["budget"]["action"], "removed", "{report:#}");
    assert_eq!(budget_limit(&sdk, name).await, None);

    // destroy takes it with the rest; the alarm address serves when no budget address is given.
    let report = budget(&["--budget", "3", "--alarm-email", "alarms@example.com"]);
    assert_eq!(report["budget"]["action"], "created", "{report:#}");
    assert_eq!(report["budget"]["spec"]["email"], "alarms@example.com");

    // A budget made before names carried the region (named after the stack alone) moves to
    // the new name on the next deploy; nothing is left under the old one.
    let stack = "ummatics-sentiment-stack-budget";
    let budgets = aws_sdk_budgets::Client::new(&sdk);
    let delete_new_named = || async {
        budgets
            .delete_budget()
            .account_id("123456789012")
            .budget_name(name)
            .send()
            .await
            .unwrap();
    };
    delete_new_named().await;
    old_named_budget(&sdk, stack).await;
    let report = budget(&[]);
    assert_eq!(report["budget"]["action"], "kept", "{report:#}");
    assert_eq!(budget_limit(&sdk, name).await.as_deref(), Some("3.00 USD"));
    assert_eq!(
        budget_limit(&sdk, stack).await,
        None,
        "the old name is left"
    );

    // The same stage in a second region has its own budget, and destroying it there leaves
    // this region's alone.
    let elsewhere = "ummatics-sentiment-stack-budget-eu-west-1";
    let report = budget(&[
        "--region",
        "eu-west-1",
        "--budget",
        "4",
        "--budget-email",
        "eu@example.com",
    ]);
    assert_eq!(report["budget"]["action"], "created", "{report:#}");
    assert_eq!(report["budget"]["name"], elsewhere, "{report:#}");
    assert_eq!(
        report["dashboard"]["name"], "ummatics-sentiment-analysis-budget-eu-west-1",
        "{report:#}"
    );
    assert_eq!(
        budget_limit(&sdk, elsewhere).await.as_deref(),
        Some("4.00 USD")
    );
    assert_eq!(budget_limit(&sdk, name).await.as_deref(), Some("3.00 USD"));
    let destroyed = json_of(s.cli(stage).args([
        "--region",
        "eu-west-1",
        "--output",
        "json",
        "destroy",
        "--yes",
        "--registry",
        &s.registry,
    ]));
    let removed = destroyed["removed"].to_string();
    assert!(
        removed.contains(&format!("budget {elsewhere} ($4.00/month)")),
        "{removed}"
    );
    assert_eq!(budget_limit(&sdk, elsewhere).await, None);
    assert_eq!(budget_limit(&sdk, name).await.as_deref(), Some("3.00 USD"));

    // destroy takes a budget under the old name too, when the stack's tags record one.
    delete_new_named().await;
    old_named_budget(&sdk, stack).await;
    let destroyed = s.destroy(stage);
    let removed = destroyed["removed"].to_string();
    assert!(
        removed.contains(&format!("budget {stack} ($3.00/month)")),
        "{removed}"
    );
    assert_eq!(budget_limit(&sdk, name).await, None);
    assert_eq!(budget_limit(&sdk, stack).await, None);
}

/// Bad budgets stop deploy before any AWS call, flags and file alike.
#[test]
fn a_bad_budget_is_refused_before_aws() {
    let s = standins();
    let dir = tempfile::tempdir().unwrap();
    for (args, file, expected) in [
        (
            &["--budget", "five"][..],
            None,
            "is not an amount of US dollars",
        ),
        (
            &["--budget", "5"],
            None,
            "no address is given: add --budget-email",
        ),
        (
            &["--budget-email", "ops@example.com"],
            None,
            "no budget is given: add --budget USD",
        ),
        (
            &["--budget", "5", "--budget-email", "ops"],
            None,
            "--budget-email \"ops\" is not an email address",
        ),
        (
            &[],
            Some("[stages.bad]\nbudget = true\n"),
            "ummatics-sentiment.toml:2: budget: a boolean is not an amount",
        ),
        (
            &[],
            Some("budget = -3\nbudget-email = \"ops@example.com\"\n"),
            "ummatics-sentiment.toml:1: budget: \"-3\" is negative",
        ),
        (
            // A negative number is taken as the flag's value (not an unknown flag) and refused.
            &["--budget", "-3", "--budget-email", "ops@example.com"],
            None,
            "\"-3\" is negative: a budget is 0 or more US dollars a month (0 removes it)",
        ),
    ] {
        let config = dir.path().join("ummatics-sentiment.toml");
        match file {
            Some(text) => std::fs::write(&config, text).unwrap(),
            None => {
                let _ = std::fs::remove_file(&config);
            }
        }
        assert_refused_before_aws(
            s.cli("bad")
                .args(["deploy", "--yes"])
                .args(args)
                .current_dir(dir.path()),
            &format!("{args:?} {file:?}"),
            expected,
        );
    }
}

/// The image URI and memory Lambda runs for `function` (read from Lambda, not our reports).
async fn running(sdk: &aws_config::SdkConfig, function: &str) -> (String, i32) {
    let out = aws_sdk_lambda::Client::new(sdk)
        .get_function()
        .function_name(function)
        .send()
        .await
        .unwrap();
    (
        out.code()
            .and_then(|c| c.image_uri())
            .unwrap_or_default()
            .to_string(),
        out.configuration().unwrap().memory_size().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_deploy_is_a_release_and_rollback_puts_an_earlier_one_live_with_the_same_url() {
    let s = standins();
    let stage = "release";
    s.destroy(stage);
    let sdk = s.sdk().await;
    let function = "ummatics-sentiment-analysis-release";

    // Release 1 (daemonless builder) and release 2 (the Docker engine, more memory): two
    // images, two configurations.
    let a = json_of(&mut s.deploy(stage, &["--model", "mini", "--builder", "oci"]));
    assert_eq!(a["release"]["number"], 1, "{a:#}");
    assert_eq!(a["schema_version"], 1, "{a:#}");
    // A blob's `upload` is there only when this push sent it: what the registry already held
    // (an earlier run against the same stand-ins) decides, not the schema.
    let mut sent = a.clone();
    for blob in sent["blobs"].as_array_mut().unwrap() {
        blob.as_object_mut().unwrap().remove("upload");
    }
    insta::assert_snapshot!("deploy_json_shape", shape(&sent));
    assert_eq!(a["release"]["new"], true);
    // moto skips AWS::Lambda::Url (null here); what keeps a URL is that no update replaces
    // the function or its URL resource, checked on the rollback's plan below.
    let url = a["url"].clone();
    let arn = a["function_arn"].clone();
    let digest_a = a["image_digest"].as_str().unwrap().to_string();
    let b = json_of(&mut s.deploy(
        stage,
        &["--model", "mini", "--builder", "docker", "--memory", "2048"],
    ));
    assert_eq!(b["release"]["number"], 2, "{b:#}");
    let digest_b = b["image_digest"].as_str().unwrap().to_string();
    assert_ne!(digest_a, digest_b);
    // The same again is no release.
    let again = json_of(&mut s.deploy(
        stage,
        &["--model", "mini", "--builder", "docker", "--memory", "2048"],
    ));
    assert_eq!(again["outcome"], "unchanged", "{again:#}");
    assert_eq!(again["release"]["number"], 2);
    assert_eq!(again["release"]["new"], false);
    let (image, memory) = running(&sdk, function).await;
    assert!(image.ends_with(&digest_b), "{image}");
    assert_eq!(memory, 2048);

    // Each release's image carries its slot tag, which the lifecycle policy never expires.
    let info = json_of(s.cli(stage).args(["--output", "json", "info"]));
    assert_eq!(info["schema_version"], 1, "{info:#}");
    insta::assert_snapshot!("info_json_shape", shape(&info));
    let tagged = |tag: &str| {
        info["registry"]["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["tag"] == tag)
            .map(|i| i["digest"].as_str().unwrap().to_string())
    };
    assert_eq!(
        tagged("keep-1").as_deref(),
        Some(digest_a.as_str()),
        "{info:#}"
    );
    assert_eq!(tagged("keep-2").as_deref(), Some(digest_b.as_str()));
    let policy = aws_sdk_ecr::Client::new(&sdk)
        .get_lifecycle_policy()
        .repository_name("ummatics-sentiment-release")
        .send()
        .await
        .unwrap();
    let policy: serde_json::Value =
        serde_json::from_str(policy.lifecycle_policy_text().unwrap()).unwrap();
    assert_eq!(policy["rules"][0]["selection"]["tagPrefixList"][0], "keep-");

    // releases: newest first, release 2 live, who and what.
    let listed = json_of(s.cli(stage).args(["--output", "json", "releases"]));
    assert_eq!(listed["live"], 2, "{listed:#}");
    assert_eq!(listed["schema_version"], 1, "{listed:#}");
    insta::assert_snapshot!("releases_json_shape", shape(&listed));
    let releases = listed["releases"].as_array().unwrap();
    assert_eq!(releases.len(), 2);
    // Newest first, as the table lists them.
    assert_eq!(releases[0]["number"], 2, "{listed:#}");
    assert_eq!(releases[1]["number"], 1, "{listed:#}");
    assert_eq!(releases[0]["model"]["name"], "sst2-mini (embedded)");
    assert_eq!(releases[0]["model"]["sha256"].as_str().unwrap().len(), 64);
    assert!(
        releases[0]["deployed_by"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws"),
        "{listed:#}"
    );
    assert_eq!(listed["drift"].as_array().unwrap().len(), 0);

    // A dry run changes nothing.
    let dry = json_of(
        s.cli(stage)
            .args(["--output", "json", "rollback", "--dry-run"]),
    );
    assert_eq!(dry["outcome"], "dry-run", "{dry:#}");
    assert!(running(&sdk, function).await.0.ends_with(&digest_b));

    // rollback: release 1's image and memory run again, at the same URL.
    let back = json_of(s.cli(stage).args(["--output", "json", "rollback", "--yes"]));
    assert_eq!(back["outcome"], "rolled-back", "{back:#}");
    assert_eq!(back["from"], 2);
    assert_eq!(back["to"], 1);
    assert_eq!(back["url"], url);
    // moto lists no resource changes for an update; AWS does, and none may replace a resource.
    for change in back["plan"]["resources"].as_array().unwrap() {
        assert_eq!(change["action"], "Modify", "{back:#}");
        assert_ne!(change["replacement"], "True", "{back:#}");
    }
    let info = json_of(s.cli(stage).args(["--output", "json", "info"]));
    assert_eq!(info["function"]["arn"], arn);
    let (image, memory) = running(&sdk, function).await;
    assert!(image.ends_with(&digest_a), "{image}");
    assert_eq!(memory, 1769);
    let text = s.cli(stage).arg("releases").output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("* live: release 1"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("*  1 ")),
        "the live release is not marked: {text}"
    );

    // Nothing before release 1; release 1 is already live; release 9 was never made.
    for (args, expected) in [
        (
            &["rollback", "--yes"][..],
            "nothing before it to roll back to",
        ),
        (
            &["rollback", "--to", "9", "--yes"],
            "there is no release 9: the kept releases are 1, 2",
        ),
    ] {
        let out = s.cli(stage).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let same = json_of(
        s.cli(stage)
            .args(["--output", "json", "rollback", "--to", "1"]),
    );
    assert_eq!(same["outcome"], "already-live", "{same:#}");

    // A new deploy after a rollback is release 3, and live.
    let c = json_of(&mut s.deploy(
        stage,
        &["--model", "mini", "--builder", "oci", "--memory", "3008"],
    ));
    assert_eq!(c["release"]["number"], 3, "{c:#}");

    // A destroyed stack has nothing to roll back to, and says so.
    s.destroy(stage);
    let out = s.cli(stage).args(["rollback", "--yes"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("does not exist in us-east-1 (destroyed, or never deployed)"),
        "{stderr}"
    );
}
