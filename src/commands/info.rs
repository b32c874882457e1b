//! `info`: the deployed stack, function, URL, repository and images.

use std::fmt;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;
use ummatics_sentiment_function::build_info::BuildId;

use crate::aws::lambda::{function_info, FunctionInfo};
use crate::aws::Aws;
use crate::budget::{self, BudgetState};
use crate::cli::{GlobalArgs, InfoArgs};
use crate::config::{Config, SettingFlags, SettingsTable, Source, StageSettings};
use crate::image::ecr::{self, ImageInfo, Repository};
use crate::lambda::UrlAuth;
use crate::output::{emit, human_bytes, Progress};
use crate::release::{FunctionRecord, ModelRecord, ReleaseLog};
use crate::stack::{
    budget_from_tags, dashboard, describe_stack, Dashboard, StackDeployer, StackState, TAG_REGISTRY,
};

#[derive(Debug, Clone, Serialize)]
pub struct InfoReport {
    pub region: String,
    pub stack_name: String,
    pub stack: Option<StackState>,
    /// The stack's CloudWatch dashboard and its console link.
    pub dashboard: Option<Dashboard>,
    pub function: Option<FunctionInfo>,
    pub repository: Option<Repository>,
    pub images: Vec<ImageInfo>,
    /// When deploy pushed to another registry (`--registry`): its images there.
    pub registry: Option<RegistryImages>,
    /// The configuration file's settings for this stage, and where the function differs.
    pub config: Option<ConfiguredStage>,
    /// The stage's AWS Budgets budget (`deploy --budget`), with this month's spend.
    pub budget: Option<StageBudget>,
    /// Why the budget could not be read (e.g. no budgets:ViewBudget permission).
    pub budget_error: Option<String>,
    /// The live release's function build beside this CLI's.
    pub versions: Option<Versions>,
    /// Why the release log (and so the deployed function's build) could not be read.
    pub versions_error: Option<String>,
}

/// Which function build runs, and which this CLI is (and carries).
#[derive(Debug, Clone, Serialize)]
pub struct Versions {
    /// The live release's number, when the stack records releases.
    pub release: Option<u32>,
    /// The live release's function (none for a release made before it was recorded).
    pub function: Option<FunctionRecord>,
    /// The live release's model.
    pub model: Option<ModelRecord>,
    /// Releases the stack records.
    pub releases: usize,
    /// This CLI's version and commit.
    pub cli: BuildId,
    /// The deployed function is another version or commit than this CLI (or unknown).
    pub differ: bool,
}

impl Versions {
    fn new(log: &ReleaseLog) -> Versions {
        let live = log.live();
        let function = live.and_then(|r| r.function.clone());
        let cli = BuildId::current();
        let differ = match &function {
            Some(f) => {
                f.version.as_deref() != Some(cli.version.as_str())
                    || f.commit.as_deref() != Some(cli.commit.as_str())
            }
            None => true,
        };
        Versions {
            release: live.map(|r| r.number),
            model: live.map(|r| r.model.clone()),
            releases: log.releases.len(),
            function,
            cli,
            differ,
        }
    }
}

impl fmt::Display for Versions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(n), Some(model)) = (self.release, &self.model) {
            write!(
                f,
                "  release   {n} live ({} recorded): model {} (sha256:{}",
                self.releases,
                model.name,
                model.sha256.get(..12).unwrap_or(&model.sha256)
            )?;
            if let Some(accuracy) = model.accuracy {
                write!(f, ", {:.2} % on its gate file", accuracy * 100.0)?;
            }
            writeln!(f, "); `releases` lists them")?;
        }
        match &self.function {
            Some(function) => write!(f, "  bootstrap {function}")?,
            None => write!(f, "  bootstrap not recorded (deployed by an older version)")?,
        }
        if let Some(n) = self.release {
            write!(f, " (release {n})")?;
        }
        writeln!(f)?;
        if self.differ {
            writeln!(
                f,
                "  cli       {}: differs from the deployed function; `deploy` ships this CLI's",
                self.cli
            )
        } else {
            writeln!(f, "  cli       {} (the same build)", self.cli)
        }
    }
}

/// The budget as Budgets describes it, and the address deploy recorded for its alerts.
#[derive(Debug, Clone, Serialize)]
pub struct StageBudget {
    #[serde(flatten)]
    pub state: BudgetState,
    pub email: Option<String>,
    /// (FORECASTED or ACTUAL, percent of the limit) for each alert.
    pub alerts: Vec<(String, f64)>,
}

