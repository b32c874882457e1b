//! `deploy`: model → static bootstrap → image (Docker engine) → ECR → CloudFormation change
//! set → running function with a URL. Each step shows live progress; a redeploy of the same
//! inputs pushes nothing and updates nothing.

use std::fmt;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use tokio::io::AsyncBufReadExt;

use crate::aws::Aws;
use crate::cli::{BuilderChoice, DeployArgs, GlobalArgs};
use crate::image::docker::{context_summary, Engine};
use crate::image::registry::Registry;
use crate::image::{ecr, oci, Bootstrap, BuildContext};
use crate::lambda::{function_info, threads_for_memory, Arch};
use crate::models::ModelFiles;
use crate::output::{ask, emit, human_bytes, Progress};
use crate::sizing;
use crate::stack::{Failure, Plan, PlanKind, StackDeployer, StackParams};

/// What deploy did, for people and for programs.
#[derive(Debug, Clone, Serialize)]
pub struct DeployReport {
    pub stack: String,
    /// `created`, `updated`, `unchanged`, or `dry-run`.
    pub outcome: &'static str,
    pub function_name: String,
    pub function_arn: Option<String>,
    pub region: String,
    pub image_uri: String,
    pub image_digest: Option<String>,
    pub image_tag: String,
    /// Whether an image was pushed by this run.
    pub pushed: bool,
    pub plan: Plan,
    /// `docker` or `oci`.
    pub builder: &'static str,
    /// The OCI builder's blobs and whether each was uploaded.
    pub blobs: Vec<oci::BlobReport>,
    /// `passed`, `passed (emulated)` or `skipped` (no push, `--no-smoke-test`, or an
    /// architecture this machine cannot run).
    pub smoke_test: &'static str,
    pub memory_mb: u32,
    pub timeout_s: u32,
    pub architecture: String,
    /// GB-s and dollars per 10 000 texts at this memory size, from measured throughput.
    pub estimate: sizing::Estimate,
    pub url: Option<String>,
    pub url_auth: String,
    pub next: String,
}

impl fmt::Display for DeployReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.outcome {
            "created" => "created",
            "updated" => "updated",
            "unchanged" => "unchanged (nothing to update)",
            _ => "not changed (dry run)",
        };
        writeln!(f, "stack {}: {verb}", self.stack)?;
        writeln!(f, "  function  {}", self.function_name)?;
        if let Some(arn) = &self.function_arn {
            writeln!(f, "  arn       {arn}")?;
        }
        writeln!(
            f,
            "  config    {} MB, {} s, {}",
            self.memory_mb, self.timeout_s, self.architecture
        )?;
        let e = &self.estimate;
        writeln!(
            f,
            "  estimate  ≈ {:.0} GB-s (${:.4}) per 10 000 texts, ≈ {:.0} ms per call of 50 ({})",
            e.gb_seconds_per_10k_texts, e.usd_per_10k_texts, e.ms_per_call_of_50, e.basis
        )?;
        writeln!(
            f,
            "  image     {}{}",
            self.image_uri,
            if self.pushed { " (pushed now)" } else { "" }
        )?;
        match &self.url {
            Some(url) => writeln!(f, "  url       {url} (auth {})", self.url_auth)?,
            None => writeln!(f, "  url       none")?,
        }
        write!(f, "next: {}", self.next)
    }
}

/// The plan, as people read it.
fn print_plan(plan: &Plan, progress: &Progress) {
    match plan.kind {
        PlanKind::None => {
            progress.line("no changes: the stack already runs these settings and this image")
        }
        _ => {
            for p in &plan.parameters {
                progress.line(format!(
                    "  {:<18} {} → {}",
                    p.name,
                    p.from.as_deref().unwrap_or("(new)"),
                    if p.to.is_empty() { "(empty)" } else { &p.to }
                ));
            }
            for r in &plan.resources {
                progress.line(format!(
                    "  {:<8} {:<22} {}{}",
                    r.action,
                    r.logical_id,
                    r.resource_type,
                    match r.replacement.as_deref() {
                        Some("True") => " (replaced)",
                        Some("Conditional") => " (may be replaced)",
                        _ => "",
                    }
                ));
            }
        }
    }
}

