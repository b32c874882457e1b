//! `deploy`: a sequence of named steps — model → gate (with `--gate`) → bootstrap → builder (the Docker engine, or an
//! OCI image written directly with no daemon) → AWS account → ECR repository → image (smoke
//! test, push) → CloudFormation change set → report. Each step shows live progress; a redeploy
//! of the same inputs pushes nothing and updates nothing.

use std::fmt;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use ummatics_sentiment_function::telemetry::Telemetry;
use ummatics_sentiment_function::{Classifier, ClassifierOptions};

use crate::aws::{Aws, Identity};
use crate::bootstrap::{self, Runner};
use crate::budget::{self, BudgetAction, BudgetSpec, BudgetState};
use crate::carried::{Carried, CarriedFunction};
use crate::cli::{BuilderChoice, DeployArgs, GlobalArgs};
use crate::config::{Config, SettingsTable, StageSettings, TextKey, FILE_NAME, PUBLIC_URL_CAP};
use crate::evaluation::{accuracy, predict_all, LabelledFile};
use crate::image::docker::{context_summary, Engine};
use crate::image::ecr::{self, Repository};
use crate::image::oci::{self, OciImage};
use crate::image::registry::{self, Registry};
use crate::image::{Bootstrap, BuildContext};
use crate::interrupt::{off_the_workers, Phase, Tracker};
use crate::lambda::{
    account_concurrency, delete_log_group, function_exists, function_info, log_group,
    log_group_tags, prices, reserved_concurrency, threads_for_memory, worst_case_compute_per_hour,
    Arch, UrlAuth,
};
use crate::models::{ModelFiles, ModelSpec};
use crate::output::{confirm_async, emit, human_bytes, usd, usd_price, Progress};
use crate::release::{self, FunctionRecord, FunctionSource, ModelRecord, Release, ReleaseLog};
use crate::sizing;
use crate::stack::{
    budget_from_tags, dashboard, describe_stack, print_plan, Dashboard, DriftAlarms, GateRecord,
    Plan, PlanKind, StackDeployer, StackParams, StackState, StackStatus, TAG_TOOL,
};

/// What `deploy` was asked to do, checked: the command line turned into domain values in one
/// place ([`DeployPlan::from_args`]), so the steps never see clap's structs.
#[derive(Debug, Clone)]
pub struct DeployPlan {
    pub model: ModelSpec,
    pub bootstrap: BootstrapSource,
    pub builder: BuilderChoice,
    pub base_image: BaseImage,
    /// Run `bootstrap --self-test` on the artifact before pushing.
    pub smoke_test: bool,
    /// Push here instead of the ECR endpoint.
    pub registry: Option<String>,
    /// `--insecure-registry`: plain HTTP to a non-loopback registry is allowed.
    pub insecure_registry: bool,
    /// `--adopt`: take a same-named stack or repository this tool did not make.
    pub adopt: bool,
    /// `--new-stage`: a stage the configuration file does not define may be created.
    pub new_stage: bool,
    pub function: FunctionSettings,
    /// `--gate`: score the model before anything is built or pushed.
    pub gate: Option<Gate>,
    pub mode: Mode,
    /// The configuration file read, if any.
    pub config: Option<ConfigUsed>,
    /// Every setting with where it came from (flag, file line, default).
    pub settings: StageSettings,
    /// `--budget`: what to do with the stage's AWS Budgets budget.
    pub budget: BudgetChoice,
}

/// What deploy does with the stage's budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BudgetChoice {
    /// Not asked for: a budget an earlier deploy made stays as it is.
    Keep,
    /// `--budget 0`.
    Remove,
    Set(BudgetSpec),
}

/// The release a deploy made or left live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReleaseReport {
    pub number: u32,
    /// Made by this deploy.
    pub new: bool,
}

/// What happened to the budget, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetReport {
    pub name: String,
    pub action: BudgetAction,
    /// The limit and address (`None` once removed, or kept without a record of them).
    pub spec: Option<BudgetSpec>,
    /// What Budgets says now: limit, spend this month (none in a dry run or once removed).
    pub state: Option<BudgetState>,
}

impl fmt::Display for BudgetReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = match self.action {
            BudgetAction::Created => "created",
            BudgetAction::Updated => "updated",
            BudgetAction::Unchanged => "unchanged",
            BudgetAction::Kept => "kept from an earlier deploy; --budget 0 removes it",
            BudgetAction::Removed => "removed",
            BudgetAction::WouldCreate => "would be created",
            BudgetAction::WouldUpdate => "would be updated",
            BudgetAction::WouldRemove => "would be removed",
        };
        match (&self.spec, &self.state) {
            (Some(spec), _) => write!(
                f,
                "${}/month, alerts to {} ({action})",
                spec.amount(),
                spec.email
            )?,
            (None, Some(state)) => write!(f, "${:.2}/month ({action})", state.limit_usd)?,
            (None, None) => write!(f, "{} ({action})", self.name)?,
        }
        if let Some(spent) = self.state.as_ref().and_then(|s| s.actual_usd) {
            write!(f, "; ${spent:.2} spent this month")?;
        }
        Ok(())
    }
}

/// The accuracy gate: a labelled file and the accuracy it requires.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    pub data: PathBuf,
    pub min_accuracy: f64,
}

/// What the gate measured, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct GateReport {
    pub data: String,
    pub data_sha256: String,
    pub examples: usize,
    pub accuracy: f64,
    pub min_accuracy: f64,
    /// The live release's accuracy on the same file, when it passed a gate on it.
    pub live_accuracy: Option<f64>,
}

/// Where the function binary comes from.
#[derive(Debug, Clone)]
pub enum BootstrapSource {
    /// The one this binary carries for the architecture (unpacked and checked).
    Carried(Box<CarriedFunction>),
    /// A prebuilt static binary.
    Prebuilt(PathBuf),
    /// Built now with cargo (its output shown when `verbose`).
    Build { verbose: bool },
}

impl BootstrapSource {
    /// `--bootstrap PATH`, else `--build-function`, else the function this binary carries for
    /// `arch`, else a build in the checkout (`checkout`: deploy runs inside one); a binary with
    /// neither says how to get one.
    fn choose(
        args: &DeployArgs,
        arch: Arch,
        carried: Option<&Carried>,
        checkout: bool,
    ) -> Result<BootstrapSource> {
        if let Some(path) = &args.bootstrap {
            return Ok(BootstrapSource::Prebuilt(path.clone()));
        }
        let build = BootstrapSource::Build {
            verbose: args.verbose,
        };
        if args.build_function {
            return Ok(build);
        }
        match carried {
            Some(carried) => Ok(BootstrapSource::Carried(Box::new(carried.function(arch)?))),
            None if checkout => Ok(build),
            None => bail!(
                "this ummatics-sentiment carries no function (a development build) and there is \
                 no checkout here to build one from: install a release (README, \"Install\"), \
                 pass --bootstrap PATH with a static {} bootstrap, or run deploy inside a \
                 checkout of the repository (it builds the function with cargo)",
                arch.rust_target()
            ),
        }
    }
}

