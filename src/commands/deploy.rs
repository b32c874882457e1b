//! `deploy`: model → static bootstrap → image (Docker engine) → ECR → CloudFormation change
//! set → running function with a URL. Each step shows live progress; a redeploy of the same
//! inputs pushes nothing and updates nothing.

use std::fmt;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use tokio::io::AsyncBufReadExt;

use crate::aws::{describe, error_code, Aws};
use crate::cli::{Arch, DeployArgs, GlobalArgs};
use crate::image::docker::{context_summary, Engine};
use crate::image::registry::Registry;
use crate::image::{ecr, Bootstrap, BuildContext};
use crate::output::{emit, human_bytes, Progress};
use crate::stack::{threads_for_memory, Failure, Plan, PlanKind, StackDeployer, StackParams};

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
    pub memory_mb: u32,
    pub timeout_s: u32,
    pub architecture: String,
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
    if !std::io::stdin().is_terminal() {
        bail!("{question} — no terminal to ask on: pass --yes to apply without a prompt");
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

pub async fn run(args: DeployArgs, global: &GlobalArgs) -> Result<ExitCode> {
    let progress = Progress::new();
    if let Some(email) = &args.alarm_email {
        if !email.contains('@') || email.contains(char::is_whitespace) {
            bail!("--alarm-email {email:?} is not an email address");
        }
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
    let context = BuildContext::new(&bootstrap, &model)?;
    let tag = context.tag();

    // 3. The engine (a dry run builds nothing).
    let engine = if args.dry_run {
        None
    } else {
        let step = progress.step("Docker engine");
        match Engine::connect().await {
            Ok(engine) => {
                step.done(format!(
                    "{} (API {})",
                    engine.version.version, engine.version.api_version
                ));
                Some(engine)
            }
            Err(e) => {
                step.fail("unreachable");
                return Err(e);
            }
        }
    };

    // 4. AWS.
    let aws = Aws::load(global).await;
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
    let existing = match &repository {
        Some(_) => {
            registry
                .manifest_digest(&aws.names.repository, &tag)
                .await?
        }
        None => None,
    };
    let (digest, pushed) = match (existing, &engine) {
        (Some(digest), _) => {
            step.done(format!("{tag} already in {} ({digest})", registry.host()));
            (Some(digest), false)
        }
        (None, None) => {
            step.done(format!(
                "{tag} would be built and pushed ({})",
                context_summary(&context)
            ));
            (None, false)
        }
        (None, Some(engine)) => {
            let local = format!("{}:{tag}", registry.image(&aws.names.repository));
            step.set(format!("building {local} ({})", context_summary(&context)));
            engine
                .build(&context, &local, &args.base_image, args.arch)
                .await?;
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
    let recreate = args.dry_run && existing.is_none() && deployer.describe().await?.is_some();
    let plan = if recreate {
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
        memory_mb: args.memory,
        timeout_s: args.timeout,
        architecture: args.arch.lambda_name().to_string(),
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
        if !args.yes && !confirm("apply these changes?")? {
            deployer.discard(&plan).await?;
            bail!("cancelled: nothing was changed in the stack");
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
    let function = aws
        .lambda()
        .get_function()
        .function_name(&aws.names.function)
        .send()
        .await
        .map_err(|e| anyhow!(describe(&e)))
        .with_context(|| format!("cannot read function {}", aws.names.function))?;
    report.function_arn = function
        .configuration()
        .and_then(|c| c.function_arn())
        .map(str::to_string);
    report.url = function_url(&aws, &aws.names.function).await?;
    report.next = next_command(global);
    emit(global.output, &report)?;
    Ok(ExitCode::SUCCESS)
}

/// What to try after a deploy.
fn next_command(global: &GlobalArgs) -> String {
    let stage = global
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

/// The function URL, read from Lambda (not a stack output: see DESIGN.md §5); none → `None`.
pub async fn function_url(aws: &Aws, function: &str) -> Result<Option<String>> {
    match aws
        .lambda()
        .get_function_url_config()
        .function_name(function)
        .send()
        .await
    {
        Ok(out) => Ok(Some(out.function_url().to_string())),
        Err(e) if error_code(&e) == Some("ResourceNotFoundException") => Ok(None),
        Err(e) => Err(anyhow!(describe(&e))).context("cannot read the function URL"),
    }
}

/// `cargo build --release --target <musl> -p ummatics-sentiment-function --bin bootstrap`
/// in the checkout this tool belongs to; returns the binary's path.
async fn build_bootstrap(arch: Arch, progress: &Progress) -> Result<PathBuf> {
    let workspace = workspace_root().context(
        "no ummatics-sentiment checkout here to build the function from: run deploy inside \
         the repository, or pass --bootstrap PATH with a prebuilt static binary",
    )?;
    let target = arch.rust_target();
    let step = progress.step(format!("bootstrap ({target}, release)"));
    let mut command = tokio::process::Command::new("cargo");
    command
        .current_dir(&workspace)
        .args([
            "build",
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
    if arch == Arch::X86_64 && std::env::var_os(&cc_var).is_none() {
        command.env(&cc_var, "musl-gcc");
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
        let hint = if tail.iter().any(|l| {
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