impl fmt::Display for StageBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.state.name, self.state)?;
        let alerts: Vec<String> = self
            .alerts
            .iter()
            .map(|(kind, percent)| format!("{percent} % {}", kind.to_lowercase()))
            .collect();
        if !alerts.is_empty() {
            write!(f, "; e-mail at {}", alerts.join(" and "))?;
        }
        if let Some(email) = &self.email {
            write!(f, " to {email}")?;
        }
        Ok(())
    }
}

/// What `ummatics-sentiment.toml` says for this stage (file over defaults), beside what runs.
#[derive(Debug, Clone, Serialize)]
pub struct ConfiguredStage {
    pub path: String,
    pub stage: Option<String>,
    pub settings: StageSettings,
    /// Settings the file gives that the deployed function does not have (deploy applies them).
    pub differences: Vec<Difference>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    pub setting: &'static str,
    pub configured: String,
    pub deployed: String,
    pub source: Source,
}

impl ConfiguredStage {
    fn new(config: &Config, settings: StageSettings, function: Option<&FunctionInfo>) -> Self {
        let mut differences = Vec::new();
        if let Some(fun) = function {
            let deployed_auth = fun.url_auth.map(|a| a == UrlAuth::None);
            let mut check = |setting, configured: String, deployed: String, source: &Source| {
                // Only what the file says: a default is not a request to change anything.
                if configured != deployed && *source != Source::Default {
                    differences.push(Difference {
                        setting,
                        configured,
                        deployed,
                        source: source.clone(),
                    });
                }
            };
            check(
                "memory",
                settings.memory_mb.value.to_string(),
                fun.memory_mb.to_string(),
                &settings.memory_mb.source,
            );
            check(
                "timeout",
                settings.timeout_s.value.to_string(),
                fun.timeout_s.to_string(),
                &settings.timeout_s.source,
            );
            check(
                "arch",
                settings.arch.value.lambda_name().to_string(),
                fun.architecture.clone(),
                &settings.arch.source,
            );
            if let Some(public) = deployed_auth {
                check(
                    "public-url",
                    settings.public_url.value.to_string(),
                    public.to_string(),
                    &settings.public_url.source,
                );
            }
            if let Some(cap) = settings.reserved_concurrency.value {
                check(
                    "reserved-concurrency",
                    cap.to_string(),
                    fun.reserved_concurrency
                        .map_or("none".into(), |n| n.to_string()),
                    &settings.reserved_concurrency.source,
                );
            }
        }
        ConfiguredStage {
            path: config.path().display().to_string(),
            stage: config.stage().map(str::to_string),
            settings,
            differences,
        }
    }
}

/// The images in the registry deploy was given with `--registry` (recorded as a stack tag).
#[derive(Debug, Clone, Serialize)]
pub struct RegistryImages {
    pub registry: String,
    pub repository: String,
    /// Tag → manifest digest, newest tags last as the registry lists them.
    pub images: Vec<TaggedImage>,
    /// Why the registry could not be read, if it could not.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaggedImage {
    pub tag: String,
    pub digest: Option<String>,
}

/// Images the human report lists per registry or repository; `--output json` lists all.
const SHOWN_IMAGES: usize = 10;

/// The line that says how many images the human report left out, when it left any.
fn more_images(f: &mut fmt::Formatter<'_>, total: usize) -> fmt::Result {
    if total <= SHOWN_IMAGES {
        return Ok(());
    }
    writeln!(
        f,
        "  … {} more (--output json lists them all)",
        total - SHOWN_IMAGES
    )
}

