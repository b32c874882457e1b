//! First contact with a real account, against the stand-ins: console sign-in (`aws login`)
//! credentials, the account's Lambda quotas, memory below the model's need and `--registry`
//! against AWS — each refused (or accepted) before anything is built, pushed or made.

use crate::common::{doctor_check, json_of, repository_exists, stack_status, standins};

/// A profile made by `aws login` (`login_session`) with its cached session, in a throw-away
/// home: `(home, config file, cache directory)`. `expires_at` is the session's RFC 3339 end.
fn login_profile(expires_at: &str) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    use sha2::{Digest, Sha256};
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config");
    let session = "arn:aws:iam::123456789012:user/Admin";
    std::fs::write(
        &config,
        format!("[profile console]\nlogin_session = {session}\nregion = us-east-1\n"),
    )
    .unwrap();
    let cache = home.path().join("login-cache");
    std::fs::create_dir_all(&cache).unwrap();
    let file = cache.join(format!("{}.json", hex::encode(Sha256::digest(session))));
    std::fs::write(
        file,
        serde_json::json!({
            "accessToken": {
                "accessKeyId": "ASIALOGINEXAMPLE",
                "secretAccessKey": "login-secret",
                "sessionToken": "login-session-token",
                "accountId": "123456789012",
                "expiresAt": expires_at,
            },
            "tokenType": "aws_sigv4",
            "refreshToken": "refresh-token",
            "idToken": "id-token",
            "clientId": "arn:aws:signin:::devtools/same-device",
            "dpopKey": "-----BEGIN EC PRIVATE KEY-----\ntest\n-----END EC PRIVATE KEY-----\n",
        })
        .to_string(),
    )
    .unwrap();
    (home, config, cache)
}

/// `doctor --profile console` with the login profile, no other credentials.
fn doctor_with_login(
    s: &crate::common::StandIns,
    config: &std::path::Path,
    cache: &std::path::Path,
) -> serde_json::Value {
    let out = s
        .cli("login")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_CONFIG_FILE", config)
        .env("AWS_SHARED_CREDENTIALS_FILE", config.with_file_name("none"))
        .env("AWS_LOGIN_CACHE_DIRECTORY", cache)
        .args([
            "--profile",
            "console",
            "--output",
            "json",
            "doctor",
            "--model",
            "mini",
        ])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A console sign-in session (`aws login`) is used as the AWS CLI uses it; an expired one
/// gets `aws login` as its fix, not a build-feature message or `aws configure`.
#[test]
fn aws_login_credentials_work_and_an_expired_session_says_aws_login() {
    let s = standins();
    let (_home, config, cache) = login_profile("2099-01-01T00:00:00Z");
    let report = doctor_with_login(&s, &config, &cache);
    let check = doctor_check(&report, "AWS credentials");
    assert_eq!(check["ok"], true, "{report:#}");
    assert!(
        check["detail"].as_str().unwrap().contains("123456789012"),
        "{check:#}"
    );

    let (_home, config, cache) = login_profile("2020-01-01T00:00:00Z");
    let report = doctor_with_login(&s, &config, &cache);
    let check = doctor_check(&report, "AWS credentials");
    assert_eq!(check["ok"], false, "{report:#}");
    let detail = check["detail"].as_str().unwrap();
    assert!(detail.contains("console sign-in session"), "{check:#}");
    assert!(!detail.contains("cargo feature"), "{check:#}");
    assert!(
        check["fix"].as_str().unwrap().starts_with("aws login"),
        "{check:#}"
    );
    assert_eq!(report["ok"], false);

    // No session at all: the same fix.
    std::fs::remove_dir_all(&cache).unwrap();
    let report = doctor_with_login(&s, &config, &cache);
    let check = doctor_check(&report, "AWS credentials");
    assert_eq!(check["ok"], false, "{report:#}");
    assert!(
        check["fix"].as_str().unwrap().starts_with("aws login"),
        "{check:#}"
    );
}

/// Lambda keeps 100 of the account's concurrency unreserved: a reservation that would leave
/// less is refused before anything is made or pushed, dry run included — with the numbers,
/// the quota link and the way out. The stand-in's ca-west-1 plays a new account (10 in all).
#[tokio::test(flavor = "multi_thread")]
async fn a_reservation_the_account_cannot_hold_is_refused_before_the_push() {
    let s = standins();
    let stage = "quota";
    let repository = "ummatics-sentiment-quota";
    let sdk = s.sdk().await;
    // The registry's log spans the stand-ins' life: count from here.
    let uploads = s.registry_uploads(repository);
    let refused = |args: &[&str], expected: &[&str]| {
        let out = s
            .deploy(stage, &["--model", "mini", "--builder", "oci"])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "{args:?} went ahead: {stderr}");
        for text in expected {
            assert!(stderr.contains(text), "{args:?}: {text:?} not in: {stderr}");
        }
    };
    // A new account: a public URL's cap cannot be reserved at all.
    refused(
        &["--region", "ca-west-1", "--public-url"],
        &[
            "10 concurrent executions in ca-west-1",
            "Lambda keeps 100 unreserved",
            "servicequotas",
            "without --public-url",
        ],
    );
    refused(
        &[
            "--region",
            "ca-west-1",
            "--reserved-concurrency",
            "5",
            "--dry-run",
        ],
        &["none can be reserved"],
    );
    // A full-size account: more than 900 never fits.
    refused(
        &["--reserved-concurrency", "950"],
        &[
            "reserved concurrency 950 cannot be set",
            "--reserved-concurrency",
        ],
    );
    assert_eq!(
        s.registry_uploads(repository),
        uploads,
        "deploy pushed first"
    );
    assert_eq!(
        stack_status(&sdk, "ummatics-sentiment-stack-quota").await,
        None
    );
    assert!(!repository_exists(&sdk, repository).await);

    // What fits goes through the check; the dry run shows the quota it read.
    let dry = s
        .deploy(
            stage,
            &[
                "--model",
                "mini",
                "--builder",
                "oci",
                "--dry-run",
                "--public-url",
            ],
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&dry.stderr);
    assert!(dry.status.success(), "{stderr}");
    assert!(stderr.contains("concurrent executions"), "{stderr}");
}