/// The image's base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseImage {
    /// `FROM scratch`: no pull, no libc; what the daemonless builder writes.
    Scratch,
    /// Another base, built by the Docker engine.
    Image(String),
}

impl BaseImage {
    pub fn parse(name: &str) -> Result<BaseImage> {
        match name.trim() {
            "" => {
                bail!("--base-image is empty: pass an image reference, or leave it out for scratch")
            }
            "scratch" => Ok(BaseImage::Scratch),
            other if other.contains(char::is_whitespace) => {
                bail!("--base-image {other:?} is not an image reference (it contains spaces)")
            }
            other => Ok(BaseImage::Image(other.to_string())),
        }
    }

    pub fn has_libc(&self) -> bool {
        *self != BaseImage::Scratch
    }

    pub fn name(&self) -> &str {
        match self {
            BaseImage::Scratch => "scratch",
            BaseImage::Image(name) => name,
        }
    }
}

/// The function's configuration, as the stack gets it.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionSettings {
    pub memory_mb: u32,
    pub timeout_s: u32,
    pub arch: Arch,
    pub url_auth: UrlAuth,
    /// Lambda's reserved concurrency (`None`: no cap).
    pub reserved_concurrency: Option<u32>,
    pub alarm_email: Option<String>,
    pub log_retention_days: u32,
    /// The function's telemetry record, and the drift alarms on it.
    pub telemetry: Telemetry,
    pub alarms: DriftAlarms,
}

/// Preview, or apply (after asking, or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    DryRun,
    Apply { ask: bool },
}

impl DeployPlan {
    /// Checks the flags: every mistake is reported before anything is built or called.
    pub fn from_args(mut args: DeployArgs, stage: Option<&str>) -> Result<DeployPlan> {
        let config = Config::find(args.config.config.as_deref(), stage)?;
        let settings = StageSettings::resolve(&args.settings, config.as_ref())?;
        // How the image is made and pushed: a flag beats the file.
        if let Some(config) = &config {
            if args.registry.registry.is_none() {
                args.registry.registry = config.text(TextKey::Registry)?.map(|t| t.value);
            }
            if args.bootstrap.is_none() && !args.build_function {
                args.bootstrap = config.text(TextKey::Bootstrap)?.map(|t| t.path);
            }
            if args.builder.is_none() {
                if let Some(text) = config.text(TextKey::Builder)? {
                    args.builder = Some(
                        <BuilderChoice as clap::ValueEnum>::from_str(&text.value, true).map_err(
                            |_| {
                                text.error(format!(
                                    "{:?} is not a builder: auto, docker or oci",
                                    text.value
                                ))
                            },
                        )?,
                    );
                }
            }
        }
        let builder = args.builder.unwrap_or(BuilderChoice::Auto);
        let mode = match (args.dry_run, args.yes) {
            (true, _) => Mode::DryRun,
            (false, true) => Mode::Apply { ask: false },
            (false, false) if std::io::stdin().is_terminal() => Mode::Apply { ask: true },
            (false, false) => bail!(
                "deploy asks before changing the stack, and there is no terminal to ask on: pass --yes \
                 (or --dry-run to see what would change)"
            ),
        };
        let base_image = BaseImage::parse(&args.base_image)?;
        if builder == BuilderChoice::Oci && base_image.has_libc() {
            bail!(
                "--base-image {} needs the Docker engine (the daemonless builder writes FROM scratch \
                 images): drop --builder oci or --base-image",
                base_image.name()
            );
        }
        args.registry.check()?;
        let s = settings.clone();
        Ok(DeployPlan {
            model: s.model.value,
            bootstrap: BootstrapSource::choose(
                &args,
                s.arch.value,
                Carried::this_binary()?.as_ref(),
                bootstrap::workspace_root().is_some(),
            )?,
            builder,
            base_image,
            smoke_test: !args.no_smoke_test,
            registry: args.registry.registry,
            insecure_registry: args.registry.insecure_registry,
            adopt: args.adopt,
            new_stage: args.new_stage,
            function: FunctionSettings {
                memory_mb: s.memory_mb.value,
                timeout_s: s.timeout_s.value,
                arch: s.arch.value,
                url_auth: if s.public_url.value {
                    UrlAuth::None
                } else {
                    UrlAuth::AwsIam
                },
                // A public URL is never left without a cap: anyone could use the account's
                // whole concurrency, and run up its bill.
                reserved_concurrency: s
                    .reserved_concurrency
                    .value
                    .or(s.public_url.value.then_some(PUBLIC_URL_CAP)),
                alarm_email: s.alarm_email.value.clone(),
                log_retention_days: s.log_retention_days.value,
                telemetry: s.telemetry.value,
                alarms: DriftAlarms {
                    negative_share: s.alarm_negative_share.value,
                    low_confidence: s.alarm_low_confidence.value,
                },
            },
            gate: s.gate.value.map(|data| Gate {
                data,
                min_accuracy: s.min_accuracy.value,
            }),
            mode,
            config: config.map(|c| ConfigUsed {
                path: c.path().to_path_buf(),
                stage: c.stage().map(str::to_string),
                other_stages: match (stage, c.stage()) {
                    (Some(_), None) => c.stages.clone(),
                    _ => Vec::new(),
                },
            }),
            budget: match s.budget_usd.value {
                None => BudgetChoice::Keep,
                Some(0.0) => BudgetChoice::Remove,
                Some(usd) => BudgetChoice::Set(BudgetSpec::new(
                    usd,
                    s.budget_email
                        .value
                        .or(s.alarm_email.value)
                        .context("a budget needs an e-mail address: pass --budget-email")?,
                )),
            },
            settings,
        })
    }
}

/// The configuration file a deploy read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigUsed {
    pub path: PathBuf,
    /// The `[stages.NAME]` table used, when the file has one for this stage.
    pub stage: Option<String>,
    /// With `--stage NAME` and no table for it: the stages the file does name (a typo shows).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_stages: Vec<String>,
}

