//! `ummatics-sentiment.toml`: a stage's settings from the file found in the current directory,
//! a flag beating it, each value's source in deploy's and info's reports, the deployed
//! function carrying the file's values (read back from Lambda), and info pointing at a setting
//! the file changed since.

use crate::common::{assert_refused_before_aws, doctor_check, json_of, standins};

fn source_of<'a>(report: &'a serde_json::Value, setting: &str) -> &'a str {
    report["settings"][setting]["source"]
        .as_str()
        .unwrap_or_else(|| panic!("no source for {setting}: {report:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stage_table_in_the_config_file_sets_the_deploy_and_info_shows_where_from() {
    let s = standins();
    let stage = "cfgfile";
    s.destroy(stage);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ummatics-sentiment.toml");
    let write = |memory: u32| {
        std::fs::write(
            &file,
            format!(
                "model = \"mini\"\nmemory = 2048\ntimeout = 20\n\n[stages.other]\nmemory = 4096\n\n\
                 [stages.{stage}]\nmemory = {memory}\nlog-retention-days = 30\n"
            ),
        )
        .unwrap()
    };
    write(2560);

    // Found in the current directory; --timeout beats the file's 20.
    let report = json_of(
        s.deploy(stage, &["--timeout", "45"])
            .current_dir(dir.path()),
    );
    assert_eq!(report["outcome"], "created", "{report:#}");
    assert_eq!(report["memory_mb"], 2560);
    assert_eq!(report["timeout_s"], 45);
    assert_eq!(report["config"]["stage"], stage);
    assert_eq!(
        source_of(&report, "memory_mb"),
        format!("ummatics-sentiment.toml:9 [stages.{stage}]")
    );
    assert_eq!(source_of(&report, "timeout_s"), "flag");
    assert_eq!(source_of(&report, "model"), "ummatics-sentiment.toml:1");
    assert_eq!(
        source_of(&report, "log_retention_days"),
        format!("ummatics-sentiment.toml:10 [stages.{stage}]")
    );
    assert_eq!(source_of(&report, "arch"), "default");

    // What Lambda and CloudWatch Logs hold, not what the report says.
    let sdk = s.sdk().await;
    let function = aws_sdk_lambda::Client::new(&sdk)
        .get_function()
        .function_name(report["function_name"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let config = function.configuration().unwrap();
    assert_eq!(config.memory_size(), Some(2560));
    assert_eq!(config.timeout(), Some(45));
    let groups = aws_sdk_cloudwatchlogs::Client::new(&sdk)
        .describe_log_groups()
        .log_group_name_prefix(format!(
            "/aws/lambda/{}",
            report["function_name"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(groups.log_groups()[0].retention_in_days(), Some(30));

    // info: the file's settings for this stage with their lines. The timeout differs (the
    // deploy's flag beat the file), and says so; memory does not.
    let info = json_of(
        s.cli(stage)
            .args(["--output", "json", "info"])
            .current_dir(dir.path()),
    );
    assert_eq!(info["config"]["stage"], stage, "{info:#}");
    assert_eq!(info["config"]["settings"]["memory_mb"]["value"], 2560);
    let differences = info["config"]["differences"].as_array().unwrap();
    assert_eq!(differences.len(), 1, "{info:#}");
    assert_eq!(differences[0]["setting"], "timeout");
    assert_eq!(differences[0]["configured"], "20");
    assert_eq!(differences[0]["deployed"], "45");
    assert_eq!(differences[0]["source"], "ummatics-sentiment.toml:3");

    // The file changes; info (human) points at it before anyone deploys.
    write(3072);
    let out = s
        .cli(stage)
        .arg("info")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "memory is 3072 in the file (ummatics-sentiment.toml:9 [stages.{stage}]) but 2560 deployed"
        )),
        "{text}"
    );

    // --config names another file; a stage it has no table for says which it has.
    let elsewhere = dir.path().join("other.toml");
    std::fs::write(&elsewhere, "memory = 1769\n[stages.prod]\ntimeout = 30\n").unwrap();
    let out = s
        .deploy(stage, &["--dry-run", "--config"])
        .arg(&elsewhere)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("it has no table for this stage, only [stages.prod]"),
        "{stderr}"
    );
    let dry: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(dry["memory_mb"], 1769);
    assert_eq!(dry["outcome"], "dry-run");

    s.destroy(stage);
}

/// A bad file stops deploy and info before any AWS call (the endpoint is a closed port), with
/// the file, the line and the key; nothing is deployed.
#[test]
fn a_bad_config_file_names_the_line_and_stops_before_aws() {
    let s = standins();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "memory = 2048\n[stages.bad]\nmemroy = 1\n",
            "ummatics-sentiment.toml:3: unknown field `memroy`",
        ),
        (
            "[stages.bad]\ntimeout = 901\n",
            "ummatics-sentiment.toml:2: timeout: 901 is out of range",
        ),
        (
            "public-url = \"yes\"\n",
            "ummatics-sentiment.toml:1: invalid type: string \"yes\", expected a boolean",
        ),
        ("gate = \"missing.tsv\"\n", "--gate: cannot read"),
    ];
    for (text, expected) in cases {
        std::fs::write(dir.path().join("ummatics-sentiment.toml"), text).unwrap();
        for command in [&["deploy", "--yes"][..], &["info"]] {
            if command == ["info"] && expected.starts_with("--gate") {
                continue; // info does not read the gate file
            }
            assert_refused_before_aws(
                s.cli("bad").args(command).current_dir(dir.path()),
                &format!("{command:?} with {text:?}"),
                expected,
            );
        }
    }
}

