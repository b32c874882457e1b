//! Shared helpers for the CLI's integration tests.
#![allow(dead_code)]

use assert_cmd::Command;

/// The `ummatics-sentiment` binary, with the environment's model settings cleared.
pub fn cli() -> Command {
    let mut command = Command::cargo_bin("ummatics-sentiment").unwrap();
    command
        .env_remove("UMMATICS_MAX_TOKENS")
        .env_remove("UMMATICS_THREADS")
        .env_remove("UMMATICS_BATCH_TOKENS")
        .env_remove("UMMATICS_MODEL_NAME")
        .env_remove("SENTIMENT_LAMBDA_FUNCTION");
    command
}

/// The same as [`cli`], as a `std::process::Command` (to spawn and wait for it oneself).
pub fn cli_process() -> std::process::Command {
    let mut command =
        std::process::Command::new(assert_cmd::cargo::cargo_bin("ummatics-sentiment"));
    command
        .env_remove("UMMATICS_MAX_TOKENS")
        .env_remove("UMMATICS_THREADS")
        .env_remove("UMMATICS_BATCH_TOKENS")
        .env_remove("UMMATICS_MODEL_NAME")
        .env_remove("SENTIMENT_LAMBDA_FUNCTION");
    command
}

/// Runs the CLI with `args`, asserts it succeeded (showing its stderr if not), returns stdout.
pub fn stdout_of<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let output = cli().args(args).output().unwrap();
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The test stand-ins `scripts/test.sh` starts (moto, dockerd, docker-registry) and the static
/// bootstrap it builds. Missing ones fail the test with what to run: these tests never skip.
pub struct StandIns {
    pub aws_endpoint: String,
    pub docker_host: String,
    pub registry: String,
    pub registry_log: std::path::PathBuf,
    pub bootstrap: std::path::PathBuf,
    /// The same, cross-built for aarch64.
    pub bootstrap_arm64: std::path::PathBuf,
}

/// moto's ECR password for the default account (the registry's htpasswd has it).
pub const ECR_PASSWORD: &str = "123456789012-auth-token";

pub fn standins() -> StandIns {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set: these tests need the stand-ins (moto, dockerd, docker-registry) \
                 and a static bootstrap; run them with ./scripts/test.sh"
            )
        })
    };
    StandIns {
        aws_endpoint: var("UMMATICS_TEST_AWS_ENDPOINT"),
        docker_host: var("UMMATICS_TEST_DOCKER_HOST"),
        registry: var("UMMATICS_TEST_REGISTRY"),
        registry_log: var("UMMATICS_TEST_REGISTRY_LOG").into(),
        bootstrap: var("UMMATICS_TEST_BOOTSTRAP").into(),
        bootstrap_arm64: var("UMMATICS_TEST_BOOTSTRAP_ARM64").into(),
    }
}

impl StandIns {
    /// The CLI pointed at moto and the test engine, with dummy credentials and one attempt per
    /// AWS call (a failure shows at once), for deployment `stage`.
    pub fn cli(&self, stage: &str) -> Command {
        Command::from_std(self.cli_process(stage))
    }