/// What a deploy did to the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Created,
    Updated,
    /// Nothing to update: the stack already runs these settings and this image.
    Unchanged,
    /// `--dry-run`: previewed, nothing changed.
    DryRun,
}

/// Which builder made the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BuilderKind {
    Docker,
    Oci,
}

/// Whether the artifact was run before the push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SmokeTest {
    #[serde(rename = "passed")]
    Passed,
    /// Passed under an emulator (another architecture than this machine's).
    #[serde(rename = "passed (emulated)")]
    PassedEmulated,
    /// No push, `--no-smoke-test`, or an architecture this machine cannot run.
    #[serde(rename = "skipped")]
    Skipped,
}

/// What deploy did, for people and for programs.
#[derive(Debug, Clone, Serialize)]
pub struct DeployReport {
    pub stack: String,
    pub outcome: Outcome,
    pub function_name: String,
    pub function_arn: Option<String>,
    pub region: String,
    pub image_uri: String,
    pub image_digest: Option<String>,
    pub image_tag: String,
    /// Whether an image was pushed by this run.
    pub pushed: bool,
    pub plan: Plan,
    pub builder: BuilderKind,
    /// The function binary in the image: where it came from, its version and SHA-256.
    pub function: FunctionRecord,
    /// The OCI builder's blobs and whether each was uploaded.
    pub blobs: Vec<oci::BlobReport>,
    pub smoke_test: SmokeTest,
    pub memory_mb: u32,
    pub timeout_s: u32,
    pub architecture: String,
    /// GB-s and dollars per 10 000 texts at this memory size, from measured throughput.
    pub estimate: sizing::Estimate,
    pub url: Option<String>,
    pub url_auth: UrlAuth,
    /// The stack's CloudWatch dashboard (none in a dry run).
    pub dashboard: Option<Dashboard>,
    /// The most instances at once (`None`: no cap).
    pub reserved_concurrency: Option<u32>,
    /// With a cap: the most an hour of compute can cost (every instance busy all hour).
    pub worst_case_usd_per_hour: Option<f64>,
    /// `--gate`: what the model scored.
    pub gate: Option<GateReport>,
    /// `--budget`, or a budget an earlier deploy made.
    pub budget: Option<BudgetReport>,
    /// The release live after this deploy (`new`: this deploy made it; in a dry run, would).
    pub release: Option<ReleaseReport>,
    /// The configuration file read, if any.
    pub config: Option<ConfigUsed>,
    /// Every setting with where it came from: `flag`, `FILE:LINE [stages.NAME]` or `default`.
    pub settings: StageSettings,
    pub next: String,
}

impl fmt::Display for DeployReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.outcome {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged (nothing to update)",
            Outcome::DryRun => "not changed (dry run)",
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
        writeln!(f, "  bootstrap {}", self.function)?;
        writeln!(f, "  estimate  {}", self.estimate)?;
        if let Some(g) = &self.gate {
            writeln!(
                f,
                "  gate      {:.2} % on {} ({} examples; required {:.2} %)",
                g.accuracy * 100.0,
                g.data,
                g.examples,
                g.min_accuracy * 100.0
            )?;
        }
        writeln!(
            f,
            "  image     {}{}",
            self.image_uri,
            if self.pushed { " (pushed now)" } else { "" }
        )?;
        match &self.url {
            Some(url) => writeln!(f, "  url       {url} (auth {})", self.url_auth.as_str())?,
            None => writeln!(f, "  url       none")?,
        }
        if let Some(d) = &self.dashboard {
            writeln!(f, "  dashboard {}", d.url)?;
        }
        if let Some(b) = &self.budget {
            writeln!(f, "  budget    {b}")?;
        }
        match &self.release {
            Some(r) if r.new && self.outcome == Outcome::DryRun => {
                writeln!(f, "  release   {} (would be made)", r.number)?
            }
            Some(r) if r.new => writeln!(
                f,
                "  release   {} (new; `releases` lists them, `rollback` goes back)",
                r.number
            )?,
            Some(r) => writeln!(f, "  release   {} (still live)", r.number)?,
            None => {}
        }
        if let Some(cap) = self.reserved_concurrency {
            write!(f, "  cap       {cap} at once (reserved concurrency)")?;
            match self.worst_case_usd_per_hour {
                Some(usd_h) => writeln!(f, "; compute at most {}/hour", usd(usd_h))?,
                None => writeln!(f)?,
            }
        }
        write!(f, "next: {}", self.next)
    }
}

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

/// Deploys, and on Ctrl-C (or SIGTERM) stops as the phase allows: see [`interrupted`].
pub async fn run(plan: DeployPlan, global: &GlobalArgs) -> Result<ExitCode> {
    crate::stack::interruptible(&global.aws, "deploy", |tracker| async move {
        deploy(plan, global, &tracker).await
    })
    .await
}