/// Asks on the terminal; without one, `--yes` is required.
fn confirm(question: &str) -> Result<bool> {
    let answer = ask(
        &format!("{question} [y/N] "),
        "pass --yes to apply without a prompt",
    )?;
    Ok(matches!(answer.as_str(), "y" | "Y" | "yes" | "Yes"))
}

pub async fn run(args: DeployArgs, global: &GlobalArgs) -> Result<ExitCode> {
    let progress = Progress::new();
    if let Some(email) = &args.alarm_email {
        if !email.contains('@') || email.contains(char::is_whitespace) {
            bail!("--alarm-email {email:?} is not an email address");
        }
    }
    if !args.yes && !args.dry_run && !std::io::stdin().is_terminal() {
        bail!(
            "deploy asks before changing the stack, and there is no terminal to ask on: pass --yes \
             (or --dry-run to see what would change)"
        );
    }
    if args.public_url {
        progress.line(
            "warning: --public-url makes the function URL callable by anyone (auth NONE); \
             every call is billed to this account",
        );
    }

    // 1. The model.
    let step = progress.step("model");
    let model = match args.model.files().await {
        Ok(m) => m,
        Err(e) => {
            step.fail("not found");
            return Err(e);
        }
    };
    step.done(format!(
        "{} ({} files, {})",
        model.source,
        model.files.len(),
        human_bytes(model.total_bytes())
    ));

    // 2. The function binary.
    let base_has_libc = args.base_image != "scratch";
    let bootstrap = match &args.bootstrap {
        Some(path) => {
            let step = progress.step("bootstrap");
            let b = Bootstrap::read(path, args.arch, base_has_libc)?;
            step.done(format!(
                "{} ({})",
                path.display(),
                human_bytes(b.bytes.len() as u64)
            ));
            b
        }
        None => {
            let path = build_bootstrap(args.arch, &progress).await?;
            Bootstrap::read(&path, args.arch, base_has_libc)?
        }
    };
    let context = BuildContext::new(&bootstrap, &model, &args.base_image, args.arch)?;

    // 3. The builder: the Docker engine when asked for or when one answers, else none at all.
    let step = progress.step("builder");
    let engine = match args.builder {
        BuilderChoice::Oci => None,
        BuilderChoice::Docker | BuilderChoice::Auto => match Engine::connect().await {
            Ok(engine) => Some(engine),
            Err(e) if args.builder == BuilderChoice::Docker => {
                step.fail("Docker engine unreachable");
                return Err(e);
            }
            Err(_) => None,
        },
    };
    let oci_image = match &engine {
        Some(engine) => {
            step.done(format!(
                "Docker engine {} (API {})",
                engine.version.version, engine.version.api_version
            ));
            None
        }
        None => {
            if args.base_image != "scratch" {
                bail!(
                    "--base-image {} needs the Docker engine (the daemonless builder writes FROM scratch images): \
                     start Docker or drop --base-image",
                    args.base_image
                );
            }
            let image = oci::build(&bootstrap, &model, args.arch)?;
            step.done(format!(
                "daemonless OCI ({}{})",
                image.digest(),
                if args.builder == BuilderChoice::Auto {
                    "; no Docker engine answered"
                } else {
                    ""
                }
            ));
            Some(image)
        }
    };
    let tag = match &oci_image {
        Some(image) => image.tag(),
        None => context.tag(),
    };

    // 4. AWS.
    let aws = Aws::load(&global.aws).await;
    let step = progress.step("AWS account");
    let identity = aws.caller_identity().await?;
    step.done(format!("{} in {}", identity.account, aws.region()));

    // 5. The repository.
    let step = progress.step(format!("ECR repository {}", aws.names.repository));
    let repository = if args.dry_run {
        let r = ecr::repository(&aws, &aws.names.repository).await?;
        step.done(if r.is_some() {
            "exists"
        } else {
            "would be created"
        });
        r
    } else {
        let (r, created) = ecr::ensure_repository(&aws, &aws.names.repository).await?;
        step.done(if created {
            "created (scan on push, keeps the last 10 images)"
        } else {
            "exists"
        });
        Some(r)
    };

    // 6. The image: skip everything when the registry already has this context's tag.
    let step = progress.step("image");
    let login = ecr::login(&aws).await?;
    let registry = Registry::new(
        args.registry.as_deref().unwrap_or(&login.endpoint),
        &login.username,
        &login.password,
    )?;
    // The reference that proves "already pushed": the OCI manifest's own digest (known before
    // any push), or the Docker path's context tag.
    let lookup = match &oci_image {
        Some(image) => image.digest().to_string(),
        None => tag.clone(),
    };
    let existing = match &repository {
        Some(_) => {
            registry
                .manifest_digest(&aws.names.repository, &lookup)
                .await?
        }
        None => None,
    };
    let mut blobs = Vec::new();
    let mut smoke_test = "skipped";
    let (digest, pushed) = match (existing, &engine, &oci_image) {
        (Some(digest), _, _) => {
            step.done(format!("{tag} already in {} ({digest})", registry.host()));
            (Some(digest), false)
        }
        (None, _, _) if args.dry_run => {
            step.done(format!(
                "{tag} would be built and pushed ({})",
                context_summary(&context)
            ));
            (None, false)
        }
        (None, Some(engine), _) => {
            let local = format!("{}:{tag}", registry.image(&aws.names.repository));
            step.set(format!("building {local} ({})", context_summary(&context)));
            engine
                .build(&context, &local, &args.base_image, args.arch)
                .await?;
            if !args.no_smoke_test && args.arch == Arch::host() {
                step.set("smoke test: bootstrap --self-test inside the image");
                let (code, output) = engine.run(&local, &["--self-test"]).await?;
                if code != 0 {
                    engine.remove_image(&local).await;
                    bail!(
                        "the image's self-test failed (exit {code}), nothing was pushed:\n{}",
                        output.trim_end()
                    );
                }
                smoke_test = "passed";
            }
            step.set(format!("pushing to {}", registry.host()));
            let push = engine
                .push(
                    &registry.image(&aws.names.repository),
                    &tag,
                    registry.username(),
                    registry.password(),
                    &progress,
                )
                .await?;
            let digest = registry
                .manifest_digest(&aws.names.repository, &tag)
                .await?
                .or(push.digest.clone())
                .context("the registry does not show the image just pushed")?;
            engine.remove_image(&local).await;
            step.done(format!("{tag} pushed ({push}), {digest}"));
            (Some(digest), true)
        }
        (None, None, Some(image)) => {
            if !args.no_smoke_test {
                let runner = emulator(args.arch);
                match runner {
                    Some(runner) => {
                        step.set("smoke test: bootstrap --self-test on the artifact");
                        self_test(&bootstrap, &model, runner.as_deref()).await?;
                        smoke_test = if runner.is_some() { "passed (emulated)" } else { "passed" };
                    }
                    None => progress.line(format!(
                        "smoke test skipped: this machine cannot run {} binaries (install qemu-user-static)",
                        args.arch.lambda_name()
                    )),
                }
            }
            for (name, blob) in image.blobs() {
                let uploaded = if registry
                    .has_blob(&aws.names.repository, &blob.digest)
                    .await?
                {
                    progress.line(format!("{name} {} already in the registry", blob.digest));
                    false
                } else {
                    step.set(format!(
                        "uploading {name} ({})",
                        human_bytes(blob.bytes.len() as u64)
                    ));
                    registry
                        .upload_blob(&aws.names.repository, &blob.digest, blob.bytes.clone())
                        .await?;
                    progress.line(format!(
                        "{name} {} uploaded ({})",
                        blob.digest,
                        human_bytes(blob.bytes.len() as u64)
                    ));
                    true
                };
                blobs.push(oci::BlobReport {
                    name: name.to_string(),
                    digest: blob.digest.clone(),
                    bytes: blob.bytes.len() as u64,
                    uploaded,
                });
            }
            let digest = registry
                .put_manifest(
                    &aws.names.repository,
                    &tag,
                    image.manifest.media_type,
                    image.manifest.bytes.clone(),
                )
                .await?;
            if digest != image.digest() {
                bail!(
                    "the registry stored the manifest as {digest}, not {}: it rewrote the image",
                    image.digest()
                );
            }
            step.done(format!("{tag} pushed, {digest}"));
            (Some(digest), true)
        }
        (None, None, None) => unreachable!("either an engine or an OCI image is chosen"),
    };
    let repository_uri = repository
        .as_ref()
        .map(|r| r.uri.clone())
        .unwrap_or_else(|| {
            format!(
                "{}.dkr.ecr.{}.amazonaws.com/{}",
                identity.account,
                aws.region(),
                aws.names.repository
            )
        });
    let image_uri = match &digest {
        Some(d) => format!("{repository_uri}@{d}"),
        None => format!("{repository_uri}:{tag}"),
    };

    // 7. The stack.
    let params = StackParams {
        function_name: aws.names.function.clone(),
        image_uri: image_uri.clone(),
        memory: args.memory,
        timeout: args.timeout,
        architecture: args.arch.lambda_name().to_string(),
        threads: threads_for_memory(args.memory),
        url_auth_type: if args.public_url { "NONE" } else { "AWS_IAM" }.to_string(),
        alarm_email: args.alarm_email.clone().unwrap_or_default(),
        log_retention_days: args.log_retention_days,
    };
    let deployer = StackDeployer::new(&aws, &progress);
    let mut existing = deployer.describe().await?;
    // A dry run over a failed create only previews: the dead stack cannot take a change set.
    let mut preview_only = false;
    if let Some(stack) = &existing {
        if stack.is_busy() {
            bail!(
                "stack {} is {}: CloudFormation is still working on it; wait for it to finish and deploy again",
                stack.name,
                stack.status
            );
        }
        if stack.status == "UPDATE_ROLLBACK_FAILED" {
            bail!(
                "stack {} is UPDATE_ROLLBACK_FAILED: run `aws cloudformation continue-update-rollback --stack-name {}`, then deploy again",
                stack.name,
                stack.name
            );
        }
        if stack.is_failed_create() {
            if args.dry_run {
                progress.line(format!(
                    "stack {} is {} (its first create failed): deploy would delete it and create it again",
                    stack.name, stack.status
                ));
                preview_only = true;
                existing = None;
            } else {
                let step = progress.step(format!("stack {}", stack.name));
                step.set(format!(
                    "{} from a failed create: deleting it to create it again",
                    stack.status
                ));
                deployer.delete(true).await?;
                step.done(format!(
                    "deleted the {} stack; creating it again",
                    stack.status
                ));
                existing = None;
            }
        }
    }

    let step = progress.step(format!("change set for {}", deployer.name()));
    let plan = if preview_only {
        deployer.preview_create(&params)
    } else {
        deployer.plan(&params, existing.as_ref()).await?
    };
    step.done(match plan.kind {
        PlanKind::Create => "create",
        PlanKind::Update => "update",
        PlanKind::None => "no changes",
    });
    print_plan(&plan, &progress);

    let mut report = DeployReport {
        stack: deployer.name().to_string(),
        outcome: "unchanged",
        function_name: aws.names.function.clone(),
        function_arn: None,
        region: aws.region(),
        image_uri,
        image_digest: digest,
        image_tag: tag,
        pushed,
        plan: plan.clone(),
        builder: if oci_image.is_some() { "oci" } else { "docker" },
        blobs,
        smoke_test,
        memory_mb: args.memory,
        timeout_s: args.timeout,
        architecture: args.arch.lambda_name().to_string(),
        estimate: sizing::estimate(sizing::measured_for(&args.model), args.memory, args.arch),
        url: None,
        url_auth: params.url_auth_type.clone(),
        next: String::new(),
    };

    if args.dry_run {
        deployer.discard(&plan).await?;
        report.outcome = "dry-run";
        report.next = "run the same command without --dry-run to apply it".into();
        emit(global.output, &report)?;
        return Ok(ExitCode::SUCCESS);
    }

    if plan.kind != PlanKind::None {
        if !args.yes {
            // Declined, or no terminal to ask on: the change set goes, nothing is half-made.
            let answer = confirm("apply these changes?");
            if !matches!(answer, Ok(true)) {
                deployer.discard(&plan).await?;
                answer?;
                bail!("cancelled: nothing was changed in the stack");
            }
        }
        let step = progress.step(format!("stack {}", deployer.name()));
        let (state, failures) = deployer.execute(&plan).await?;
        let goal = match plan.kind {
            PlanKind::Create => "CREATE_COMPLETE",
            _ => "UPDATE_COMPLETE",
        };
        if state.status != goal {
            step.fail(&state.status);
            bail!(failure_message(&state.name, &state.status, &failures));
        }
        step.done(&state.status);
        report.outcome = if plan.kind == PlanKind::Create {
            "created"
        } else {
            "updated"
        };
    }

    // 8. What runs now.
    let function = function_info(&aws, &aws.names.function)
        .await?
        .with_context(|| {
            format!(
                "cannot read function {}: the stack is deployed but Lambda does not know it",
                aws.names.function
            )
        })?;
    report.function_arn = Some(function.arn).filter(|arn| !arn.is_empty());
    report.url = function.url;
    report.next = next_command(global);
    emit(global.output, &report)?;
    Ok(ExitCode::SUCCESS)
}