#[test]
fn a_plain_http_registry_elsewhere_is_refused_before_any_call() {
    let s = standins();
    let dir = tempfile::tempdir().unwrap();
    for command in [&["deploy", "--yes"][..], &["destroy", "--yes"]] {
        assert_refused_before_aws(
            s.cli("insecure")
                .args(command)
                .args(["--registry", "http://10.20.30.40:5000"])
                .current_dir(dir.path()),
            &format!("{command:?} --registry http://10.20.30.40:5000"),
            "is plain HTTP: the registry token would cross the network in clear text",
        );
    }
    // --insecure-registry makes it the user's choice, and needs --registry.
    assert_refused_before_aws(
        s.cli("insecure")
            .args(["deploy", "--yes", "--insecure-registry"])
            .current_dir(dir.path()),
        "--insecure-registry alone",
        "--registry",
    );
}

/// With stages in the file, a `--stage` that is neither among them nor deployed is refused
/// (a typo would make a new billable stack), dry run included, naming the stages and
/// `--new-stage`; `--new-stage` makes it on purpose.
#[test]
fn a_mistyped_stage_is_refused_and_new_stage_creates_one() {
    let s = standins();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ummatics-sentiment.toml"),
        "memory = 1769\n[stages.dev]\ntimeout = 30\n[stages.prod]\ntimeout = 20\n",
    )
    .unwrap();
    s.destroy("prdo");
    for extra in [&["--yes"][..], &["--dry-run"]] {
        let out = s
            .cli("prdo")
            .args(["deploy", "--model", "mini"])
            .args(extra)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra:?}: {stderr}");
        for text in [
            "stage \"prdo\" is not in ummatics-sentiment.toml (it defines [stages.dev], [stages.prod])",
            "--new-stage",
        ] {
            assert!(stderr.contains(text), "{extra:?}: {text:?} not in {stderr}");
        }
    }
    let dry = s
        .deploy("prdo", &["--model", "mini", "--dry-run", "--new-stage"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
}

/// The file may hold the AWS connection — `region`, `profile` (after the flags, before
/// AWS_REGION / AWS_PROFILE) — and how deploy pushes: `registry`, `builder`, `bootstrap` (a
/// path relative to the file). A flag beats the file; a bad value names the line.
#[test]
fn the_file_holds_region_profile_registry_builder_and_bootstrap() {
    let s = standins();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ummatics-sentiment.toml");
    std::fs::copy(&s.bootstrap, dir.path().join("bootstrap")).unwrap();
    std::fs::write(
        &file,
        format!(
            "region = \"eu-west-1\"\nregistry = \"{}\"\nbuilder = \"oci\"\nbootstrap = \"bootstrap\"\n",
            s.registry
        ),
    )
    .unwrap();
    let dry = |extra: &[&str]| {
        json_of(
            s.cli("filecfg")
                .args(["--output", "json", "deploy", "--dry-run", "--model", "mini"])
                .args(extra)
                .current_dir(dir.path()),
        )
    };
    let report = dry(&[]);
    assert_eq!(report["region"], "eu-west-1", "{report:#}");
    assert_eq!(report["builder"], "oci", "{report:#}");
    assert_eq!(report["function"]["source"], "prebuilt", "{report:#}");
    assert!(
        report["image_uri"].as_str().unwrap().contains("eu-west-1"),
        "{report:#}"
    );
    // Flags beat the file.
    let report = dry(&["--region", "us-east-1"]);
    assert_eq!(report["region"], "us-east-1", "{report:#}");

    // profile: the profile's region applies when neither flag, file nor AWS_REGION gives one.
    let aws_config = dir.path().join("aws-config");
    std::fs::write(&aws_config, "[profile staging]\nregion = ap-southeast-2\n").unwrap();
    std::fs::write(&file, "profile = \"staging\"\n").unwrap();
    let doctor = json_of(
        s.cli("filecfg")
            .env_remove("AWS_REGION")
            .env("AWS_CONFIG_FILE", &aws_config)
            .args(["--output", "json", "doctor", "--model", "mini"])
            .current_dir(dir.path()),
    );
    let region = doctor_check(&doctor, "AWS region");
    assert!(
        region["detail"]
            .as_str()
            .unwrap()
            .starts_with("ap-southeast-2"),
        "{region:#}"
    );

    std::fs::write(&file, "[stages.filecfg]\nbuilder = \"podman\"\n").unwrap();
    crate::common::assert_refused_before_aws(
        s.cli("filecfg")
            .args(["deploy", "--yes"])
            .current_dir(dir.path()),
        "builder = podman",
        "ummatics-sentiment.toml:2: builder: \"podman\" is not a builder: auto, docker or oci",
    );
}