async fn deploy(plan: DeployPlan, global: &GlobalArgs, tracker: &Tracker) -> Result<ExitCode> {
    let progress = Progress::new();
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
    let mut params = stack_params(&plan, &aws, image_uri.clone());
    params.gate = gate.as_ref().map(|g| GateRecord {
        data_sha256: g.data_sha256.clone(),
        accuracy: format!("{:.6}", g.accuracy),
    });
    // The budget as the stack's tags record it (its alert address cannot be read back).
    let recorded_budget = live_stack
        .as_ref()
        .and_then(|stack| budget_from_tags(&stack.tags));
    params.budget = match &plan.budget {
        BudgetChoice::Keep => recorded_budget.clone(),
        BudgetChoice::Remove => None,
        BudgetChoice::Set(spec) => Some(spec.clone()),
    };
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
    let mut budget = None;
    let (stack_plan, outcome) = match planned {
        Planned::Done(stack_plan, outcome) => (stack_plan, outcome),
        Planned::Confirmed(stack_plan) => {
            if let BudgetChoice::Set(_) = &plan.budget {
                match budget_step(
                    &plan,
                    recorded_budget.as_ref(),
                    &aws,
                    &identity.account,
                    &progress,
                )
                .await
                {
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
    let release = match outcome {
        Outcome::Created | Outcome::Updated => {
            keep_step(&plan, &aws, &release, &progress).await;
            Some(ReleaseReport {
                number: release.number,
                new: true,
            })
        }
        Outcome::Unchanged => {
            // Also how a live image deployed before slot tags (or whose tagging failed) gets
            // its tag: re-tagging is idempotent.
            if let Some(live) = log.live() {
                keep_step(&plan, &aws, live, &progress).await;
            }
            log.live.map(|number| ReleaseReport { number, new: false })
        }
        Outcome::DryRun => (stack_plan.kind != PlanKind::None).then_some(ReleaseReport {
            number: release.number,
            new: true,
        }),
    };
    // Kept, removed (once the tags no longer name it), previewed, or set when the stack had
    // nothing to change.
    let budget = match budget {
        Some(report) => report,
        None => {
            budget_step(
                &plan,
                recorded_budget.as_ref(),
                &aws,
                &identity.account,
                &progress,
            )
            .await?
        }
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
            usd_price(f.arch.price_per_gb_s()),
            usd_price(prices::PER_REQUEST * 1_000_000.0),
        ),
        _ => "No concurrency cap: the account's whole concurrency is the limit".to_string(),
    }
}

/// The stack's parameters and tags for this plan and image.
fn stack_params(plan: &DeployPlan, aws: &Aws, image_uri: String) -> StackParams {
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
        gate: None,
        budget: None,
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

/// After a new release: its image gets the release's slot tag (`keep-N`), so the lifecycle
/// policy keeps it while the release is kept. A failure here is a warning: the release is
/// live either way, only its image is not yet protected from expiry.
async fn keep_step(plan: &DeployPlan, aws: &Aws, release: &Release, progress: &Progress) {
    let Some(digest) = release.image_digest() else {
        return;
    };
    let tag = release::keep_tag(release.number);
    let step = progress.step(format!("keep tag {tag}"));
    let tagged = async {
        let registry = ecr::registry(aws, plan.registry.as_deref(), plan.insecure_registry).await?;
        registry.add_tag(&aws.names.repository, digest, &tag).await
    };
    match tagged.await {
        Ok(true) => step.done(format!(
            "{digest} kept (the lifecycle policy never expires it) while release {} is in the log",
            release.number
        )),
        Ok(false) => step.done("already there"),
        Err(e) => {
            step.fail("not tagged");
            progress.line(format!(
                "warning: could not tag the image {tag}: {e:#}; the lifecycle policy may expire \
                 it once 10 newer images exist (deploy again to retry)"
            ));
        }
    }
}

/// After the stack: the stage's budget made, replaced, kept or removed as the plan says
/// (previewed in a dry run). `recorded` is what the stack's tags said before this deploy.
async fn budget_step(
    plan: &DeployPlan,
    recorded: Option<&BudgetSpec>,
    aws: &Aws,
    account: &str,
    progress: &Progress,
) -> Result<Option<BudgetReport>> {
    let name = budget::name_for(&aws.names.stack, &aws.region());
    let dry_run = plan.mode == Mode::DryRun;
    if plan.budget == BudgetChoice::Keep && recorded.is_none() && dry_run {
        return Ok(None);
    }
    let step = progress.step(format!("budget {name}"));
    let mut existing = match budget::describe_budget(aws, account, &name).await {
        Ok(existing) => existing,
        // Not asked for: a missing Budgets permission must not fail the deploy.
        Err(e) if plan.budget == BudgetChoice::Keep => {
            step.fail("cannot read it");
            progress.line(format!("warning: {e:#}"));
            return Ok(None);
        }
        Err(e) => {
            step.fail("cannot read it");
            return Err(e);
        }
    };
    // None under this name, though the tags record one: an earlier version's, under the old name.
    if let (None, Some(recorded), false) = (&existing, recorded, dry_run) {
        match budget::move_from_old_name(aws, account, &aws.names.stack, recorded).await {
            Ok(true) => {
                progress.line(format!(
                    "budget {} (its name before names carried the region) is now {name}",
                    aws.names.stack
                ));
                existing = budget::describe_budget(aws, account, &name).await?;
            }
            Ok(false) => {}
            Err(e) => progress.line(format!("warning: {e:#}")),
        }
    }
    let (action, spec) = match (&plan.budget, &existing) {
        (BudgetChoice::Keep | BudgetChoice::Remove, None) => {
            step.done("none set (--budget USD makes one)");
            return Ok(None);
        }
        (BudgetChoice::Keep, Some(_)) => (BudgetAction::Kept, recorded.cloned()),
        (BudgetChoice::Remove, Some(_)) if dry_run => (BudgetAction::WouldRemove, None),
        (BudgetChoice::Remove, Some(_)) => {
            budget::delete_budget(aws, account, &name).await?;
            (BudgetAction::Removed, None)
        }
        (BudgetChoice::Set(spec), existing) => {
            let same = existing
                .as_ref()
                .is_some_and(|b| spec.same_limit(b.limit_usd))
                && recorded == Some(spec);
            let action = match (same, existing.is_some(), dry_run) {
                (true, _, _) => BudgetAction::Unchanged,
                (false, true, true) => BudgetAction::WouldUpdate,
                (false, false, true) => BudgetAction::WouldCreate,
                (false, true, false) => {
                    let old_email = recorded.map(|r| r.email.as_str());
                    budget::update_budget(aws, account, &name, spec, old_email).await?;
                    BudgetAction::Updated
                }
                (false, false, false) => {
                    budget::create_budget(aws, account, &name, spec).await?;
                    BudgetAction::Created
                }
            };
            (action, Some(spec.clone()))
        }
    };
    let state = match action {
        BudgetAction::Removed | BudgetAction::WouldCreate => None,
        BudgetAction::Created | BudgetAction::Updated => {
            budget::describe_budget(aws, account, &name).await?
        }
        _ => existing,
    };
    let report = BudgetReport {
        name,
        action,
        spec,
        state,
    };
    step.done(report.to_string());
    Ok(Some(report))
}

/// Step 1b, with `--gate`: the model as it will ship, scored in this process on the gate file;
/// refused (nothing built, pushed or changed) below the threshold or below the live release's
/// score on the same file.
async fn gate_step(
    gate: &Gate,
    model: &ModelFiles,
    aws: &Aws,
    progress: &Progress,
) -> Result<GateReport> {
    let step = progress.step("gate");
    let bytes = std::fs::read(&gate.data)
        .with_context(|| format!("--gate: cannot read {}", gate.data.display()))?;
    let data_sha256 = hex::encode(Sha256::digest(&bytes));
    // The file first: a bad one is refused before the stack is read or the model loaded. The
    // bytes hashed are the bytes scored.
    let file = match LabelledFile::parse(&gate.data, &bytes, None, "text", "label") {
        Ok(file) => file,
        Err(e) => {
            step.fail("the gate file is not usable");
            return Err(e.context("--gate"));
        }
    };
    let live = describe_stack(aws, &aws.names.stack)
        .await?
        .and_then(|stack| GateRecord::from_tags(&stack.tags))
        .filter(|record| record.data_sha256 == data_sha256)
        .and_then(|record| record.accuracy.parse::<f64>().ok());
    let files = model.clone();
    let scored = tokio::task::spawn_blocking(move || -> Result<(usize, f64)> {
        // The files as the function reads them: a model directory.
        let dir = tempfile::tempdir().context("cannot make a temporary directory")?;
        for model_file in &files.files {
            std::fs::write(dir.path().join(&model_file.name), &model_file.bytes)
                .with_context(|| format!("cannot write {}", model_file.name))?;
        }
        let classifier = Classifier::load(dir.path(), &ClassifierOptions::default())?;
        let examples = file.examples(classifier.labels())?;
        let predicted: Vec<usize> = predict_all(&classifier, &examples)?
            .iter()
            .map(|p| p.label)
            .collect();
        Ok((examples.len(), accuracy(&examples, &predicted)))
    })
    .await?;
    let (examples, accuracy) = match scored {
        Ok(scored) => scored,
        Err(e) => {
            step.fail("could not score the model");
            return Err(e.context(format!("--gate {}", gate.data.display())));
        }
    };
    let report = GateReport {
        data: gate.data.display().to_string(),
        data_sha256,
        examples,
        accuracy,
        min_accuracy: gate.min_accuracy,
        live_accuracy: live,
    };
    let percent = |x: f64| format!("{:.2} %", x * 100.0);
    if accuracy < gate.min_accuracy {
        step.fail(format!(
            "{} < {} required",
            percent(accuracy),
            percent(gate.min_accuracy)
        ));
        bail!(
            "the model scores {} on {} ({examples} examples), below --min-accuracy {}: \
             nothing was deployed",
            percent(accuracy),
            report.data,
            percent(gate.min_accuracy)
        );
    }
    if let Some(live) = live.filter(|&live| accuracy < live) {
        step.fail(format!("{} < {} live", percent(accuracy), percent(live)));
        bail!(
            "the model scores {} on {} ({examples} examples), below the live release's {} on \
             the same file: nothing was deployed",
            percent(accuracy),
            report.data,
            percent(live)
        );
    }
    step.done(format!(
        "{} on {} ({examples} examples; required {}{})",
        percent(accuracy),
        report.data,
        percent(gate.min_accuracy),
        match live {
            Some(live) => format!(", live release {}", percent(live)),
            None => String::new(),
        }
    ));
    Ok(report)
}

/// Step 1: the model's files.
async fn model_step(plan: &DeployPlan, progress: &Progress) -> Result<ModelFiles> {
    let step = progress.step("model");
    match plan.model.files().await {
        Ok(model) => {
            let onnx = model
                .files
                .iter()
                .find(|f| f.name == "model.onnx")
                .map_or(0, |f| f.bytes.len() as u64);
            let need = sizing::minimum_memory_mb(&plan.model, onnx);
            let memory = &plan.settings.memory_mb;
            if memory.value < need {
                step.fail("needs more memory");
                bail!(
                    "memory {} MB ({}) is below what {} needs: at least {need} MB (its peak \
                     resident memory plus the runtime's); every call would run out of memory. \
                     Use --memory {need} or more (the default, {} MB, is the cheapest per text)",
                    memory.value,
                    memory.source,
                    model.source,
                    sizing::DEFAULT_MEMORY_MB
                );
            }
            step.done(format!(
                "{} ({} files, {})",
                model.source,
                model.files.len(),
                human_bytes(model.total_bytes())
            ));
            Ok(model)
        }
        Err(e) => {
            step.fail("not found");
            Err(e)
        }
    }
}

/// Step 2: the function binary — carried, prebuilt or built now — and the record of it.
async fn bootstrap_step(
    plan: &DeployPlan,
    progress: &Progress,
) -> Result<(Bootstrap, FunctionRecord)> {
    let arch = plan.function.arch;
    let has_libc = plan.base_image.has_libc();
    let read = |path: PathBuf| {
        off_the_workers(move || {
            let bootstrap = Bootstrap::read(&path, arch, has_libc)?;
            let sha256 = bootstrap.sha256();
            Ok((bootstrap, sha256))
        })
    };
    let ((bootstrap, sha256), source) = match &plan.bootstrap {
        BootstrapSource::Carried(carried) => {
            let bootstrap = carried.bootstrap.clone();
            let digested = off_the_workers(move || {
                let sha256 = bootstrap.sha256();
                Ok((bootstrap, sha256))
            });
            (digested.await?, FunctionSource::Carried)
        }
        BootstrapSource::Prebuilt(path) => (read(path.clone()).await?, FunctionSource::Prebuilt),
        BootstrapSource::Build { verbose } => {
            let built = bootstrap::build(arch, progress, *verbose).await?;
            (read(built.path).await?, FunctionSource::Built)
        }
    };
    let record = FunctionRecord {
        source,
        version: bootstrap.build.as_ref().map(|b| b.version.clone()),
        commit: bootstrap.build.as_ref().map(|b| b.commit.clone()),
        sha256,
    };
    let step = progress.step("bootstrap");
    step.done(format!(
        "{record}, {} ({})",
        arch.lambda_name(),
        human_bytes(bootstrap.bytes.len() as u64)
    ));
    Ok((bootstrap, record))
}

/// How the image is made.
pub enum Builder {
    /// The Docker engine builds (from this context), runs and pushes it.
    Docker(Engine, BuildContext),
    /// Written here, layer by layer, and pushed with the registry API.
    Oci(OciImage),
}

impl Builder {
    fn kind(&self) -> BuilderKind {
        match self {
            Builder::Docker(..) => BuilderKind::Docker,
            Builder::Oci(_) => BuilderKind::Oci,
        }
    }
}

/// Step 3: the Docker engine when asked for or when one answers, else no daemon at all.
async fn builder_step(
    plan: &DeployPlan,
    bootstrap: &Bootstrap,
    model: &ModelFiles,
    progress: &Progress,
) -> Result<Builder> {
    let step = progress.step("builder");
    let engine = match plan.builder {
        BuilderChoice::Oci => None,
        BuilderChoice::Docker | BuilderChoice::Auto => match Engine::connect().await {
            Ok(engine) => Some(engine),
            Err(e) if plan.builder == BuilderChoice::Docker => {
                step.fail("Docker engine unreachable");
                return Err(e);
            }
            Err(_) => None,
        },
    };
    if let Some(engine) = engine {
        step.done(format!(
            "Docker engine {} (API {})",
            engine.version.version, engine.version.api_version
        ));
        let (bootstrap, model) = (bootstrap.clone(), model.clone());
        let (base, arch) = (plan.base_image.name().to_string(), plan.function.arch);
        let context =
            off_the_workers(move || BuildContext::new(&bootstrap, &model, &base, arch)).await?;
        return Ok(Builder::Docker(engine, context));
    }
    if plan.base_image.has_libc() {
        step.fail("no Docker engine");
        bail!(
            "--base-image {} needs the Docker engine (the daemonless builder writes FROM scratch images): \
             start Docker or drop --base-image",
            plan.base_image.name()
        );
    }
    let (bootstrap, model, arch) = (bootstrap.clone(), model.clone(), plan.function.arch);
    let image = off_the_workers(move || oci::build(&bootstrap, &model, arch)).await?;
    step.done(format!(
        "daemonless OCI ({}{})",
        image.digest(),
        if plan.builder == BuilderChoice::Auto {
            "; no Docker engine answered"
        } else {
            ""
        }
    ));
    Ok(Builder::Oci(image))
}

/// Step 4: whose account this goes to.
async fn account_step(aws: &Aws, progress: &Progress) -> Result<Identity> {
    let step = progress.step("AWS account");
    let identity = aws.caller_identity().await?;
    step.done(format!("{} in {}", identity.account, aws.region()));
    Ok(identity)
}

/// Whether this deploy may take what it finds under its names: a stack this tool did not make
/// (no `ummatics-sentiment:tool` tag) is refused unless `--adopt`; the repository may be
/// claimed with `--adopt`, or when it is untagged beside a stack of ours (an earlier version
/// made both, before repositories were tagged).
fn ownership(plan: &DeployPlan, live: Option<&StackState>) -> Result<ecr::Claim> {
    let ours = live.map(StackState::is_ours);
    if ours == Some(false) && !plan.adopt {
        let name = live.map(|s| s.name.as_str()).unwrap_or_default();
        bail!(
            "stack {name} exists and this tool did not make it (no {TAG_TOOL} tag): deploy would \
             replace its template and resources. Pass --adopt if it is this stage's to manage, or \
             deploy another --stage"
        );
    }
    Ok(match (plan.adopt, ours) {
        (true, _) => ecr::Claim::Adopt,
        (false, Some(true)) => ecr::Claim::EarlierVersion,
        _ => ecr::Claim::None,
    })
}

/// A `--stage` the configuration file does not define, and that is not deployed here, is
/// refused unless `--new-stage`: with `[stages.dev]` in the file, `--stage prdo` would plan a
/// new stack, repository and function (and with `--yes`, make them).
async fn stage_step(plan: &DeployPlan, aws: &Aws, stage: Option<&str>) -> Result<()> {
    let (Some(config), Some(stage)) = (&plan.config, stage) else {
        return Ok(());
    };
    if config.other_stages.is_empty() || plan.new_stage {
        return Ok(());
    }
    if describe_stack(aws, &aws.names.stack).await?.is_some() {
        return Ok(());
    }
    bail!(
        "stage {stage:?} is not in {} (it defines [stages.{}]) and is not deployed in {}: a \
         mistyped --stage would create a new stack, repository and function. Use one of those \
         stages, or pass --new-stage to create {stage:?} on purpose",
        config.path.display(),
        config.other_stages.join("], [stages."),
        aws.region()
    );
}

/// Before anything is pushed: the account's Lambda quotas in the region (GetAccountSettings)
/// allow the reserved concurrency, so the stack cannot roll back on it after the push. A
/// quota that cannot be read is a warning (the permission may be missing), not a refusal.
async fn quota_step(plan: &DeployPlan, aws: &Aws, progress: &Progress) -> Result<()> {
    let step = progress.step("Lambda quotas");
    let account = match account_concurrency(aws).await {
        Ok(account) => account,
        Err(e) => {
            step.fail("cannot read them");
            progress.line(format!(
                "warning: {e:#}; the stack fails later if the account's concurrency cannot take \
                 this deploy's reservation"
            ));
            return Ok(());
        }
    };
    if let Some(wanted) = plan.function.reserved_concurrency {
        let current = reserved_concurrency(aws, &aws.names.function).await?;
        let public_default = plan.function.url_auth == UrlAuth::None
            && plan.settings.reserved_concurrency.value.is_none();
        if let Err(why) = account.check_reservation(&aws.region(), wanted, current, public_default)
        {
            step.fail("too low for this deploy");
            bail!(why);
        }
    }
    step.done(format!(
        "{} concurrent executions, {} unreserved",
        account.total, account.unreserved
    ));
    // New accounts may also have a lower memory quota; no API reads it.
    if plan.function.memory_mb > 3008 && account.total < 1000 {
        progress.line(format!(
            "warning: this account's concurrency quota ({}) is below Lambda's default (1000), as \
             on new accounts, whose memory may also be limited to 3008 MB; if the stack fails on \
             MemorySize, deploy with --memory 3008 or less, or request an increase",
            account.total
        ));
    }
    Ok(())
}

/// Before a stack is created: a function of the same name that no stack of ours made (the
/// old SAM deployment uses the default name) would fail the create on the name, after the
/// push. It is named and left alone, with the ways out.
async fn function_step(aws: &Aws, live: Option<&StackState>) -> Result<()> {
    if live.is_some_and(|stack| !stack.is_failed_create()) {
        return Ok(());
    }
    let name = &aws.names.function;
    if function_exists(aws, name).await? {
        bail!(
            "function {name} exists in {} and no stack of this stage made it (an earlier \
             deployment, such as the old SAM stack, uses the name): deploy leaves it alone. \
             Deploy another --stage (its names get the stage as a suffix), or delete the old \
             function if it can go (aws lambda delete-function --function-name {name})",
            aws.region()
        );
    }
    Ok(())
}

/// Before a stack is created: the stack makes the function's log group itself, and
/// CloudFormation fails the create if one exists. One left by this stack (it carries the
/// stack's tag: an interrupted destroy) is deleted; anyone else's is refused before anything
/// is pushed.
async fn log_group_step(
    plan: &DeployPlan,
    aws: &Aws,
    live: Option<&StackState>,
    progress: &Progress,
) -> Result<()> {
    if live.is_some_and(|stack| !stack.is_failed_create()) {
        return Ok(());
    }
    let group = log_group(&aws.names.function);
    let Some(tags) = log_group_tags(aws, &group).await? else {
        return Ok(());
    };
    if tags.get(ecr::TAG_STACK) != Some(&aws.names.stack) {
        bail!(
            "log group {group} exists and is not this tool's (no {} tag naming {}): the stack \
             creates the function's log group and CloudFormation refuses to while one exists. \
             Delete it if its logs can go (aws logs delete-log-group --log-group-name {group}), \
             or deploy another --stage",
            ecr::TAG_STACK,
            aws.names.stack
        );
    }
    let step = progress.step(format!("log group {group}"));
    if plan.mode == Mode::DryRun {
        step.done("left by an earlier stack of this stage: would be deleted");
    } else {
        delete_log_group(aws, &group).await?;
        step.done("left by an earlier stack of this stage: deleted");
    }
    Ok(())
}

/// Step 5: the ECR repository, taken only when it is this stack's or `claim` allows. A
/// missing one is made only when the image is ready to go (built, smoke-tested, the registry
/// answering): a failed build or an unreachable registry leaves nothing in ECR.
async fn repository_step<'a>(
    plan: &DeployPlan,
    aws: &'a Aws,
    claim: ecr::Claim,
    progress: &Progress,
) -> Result<PushTarget<'a>> {
    let step = progress.step(format!("ECR repository {}", aws.names.repository));
    let existing = ecr::repository(aws, &aws.names.repository).await?;
    let Some(found) = &existing else {
        step.done(if plan.mode == Mode::DryRun {
            "would be created"
        } else {
            "to be created once the image is ready"
        });
        return Ok(PushTarget {
            aws,
            claim,
            repository: None,
        });
    };
    if plan.mode == Mode::DryRun {
        let owner = ecr::owner(aws, found, &aws.names.stack).await?;
        let claimed = ecr::may_take(owner, claim, &found.name, &aws.names.stack)?;
        step.done(if claimed {
            "exists; would be tagged as this stack's"
        } else {
            "exists"
        });
        return Ok(PushTarget {
            aws,
            claim,
            repository: existing,
        });
    }
    let (r, origin) =
        ecr::ensure_repository(aws, &aws.names.repository, &aws.names.stack, claim).await?;
    step.done(match origin {
        ecr::Origin::Created => {
            "created (scan on push, keeps the kept releases' images and 10 more)"
        }
        ecr::Origin::Existed => "exists",
        ecr::Origin::Claimed => "exists; now tagged as this stack's",
    });
    Ok(PushTarget {
        aws,
        claim,
        repository: Some(r),
    })
}

/// The ECR repository an image goes to: there already, or made by [`PushTarget::ready`] just
/// before the first upload.
struct PushTarget<'a> {
    aws: &'a Aws,
    claim: ecr::Claim,
    repository: Option<Repository>,
}

impl PushTarget<'_> {
    /// The repository, made now if it is missing.
    async fn ready(&mut self, progress: &Progress) -> Result<()> {
        if self.repository.is_some() {
            return Ok(());
        }
        let names = &self.aws.names;
        let (r, _) =
            ecr::ensure_repository(self.aws, &names.repository, &names.stack, self.claim).await?;
        progress.line(format!(
            "ECR repository {} created (scan on push, keeps the kept releases' images and 10 more)",
            r.name
        ));
        self.repository = Some(r);
        Ok(())
    }
}