impl fmt::Display for InfoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.stack {
            Some(s) => writeln!(
                f,
                "stack       {} {} (updated {})",
                s.name,
                s.status,
                s.last_updated
                    .as_deref()
                    .or(s.created.as_deref())
                    .unwrap_or("-")
            )?,
            None => writeln!(
                f,
                "stack       {} not deployed in {}",
                self.stack_name, self.region
            )?,
        }
        match &self.function {
            Some(fun) => {
                writeln!(f, "function    {}", fun.name)?;
                writeln!(f, "  arn       {}", fun.arn)?;
                writeln!(
                    f,
                    "  config    {} MB, {} s, {}",
                    fun.memory_mb, fun.timeout_s, fun.architecture
                )?;
                writeln!(f, "  image     {}", fun.image_uri.as_deref().unwrap_or("-"))?;
                writeln!(
                    f,
                    "  modified  {}",
                    fun.last_modified.as_deref().unwrap_or("-")
                )?;
                match (&self.versions, &self.versions_error) {
                    (Some(v), _) => write!(f, "{v}")?,
                    (None, Some(e)) => writeln!(f, "  bootstrap cannot read the release log: {e}")?,
                    (None, None) => {}
                }
                match (&fun.url, fun.url_auth) {
                    (Some(url), Some(auth)) => {
                        writeln!(f, "  url       {url} (auth {})", auth.as_str())?
                    }
                    _ => writeln!(f, "  url       none")?,
                }
                match fun.public_access {
                    Some(access) if !access.complete() => writeln!(
                        f,
                        "  warning   the public URL's policy lacks {}: AWS answers 403 \
                         (since October 2025 a public URL needs lambda:InvokeFunctionUrl and \
                         lambda:InvokeFunction); deploy again to add it",
                        if access.invoke_function_url {
                            "lambda:InvokeFunction"
                        } else {
                            "lambda:InvokeFunctionUrl"
                        }
                    )?,
                    _ => {}
                }
                match (fun.reserved_concurrency, fun.url_auth) {
                    (Some(cap), _) => {
                        writeln!(f, "  cap       {cap} at once (reserved concurrency)")?
                    }
                    (None, Some(UrlAuth::None)) => writeln!(
                        f,
                        "  cap       none: anyone can use the account's whole concurrency; \
                         deploy --reserved-concurrency N"
                    )?,
                    (None, _) => {
                        writeln!(f, "  cap       none (the account's unreserved concurrency)")?
                    }
                }
            }
            None => writeln!(f, "function    none")?,
        }
        if let Some(d) = &self.dashboard {
            writeln!(f, "dashboard   {}", d.url)?;
        }
        match (&self.budget, &self.budget_error) {
            (Some(b), _) => writeln!(f, "budget      {b}")?,
            (None, Some(e)) => writeln!(f, "budget      cannot read it: {e}")?,
            (None, None) => writeln!(f, "budget      none (deploy --budget USD sets one)")?,
        }
        if let Some(c) = &self.config {
            match &c.stage {
                Some(stage) => writeln!(f, "config      {} [stages.{stage}]", c.path)?,
                None => writeln!(f, "config      {}", c.path)?,
            }
            write!(f, "{}", SettingsTable(&c.settings))?;
            for d in &c.differences {
                writeln!(
                    f,
                    "  differs   {} is {} in the file ({}) but {} deployed: deploy to apply it",
                    d.setting, d.configured, d.source, d.deployed
                )?;
            }
        }
        if let Some(r) = &self.registry {
            writeln!(
                f,
                "images      {}/{} (deploy's --registry; {})",
                r.registry,
                r.repository,
                match &r.error {
                    Some(e) => format!("cannot list them: {e}"),
                    None => format!("{} tagged", r.images.len()),
                }
            )?;
            // In the tags' lexical order (a registry keeps no push dates for tags).
            for image in r.images.iter().take(SHOWN_IMAGES) {
                writeln!(
                    f,
                    "  {}  {}",
                    image.digest.as_deref().unwrap_or("-"),
                    image.tag
                )?;
            }
            more_images(f, r.images.len())?;
        }
        match &self.repository {
            Some(r) if self.registry.is_some() && self.images.is_empty() => writeln!(
                f,
                "repository  {} (ECR: the credential for the registry above; no images here)",
                r.uri
            )?,
            Some(r) => {
                writeln!(f, "repository  {} ({} images)", r.uri, self.images.len())?;
                for image in self.images.iter().take(SHOWN_IMAGES) {
                    writeln!(
                        f,
                        "  {}  {}  {}  {}",
                        &image.digest,
                        image.tags.join(","),
                        image.pushed_at.as_deref().unwrap_or("-"),
                        image.bytes.map(human_bytes).unwrap_or_default()
                    )?;
                }
                more_images(f, self.images.len())?;
            }
            None => writeln!(f, "repository  none")?,
        }
        Ok(())
    }
}