/// What to try after a deploy.
fn next_command(global: &GlobalArgs) -> String {
    let stage = global
        .aws
        .stage
        .as_deref()
        .map(|s| format!(" --stage {s}"))
        .unwrap_or_default();
    format!("ummatics-sentiment{stage} invoke \"I love this!\" \"This is terrible\"")
}

/// The failed resources and their reasons, as one error.
fn failure_message(stack: &str, status: &str, failures: &[Failure]) -> String {
    let mut text = format!("stack {stack} ended in {status}");
    if failures.is_empty() {
        text.push_str(" (CloudFormation gave no resource-level reason; see the stack events)");
    }
    for f in failures {
        text.push_str(&format!(
            "\n  {} ({}) {}: {}",
            f.logical_id, f.resource_type, f.status, f.reason
        ));
    }
    if status == "ROLLBACK_COMPLETE" {
        text.push_str("\nfix the cause above and deploy again: the failed stack will be deleted and created anew");
    }
    text
}

/// `cargo build --release --target <musl> -p ummatics-sentiment-function --bin bootstrap`
/// in the checkout this tool belongs to; returns the binary's path.
async fn build_bootstrap(arch: Arch, progress: &Progress) -> Result<PathBuf> {
    let workspace = workspace_root().context(
        "no ummatics-sentiment checkout here to build the function from: run deploy inside \
         the repository, or pass --bootstrap PATH with a prebuilt static binary",
    )?;
    let target = arch.rust_target();
    // Another architecture is cross-built with cargo-zigbuild (zig as C compiler and linker:
    // no Docker, no cross toolchain to install beyond `pip install ziglang`).
    let cross = arch != Arch::host();
    let step = progress.step(format!(
        "bootstrap ({target}, release{})",
        if cross { ", cargo zigbuild" } else { "" }
    ));
    let mut command = tokio::process::Command::new("cargo");
    command
        .current_dir(&workspace)
        .args([
            if cross { "zigbuild" } else { "build" },
            "--release",
            "--locked",
            "--target",
            target,
            "-p",
            "ummatics-sentiment-function",
            "--bin",
            "bootstrap",
            "--message-format=json-render-diagnostics",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let cc_var = format!("CC_{}", target.replace('-', "_"));
    if !cross && arch == Arch::X86_64 && std::env::var_os(&cc_var).is_none() {
        command.env(&cc_var, "musl-gcc");
    }
    // Reproducible binaries: no checkout or home paths inside (panic locations carry them).
    // Same Cargo.lock + toolchain + target + these flags → the same bytes on any machine.
    if std::env::var_os("RUSTFLAGS").is_none()
        && std::env::var_os("CARGO_ENCODED_RUSTFLAGS").is_none()
    {
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
        let mut flags = vec![format!(
            "--remap-path-prefix={}=/build",
            workspace.display()
        )];
        if let Some(home) = cargo_home {
            flags.push(format!("--remap-path-prefix={}=/cargo", home.display()));
        }
        command.env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"));
    }
    let mut child = command
        .spawn()
        .context("cannot run cargo: is Rust installed? (see `ummatics-sentiment doctor`)")?;
    let stdout = child.stdout.take().context("no cargo stdout")?;
    let stderr = child.stderr.take().context("no cargo stderr")?;
    let errors = tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        let mut tail = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            tail.push(line);
            if tail.len() > 40 {
                tail.remove(0);
            }
        }
        tail
    });
    let mut executable = None;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await? {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if message["reason"] == "compiler-artifact" {
            if let Some(name) = message["target"]["name"].as_str() {
                step.set(format!("compiled {name}"));
            }
            if let Some(exe) = message["executable"].as_str() {
                executable = Some(PathBuf::from(exe));
            }
        }
    }
    let status = child.wait().await?;
    let tail = errors.await.unwrap_or_default();
    if !status.success() {
        step.fail("cargo build failed");
        let hint = if cross
            && tail
                .iter()
                .any(|l| l.contains("no such command") || l.contains("zig"))
        {
            "\nthe cross toolchain is missing: cargo install cargo-zigbuild && pip install ziglang"
                .to_string()
        } else if tail.iter().any(|l| {
            l.contains("target may not be installed") || l.contains("can't find crate for `core`")
        }) {
            format!("\nthe Rust target is missing: rustup target add {target}")
        } else if tail
            .iter()
            .any(|l| l.contains("musl-gcc") || l.contains("failed to find tool"))
        {
            "\nthe musl C compiler is missing: sudo apt-get install musl-tools".to_string()
        } else {
            String::new()
        };
        bail!("building the function failed:\n{}{hint}", tail.join("\n"));
    }
    let path = executable.context("cargo built no bootstrap executable")?;
    step.done(path.display().to_string());
    Ok(path)
}