/// The image in the registry.
struct Image {
    tag: String,
    /// The manifest digest (`None` in a dry run that would push).
    digest: Option<String>,
    pushed: bool,
    blobs: Vec<oci::BlobReport>,
    smoke_test: SmokeTest,
}

/// Step 6: the image — nothing to do when the registry already has it; else smoke-tested,
/// then pushed.
async fn image_step(
    plan: &DeployPlan,
    aws: &Aws,
    builder: &Builder,
    target: &mut PushTarget<'_>,
    bootstrap: &Bootstrap,
    model: &ModelFiles,
    progress: &Progress,
) -> Result<Image> {
    let step = progress.step("image");
    let registry = ecr::registry(aws, plan.registry.as_deref(), plan.insecure_registry).await?;
    let repository = &aws.names.repository;
    // The reference that proves "already pushed": the OCI manifest's own digest (known before
    // any push), or the Docker path's context tag.
    let (tag, lookup) = match builder {
        Builder::Oci(image) => (image.tag(), image.digest().to_string()),
        Builder::Docker(_, context) => (context.tag(), context.tag()),
    };
    let existing = match target.repository.is_some() {
        true => registry.manifest_digest(repository, &lookup).await?,
        false => None,
    };
    let mut image = Image {
        tag,
        digest: existing,
        pushed: false,
        blobs: Vec::new(),
        smoke_test: SmokeTest::Skipped,
    };
    if let Some(digest) = &image.digest {
        step.done(format!(
            "{} already in {} ({digest})",
            image.tag,
            registry.host()
        ));
        return Ok(image);
    }
    // The push target must answer, and take the login, before anything is made for it: a
    // dry run says so (it cannot "succeed" against a registry that is not there).
    registry
        .check()
        .await
        .with_context(|| format!("the push target {} does not answer", registry.host()))?;
    if plan.mode == Mode::DryRun {
        let what = match builder {
            Builder::Docker(_, context) => context_summary(context),
            Builder::Oci(oci) => format!("{} blobs", oci.blobs().len()),
        };
        step.done(format!(
            "{} would be built and pushed ({what}) to {}, which answers and takes the login",
            image.tag,
            registry.host()
        ));
        return Ok(image);
    }
    match builder {
        Builder::Docker(engine, context) => {
            docker_push(
                plan, engine, context, &registry, target, &mut image, &step, progress,
            )
            .await?
        }
        Builder::Oci(oci) => {
            if plan.smoke_test {
                image.smoke_test =
                    smoke_test_artifact(plan, bootstrap, model, &step, progress).await?;
            }
            target.ready(progress).await?;
            image.blobs = oci::push(oci, &registry, repository, &step, progress).await?;
            image.digest = Some(oci.digest().to_string());
        }
    }
    image.pushed = true;
    step.done(format!(
        "{} pushed, {}",
        image.tag,
        image.digest.as_deref().unwrap_or_default()
    ));
    Ok(image)
}

