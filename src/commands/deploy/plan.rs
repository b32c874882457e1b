//! What `deploy` was asked to do, checked: flags, the configuration file and defaults turned
//! into domain values in one place ([`DeployPlan::from_args`]).

use super::*;

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

/// The accuracy gate: a labelled file and the accuracy it requires.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    pub data: PathBuf,
    pub min_accuracy: f64,
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
    pub(super) fn choose(
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
