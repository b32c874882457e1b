//! Ctrl-C, typed on a real terminal (a pty from util-linux `script`), at deploy's and
//! rollback's "apply?" prompt: the change set goes (with the empty stack a create made to hold
//! it), the stack stays as it was, the exit status is 130, and the next deploy goes through.

use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{json_of, stack_status, standins, StandIns};

/// The CLI for `stage` with `args`, on a terminal of its own; its output collects in the
/// returned buffer.
pub(crate) fn on_a_terminal(
    s: &StandIns,
    stage: &str,
    args: &[&str],
) -> (Child, Arc<Mutex<String>>) {
    let binary = assert_cmd::cargo::cargo_bin("ummatics-sentiment");
    let line = std::iter::once(binary.display().to_string())
        .chain(["--stage", stage].iter().chain(args).map(|a| a.to_string()))
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut script = std::process::Command::new("script");
    // The stand-ins' environment, as `StandIns::cli` sets it, for the command `script` runs.
    for (key, value) in s.cli_process(stage).get_envs() {
        match value {
            Some(value) => script.env(key, value),
            None => script.env_remove(key),
        };
    }
    let mut child = script
        .args(["-qfec", &line, "/dev/null"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("util-linux `script` runs (scripts/test.sh installs it)");
    let output = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = output.clone();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buffer) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    });
    (child, output)
}

/// Waits for `text` in the output, types Ctrl-C, and returns the exit status and output.
fn interrupt_at(child: Child, output: Arc<Mutex<String>>, text: &str) -> (i32, String) {
    type_at(child, output, text, b"\x03")
}

/// Waits for `text` in the output, types `keys`, and returns the exit status and output.
pub(crate) fn type_at(
    mut child: Child,
    output: Arc<Mutex<String>>,
    text: &str,
    keys: &[u8],
) -> (i32, String) {
    let started = Instant::now();
    while !output.lock().unwrap().contains(text) {
        if started.elapsed() > Duration::from_secs(300) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("{text:?} never showed:\n{}", output.lock().unwrap());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.stdin.as_mut().unwrap().write_all(keys).unwrap();
    child.stdin.as_mut().unwrap().flush().unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("{keys:?} did not end it:\n{}", output.lock().unwrap());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(200));
    let text = output.lock().unwrap().clone();
    (status.code().unwrap_or(-1), text)
}

