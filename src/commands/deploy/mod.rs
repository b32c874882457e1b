//! `deploy`: an orchestrator of named steps ([`steps`]) on a checked plan ([`plan`]) — model →
//! stage → gate (with `--gate`) → bootstrap → builder (the Docker engine, or an OCI image
//! written directly with no daemon) → AWS account → ownership, quotas, function and log group
//! checks → ECR repository → image (smoke test, push) → CloudFormation change set (planned,
//! confirmed, applied) → budget → release → report ([`report`]). Each step shows live progress; a redeploy
//! of the same inputs pushes nothing and updates nothing.

use std::fmt;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use ummatics_sentiment_function::telemetry::Telemetry;

use crate::aws::lambda::{
    account_concurrency, function_exists, function_info, reserved_concurrency,
};
use crate::aws::logs::{delete_log_group, log_group_tags};
use crate::aws::{Aws, Identity};
use crate::bootstrap::{self, Runner};
use crate::budget::{self, BudgetChoice, BudgetReport, BudgetSpec, Reconciled};
use crate::carried::{Carried, CarriedFunction};
use crate::cli::{BuilderChoice, DeployArgs, GlobalArgs};
use crate::config::{Config, SettingsTable, StageSettings, TextKey, FILE_NAME, PUBLIC_URL_CAP};
use crate::evaluation::{score_files, LabelledFile};
use crate::image::docker::{context_summary, Engine};
use crate::image::ecr::{self, Repository};
use crate::image::oci::{self, OciImage};
use crate::image::registry;
use crate::image::{Bootstrap, BuildContext};
use crate::interrupt::{off_the_workers, Phase, Tracker};
use crate::lambda::{log_group, threads_for_memory, Arch, UrlAuth};
use crate::models::{ModelFiles, ModelSpec};
use crate::output::{confirm_async, emit, human_bytes, usd, usd_price, Progress};
use crate::pricing::{self, prices, worst_case_compute_per_hour};
use crate::release::{self, FunctionRecord, FunctionSource, ModelRecord, Release, ReleaseLog};
use crate::sizing;
use crate::stack::{
    budget_from_tags, dashboard, describe_stack, print_plan, Dashboard, DriftAlarms, GateRecord,
    Plan, PlanKind, StackDeployer, StackParams, StackState, StackStatus, TAG_TOOL,
};

mod plan;
mod report;
mod steps;

pub use plan::*;
pub use report::*;
use steps::*;

/// Where the settings below it come from.
fn settings_heading(config: Option<&ConfigUsed>) -> String {
    match config {
        None => format!("settings (flags and defaults; no {FILE_NAME} here):"),
        Some(ConfigUsed {
            path,
            stage: Some(stage),
            ..
        }) => format!(
            "settings (flags, {} [stages.{stage}], defaults):",
            path.display()
        ),
        Some(ConfigUsed {
            path, other_stages, ..
        }) if !other_stages.is_empty() => format!(
            "settings (flags, {}, defaults; it has no table for this stage, only [stages.{}]):",
            path.display(),
            other_stages.join("], [stages.")
        ),
        Some(ConfigUsed { path, .. }) => {
            format!("settings (flags, {}, defaults):", path.display())
        }
    }
}

/// The settings and where each came from, and the warning a public URL deserves.
fn show_settings(plan: &DeployPlan, progress: &Progress) {
    progress.line(settings_heading(plan.config.as_ref()));
    for line in SettingsTable(&plan.settings).to_string().lines() {
        progress.line(line);
    }
    if plan.function.url_auth == UrlAuth::None {
        progress.line(format!(
            "warning: --public-url makes the function URL callable by anyone (auth NONE); \
             every call is billed to this account. {}",
            worst_case_line(&plan.function)
        ));
    }
}

/// Deploys, and on Ctrl-C (or SIGTERM) stops as the phase allows: see [`interrupted`].
pub async fn run(plan: DeployPlan, global: &GlobalArgs) -> Result<ExitCode> {
    crate::stack::interruptible(&global.aws, "deploy", |tracker| async move {
        deploy(plan, global, &tracker).await
    })
    .await
}

