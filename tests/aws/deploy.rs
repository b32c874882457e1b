//! doctor → deploy → info → deploy (unchanged) → deploy --memory → destroy, against moto
//! (AWS), Debian's dockerd (a real image build) and docker-registry (a real push with the ECR
//! token as basic auth). Each test uses its own --stage so they run side by side.

use crate::common::{assert_refused_before_aws, json_of, stack_status, standins, StandIns};

/// The bundled model: the image self-test needs a model that knows sentiment.
const MODEL: &str = "mini";

fn deploy(s: &StandIns, stage: &str, extra: &[&str]) -> assert_cmd::Command {
    let mut args = vec!["--model", MODEL];
    args.extend_from_slice(extra);
    s.deploy(stage, &args)
}

async fn function_memory(s: &StandIns, name: &str) -> i32 {
    let lambda = aws_sdk_lambda::Client::new(&s.sdk().await);
    let f = lambda
        .get_function()
        .function_name(name)
        .send()
        .await
        .unwrap();
    f.configuration().unwrap().memory_size().unwrap()
}

async fn stack_events(s: &StandIns, stack: &str) -> usize {
    let cfn = aws_sdk_cloudformation::Client::new(&s.sdk().await);
    cfn.describe_stack_events()
        .stack_name(stack)
        .send()
        .await
        .unwrap()
        .stack_events()
        .len()
}