pub async fn run(args: InfoArgs, global: &GlobalArgs) -> Result<ExitCode> {
    // The file is checked before any AWS call: a bad line is reported as such.
    let config = Config::find(args.config.config.as_deref(), global.aws.stage.as_deref())?;
    let settings = match &config {
        Some(c) => Some(StageSettings::resolve(&SettingFlags::default(), Some(c))?),
        None => None,
    };
    let aws = Aws::load(&global.aws).await;
    let stack = describe_stack(&aws, &aws.names.stack).await?;
    let dashboard = match &stack {
        Some(_) => dashboard(&aws, &aws.names.stack).await?,
        None => None,
    };
    let function = function_info(&aws, &aws.names.function).await?;
    // The live release's function, from the stack's release log; info shows the rest when the
    // log cannot be read (e.g. no cloudformation:GetTemplate permission).
    let versions = match &stack {
        Some(_) => {
            let progress = Progress::new();
            let deployer = StackDeployer::new(&aws, &progress);
            let log = async { ReleaseLog::from_template(&deployer.deployed_template().await?) };
            Some(log.await.map(|log| Versions::new(&log)))
        }
        None => None,
    };
    let (versions, versions_error) = match versions {
        Some(Ok(v)) => (Some(v), None),
        Some(Err(e)) => (None, Some(format!("{e:#}"))),
        None => (None, None),
    };
    let repository = ecr::repository(&aws, &aws.names.repository).await?;
    let images = match &repository {
        Some(_) => ecr::images(&aws, &aws.names.repository)
            .await?
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let registry = match stack.as_ref().and_then(|s| s.tags.get(TAG_REGISTRY)) {
        Some(host) => Some(registry_images(&aws, host).await),
        None => None,
    };
    // Budgets is its own permission (budgets:ViewBudget): without it, info says so and
    // shows the rest.
    let name = budget::name_for(&aws.names.stack, &aws.region());
    let read_budget = async {
        let account = aws.caller_identity().await?.account;
        anyhow::Ok(
            match crate::aws::budgets::describe(&aws, &account, &name).await? {
                Some(state) => Some(StageBudget {
                    state,
                    email: stack
                        .as_ref()
                        .and_then(|s| budget_from_tags(&s.tags))
                        .map(|spec| spec.email),
                    alerts: crate::aws::budgets::alerts(&aws, &account, &name).await?,
                }),
                None => None,
            },
        )
    };
    let (budget, budget_error) = match read_budget.await {
        Ok(budget) => (budget, None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    emit(
        global.output,
        &InfoReport {
            region: aws.region(),
            stack_name: aws.names.stack.clone(),
            dashboard,
            stack,
            repository,
            images,
            config: config
                .as_ref()
                .zip(settings)
                .map(|(c, s)| ConfiguredStage::new(c, s, function.as_ref())),
            function,
            registry,
            budget,
            budget_error,
            versions,
            versions_error,
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The tags (and their digests) of this stage's repository in `host`, with the ECR login as
/// the credential, as deploy pushed them.
async fn registry_images(aws: &Aws, host: &str) -> RegistryImages {
    let repository = aws.names.repository.clone();
    let listed = async {
        let registry = ecr::registry(aws, Some(host), false).await?;
        let tagged = registry.tagged(&repository).await?;
        anyhow::Ok(
            tagged
                .into_iter()
                .map(|(tag, digest)| TaggedImage { tag, digest })
                .collect(),
        )
    };
    let (images, error) = match listed.await {
        Ok(images) => (images, None),
        Err(e) => (Vec::new(), Some(format!("{e:#}"))),
    };
    RegistryImages {
        registry: host.to_string(),
        repository,
        images,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::{FunctionSource, ModelRecord, Release};
    use crate::stack::StackParams;

    fn log_with(function: Option<FunctionRecord>) -> ReleaseLog {
        ReleaseLog::default().with(Release {
            number: 3,
            deployed_at: "2026-12-07T12:00:00Z".into(),
            deployed_by: "arn:aws:iam::123456789012:user/ops".into(),
            model: ModelRecord {
                name: "sst2-minilm (embedded)".into(),
                sha256: "ab".repeat(32),
                accuracy: None,
                accuracy_data_sha256: None,
            },
            function,
            params: StackParams::example("r@sha256:00"),
        })
    }

    fn record(version: &str, commit: &str) -> FunctionRecord {
        FunctionRecord {
            source: FunctionSource::Carried,
            version: Some(version.into()),
            commit: Some(commit.into()),
            sha256: "cd".repeat(32),
        }
    }

    #[test]
    fn info_says_when_the_deployed_function_is_another_build_than_the_cli() {
        let cli = BuildId::current();
        let same = Versions::new(&log_with(Some(record(&cli.version, &cli.commit))));
        assert!(!same.differ);
        assert!(same.to_string().contains("(the same build)"), "{same}");
        assert!(same.to_string().contains("(release 3)"), "{same}");
        // Which release and model are live.
        assert!(
            same.to_string().contains(
                "  release   3 live (1 recorded): model sst2-minilm (embedded) (sha256:abababababab)"
            ),
            "{same}"
        );

        let older = Versions::new(&log_with(Some(record("0.0.9", "1a2b3c4d5e6f"))));
        assert!(older.differ);
        let text = older.to_string();
        assert!(
            text.contains("  bootstrap 0.0.9 (commit 1a2b3c4d5e6f), carried, sha256:cdcdcdcdcdcd"),
            "{text}"
        );
        assert!(
            text.contains("differs from the deployed function; `deploy` ships this CLI's"),
            "{text}"
        );

        let unrecorded = Versions::new(&log_with(None));
        assert!(unrecorded.differ);
        assert!(
            unrecorded.to_string().contains("not recorded"),
            "{unrecorded}"
        );
    }
}