    /// [`StandIns::cli`] as a `std::process::Command`, to spawn and wait for oneself.
    pub fn cli_process(&self, stage: &str) -> std::process::Command {
        let mut command = cli_process();
        command
            .env("AWS_ENDPOINT_URL", &self.aws_endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("UMMATICS_AWS_MAX_ATTEMPTS", "1")
            .env("DOCKER_HOST", &self.docker_host)
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .args(["--stage", stage]);
        command
    }

    /// `--output json deploy --yes --registry <test registry> --bootstrap <static bootstrap>`
    /// for `stage`, plus `extra`.
    pub fn deploy(&self, stage: &str, extra: &[&str]) -> Command {
        let mut command = self.cli(stage);
        command
            .args(["--output", "json", "deploy", "--yes", "--registry"])
            .arg(&self.registry)
            .arg("--bootstrap")
            .arg(&self.bootstrap)
            .args(extra);
        command
    }

    /// `destroy --yes` of `stage`, its images in the test registry included; asserts success and
    /// returns the JSON report. Also how a test starts from nothing when an earlier failed run
    /// left things behind.
    pub fn destroy(&self, stage: &str) -> serde_json::Value {
        json_of(self.cli(stage).args([
            "--output",
            "json",
            "destroy",
            "--yes",
            "--registry",
            &self.registry,
        ]))
    }

    /// `skopeo inspect` (or `--config`) of `repository@digest` in the test registry.
    pub fn skopeo_inspect(
        &self,
        repository: &str,
        digest: &str,
        config: bool,
    ) -> serde_json::Value {
        let reference = format!("docker://{}/{repository}@{digest}", self.registry);
        let creds = format!("AWS:{ECR_PASSWORD}");
        let mut args = vec![
            "inspect",
            "--tls-verify=false",
            "--creds",
            &creds,
            &reference,
        ];
        if config {
            args.insert(1, "--config");
        }
        let out = std::process::Command::new("skopeo")
            .args(&args)
            .output()
            .expect("skopeo is not installed (scripts/standins.sh install)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// SDK configuration for checking moto's state from the tests.
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.aws_endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sts::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load()
            .await
    }

    /// How many upload requests (POST/PATCH/PUT of blobs and manifests) the registry has
    /// served for `repository` so far, from its access log.
    pub fn registry_uploads(&self, repository: &str) -> usize {
        let log = std::fs::read_to_string(&self.registry_log).unwrap_or_default();
        ["POST", "PATCH", "PUT"]
            .iter()
            .map(|m| {
                let needle = format!("\"{m} /v2/{repository}/");
                log.lines().filter(|l| l.contains(&needle)).count()
            })
            .sum()
    }

    /// Pulls `image` from the test registry into dockerd (logged in with the ECR token, in a
    /// throw-away Docker config so nothing lands in ~/.docker) and runs its `--self-test`
    /// with no network; asserts both succeed.
    pub fn run_self_test_in_docker(&self, image: &str) {
        use std::io::Write;
        let docker_config = tempfile::tempdir().unwrap();
        let docker = || {
            let mut command = std::process::Command::new("docker");
            command
                .env("DOCKER_CONFIG", docker_config.path())
                .args(["-H", &self.docker_host]);
            command
        };
        let mut login = docker()
            .args(["login", "-u", "AWS", "--password-stdin", &self.registry])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        login
            .stdin
            .take()
            .unwrap()
            .write_all(ECR_PASSWORD.as_bytes())
            .unwrap();
        let login = login.wait_with_output().unwrap();
        assert!(
            login.status.success(),
            "docker login failed: {}",
            String::from_utf8_lossy(&login.stderr)
        );
        let run = docker()
            .args(["run", "--rm", "--network", "none", image, "--self-test"])
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "self-test in the image failed: {}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
    }

    /// The registry's tags for a repository, sorted (empty when it has none).
    pub fn registry_tags(&self, repository: &str) -> Vec<String> {
        let out = std::process::Command::new("curl")
            .args([
                "-sf",
                "-u",
                &format!("AWS:{ECR_PASSWORD}"),
                &format!("http://{}/v2/{repository}/tags/list", self.registry),
            ])
            .output()
            .unwrap();
        if !out.status.success() {
            return Vec::new();
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut tags: Vec<String> = v["tags"]
            .as_array()
            .map(|a| a.iter().map(|t| t.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        // The registry lists tags in its storage's directory order, which differs between
        // filesystems (CI's host listed `keep-1` first); ECR promises no order either.
        tags.sort();
        tags
    }
}

/// Points a command at an AWS-API endpoint (moto, `serve`, a closed port) with dummy
/// credentials.
pub fn with_endpoint<'a>(command: &'a mut Command, endpoint: &str) -> &'a mut Command {
    command
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
}

/// Runs `command` with AWS at a closed port and asserts that it fails, saying `expected`, before
/// any AWS call (reaching AWS would show as a connection error instead). `what` names the case.
pub fn assert_refused_before_aws(command: &mut Command, what: &str, expected: &str) {
    let out = command
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what} succeeded");
    assert!(stderr.contains(expected), "{what}: {stderr}");
    assert!(
        !stderr.contains("dispatch failure"),
        "{what} reached AWS: {stderr}"
    );
}

/// Runs a command, asserts success (showing stderr if not), returns parsed JSON stdout.
pub fn json_of(command: &mut Command) -> serde_json::Value {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "exit {:?}\nstderr:\n{}\nstdout:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// Runs a command to its end and returns its exit status and its own peak resident set in
/// MiB (the kernel's `ru_maxrss` for that one child, from `wait4`; not other tests' children).
pub fn run_measuring_peak_rss(
    command: &mut std::process::Command,
) -> (std::process::ExitStatus, f64) {
    use std::os::unix::process::ExitStatusExt;
    // Reaped below with wait4 (which, unlike Child::wait, reports the child's resources).
    #[allow(clippy::zombie_processes)]
    let child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in; pid is our own child, not yet reaped.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
    (
        std::process::ExitStatus::from_raw(status),
        usage.ru_maxrss as f64 / 1024.0,
    )
}

/// A stack's status as CloudFormation reports it, or `None` when there is no such stack.
pub async fn stack_status(sdk: &aws_config::SdkConfig, stack: &str) -> Option<String> {
    let out = aws_sdk_cloudformation::Client::new(sdk)
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .ok()?;
    Some(out.stacks().first()?.stack_status()?.as_str().to_string())
}

/// Runs `command` with its standard output a pipe whose reader is already gone (as in
/// `... | head -0`), and asserts it ends quietly: exit 0, no panic, no "Broken pipe" message.
pub fn assert_quiet_on_closed_pipe(command: &mut std::process::Command, what: &str) {
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what} with a closed stdout: {:?}\n{stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert!(
        !stderr.to_lowercase().contains("broken pipe"),
        "{what}: {stderr}"
    );
}

/// The check named `name` in a `doctor --output json` report.
pub fn doctor_check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("not a doctor report: {report:#}"))
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name:?} check: {report:#}"))
}

/// Whether moto has the ECR repository `name`.
pub async fn repository_exists(sdk: &aws_config::SdkConfig, name: &str) -> bool {
    aws_sdk_ecr::Client::new(sdk)
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
        .is_ok()
}

impl StandIns {
    /// Runs a boto3 script (boto3 comes with moto) against moto with the test credentials;
    /// asserts it succeeds and returns its stdout.
    pub fn boto3(&self, script: &str) -> String {
        let out = std::process::Command::new("python3")
            .args(["-c", script])
            .env("AWS_ENDPOINT_URL", &self.aws_endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// A JSON document's shape: its keys and nesting with every value replaced by its type, and an
/// array by the merged shape of its elements (a `null` in one element gives way to another's
/// type) — what `--output json` promises, without one run's values. Snapshotted, so a renamed,
/// removed or retyped field shows as a diff.
pub fn shape(value: &serde_json::Value) -> String {
    use serde_json::Value;
    fn of(value: &Value) -> Value {
        match value {
            Value::Null => Value::Null,
            Value::Bool(_) => "bool".into(),
            Value::Number(_) => "number".into(),
            Value::String(_) => "string".into(),
            Value::Array(items) => {
                let merged = items.iter().map(of).reduce(merge);
                Value::Array(merged.into_iter().collect())
            }
            Value::Object(fields) => {
                Value::Object(fields.iter().map(|(k, v)| (k.clone(), of(v))).collect())
            }
        }
    }
    fn merge(a: Value, b: Value) -> Value {
        match (a, b) {
            (Value::Null, other) | (other, Value::Null) => other,
            (Value::Object(mut a), Value::Object(b)) => {
                for (key, value) in b {
                    let merged = match a.remove(&key) {
                        Some(mine) => merge(mine, value),
                        None => value,
                    };
                    a.insert(key, merged);
                }
                Value::Object(a)
            }
            (Value::Array(a), Value::Array(b)) => {
                Value::Array(a.into_iter().chain(b).reduce(merge).into_iter().collect())
            }
            (a, _) => a,
        }
    }
    serde_json::to_string_pretty(&of(value)).unwrap()
}