/// Memory below the model's measured need is refused, from a flag or the file, before AWS.
#[test]
fn memory_below_the_models_need_is_refused() {
    let s = standins();
    let dir = tempfile::tempdir().unwrap();
    crate::common::assert_refused_before_aws(
        s.cli("small")
            .args(["deploy", "--yes", "--memory", "256"])
            .current_dir(dir.path()),
        "--memory 256",
        "memory 256 MB (flag) is below what sst2-minilm",
    );
    std::fs::write(dir.path().join("ummatics-sentiment.toml"), "memory = 300\n").unwrap();
    crate::common::assert_refused_before_aws(
        s.cli("small")
            .args(["deploy", "--yes", "--model", "minilm"])
            .current_dir(dir.path()),
        "memory = 300 in the file",
        "at least 434 MB",
    );
    // The smaller model fits where the default does not.
    std::fs::write(dir.path().join("ummatics-sentiment.toml"), "memory = 320\n").unwrap();
    let out = s
        .cli("small")
        .args([
            "--output",
            "json",
            "deploy",
            "--dry-run",
            "--model",
            "mini",
            "--registry",
        ])
        .arg(&s.registry)
        .arg("--bootstrap")
        .arg(&s.bootstrap)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--registry` is for stand-ins: against AWS itself (no endpoint) deploy and destroy refuse
/// it before any call, saying why.
#[test]
fn a_registry_other_than_ecr_is_refused_against_aws() {
    let s = standins();
    let dir = tempfile::tempdir().unwrap();
    for command in [
        &["deploy", "--yes", "--model", "mini"][..],
        &["destroy", "--yes"],
    ] {
        let out = s
            .cli("noecr")
            .env_remove("AWS_ENDPOINT_URL")
            .args(command)
            .args(["--registry", &s.registry])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{command:?}: {stderr}");
        assert!(
            stderr.contains("--registry is refused against AWS: Lambda pulls container images only from an ECR repository"),
            "{command:?}: {stderr}"
        );
        assert!(
            !stderr.contains("dispatch failure"),
            "{command:?}: {stderr}"
        );
    }
    // With an endpoint (the stand-ins) it is accepted.
    json_of(
        s.cli("noecr")
            .args([
                "--output",
                "json",
                "deploy",
                "--dry-run",
                "--model",
                "mini",
                "--registry",
            ])
            .arg(&s.registry)
            .arg("--bootstrap")
            .arg(&s.bootstrap)
            .current_dir(dir.path()),
    );
}

/// `policy --deployer` prints what the deploying identity needs; `doctor` simulates the caller
/// against the same list (IAM SimulatePrincipalPolicy) and names what is missing. A user with
/// a partial policy is told the missing actions; with the printed policy attached as a
/// managed policy (it is too long for a user's inline one), nothing is missing.
#[test]
fn doctor_lists_the_deploy_permissions_the_caller_lacks() {
    let s = standins();
    let user = format!("deployer-{}", std::process::id());
    let keys = s.boto3(&format!(
        r#"
import json, boto3
iam = boto3.client("iam")
iam.create_user(UserName="{user}")
iam.put_user_policy(UserName="{user}", PolicyName="partial", PolicyDocument=json.dumps({{
    "Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Resource": "*",
    "Action": ["cloudformation:*", "ecr:*", "lambda:Get*", "logs:*", "cloudwatch:*"]}}]}}))
key = iam.create_access_key(UserName="{user}")["AccessKey"]
print(key["AccessKeyId"], key["SecretAccessKey"])
"#
    ));
    let (key, secret) = keys.trim().split_once(' ').unwrap();
    let doctor = || {
        let out = s
            .cli("perms")
            .env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .args(["--output", "json", "doctor", "--model", "mini"])
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        doctor_check(&report, "deploy permissions").clone()
    };
    let check = doctor();
    assert_eq!(check["ok"], false, "{check:#}");
    let detail = check["detail"].as_str().unwrap();
    for missing in [
        "iam:PassRole",
        "iam:CreateRole",
        "lambda:CreateFunction",
        "budgets:ModifyBudget",
        "sns:CreateTopic",
    ] {
        assert!(detail.contains(missing), "{missing} not named: {detail}");
    }
    for allowed in [
        "cloudformation:CreateChangeSet",
        "ecr:PutImage",
        "lambda:GetFunction,",
    ] {
        assert!(!detail.contains(allowed), "{allowed} named: {detail}");
    }
    assert!(
        check["fix"].as_str().unwrap().contains("policy --deployer"),
        "{check:#}"
    );

    // The printed policy, attached, is enough.
    let policy = json_of(
        s.cli("perms")
            .args(["--output", "json", "policy", "--deployer"]),
    );
    assert_eq!(policy["account"], "123456789012");
    s.boto3(&format!(
        r#"
import boto3
iam = boto3.client("iam")
arn = iam.create_policy(PolicyName="{user}-deployer", PolicyDocument='''{}''')["Policy"]["Arn"]
iam.attach_user_policy(UserName="{user}", PolicyArn=arn)
"#,
        policy["policy"]
    ));
    let check = doctor();
    assert_eq!(check["ok"], true, "{check:#}");
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("user/{user} may do all that deploy")),
        "{check:#}"
    );
}

/// A region name AWS does not have is diagnosed by `doctor` (with the names it may have
/// meant), and every other command warns before its calls fail.
#[test]
fn an_unknown_region_is_named_with_what_was_meant() {
    let s = standins();
    let out = s
        .cli("region")
        .args([
            "--region",
            "us-east-9",
            "--output",
            "json",
            "doctor",
            "--model",
            "mini",
        ])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!out.status.success());
    let region = doctor_check(&report, "AWS region");
    assert_eq!(region["ok"], false, "{region:#}");
    assert!(
        region["detail"]
            .as_str()
            .unwrap()
            .contains("\"us-east-9\" is not an AWS region this build knows; did you mean us-east-1, us-east-2?"),
        "{region:#}"
    );
    let out = s
        .cli("region")
        .args(["--region", "us-east-9", "info"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: \"us-east-9\" is not an AWS region this build knows"),
        "{stderr}"
    );
    // A real one is named.
    let ok = json_of(
        s.cli("region")
            .args(["--output", "json", "doctor", "--model", "mini"]),
    );
    let region = doctor_check(&ok, "AWS region");
    assert!(
        region["detail"]
            .as_str()
            .unwrap()
            .starts_with("us-east-1, US East (N. Virginia)"),
        "{region:#}"
    );
}

/// A push target that does not answer: the dry run says so instead of "would be pushed", and
/// the real deploy stops before making anything in ECR (the repository is made only once the
/// image is ready to go).
#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_push_target_fails_the_dry_run_and_leaves_nothing_in_ecr() {
    let s = standins();
    let stage = "noreg";
    let repository = "ummatics-sentiment-noreg";
    s.destroy(stage);
    let sdk = s.sdk().await;
    for extra in [&["--dry-run"][..], &[]] {
        let out = s
            .cli(stage)
            .args([
                "--output",
                "json",
                "deploy",
                "--yes",
                "--model",
                "mini",
                "--builder",
                "oci",
            ])
            .args([
                "--registry",
                "127.0.0.1:9",
                "--no-smoke-test",
                "--bootstrap",
            ])
            .arg(&s.bootstrap)
            .args(extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra:?}: {stderr}");
        assert!(
            stderr.contains("the push target 127.0.0.1:9 does not answer"),
            "{extra:?}: {stderr}"
        );
        assert!(
            !repository_exists(&sdk, repository).await,
            "{extra:?} left an ECR repository"
        );
    }
    // A registry that answers: the dry run says it was checked.
    let out = s
        .deploy(stage, &["--model", "mini", "--builder", "oci", "--dry-run"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("which answers and takes the login"),
        "{stderr}"
    );
}