/// The checkout holding `function/`: the current directory or one above it, else the one this
/// binary was built from.
fn workspace_root() -> Option<PathBuf> {
    let is_root = |dir: &std::path::Path| {
        dir.join("function/Cargo.toml").is_file() && dir.join("Cargo.toml").is_file()
    };
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            if is_root(dir) {
                return Some(dir.to_path_buf());
            }
        }
    }
    let built_from = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    is_root(&built_from).then_some(built_from)
}

/// How to run a binary for `arch` here: `Some(None)` natively, `Some(Some(qemu))` under user
/// emulation (Debian's qemu-user-static), `None` not at all.
fn emulator(arch: Arch) -> Option<Option<String>> {
    if arch == Arch::host() {
        return Some(None);
    }
    let name = match arch {
        Arch::Arm64 => "aarch64",
        Arch::X86_64 => "x86_64",
    };
    let path = std::env::var_os("PATH")?;
    for candidate in [format!("qemu-{name}-static"), format!("qemu-{name}")] {
        if std::env::split_paths(&path).any(|dir| dir.join(&candidate).is_file()) {
            return Some(Some(candidate));
        }
    }
    None
}

/// `bootstrap --self-test --model DIR` on the artifact, with the model written to a temporary
/// directory: the binary and the files that go into the image, run before anything is pushed
/// (under `runner`, an emulator, for another architecture).
async fn self_test(bootstrap: &Bootstrap, model: &ModelFiles, runner: Option<&str>) -> Result<()> {
    let dir = tempfile::tempdir().context("cannot make a temporary directory")?;
    for file in &model.files {
        std::fs::write(dir.path().join(&file.name), &file.bytes)
            .with_context(|| format!("cannot write {}", file.name))?;
    }
    let mut command = match runner {
        Some(emulator) => {
            let mut c = tokio::process::Command::new(emulator);
            c.arg(&bootstrap.path);
            c
        }
        None => tokio::process::Command::new(&bootstrap.path),
    };
    let output = command
        .arg("--self-test")
        .arg("--model")
        .arg(dir.path())
        .output()
        .await
        .with_context(|| format!("cannot run {}", bootstrap.path.display()))?;
    if !output.status.success() {
        bail!(
            "the function's self-test failed ({}), nothing was pushed:\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr).trim_end()
        );
    }
    Ok(())
}