async fn deploy(plan: DeployPlan, global: &GlobalArgs, tracker: &Tracker) -> Result<ExitCode> {
    let progress = Progress::new();
    show_settings(&plan, &progress);
    let model = model_step(&plan, &progress).await?;
    let aws = Aws::load(&global.aws).await;
    if plan.registry.is_some() {
        registry::refuse_on_aws(aws.endpoint().as_deref())?;
    }
    stage_step(&plan, &aws, global.aws.stage.as_deref()).await?;
    let gate = match &plan.gate {
        Some(gate) => Some(gate_step(gate, &model, &aws, &progress).await?),
        None => None,
    };
    let (bootstrap, function_record) = bootstrap_step(&plan, &progress).await?;
    let builder = builder_step(&plan, &bootstrap, &model, &progress).await?;
    let identity = account_step(&aws, &progress).await?;
    let deployer = StackDeployer::new(&aws, &progress);
    let live_stack = deployer.describe().await?;
    let claim = ownership(&plan, live_stack.as_ref())?;
    quota_step(&plan, &aws, &progress).await?;
    function_step(&aws, live_stack.as_ref()).await?;
    log_group_step(&plan, &aws, live_stack.as_ref(), &progress).await?;
    let mut target = repository_step(&plan, &aws, claim, &progress).await?;
    let image = image_step(
        &plan,
        &aws,
        &builder,
        &mut target,
        &bootstrap,
        &model,
        &progress,
    )
    .await?;
    let image_uri = image_uri(target.repository, &identity, &aws, &image);
    // The budget as the stack's tags record it (its alert address cannot be read back).
    let recorded_budget = live_stack
        .as_ref()
        .and_then(|stack| budget_from_tags(&stack.tags));
    let params = stack_params(
        &plan,
        &aws,
        image_uri.clone(),
        gate.as_ref(),
        recorded_budget.as_ref(),
    );
    // This deploy as the next release, recorded in the template it sends.
    let log = release_log(&deployer, live_stack.as_ref(), &progress).await?;
    let release = Release {
        number: log.next_number(),
        deployed_at: now_rfc3339(),
        deployed_by: identity.arn.clone(),
        model: model_record(&model, gate.as_ref(), log.live()),
        function: Some(function_record.clone()),
        params: params.clone(),
    };
    let template = log.with(release.clone()).template()?;
    let planned = stack_step(
        &plan, &deployer, live_stack, &params, &template, tracker, &progress,
    )
    .await?;
    // A budget asked for is made (or changed) before the stack's tags say it exists; a
    // failure leaves the stack as it was.
    let budget_now = || {
        let recorded = recorded_budget.as_ref();
        budget_step(&plan, recorded, &aws, &identity.account, &progress)
    };
    let mut budget = None;
    let (stack_plan, outcome) = match planned {
        Planned::Done(stack_plan, outcome) => (stack_plan, outcome),
        Planned::Confirmed(stack_plan) => {
            if let BudgetChoice::Set(_) = &plan.budget {
                match budget_now().await {
                    Ok(report) => budget = Some(report),
                    Err(e) => {
                        deployer.discard(&stack_plan).await?;
                        return Err(e.context("the stack was left as it was"));
                    }
                }
            }
            apply_step(&deployer, stack_plan, tracker).await?
        }
    };
    let release = release_step(&plan, &aws, outcome, &release, &log, &stack_plan, &progress).await;
    // Kept, removed (once the tags no longer name it), previewed, or set when the stack had
    // nothing to change.
    let budget = match budget {
        Some(report) => report,
        None => budget_now().await?,
    };

    let mut report = DeployReport {
        stack: deployer.name().to_string(),
        outcome,
        function_name: aws.names.function.clone(),
        function_arn: None,
        region: aws.region(),
        image_uri,
        image_digest: image.digest,
        image_tag: image.tag,
        pushed: image.pushed,
        plan: stack_plan,
        builder: builder.kind(),
        function: function_record,
        blobs: image.blobs,
        smoke_test: image.smoke_test,
        memory_mb: plan.function.memory_mb,
        timeout_s: plan.function.timeout_s,
        architecture: plan.function.arch.lambda_name().to_string(),
        estimate: sizing::estimate(
            sizing::measured_for(&plan.model),
            plan.function.memory_mb,
            plan.function.arch,
        ),
        url: None,
        dashboard: None,
        url_auth: plan.function.url_auth,
        reserved_concurrency: plan.function.reserved_concurrency,
        worst_case_usd_per_hour: worst_case(&plan.function),
        gate,
        budget,
        release,
        config: plan.config.clone(),
        settings: plan.settings.clone(),
        next: "run the same command without --dry-run to apply it".into(),
    };
    if outcome != Outcome::DryRun {
        // What runs now.
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
        report.dashboard = dashboard(&aws, &aws.names.stack).await?;
        report.next = next_command(global);
    }
    emit(global.output, &report)?;
    Ok(ExitCode::SUCCESS)
}

/// What the function runs: the ECR repository's URI (known without a repository in a dry
/// run) with the image's digest, or its tag when it was not pushed yet.
fn image_uri(
    repository: Option<Repository>,
    identity: &Identity,
    aws: &Aws,
    image: &Image,
) -> String {
    let repository_uri = repository.map(|r| r.uri).unwrap_or_else(|| {
        format!(
            "{}.dkr.ecr.{}.amazonaws.com/{}",
            identity.account,
            aws.region(),
            aws.names.repository
        )
    });
    match &image.digest {
        Some(d) => format!("{repository_uri}@{d}"),
        None => format!("{repository_uri}:{}", image.tag),
    }
}

/// The most an hour of compute can cost with the cap (`None`: no cap).
fn worst_case(f: &FunctionSettings) -> Option<f64> {
    f.reserved_concurrency
        .map(|cap| worst_case_compute_per_hour(cap, f.memory_mb, f.arch))
}