#[tokio::test(flavor = "multi_thread")]
async fn full_flow_doctor_deploy_info_redeploy_update_destroy() {
    let s = standins();
    let stage = "flow";
    s.destroy(stage);
    let function = "ummatics-sentiment-analysis-flow";
    let stack = "ummatics-sentiment-stack-flow";
    let repo = "ummatics-sentiment-flow";

    // doctor: every prerequisite present, exit 0.
    let doctor = json_of(
        s.cli(stage)
            .args(["--output", "json", "doctor", "--model", MODEL]),
    );
    assert_eq!(doctor["ok"], true, "{doctor:#}");
    let names: Vec<&str> = doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for expected in [
        "AWS credentials",
        "AWS region",
        "Docker engine",
        "Rust target",
        "model",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} not checked: {names:?}"
        );
    }
    assert!(doctor["checks"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("123456789012"));

    // deploy: image built by dockerd, pushed with the token, stack created.
    let uploads_before = s.registry_uploads(repo);
    let first = json_of(&mut deploy(&s, stage, &[]));
    assert_eq!(first["outcome"], "created", "{first:#}");
    assert_eq!(first["pushed"], true);
    assert!(
        s.registry_uploads(repo) > uploads_before,
        "nothing was uploaded"
    );
    let digest = first["image_digest"].as_str().unwrap().to_string();
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert!(first["image_uri"]
        .as_str()
        .unwrap()
        .ends_with(&format!("@{digest}")));
    // The image's own tag, and release 1's slot tag (`keep-1`), which the lifecycle policy
    // never expires (sorted: no registry promises an order).
    let mut expected_tags = vec![
        first["image_tag"].as_str().unwrap().to_string(),
        "keep-1".to_string(),
    ];
    expected_tags.sort();
    assert_eq!(s.registry_tags(repo), expected_tags);
    // The default memory is the measured cheapest per text (src/sizing.rs, BENCHMARKS.md), and
    // the summary carries the estimate for the model deployed.
    assert_eq!(function_memory(&s, function).await, 1769);
    assert_eq!(first["estimate"]["memory_mb"], 1769);
    assert!(first["estimate"]["basis"]
        .as_str()
        .unwrap()
        .contains("sst2-mini"));
    let gb_s = first["estimate"]["gb_seconds_per_10k_texts"]
        .as_f64()
        .unwrap();
    assert!(gb_s > 1.0 && gb_s < 200.0, "{gb_s} GB-s per 10k texts");
    assert!(first["function_arn"]
        .as_str()
        .unwrap()
        .ends_with(&format!(":function:{function}")));
    // moto skips AWS::Lambda::Url, so there is no URL to read; deploy says so instead of failing.
    assert!(first["url"].is_null());

    // The pushed image is real: the registry's copy runs the model's self-test in dockerd.
    let image = format!("{}/{repo}@{digest}", s.registry);
    s.run_self_test_in_docker(&image);

    // info: what was deployed.
    let info = json_of(s.cli(stage).args(["--output", "json", "info"]));
    assert_eq!(info["stack"]["status"], "CREATE_COMPLETE", "{info:#}");
    assert_eq!(info["function"]["memory_mb"], 1769);
    assert_eq!(info["function"]["timeout_s"], 60);
    assert_eq!(info["function"]["image_digest"], digest.as_str());
    assert_eq!(info["repository"]["name"], repo);

    // The dashboard: in CloudWatch (read back, not from our report), linked from info and deploy.
    // Dashboard names are per account: the region is in the name.
    let dashboard = format!("{function}-us-east-1");
    assert_eq!(info["dashboard"]["name"], dashboard.as_str(), "{info:#}");
    assert_eq!(info["dashboard"], first["dashboard"]);
    let link = info["dashboard"]["url"].as_str().unwrap();
    assert!(
        link.ends_with(&format!("#dashboards/dashboard/{dashboard}")),
        "{link}"
    );
    let body = aws_sdk_cloudwatch::Client::new(&s.sdk().await)
        .get_dashboard()
        .dashboard_name(&dashboard)
        .send()
        .await
        .unwrap()
        .dashboard_body
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&body).expect("the dashboard body is JSON");
    let widgets = body["widgets"].as_array().unwrap();
    let shown: Vec<String> = widgets
        .iter()
        .flat_map(|w| w["properties"]["metrics"].as_array().unwrap())
        .map(|m| m.to_string())
        .collect();
    for (metric, stat) in [
        ("Invocations", ""),
        ("Errors", ""),
        ("Throttles", ""),
        ("Duration", "p50"),
        ("Duration", "p95"),
        ("Duration", "Maximum"),
        ("ConcurrentExecutions", ""),
    ] {
        assert!(
            shown.iter().any(|m| m
                .contains(&format!("\"{metric}\",\"FunctionName\",\"{function}\""))
                && m.contains(stat)),
            "no {metric} {stat} for {function} in {shown:#?}"
        );
    }
    // The cost per day: Duration and the cold starts' INIT (the function's own metric), at
    // this function's memory and x86_64's price per GB-s.
    assert!(
        shown
            .iter()
            .any(|m| m.contains("(duration + FILL(init, 0)) / 1000 * 1769 / 1024 * 0.0000166667")),
        "{shown:#?}"
    );
    assert!(
        shown.iter().any(|m| m.contains(&format!(
            "\"ummatics-sentiment\",\"InitDuration\",\"FunctionName\",\"{function}\""
        )) && m.contains("\"id\":\"init\"")),
        "{shown:#?}"
    );

    // Unchanged redeploy: no upload, no stack update.
    let uploads = s.registry_uploads(repo);
    let events = stack_events(&s, stack).await;
    let again = json_of(&mut deploy(&s, stage, &[]));
    assert_eq!(again["outcome"], "unchanged", "{again:#}");
    assert_eq!(again["pushed"], false);
    assert_eq!(again["plan"]["kind"], "none");
    assert_eq!(again["image_digest"], digest.as_str());
    assert_eq!(
        s.registry_uploads(repo),
        uploads,
        "the unchanged redeploy uploaded something"
    );
    assert_eq!(
        stack_events(&s, stack).await,
        events,
        "the unchanged redeploy touched the stack"
    );

    // A settings change: the same image, an updated function.
    // Two vCPUs' worth of memory: the function gets a second inference thread too.
    let update = json_of(&mut deploy(&s, stage, &["--memory", "3538"]));
    assert_eq!(update["outcome"], "updated", "{update:#}");
    assert_eq!(update["pushed"], false);
    let changed: Vec<&str> = update["plan"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["MemorySize", "Threads"]);
    assert_eq!(function_memory(&s, function).await, 3538);
    // No image upload; only release 2's slot tag on the same image (one manifest PUT).
    assert_eq!(update["release"]["number"], 2, "{update:#}");
    assert_eq!(s.registry_uploads(repo), uploads + 1);
    assert!(s.registry_tags(repo).contains(&"keep-2".to_string()));

    // policy: the function's ARN only.
    let policy = json_of(s.cli(stage).args(["--output", "json", "policy"]));
    let arn = first["function_arn"].as_str().unwrap();
    for statement in policy["policy"]["Statement"].as_array().unwrap() {
        assert_eq!(statement["Resource"], arn);
    }

    // destroy: everything goes, in moto and in the registry.
    let destroyed = s.destroy(stage);
    let removed = destroyed["removed"].to_string();
    assert!(removed.contains("stack"), "{removed}");
    assert!(removed.contains("ECR repository"), "{removed}");
    let sdk = s.sdk().await;
    assert_eq!(stack_status(&sdk, stack).await, None);
    let ecr = aws_sdk_ecr::Client::new(&sdk);
    assert!(ecr
        .describe_repositories()
        .repository_names(repo)
        .send()
        .await
        .is_err());
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    assert!(lambda
        .get_function()
        .function_name(function)
        .send()
        .await
        .is_err());
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix(format!("/aws/lambda/{function}"))
        .send()
        .await
        .unwrap();
    assert!(groups.log_groups().is_empty());
    assert!(
        s.registry_tags(repo).is_empty(),
        "images left in the registry"
    );

    // destroy again: nothing there, still a success.
    let none = json_of(s.cli(stage).args(["--output", "json", "destroy", "--yes"]));
    assert_eq!(none["removed"].as_array().unwrap().len(), 0);
}