/// The Docker path: build in the engine, run the self-test in the image, push, tidy up.
#[allow(clippy::too_many_arguments)]
async fn docker_push(
    plan: &DeployPlan,
    engine: &Engine,
    context: &BuildContext,
    registry: &Registry,
    target: &mut PushTarget<'_>,
    image: &mut Image,
    step: &crate::output::Step,
    progress: &Progress,
) -> Result<()> {
    let repository = &target.aws.names.repository;
    let local = format!("{}:{}", registry.image(repository), image.tag);
    step.set(format!("building {local} ({})", context_summary(context)));
    engine
        .build(context, &local, plan.base_image.name(), plan.function.arch)
        .await?;
    if plan.smoke_test && plan.function.arch == Arch::host() {
        step.set("smoke test: bootstrap --self-test inside the image");
        let (code, output) = engine.run(&local, &["--self-test"]).await?;
        if code != 0 {
            engine.remove_image(&local).await;
            bail!(
                "the image's self-test failed (exit {code}), nothing was pushed:\n{}",
                output.trim_end()
            );
        }
        image.smoke_test = SmokeTest::Passed;
    }
    target.ready(progress).await?;
    step.set(format!("pushing to {}", registry.host()));
    let push = engine
        .push(
            &registry.image(repository),
            &image.tag,
            registry.username(),
            registry.password(),
            progress,
        )
        .await?;
    // What the engine pushed may be an index (newer Docker: the image beside an
    // attestation); the stack gets the single-architecture manifest inside it.
    let digest = registry
        .image_manifest_for(repository, &image.tag, plan.function.arch)
        .await
        .context("reading back the image just pushed")?;
    if push.digest.as_deref().is_some_and(|d| d != digest) {
        progress.line(format!(
            "the engine pushed an index ({}); the function runs its {} image {digest}",
            push.digest.as_deref().unwrap_or_default(),
            plan.function.arch.oci_name()
        ));
    }
    engine.remove_image(&local).await;
    progress.line(format!("{} pushed ({push})", image.tag));
    image.digest = Some(digest);
    Ok(())
}