/// What a public URL can cost, said before anything is deployed.
fn worst_case_line(f: &FunctionSettings) -> String {
    match (f.reserved_concurrency, worst_case(f)) {
        (Some(cap), Some(usd_h)) => format!(
            "At most {cap} instances run at once (--reserved-concurrency): compute costs at most \
             {}/hour at {} MB ({cap} × 3600 s × {:.2} GB × {} per GB-s), plus {} per 1M requests",
            usd(usd_h),
            f.memory_mb,
            f64::from(f.memory_mb) / 1024.0,
            usd_price(pricing::per_gb_s(f.arch)),
            usd_price(prices::PER_REQUEST * 1_000_000.0),
        ),
        _ => "No concurrency cap: the account's whole concurrency is the limit".to_string(),
    }
}

/// The template's parameters: the plan's function settings, the image, what the gate scored
/// and the budget asked for (`--budget`, or the one the stack's tags record).
fn stack_params(
    plan: &DeployPlan,
    aws: &Aws,
    image_uri: String,
    gate: Option<&GateReport>,
    recorded_budget: Option<&BudgetSpec>,
) -> StackParams {
    let f = &plan.function;
    StackParams {
        function_name: aws.names.function.clone(),
        image_uri,
        memory: f.memory_mb,
        timeout: f.timeout_s,
        architecture: f.arch,
        threads: threads_for_memory(f.memory_mb),
        url_auth_type: f.url_auth,
        reserved_concurrency: f.reserved_concurrency,
        alarm_email: f.alarm_email.clone().unwrap_or_default(),
        log_retention_days: f.log_retention_days,
        model_name: plan.model.metric_name(),
        telemetry: f.telemetry,
        alarms: f.alarms,
        registry: plan.registry.clone(),
        gate: gate.map(|g| GateRecord {
            data_sha256: g.data_sha256.clone(),
            accuracy: format!("{:.6}", g.accuracy),
        }),
        budget: match &plan.budget {
            BudgetChoice::Keep => recorded_budget.cloned(),
            BudgetChoice::Remove => None,
            BudgetChoice::Set(spec) => Some(spec.clone()),
        },
    }
}

/// The releases the live stack records (none for a new stack, or one that must be remade).
async fn release_log(
    deployer: &StackDeployer<'_>,
    live: Option<&StackState>,
    progress: &Progress,
) -> Result<ReleaseLog> {
    let Some(stack) = live else {
        return Ok(ReleaseLog::default());
    };
    if stack.is_failed_create() || stack.is_review() {
        return Ok(ReleaseLog::default());
    }
    match ReleaseLog::from_template(&deployer.deployed_template().await?) {
        Ok(log) => Ok(log),
        Err(e) => {
            // A log someone edited by hand must not block a deploy: start again.
            progress.line(format!(
                "warning: {e:#}; this deploy starts the release log again"
            ));
            Ok(ReleaseLog::default())
        }
    }
}

/// The model as a release records it: its accuracy from this deploy's gate, or from the live
/// release when it carries the same model.
fn model_record(
    model: &ModelFiles,
    gate: Option<&GateReport>,
    live: Option<&Release>,
) -> ModelRecord {
    let sha256 = model.sha256();
    let (accuracy, accuracy_data_sha256) = match (gate, live) {
        (Some(g), _) => (Some(g.accuracy), Some(g.data_sha256.clone())),
        (None, Some(r)) if r.model.sha256 == sha256 => {
            (r.model.accuracy, r.model.accuracy_data_sha256.clone())
        }
        _ => (None, None),
    };
    ModelRecord {
        name: model.source.clone(),
        sha256,
        accuracy,
        accuracy_data_sha256,
    }
}

/// Now, as RFC 3339 UTC to the second.
fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn deploy_args(extra: &[&str]) -> DeployArgs {
        let mut argv = vec!["ummatics-sentiment", "deploy"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Deploy(args) => args,
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_function_comes_from_the_flag_then_the_binary_then_the_checkout() {
        let choose = |extra: &[&str], checkout| {
            BootstrapSource::choose(&deploy_args(extra), Arch::X86_64, None, checkout)
        };
        assert!(matches!(
            choose(&["--bootstrap", "b"], false).unwrap(),
            BootstrapSource::Prebuilt(p) if p == Path::new("b")
        ));
        assert!(matches!(
            choose(&["--build-function", "-v"], false).unwrap(),
            BootstrapSource::Build { verbose: true }
        ));
        // A development build (nothing carried) inside a checkout builds there.
        assert!(matches!(
            choose(&[], true).unwrap(),
            BootstrapSource::Build { verbose: false }
        ));
        // Nothing carried, no checkout: says every way to get a function.
        let e = choose(&[], false).unwrap_err().to_string();
        for way in [
            "carries no function",
            "install a release",
            "--bootstrap PATH",
            "x86_64-unknown-linux-musl",
            "inside a checkout",
        ] {
            assert!(e.contains(way), "{e}");
        }
        // Both flags at once is a usage error.
        let argv = [
            "ummatics-sentiment",
            "deploy",
            "--bootstrap",
            "b",
            "--build-function",
        ];
        assert!(Cli::try_parse_from(argv).is_err());
    }
}