/// A public URL: both statements AWS requires since October 2025 in the function's resource
/// policy, and a concurrency cap by default, read back from Lambda (not from our report). A
/// stack of its own: moto does not add resources whose condition turns true on a stack update
/// (AWS does), so switching an existing stack to public cannot be checked here.
#[tokio::test(flavor = "multi_thread")]
async fn public_url_grants_both_permissions_and_caps_concurrency() {
    let s = standins();
    let stage = "public";
    s.destroy(stage);
    let function = "ummatics-sentiment-analysis-public";
    let public = deploy(&s, stage, &["--public-url"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&public.stderr);
    assert!(public.status.success(), "{stderr}");
    assert!(
        stderr.contains("At most 10 instances run at once"),
        "{stderr}"
    );
    assert!(
        stderr.contains("compute costs at most $1.04/hour"),
        "{stderr}"
    );
    let public: serde_json::Value = serde_json::from_slice(&public.stdout).unwrap();
    assert_eq!(public["reserved_concurrency"], 10);
    let lambda = aws_sdk_lambda::Client::new(&s.sdk().await);
    let policy = lambda
        .get_policy()
        .function_name(function)
        .send()
        .await
        .unwrap();
    let policy: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    let public_statement = |action: &str| {
        statements
            .iter()
            .find(|st| st["Action"] == action && st["Principal"] == "*" && st["Effect"] == "Allow")
            .unwrap_or_else(|| panic!("no public {action} statement: {policy:#}"))
    };
    let url = public_statement("lambda:InvokeFunctionUrl");
    // moto keeps AddPermission's fields; AWS writes them as conditions.
    assert!(
        url["FunctionUrlAuthType"] == "NONE"
            || url["Condition"]["StringEquals"]["lambda:FunctionUrlAuthType"] == "NONE",
        "{url}"
    );
    let invoke = public_statement("lambda:InvokeFunction");
    assert!(
        invoke["InvokedViaFunctionUrl"] == true
            || invoke["Condition"]["Bool"]["lambda:InvokedViaFunctionUrl"] == "true",
        "{invoke}"
    );
    let config = lambda
        .get_function()
        .function_name(function)
        .send()
        .await
        .unwrap();
    assert_eq!(
        config
            .concurrency()
            .and_then(|c| c.reserved_concurrent_executions()),
        Some(10)
    );
    let info = json_of(s.cli(stage).args(["--output", "json", "info"]));
    assert_eq!(info["function"]["reserved_concurrency"], 10, "{info:#}");
    s.destroy(stage);
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_complete_stack_is_recreated() {
    let s = standins();
    let stage = "rollback";
    s.destroy(stage);
    let function = "ummatics-sentiment-analysis-rollback";
    let stack = "ummatics-sentiment-stack-rollback";
    let logs = aws_sdk_cloudwatchlogs::Client::new(&s.sdk().await);
    // A log group that appears once deploy has checked for one (another process made it
    // meanwhile) makes the create fail, as on AWS. Deploy refuses one that is there before
    // (the ownership tests), so it is made while the image is built and pushed.
    let mut child = s
        .cli_process(stage)
        .args(["--output", "json", "deploy", "--yes"])
        .args(["--model", MODEL])
        .arg("--registry")
        .arg(&s.registry)
        .arg("--bootstrap")
        .arg(&s.bootstrap)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("==> image") {
            break;
        }
    }
    assert!(seen.contains("==> image"), "{seen}");
    logs.create_log_group()
        .log_group_name(format!("/aws/lambda/{function}"))
        .send()
        .await
        .unwrap();
    for line in lines {
        seen.push_str(&line.unwrap());
        seen.push('\n');
    }
    let failed = child.wait_with_output().unwrap();
    let failed = std::process::Output {
        stderr: seen.into_bytes(),
        ..failed
    };
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("ROLLBACK_COMPLETE"), "{stderr}");
    assert!(
        stderr.contains("LogGroup (AWS::Logs::LogGroup) CREATE_FAILED"),
        "the failed resource's reason is not shown: {stderr}"
    );
    assert!(stderr.contains("already exists"), "{stderr}");
    let first = stderr.to_string();

    // The cause fixed, the next deploy deletes the dead stack and creates it again.
    logs.delete_log_group()
        .log_group_name(format!("/aws/lambda/{function}"))
        .send()
        .await
        .unwrap();
    let output = deploy(&s, stage, &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "✓ stack {stack}: deleted the ROLLBACK_COMPLETE stack; creating it again"
        )),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["outcome"], "created");
    assert_eq!(
        report["pushed"], false,
        "the image was already pushed by the failed deploy: {first}"
    );
    assert_eq!(
        stack_status(&s.sdk().await, stack).await.as_deref(),
        Some("CREATE_COMPLETE")
    );
    s.destroy(stage);
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_changes_nothing() {
    let s = standins();
    let stage = "dryrun";
    s.destroy(stage);
    let repo = "ummatics-sentiment-dryrun";
    let uploads = s.registry_uploads(repo);
    let plan = json_of(&mut deploy(&s, stage, &["--dry-run"]));
    assert_eq!(plan["outcome"], "dry-run", "{plan:#}");
    assert_eq!(plan["plan"]["kind"], "create");
    assert_eq!(plan["pushed"], false);
    assert!(!plan["plan"]["resources"].as_array().unwrap().is_empty());
    let sdk = s.sdk().await;
    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    assert!(
        cfn.describe_stacks()
            .stack_name("ummatics-sentiment-stack-dryrun")
            .send()
            .await
            .is_err(),
        "the dry run left a stack behind"
    );
    let ecr = aws_sdk_ecr::Client::new(&sdk);
    assert!(ecr
        .describe_repositories()
        .repository_names(repo)
        .send()
        .await
        .is_err());
    assert_eq!(s.registry_uploads(repo), uploads);

    // --public-url is warned about and shows in the plan.
    let out = deploy(&s, stage, &["--dry-run", "--public-url"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("callable by anyone"));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(plan["plan"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "UrlAuthType" && p["to"] == "NONE"));
    // ... with a concurrency cap by default, and its worst case per hour said up front.
    assert!(plan["plan"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "ReservedConcurrency" && p["to"] == "10"));
    assert_eq!(plan["reserved_concurrency"], 10);
    assert!(plan["worst_case_usd_per_hour"].as_f64().unwrap() > 0.0);
    let out = deploy(
        &s,
        stage,
        &["--dry-run", "--public-url", "--reserved-concurrency", "3"],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("At most 3 instances run at once"),
        "{stderr}"
    );

    // Without --yes and without a terminal to ask on: refused before anything is done.
    let mut no_yes = s.cli(stage);
    no_yes
        .args(["deploy", "--model", MODEL, "--registry"])
        .arg(&s.registry)
        .arg("--bootstrap")
        .arg(&s.bootstrap); // assert_cmd gives it no terminal on stdin
    let out = no_yes.output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass --yes"));
    assert!(
        cfn.describe_stacks()
            .stack_name("ummatics-sentiment-stack-dryrun")
            .send()
            .await
            .is_err(),
        "a refused deploy left a stack behind"
    );
    assert!(
        ecr.describe_repositories()
            .repository_names(repo)
            .send()
            .await
            .is_err(),
        "a refused deploy made a repository"
    );
}

/// Bad flags fail before any AWS call: the endpoint is a closed port, so reaching AWS would
/// show as a connection error instead of the message asserted.
#[test]
fn bad_flags_fail_before_any_aws_call() {
    let s = standins();
    let cases: [(&[&str], &str); 9] = [
        (
            &["deploy", "--memory", "100"],
            "100 MB is not a size Lambda offers: choose 128-10240 MB",
        ),
        (&["deploy", "--timeout", "901"], "1..=900"),
        (&["deploy", "--arch", "mips"], "invalid value 'mips'"),
        (
            &["deploy", "--model", "/nonexistent/model", "--yes"],
            "model directory /nonexistent/model does not exist",
        ),
        (&["deploy", "--log-retention-days", "10"], "not 10"),
        (
            &["deploy", "--alarm-email", "nope"],
            "\"nope\" is not an email address",
        ),
        (
            &["deploy", "--min-accuracy", "0.9"],
            "no gate file is given",
        ),
        (
            &["deploy", "--gate", "x.tsv", "--min-accuracy", "1.5"],
            "not an accuracy between 0 and 1",
        ),
        (
            &[
                "deploy",
                "--yes",
                "--model",
                "mini",
                "--gate",
                "/nonexistent/gate.tsv",
            ],
            "--gate: cannot read /nonexistent/gate.tsv",
        ),
    ];
    for (args, expected) in cases {
        assert_refused_before_aws(s.cli("badflags").args(args), &format!("{args:?}"), expected);
    }
    // A dynamically linked bootstrap cannot run FROM scratch: refused before AWS too. (The
    // test build is static musl, so a system binary stands for a dynamic one.)
    assert_refused_before_aws(
        s.cli("badflags")
            .args(["deploy", "--yes", "--model", MODEL, "--bootstrap"])
            .arg("/bin/sh"),
        "a dynamic bootstrap",
        "dynamically linked",
    );
}

#[test]
fn docker_unreachable_says_what_to_do() {
    let s = standins();
    let out = s
        .cli("nodocker")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["doctor", "--model", MODEL])
        .output()
        .unwrap();
    // Docker is optional (the daemonless builder needs none): shown with its fix, exit 0.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("✗ Docker engine"), "{stdout}");
    assert!(stdout.contains("optional"), "{stdout}");
    assert!(
        stdout.contains("fix: sudo systemctl start docker"),
        "{stdout}"
    );
    assert!(stdout.contains("✓ AWS credentials"), "{stdout}");

    // A required prerequisite missing fails doctor: here the credentials' endpoint.
    let out = s
        .cli("nodocker")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .args(["doctor", "--model", MODEL])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("✗ AWS credentials"), "{stdout}");
    // Unreachable is not "no credentials": it names the endpoint and the network as the fix.
    assert!(
        stdout.contains("could not reach STS at http://127.0.0.1:9"),
        "{stdout}"
    );
    assert!(
        stdout.contains("fix: check the network connection"),
        "{stdout}"
    );
    assert!(!stdout.contains("aws configure"), "{stdout}");

    // Forcing the Docker builder without an engine: the exact way out.
    let out = s
        .cli("nodocker")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args([
            "deploy",
            "--builder",
            "docker",
            "--yes",
            "--model",
            MODEL,
            "--bootstrap",
        ])
        .arg(&s.bootstrap)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unix:///nonexistent/docker.sock does not answer")
            && stderr.contains("DOCKER_HOST"),
        "{stderr}"
    );
}