/// The daemonless path's smoke test: the artifact run natively or under an emulator.
async fn smoke_test_artifact(
    plan: &DeployPlan,
    bootstrap: &Bootstrap,
    model: &ModelFiles,
    step: &crate::output::Step,
    progress: &Progress,
) -> Result<SmokeTest> {
    let Some(runner) = Runner::for_arch(plan.function.arch) else {
        progress.line(format!(
            "smoke test skipped: this machine cannot run {} binaries (install qemu-user-static)",
            plan.function.arch.lambda_name()
        ));
        return Ok(SmokeTest::Skipped);
    };
    step.set("smoke test: bootstrap --self-test on the artifact");
    bootstrap::self_test(bootstrap, model, &runner).await?;
    Ok(match runner {
        Runner::Native => SmokeTest::Passed,
        Runner::Emulated(_) => SmokeTest::PassedEmulated,
    })
}

/// Step 7: the stack — made ready (a failed first create is deleted), planned as a change
/// set, shown, confirmed and applied.
async fn stack_step(
    plan: &DeployPlan,
    deployer: &StackDeployer<'_>,
    live: Option<StackState>,
    params: &StackParams,
    template: &str,
    tracker: &Tracker,
    progress: &Progress,
) -> Result<Planned> {
    let (existing, preview_only) = ready_stack(plan, deployer, live, progress).await?;
    let step = progress.step(format!("change set for {}", deployer.name()));
    let stack_plan = if preview_only {
        deployer.preview_create(params)
    } else {
        let name = StackDeployer::new_change_set_name();
        tracker.set(Phase::ChangeSet {
            name: name.clone(),
            creates_stack: existing.as_ref().is_none_or(|s| s.is_review()),
        });
        deployer
            .plan(params, existing.as_ref(), template, &name)
            .await?
    };
    step.done(match stack_plan.kind {
        PlanKind::Create => "create",
        PlanKind::Update => "update",
        PlanKind::None => "no changes",
    });
    print_plan(&stack_plan, progress);

    let ask = match plan.mode {
        Mode::DryRun => {
            deployer.discard(&stack_plan).await?;
            return Ok(Planned::Done(stack_plan, Outcome::DryRun));
        }
        Mode::Apply { ask } => ask,
    };
    if stack_plan.kind == PlanKind::None {
        return Ok(Planned::Done(stack_plan, Outcome::Unchanged));
    }
    if ask {
        // Declined, or no terminal to ask on: the change set goes, nothing is half-made.
        let answer = confirm_async(
            "apply these changes?",
            "pass --yes to apply without a prompt",
        )
        .await;
        if !matches!(answer, Ok(true)) {
            deployer.discard(&stack_plan).await?;
            answer?;
            bail!("cancelled: nothing was changed in the stack");
        }
    }
    Ok(Planned::Confirmed(stack_plan))
}