/// `deploy --yes` of the mini model with the daemonless builder to `registry`, its output
/// piped, ready to spawn.
fn oci_deploy(s: &StandIns, stage: &str, registry: &str) -> std::process::Command {
    let mut command = s.cli_process(stage);
    command
        .args(["deploy", "--yes", "--registry", registry, "--bootstrap"])
        .arg(&s.bootstrap)
        .args(["--model", "mini", "--builder", "oci"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// The stack's change sets that wait to be executed.
async fn change_sets(sdk: &aws_config::SdkConfig, stack: &str) -> Vec<String> {
    match aws_sdk_cloudformation::Client::new(sdk)
        .list_change_sets()
        .stack_name(stack)
        .send()
        .await
    {
        // moto lists executed change sets too (AWS drops them): only waiting ones count.
        Ok(out) => out
            .summaries()
            .iter()
            // moto lists every stack's change sets, whatever the filter.
            .filter(|c| {
                c.stack_name() == Some(stack)
                    && c.execution_status()
                        != Some(&aws_sdk_cloudformation::types::ExecutionStatus::ExecuteComplete)
            })
            .map(|c| c.change_set_name().unwrap_or_default().to_string())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_at_the_prompt_deletes_the_change_set_and_changes_nothing() {
    let s = standins();
    let stage = "ctrlc";
    let stack = "ummatics-sentiment-stack-ctrlc";
    s.destroy(stage);
    let sdk = s.sdk().await;
    let registry = s.registry.clone();
    let bootstrap = s.bootstrap.display().to_string();
    let deploy = |extra: &[&str]| {
        let mut args = vec![
            "deploy",
            "--registry",
            &registry,
            "--bootstrap",
            &bootstrap,
            "--model",
            "mini",
            "--builder",
            "oci",
        ];
        args.extend_from_slice(extra);
        on_a_terminal(&s, stage, &args)
    };

    // A first deploy, stopped at its prompt: the create change set and the REVIEW_IN_PROGRESS
    // stack that held it are gone.
    let (child, output) = deploy(&[]);
    let (code, text) = interrupt_at(child, output, "apply these changes?");
    assert_eq!(code, 130, "{text}");
    assert!(
        text.contains("with the empty stack that held it") && text.contains("deleted"),
        "{text}"
    );
    assert_eq!(stack_status(&sdk, stack).await, None, "{text}");

    // An update stopped at its prompt: no change set left, the stack as it was.
    let created = json_of(&mut s.deploy(stage, &["--model", "mini", "--builder", "oci"]));
    assert_eq!(created["outcome"], "created", "{created:#}");
    let (child, output) = deploy(&["--memory", "2048"]);
    let (code, text) = interrupt_at(child, output, "apply these changes?");
    assert_eq!(code, 130, "{text}");
    assert!(text.contains("the stack is as it was"), "{text}");
    assert_eq!(change_sets(&sdk, stack).await, Vec::<String>::new());
    assert_eq!(
        stack_status(&sdk, stack).await.as_deref(),
        Some("CREATE_COMPLETE")
    );
    let function = aws_sdk_lambda::Client::new(&sdk)
        .get_function_configuration()
        .function_name("ummatics-sentiment-analysis-ctrlc")
        .send()
        .await
        .unwrap();
    assert_eq!(function.memory_size(), Some(1769));

    // The same for rollback's prompt (release 1 → 2 first).
    let updated = json_of(&mut s.deploy(
        stage,
        &["--model", "mini", "--builder", "oci", "--memory", "2048"],
    ));
    assert_eq!(updated["outcome"], "updated", "{updated:#}");
    let (child, output) = on_a_terminal(&s, stage, &["rollback"]);
    let (code, text) = interrupt_at(child, output, "live in place of 2?");
    assert_eq!(code, 130, "{text}");
    assert_eq!(change_sets(&sdk, stack).await, Vec::<String>::new());

    // And destroy's: nothing is deleted.
    let (child, output) = on_a_terminal(&s, stage, &["destroy"]);
    let (code, text) = interrupt_at(child, output, "Type the stack name");
    assert_eq!(code, 130, "{text}");
    assert_eq!(
        stack_status(&sdk, stack).await.as_deref(),
        Some("UPDATE_COMPLETE")
    );
    s.destroy(stage);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_first_deploys_at_once_both_succeed_or_one_says_another_runs() {
    let s = standins();
    let stage = "race";
    let stack = "ummatics-sentiment-stack-race";
    s.destroy(stage);
    let sdk = s.sdk().await;
    let spawn = || oci_deploy(&s, stage, &s.registry).spawn().unwrap();
    let (one, two) = (spawn(), spawn());
    let (one, two) = (
        one.wait_with_output().unwrap(),
        two.wait_with_output().unwrap(),
    );
    let mut succeeded = 0;
    for out in [&one, &two] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            succeeded += 1;
        } else {
            assert!(
                stderr.contains("another deploy"),
                "a racing deploy failed without saying why:\n{stderr}"
            );
        }
    }
    assert!(succeeded >= 1, "neither deploy succeeded");
    assert_eq!(
        stack_status(&sdk, stack).await.as_deref(),
        Some("CREATE_COMPLETE")
    );
    // One repository, tagged as the stack's.
    let repositories = aws_sdk_ecr::Client::new(&sdk)
        .describe_repositories()
        .repository_names("ummatics-sentiment-race")
        .send()
        .await
        .unwrap();
    assert_eq!(repositories.repositories().len(), 1);
    // And the next deploy is a plain one.
    let again = json_of(&mut s.deploy(stage, &["--model", "mini", "--builder", "oci"]));
    assert_eq!(again["outcome"], "unchanged", "{again:#}");
    s.destroy(stage);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_deploy_steps_back_for_a_create_change_set_made_before_its_own() {
    use aws_sdk_cloudformation::types::ChangeSetType;
    let s = standins();
    // A stage of its own per run: moto keeps a deleted stack's change sets listed.
    let stage = format!("rival{}", std::process::id());
    let stage = stage.as_str();
    let stack = format!("ummatics-sentiment-stack-{stage}");
    let stack = stack.as_str();
    s.destroy(stage);
    let sdk = s.sdk().await;
    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    // Another run's create change set (tagged as this tool tags), made first and not executed
    // yet: the stack exists, REVIEW_IN_PROGRESS, only to hold it.
    let rival = cfn
        .create_change_set()
        .stack_name(stack)
        .change_set_name("other-run")
        .change_set_type(ChangeSetType::Create)
        .tags(
            aws_sdk_cloudformation::types::Tag::builder()
                .key("ummatics-sentiment:tool")
                .value("ummatics-sentiment")
                .build(),
        )
        .template_body(
            "Resources:\n  Handle:\n    Type: AWS::CloudFormation::WaitConditionHandle\n",
        )
        .send()
        .await
        .unwrap();
    let rival_stack = rival.stack_id().unwrap().to_string();

    // A dry run makes its change set and throws it away: the stack the other run's change set
    // waits on stays.
    let dry = oci_deploy(&s, stage, &s.registry)
        .arg("--dry-run")
        .output()
        .unwrap();
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert_eq!(change_sets(&sdk, stack).await, ["other-run"]);
    assert_eq!(
        stack_status(&sdk, &rival_stack).await.as_deref(),
        Some("REVIEW_IN_PROGRESS")
    );

    let out = oci_deploy(&s, stage, &s.registry).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("another deploy is creating stack")
            && stderr.contains("change set other-run was made first")
            && stderr.contains("delete-change-set"),
        "{stderr}"
    );
    // The other run's change set and stack are as they were; this run's change set is gone.
    assert_eq!(change_sets(&sdk, stack).await, ["other-run"]);
    assert_eq!(
        stack_status(&sdk, &rival_stack).await.as_deref(),
        Some("REVIEW_IN_PROGRESS")
    );

    // That run gone (what the message says to do), the next deploy creates the stack.
    cfn.delete_change_set()
        .stack_name(&rival_stack)
        .change_set_name("other-run")
        .send()
        .await
        .unwrap();
    cfn.delete_stack()
        .stack_name(&rival_stack)
        .send()
        .await
        .unwrap();
    let created = json_of(&mut s.deploy(stage, &["--model", "mini", "--builder", "oci"]));
    assert_eq!(created["outcome"], "created", "{created:#}");
    assert_eq!(
        stack_status(&sdk, stack).await.as_deref(),
        Some("CREATE_COMPLETE")
    );
    s.destroy(stage);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_while_pushing_changes_nothing_and_the_next_deploy_resumes_the_upload() {
    use crate::push::{Fault, FaultProxy};
    let s = standins();
    // A stage of its own per run: the registry keeps blobs across runs of the stand-ins, and
    // a repository that already has the layer would upload nothing to interrupt.
    let stage = format!("push{}", std::process::id());
    let stage = stage.as_str();
    let stack = format!("ummatics-sentiment-stack-{stage}");
    let stack = stack.as_str();
    s.destroy(stage);
    let sdk = s.sdk().await;
    // The bootstrap layer is two 8 MiB chunks or more: the second one is never answered.
    let proxy = FaultProxy::start(&s.registry).await;
    proxy.fault(1, Fault::Stall);
    let cache = tempfile::tempdir().unwrap();
    let deploy = || {
        oci_deploy(&s, stage, &proxy.address)
            .env("XDG_CACHE_HOME", cache.path())
            .spawn()
            .unwrap()
    };
    let (code, stderr) = signal_when(
        deploy(),
        || proxy.stalled.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "the push reaching its second chunk",
        libc::SIGINT,
    );
    assert_eq!(code, 130, "{stderr}");
    assert!(
        stderr.contains("interrupted before the stack changed"),
        "{stderr}"
    );
    assert_eq!(stack_status(&sdk, stack).await, None);

    // The next deploy picks the upload up after its first chunk, and goes through.
    let out = deploy().wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("bootstrap layer") && stderr.contains("resumed at 8.00 MiB"),
        "{stderr}"
    );
    assert_eq!(
        stack_status(&sdk, stack).await.as_deref(),
        Some("CREATE_COMPLETE")
    );
    s.destroy(stage);
}

/// Waits until `ready()` (checked every 50 ms, for up to 300 s, while `child` runs), sends
/// `signal` to `child` alone, and returns its exit status and stderr. `waited_for` says what
/// never came if `child` ends first or time runs out.
fn signal_when(
    mut child: Child,
    mut ready: impl FnMut() -> bool,
    waited_for: &str,
    signal: i32,
) -> (i32, String) {
    let started = Instant::now();
    while !ready() {
        if started.elapsed() > Duration::from_secs(300) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{waited_for} never happened:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    unsafe { libc::kill(child.id() as i32, signal) };
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Spawns `command` with CloudFormation behind `proxy`, waits until the proxy holds a request
/// (the command polls a stack that CloudFormation works on), sends SIGINT; returns the exit
/// status and stderr.
fn interrupt_while_held(
    mut command: std::process::Command,
    proxy: &crate::push::FaultProxy,
) -> (i32, String) {
    let child = command
        .env(
            "AWS_ENDPOINT_URL_CLOUDFORMATION",
            format!("http://{}", proxy.address),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    signal_when(
        child,
        || proxy.hold.held.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "a CloudFormation call after the held action",
        libc::SIGINT,
    )
}

/// Ctrl-C once CloudFormation executes a change set or deletes the stack. moto applies both
/// before it answers, so a proxy in front of it holds every CloudFormation call after
/// `ExecuteChangeSet` (`DeleteStack`): the command is stopped while it waits, as it would be
/// on AWS while the stack is `UPDATE_IN_PROGRESS`. The command leaves CloudFormation to it,
/// and the next run finishes what the interrupted one had left: the new release's slot tag,
/// and the repository that destroy deletes after the stack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_while_cloudformation_applies_or_deletes_and_the_next_run_finishes() {
    use crate::push::FaultProxy;
    let s = standins();
    let stage = "applying";
    let stack = "ummatics-sentiment-stack-applying";
    let repository = "ummatics-sentiment-applying";
    s.destroy(stage);
    let sdk = s.sdk().await;
    let created = json_of(&mut s.deploy(stage, &["--model", "mini", "--builder", "oci"]));
    assert_eq!(created["outcome"], "created", "{created:#}");
    let proxy = FaultProxy::start(s.aws_endpoint.trim_start_matches("http://")).await;
    let slot = |tag: &'static str| {
        let info = json_of(s.cli(stage).args(["--output", "json", "info"]));
        info["registry"]["images"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["tag"] == tag)
    };

    // An update, stopped while it waits for CloudFormation.
    proxy.hold_after("ExecuteChangeSet");
    let mut update = oci_deploy(&s, stage, &s.registry);
    update.args(["--memory", "2048"]);
    let (code, stderr) = interrupt_while_held(update, &proxy);
    assert_eq!(code, 130, "{stderr}");
    assert!(
        stderr.contains("interrupted while CloudFormation works on stack")
            && stderr.contains("it goes on without us"),
        "{stderr}"
    );
    assert_eq!(change_sets(&sdk, stack).await, Vec::<String>::new());
    assert!(
        !slot("keep-2"),
        "release 2 was tagged after the interruption"
    );
    // The next deploy finds the update applied: nothing to change, and release 2's image gets
    // the slot tag the interrupted run never gave it.
    let again = json_of(&mut s.deploy(
        stage,
        &["--model", "mini", "--builder", "oci", "--memory", "2048"],
    ));
    assert_eq!(again["outcome"], "unchanged", "{again:#}");
    assert_eq!(again["release"]["number"], 2, "{again:#}");
    assert!(slot("keep-2"));

    // destroy, stopped while CloudFormation deletes the stack: the repository (deleted after
    // the stack) stays, and the next destroy knows it by its tag though the stack is gone.
    proxy.hold_after("DeleteStack");
    let mut destroy = s.cli_process(stage);
    destroy.args(["destroy", "--yes"]);
    let (code, stderr) = interrupt_while_held(destroy, &proxy);
    assert_eq!(code, 130, "{stderr}");
    assert!(
        stderr.contains("interrupted while the stack is deleted"),
        "{stderr}"
    );
    let ecr = aws_sdk_ecr::Client::new(&sdk);
    let left = ecr
        .describe_repositories()
        .repository_names(repository)
        .send()
        .await;
    assert!(
        left.is_ok(),
        "the repository went before the stack was gone"
    );
    let finished = s.destroy(stage);
    let removed = finished["removed"].to_string();
    assert!(
        removed.contains(&format!("ECR repository {repository}")),
        "{finished:#}"
    );
    assert_eq!(stack_status(&sdk, stack).await, None);
    assert!(ecr
        .describe_repositories()
        .repository_names(repository)
        .send()
        .await
        .is_err());
}

/// `(pid, parent, process group, name, state)` of every process, from /proc.
fn processes() -> Vec<(u32, u32, u32, String, char)> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (name) state ppid pgrp …"; the name may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let number = |s: &str| s.parse::<u32>().unwrap_or(0);
        all.push((
            number(stat[..open].trim()),
            number(rest[1]),
            number(rest[2]),
            stat[open + 1..close].to_string(),
            rest[0].chars().next().unwrap_or('?'),
        ));
    }
    all
}

/// SIGTERM sent to deploy alone (a CI job's timeout, `timeout`) while it builds `bootstrap`
/// with cargo: deploy stops as it does for Ctrl-C and takes the build's processes (cargo and
/// its rustc jobs) with it, so none outlives it holding cargo's lock on the target directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_building_the_bootstrap_stops_the_build_too() {
    let s = standins();
    let stage = "building";
    let sdk = s.sdk().await;
    // A rustc job as long as a big crate's (cargo's RUSTC_WRAPPER hook): left alone, cargo
    // waits for it, whatever became of deploy.
    let slow = tempfile::tempdir().unwrap();
    let wrapper = slow.path().join("slow-rustc");
    std::fs::write(&wrapper, "#!/bin/sh\nsleep 300\nexec \"$@\"\n").unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let child = s
        .cli_process(stage)
        .env("RUSTC_WRAPPER", &wrapper)
        .args(["deploy", "--yes", "--registry", &s.registry])
        .args(["--model", "mini", "--builder", "oci"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deploy = child.id();
    // The build's cargo leads a group of its own (deploy's other cargo calls, such as the
    // toolchain checks, do not); it is signalled once its first rustc job runs (the wrapper's
    // sleep, in cargo's group).
    let mut cargo = None;
    let (code, stderr) = signal_when(
        child,
        || {
            let all = processes();
            cargo = cargo.or_else(|| {
                all.iter()
                    .find(|p| p.1 == deploy && p.3 == "cargo" && p.2 == p.0)
                    .map(|p| p.0)
            });
            cargo.is_some_and(|group| all.iter().any(|p| p.2 == group && p.3 == "sleep"))
        },
        "a cargo build in a process group of its own, running a rustc job,",
        libc::SIGTERM,
    );
    let cargo = cargo.unwrap();
    assert_eq!(code, 130, "{stderr}");
    assert!(
        stderr.contains("interrupted before the stack changed"),
        "{stderr}"
    );
    let started = Instant::now();
    loop {
        let left: Vec<_> = processes()
            .into_iter()
            .filter(|p| p.2 == cargo && p.4 != 'Z')
            .collect();
        if left.is_empty() {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            unsafe { libc::killpg(cargo as i32, libc::SIGKILL) };
            panic!("the build outlived deploy: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        stack_status(&sdk, "ummatics-sentiment-stack-building").await,
        None
    );
}

/// Ctrl-C while the daemonless builder writes the image (the gzip of a large binary): the
/// signal takes effect at once — the build is abandoned, not waited for — and nothing reaches
/// AWS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_while_the_image_is_built_stops_without_waiting_for_it() {
    use std::io::BufRead;
    use std::os::unix::fs::PermissionsExt;
    let s = standins();
    let stage = "ctrlcbuild";
    let dir = tempfile::tempdir().unwrap();
    // The test bootstrap with 160 MiB of incompressible bytes after it: the same executable,
    // and a gzip that takes seconds.
    let padded = dir.path().join("bootstrap");
    let mut bytes = std::fs::read(&s.bootstrap).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    bytes.reserve(160 << 20);
    for _ in 0..(160 << 20) / 8 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    std::fs::write(&padded, &bytes).unwrap();
    drop(bytes);
    std::fs::set_permissions(&padded, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut child = s
        .cli_process(stage)
        .args(["deploy", "--yes", "--registry", &s.registry, "--bootstrap"])
        .arg(&padded)
        .args(["--model", "mini", "--builder", "oci"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            panic!("deploy ended before building:\n{seen}");
        }
        seen.push_str(&line);
        if line.starts_with("==> builder") {
            break;
        }
    }
    // SAFETY: a plain kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    stderr.read_to_string(&mut seen).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}");
    assert!(
        !seen.contains("daemonless OCI (sha256:"),
        "the image build was waited for before the interruption took effect:\n{seen}"
    );
    assert!(!seen.contains("AWS account"), "{seen}");
    let sdk = s.sdk().await;
    assert_eq!(
        stack_status(&sdk, "ummatics-sentiment-stack-ctrlcbuild").await,
        None
    );
}