#[test]
fn template_passes_cfn_lint() {
    let out = std::process::Command::new("cfn-lint")
        .arg("templates/stack.yaml")
        .output()
        .expect(
            "cfn-lint is not installed: pip install cfn-lint (scripts/standins.sh install does)",
        );
    assert!(
        out.status.success(),
        "cfn-lint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `deploy --gate`: the model is scored in-process before anything is built or pushed; below
/// the threshold, or below what the live release scored on the same file, nothing changes.
#[tokio::test(flavor = "multi_thread")]
async fn the_accuracy_gate_passes_refuses_on_threshold_and_on_regression() {
    let s = standins();
    let stage = "gate";
    s.destroy(stage);
    let stack = "ummatics-sentiment-stack-gate";
    let repo = "ummatics-sentiment-gate";
    let data = "tests/fixtures/sst2-dev.tsv";

    // A refused gate: exit 1, the reason on stderr, no stack made and nothing pushed.
    let sdk = s.sdk().await;
    let uploads = s.registry_uploads(repo);
    let refused = |args: &[&str]| {
        let out = deploy(&s, stage, args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(s.registry_uploads(repo), uploads, "something was pushed");
        stderr
    };
    // Threshold: the bundled mini model (82 %) against 95 % — refused, nothing made.
    let stderr = refused(&["--gate", data, "--min-accuracy", "95%"]);
    assert!(
        stderr.contains("below --min-accuracy 95.00 %: nothing was deployed"),
        "{stderr}"
    );
    assert!(stderr.contains("the model scores 8"), "{stderr}");
    assert_eq!(stack_status(&sdk, stack).await, None);

    // A gate file without the columns is refused with its line, before anything is made.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.tsv");
    std::fs::write(&bad, "sentence\tlabel\nfine\t1\n").unwrap();
    let stderr = refused(&["--gate", bad.to_str().unwrap()]);
    assert!(
        stderr.contains("bad.tsv:1: no column \"text\" in the header"),
        "{stderr}"
    );
    assert_eq!(stack_status(&sdk, stack).await, None);

    // Pass: deployed, with the score recorded on the stack.
    let passed = json_of(&mut deploy(
        &s,
        stage,
        &["--gate", data, "--min-accuracy", "0.8"],
    ));
    assert_eq!(passed["outcome"], "created", "{passed:#}");
    let accuracy = passed["gate"]["accuracy"].as_f64().unwrap();
    assert!((0.8..0.9).contains(&accuracy), "{accuracy}");
    assert_eq!(passed["gate"]["examples"], 872);
    assert!(passed["gate"]["live_accuracy"].is_null());
    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    let tags: std::collections::BTreeMap<String, String> = cfn
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .unwrap()
        .stacks()[0]
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
        .collect();
    assert_eq!(
        tags["ummatics-sentiment:gate-accuracy"],
        format!("{accuracy:.6}")
    );
    assert_eq!(tags["ummatics-sentiment:gate-data-sha256"].len(), 64);

    // Regression: a weaker model (the tiny test fixture, about chance) passes a low threshold
    // but scores below the live release on the same file — refused, the stack untouched.
    let events = stack_events(&s, stack).await;
    let uploads = s.registry_uploads(repo);
    let mut weaker = s.deploy(stage, &[]);
    weaker.args([
        "--model",
        "tests/fixtures/tiny-distilbert",
        "--gate",
        data,
        "--min-accuracy",
        "0.01",
    ]);
    let out = weaker.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "below the live release's {:.2} % on the same file: nothing was deployed",
            accuracy * 100.0
        )),
        "{stderr}"
    );
    assert_eq!(stack_events(&s, stack).await, events, "the stack changed");
    assert_eq!(s.registry_uploads(repo), uploads, "something was pushed");

    // The same file with other bytes is another file: no comparison with the live release.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.tsv");
    let mut text = std::fs::read_to_string(data).unwrap();
    text.push_str("a fine film\t1\n");
    std::fs::write(&other, text).unwrap();
    let plan = json_of(&mut deploy(
        &s,
        stage,
        &[
            "--dry-run",
            "--gate",
            other.to_str().unwrap(),
            "--min-accuracy",
            "0.5",
        ],
    ));
    assert!(plan["gate"]["live_accuracy"].is_null(), "{plan:#}");
    assert_eq!(plan["gate"]["examples"], 873);
    s.destroy(stage);
}