/// Where the stack step leaves a deploy: done (a dry run, nothing to change), or a change set
/// confirmed and ready to execute.
enum Planned {
    Done(Plan, Outcome),
    Confirmed(Plan),
}

/// Step 7b: the confirmed change set executed.
async fn apply_step(
    deployer: &StackDeployer<'_>,
    stack_plan: Plan,
    tracker: &Tracker,
) -> Result<(Plan, Outcome)> {
    deployer.apply(&stack_plan, tracker).await?;
    let outcome = match stack_plan.kind {
        PlanKind::Create => Outcome::Created,
        _ => Outcome::Updated,
    };
    Ok((stack_plan, outcome))
}

/// The stack as it stands, ready for a change set: refused while CloudFormation works on it or
/// after a failed rollback; a failed first create is deleted (a dry run only says it would be,
/// and previews a create: the dead stack cannot take a change set — the `bool`).
async fn ready_stack(
    plan: &DeployPlan,
    deployer: &StackDeployer<'_>,
    live: Option<StackState>,
    progress: &Progress,
) -> Result<(Option<StackState>, bool)> {
    let Some(stack) = live else {
        return Ok((None, false));
    };
    if stack.is_busy() {
        bail!(
            "stack {} is {}: CloudFormation is still working on it; wait for it to finish and deploy again",
            stack.name,
            stack.status
        );
    }
    if stack.status == StackStatus::UpdateRollbackFailed {
        bail!(
            "stack {} is UPDATE_ROLLBACK_FAILED: run `aws cloudformation continue-update-rollback --stack-name {}`, then deploy again",
            stack.name,
            stack.name
        );
    }
    if !stack.is_failed_create() {
        return Ok((Some(stack), false));
    }
    if plan.mode == Mode::DryRun {
        progress.line(format!(
            "stack {} is {} (its first create failed): deploy would delete it and create it again",
            stack.name, stack.status
        ));
        return Ok((None, true));
    }
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
    Ok((None, false))
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
