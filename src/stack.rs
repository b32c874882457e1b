//! The CloudFormation stack: template parameters, change sets (what will change, then apply),
//! the stack-event stream until a terminal state, and deletion.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::aws::cloudformation::{self, ChangeSet, ChangeSetEntry, ChangeSetKind, StackEvent};
pub use crate::aws::cloudformation::{describe_stack, ResourceChange, StackState, StackStatus};
use crate::aws::{Aws, AwsError, ErrorKind, Found};
use crate::budget::BudgetSpec;
use crate::interrupt::{until_interrupted, Phase, Tracker};
use crate::lambda::{Arch, UrlAuth};
use crate::output::Progress;
use ummatics_sentiment_function::telemetry::Telemetry;

/// `templates/stack.yaml`, built into the binary.
pub const TEMPLATE: &str = include_str!("../templates/stack.yaml");

/// Where the template's `Metadata` section starts in what deploy sends: after [`TEMPLATE`].
const METADATA_SECTION: &str = "\nMetadata:\n";

/// [`TEMPLATE`] with one `Metadata` entry whose value is `json` (one line), as a YAML
/// single-quoted string. CloudFormation keeps a template's body as sent, so GetTemplate gives
/// it back for [`template_metadata`].
pub fn template_with_metadata(key: &str, json: &str) -> String {
    format!(
        "{}{METADATA_SECTION}  {key}: '{}'\n",
        TEMPLATE.trim_end_matches('\n'),
        json.replace('\'', "''")
    )
}

/// The value [`template_with_metadata`] wrote under `key`, if the body has it.
pub fn template_metadata(body: &str, key: &str) -> Option<String> {
    let (_, metadata) = body.rsplit_once(METADATA_SECTION)?;
    let prefix = format!("  {key}: '");
    metadata.lines().find_map(|line| {
        let quoted = line.strip_prefix(&prefix)?.strip_suffix('\'')?;
        Some(quoted.replace("''", "'"))
    })
}

/// A template body without what [`template_with_metadata`] added: what decides whether the
/// stack's resources would change.
fn template_resources(body: &str) -> &str {
    match body.rsplit_once(METADATA_SECTION) {
        Some((resources, _)) => resources,
        None => body.trim_end_matches('\n'),
    }
}

/// How often stack state is polled while CloudFormation works.
const POLL: Duration = Duration::from_secs(2);

/// Polls a stack executed out of REVIEW_IN_PROGRESS may take to start (a minute).
const START_POLLS: u32 = 30;

/// The stack tag that marks what this tool made (value: the tool's name).
pub const TAG_TOOL: &str = "ummatics-sentiment:tool";
/// The stack tag naming the registry the images were pushed to, when deploy was given
/// `--registry` (the function's image URI still names the ECR repository).
pub const TAG_REGISTRY: &str = "ummatics-sentiment:registry";

/// Stack tags recording the gate the live release passed (`deploy --gate`): the SHA-256 of the
/// labelled file, and the accuracy on it.
pub const TAG_GATE_DATA: &str = "ummatics-sentiment:gate-data-sha256";
pub const TAG_GATE_ACCURACY: &str = "ummatics-sentiment:gate-accuracy";

/// Stack tags recording the budget deploy set (`deploy --budget`): its monthly limit and the
/// address its alerts go to (Budgets cannot read subscribers back everywhere).
pub const TAG_BUDGET_USD: &str = "ummatics-sentiment:budget-usd";
pub const TAG_BUDGET_EMAIL: &str = "ummatics-sentiment:budget-email";

/// The budget recorded in a stack's tags.
pub fn budget_from_tags(tags: &BTreeMap<String, String>) -> Option<BudgetSpec> {
    Some(BudgetSpec::new(
        tags.get(TAG_BUDGET_USD)?.parse().ok()?,
        tags.get(TAG_BUDGET_EMAIL)?.clone(),
    ))
}

/// What a release scored on a gate file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateRecord {
    pub data_sha256: String,
    /// The accuracy, written with six decimals (a tag value is a string).
    pub accuracy: String,
}

impl GateRecord {
    /// The record in a stack's tags, if the live release passed a gate.
    pub fn from_tags(tags: &BTreeMap<String, String>) -> Option<GateRecord> {
        Some(GateRecord {
            data_sha256: tags.get(TAG_GATE_DATA)?.clone(),
            accuracy: tags.get(TAG_GATE_ACCURACY)?.clone(),
        })
    }
}

/// The drift alarms on the function's telemetry: thresholds as fractions of an hour's texts
/// (`None`: no alarm).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct DriftAlarms {
    /// More than this share answered negative.
    pub negative_share: Option<f64>,
    /// More than this share answered with a score under 0.6.
    pub low_confidence: Option<f64>,
}

impl DriftAlarms {
    /// A threshold as the template's parameter: the fraction, or empty for none.
    pub fn parameter(threshold: Option<f64>) -> String {
        threshold.map_or_else(String::new, |t| {
            let text = format!("{t:.4}");
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        })
    }
}

/// The template's parameters, as deploy sets them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackParams {
    pub function_name: String,
    pub image_uri: String,
    pub memory: u32,
    pub timeout: u32,
    pub architecture: Arch,
    pub threads: u32,
    pub url_auth_type: UrlAuth,
    /// Lambda's reserved concurrency (`None`: no cap, the template's -1).
    pub reserved_concurrency: Option<u32>,
    pub alarm_email: String,
    pub log_retention_days: u32,
    /// The `Model` dimension of the function's telemetry (absent from releases recorded
    /// before telemetry: then the defaults).
    #[serde(default)]
    pub model_name: String,
    #[serde(default)]
    pub telemetry: Telemetry,
    #[serde(default)]
    pub alarms: DriftAlarms,
    /// `--registry`: where the images went instead of the ECR endpoint (a stack tag).
    pub registry: Option<String>,
    /// `--gate`: what this release scored (stack tags).
    pub gate: Option<GateRecord>,
    /// `--budget`: the stage's budget (stack tags).
    pub budget: Option<BudgetSpec>,
}

impl StackParams {
    /// Parameter name → value, as CloudFormation stores them.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        [
            ("FunctionName", self.function_name.clone()),
            ("ImageUri", self.image_uri.clone()),
            ("MemorySize", self.memory.to_string()),
            ("Timeout", self.timeout.to_string()),
            ("Architecture", self.architecture.lambda_name().to_string()),
            ("Threads", self.threads.to_string()),
            ("UrlAuthType", self.url_auth_type.as_str().to_string()),
            (
                "ReservedConcurrency",
                self.reserved_concurrency
                    .map_or_else(|| "-1".to_string(), |n| n.to_string()),
            ),
            ("AlarmEmail", self.alarm_email.clone()),
            ("LogRetentionDays", self.log_retention_days.to_string()),
            ("ModelName", self.model_name.clone()),
            ("Telemetry", self.telemetry.as_str().to_string()),
            (
                "NegativeShareThreshold",
                DriftAlarms::parameter(self.alarms.negative_share),
            ),
            (
                "LowConfidenceThreshold",
                DriftAlarms::parameter(self.alarms.low_confidence),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The stack's tags: always the tool's mark, and the registry when one was given (sent
    /// whole on every change set: CloudFormation replaces a stack's tags with the given set).
    pub fn tags(&self) -> BTreeMap<String, String> {
        let mut tags = BTreeMap::from([(TAG_TOOL.to_string(), "ummatics-sentiment".to_string())]);
        if let Some(registry) = &self.registry {
            tags.insert(TAG_REGISTRY.to_string(), registry.clone());
        }
        if let Some(gate) = &self.gate {
            tags.insert(TAG_GATE_DATA.to_string(), gate.data_sha256.clone());
            tags.insert(TAG_GATE_ACCURACY.to_string(), gate.accuracy.clone());
        }
        if let Some(budget) = &self.budget {
            tags.insert(TAG_BUDGET_USD.to_string(), budget.amount());
            tags.insert(TAG_BUDGET_EMAIL.to_string(), budget.email.clone());
        }
        tags
    }
}

#[cfg(test)]
impl StackParams {
    /// Parameters for unit tests: the defaults, with this image.
    pub fn example(image_uri: &str) -> StackParams {
        StackParams {
            function_name: "f".into(),
            image_uri: image_uri.into(),
            memory: 1769,
            timeout: 60,
            architecture: Arch::X86_64,
            threads: 1,
            url_auth_type: UrlAuth::AwsIam,
            reserved_concurrency: None,
            alarm_email: String::new(),
            log_retention_days: 14,
            model_name: "sst2-minilm".into(),
            telemetry: Telemetry::On,
            alarms: DriftAlarms::default(),
            registry: None,
            gate: None,
            budget: None,
        }
    }
}

impl StackState {
    /// Made by this tool (its `TAG_TOOL` tag): deploy updates it and destroy deletes it without
    /// `--adopt`; a stack without the tag is someone else's.
    pub fn is_ours(&self) -> bool {
        self.tags.contains_key(TAG_TOOL)
    }
}

/// The stack's CloudWatch dashboard, read from its resources (stacks deployed by versions
/// before the dashboard have none).
pub async fn dashboard(aws: &Aws, stack: &str) -> Result<Option<Dashboard>> {
    let name = cloudformation::resource_id(aws, stack, "AWS::CloudWatch::Dashboard").await?;
    Ok(name.map(|name| Dashboard {
        url: dashboard_url(&aws.region(), &name),
        name,
    }))
}

/// A CloudWatch dashboard and its console link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dashboard {
    pub name: String,
    pub url: String,
}

/// The console link of a CloudWatch dashboard (dashboard names are `[A-Za-z0-9_-]`, so the
/// name needs no escaping).
pub fn dashboard_url(region: &str, name: &str) -> String {
    format!("https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#dashboards/dashboard/{name}")
}

/// One parameter whose value changes.
#[derive(Debug, Clone, Serialize)]
pub struct ParameterChange {
    pub name: String,
    pub from: Option<String>,
    pub to: String,
}

/// What applying the template would do.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// `create`, `update`, or `none`.
    pub kind: PlanKind,
    pub parameters: Vec<ParameterChange>,
    pub resources: Vec<ResourceChange>,
    #[serde(skip)]
    change_set: Option<String>,
    /// The stack the change set belongs to, as CreateChangeSet answered.
    #[serde(skip)]
    stack_id: Option<String>,
}

impl Plan {
    /// Nothing to apply.
    fn nothing(parameters: Vec<ParameterChange>) -> Plan {
        Plan {
            kind: PlanKind::None,
            parameters,
            resources: Vec::new(),
            change_set: None,
            stack_id: None,
        }
    }
}

/// Who creates the stack when first deploys race.
#[derive(Debug, PartialEq)]
enum CreateClaim {
    /// This run's change set goes on.
    Ours,
    /// Another run's change set was executed (or this run's is gone: CloudFormation deletes
    /// a stack's other change sets when it executes one).
    Executed { rival: Option<String> },
    /// Another run's change set was made first and waits to be executed.
    Earlier { rival: String },
}

/// Of the change sets on live stacks of this name, the earliest made (then the name, to
/// break a tie) creates the stack; every other run steps back. Each racing run reads the same
/// list, so exactly one goes on.
fn claim_create(ours: &str, entries: &[ChangeSetEntry]) -> CreateClaim {
    let Some(mine) = entries.iter().find(|e| e.name == ours) else {
        return CreateClaim::Executed {
            rival: entries.iter().find(|e| e.executed).map(|e| e.name.clone()),
        };
    };
    let rivals = entries.iter().filter(|e| e.name != ours);
    if let Some(done) = rivals.clone().find(|e| e.executed) {
        return CreateClaim::Executed {
            rival: Some(done.name.clone()),
        };
    }
    let first = rivals
        .filter(|e| e.waiting)
        .filter(|e| (e.created, e.name.as_str()) < (mine.created, mine.name.as_str()))
        .min_by(|a, b| (a.created, a.name.as_str()).cmp(&(b.created, b.name.as_str())));
    match first {
        Some(first) => CreateClaim::Earlier {
            rival: first.name.clone(),
        },
        None => CreateClaim::Ours,
    }
}

/// The parameters whose wanted value differs from the stack's (all of them for a new stack).
fn parameter_changes(params: &StackParams, existing: Option<&StackState>) -> Vec<ParameterChange> {
    let deployed = |k: &String| existing.and_then(|s| s.parameters.get(k));
    params
        .to_map()
        .into_iter()
        .filter(|(k, v)| deployed(k) != Some(v))
        .map(|(k, v)| ParameterChange {
            from: deployed(&k).cloned(),
            name: k,
            to: v,
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PlanKind {
    Create,
    Update,
    None,
}

/// A resource that failed, with CloudFormation's reason.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: String,
}

/// Drives one stack.
pub struct StackDeployer<'a> {
    aws: &'a Aws,
    name: String,
    progress: &'a Progress,
}

impl<'a> StackDeployer<'a> {
    pub fn new(aws: &'a Aws, progress: &'a Progress) -> StackDeployer<'a> {
        StackDeployer {
            aws,
            name: aws.names.stack.clone(),
            progress,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stack, or `None` when there is none (deleted stacks count as none).
    pub async fn describe(&self) -> Result<Option<StackState>> {
        describe_stack(self.aws, &self.name).await
    }

    /// What a create would do, without asking CloudFormation (for a dry run over a stack that
    /// must first be deleted): every parameter is new; the resources are the template's.
    pub fn preview_create(&self, params: &StackParams) -> Plan {
        Plan {
            kind: PlanKind::Create,
            parameters: params
                .to_map()
                .into_iter()
                .map(|(name, to)| ParameterChange {
                    name,
                    from: None,
                    to,
                })
                .collect(),
            resources: Vec::new(),
            change_set: None,
            stack_id: None,
        }
    }

    /// Makes a change set for these parameters and template body (or finds there is nothing
    /// to change: the same parameters, tags and resources; the template's `Metadata` alone is
    /// no change, and CloudFormation would not take it alone).
    pub async fn plan(
        &self,
        params: &StackParams,
        existing: Option<&StackState>,
        template: &str,
        change_set: &str,
    ) -> Result<Plan> {
        let parameters = parameter_changes(params, existing);
        let updating = existing.is_some_and(|s| !s.is_review());
        let same_tags = existing.is_some_and(|s| s.tags == params.tags());
        if updating
            && parameters.is_empty()
            && same_tags
            && template_resources(&self.deployed_template().await?) == template_resources(template)
        {
            return Ok(Plan::nothing(parameters));
        }
        let kind = if updating {
            PlanKind::Update
        } else {
            PlanKind::Create
        };
        if kind == PlanKind::Create {
            // `existing` was read before the image was built and pushed: another first deploy
            // may have made the stack since. AWS then refuses a create change set; say so
            // before asking (some CloudFormation stand-ins make a second stack of the name).
            if let Some(now) = self.describe().await? {
                if !now.is_review() {
                    bail!(
                        "another deploy created stack {} while this one built its image (it is \
                         {} now): nothing of this run was applied; run deploy again to update it",
                        self.name,
                        now.status
                    );
                }
            }
        }
        let stack_id = self
            .create_change_set(kind, params, template, change_set)
            .await?;
        match self.wait_for_change_set(change_set).await? {
            Some(resources) => Ok(Plan {
                kind,
                parameters,
                resources,
                change_set: Some(change_set.to_string()),
                stack_id,
            }),
            None => Ok(Plan::nothing(Vec::new())),
        }
    }

    /// A name for this run's change set, known before it is asked for (so that an interrupted
    /// run can delete it).
    pub fn new_change_set_name() -> String {
        format!(
            "ummatics-{}-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
            std::process::id()
        )
    }

    /// Creates change set `change_set` to `kind` the stack with these parameters.
    async fn create_change_set(
        &self,
        kind: PlanKind,
        params: &StackParams,
        template: &str,
        change_set: &str,
    ) -> Result<Option<String>> {
        let kind = match kind {
            PlanKind::Update => ChangeSetKind::Update,
            _ => ChangeSetKind::Create,
        };
        let request = cloudformation::NewChangeSet {
            stack: &self.name,
            name: change_set,
            kind,
            template,
            parameters: &params.to_map(),
            tags: &params.tags(),
        };
        cloudformation::create_change_set(self.aws, request)
            .await
            .map_err(|e| {
                // AWS refuses a CREATE change set for a stack name that exists: two first
                // deploys raced, and the other one made the stack.
                if kind == ChangeSetKind::Create && e.kind == ErrorKind::AlreadyExists {
                    anyhow!(
                        "another deploy is creating stack {} at the same time ({e}): wait \
                         for it to finish, then deploy again (it updates what that one made)",
                        self.name
                    )
                } else {
                    anyhow!(e)
                }
            })
            .with_context(|| format!("cannot create a change set for stack {}", self.name))
    }

    /// Waits until CloudFormation has computed the change set: its resource changes, or `None`
    /// when there is nothing to change (the change set is then deleted).
    async fn wait_for_change_set(&self, change_set: &str) -> Result<Option<Vec<ResourceChange>>> {
        loop {
            match cloudformation::change_set(self.aws, &self.name, change_set).await? {
                ChangeSet::Ready(resources) => return Ok(Some(resources)),
                ChangeSet::NoChanges => {
                    let _ = self.delete_change_set(change_set).await;
                    return Ok(None);
                }
                ChangeSet::Failed(reason) => {
                    let _ = self.delete_change_set(change_set).await;
                    bail!("CloudFormation refused the change set: {reason}");
                }
                ChangeSet::Pending => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// The template body the stack runs, as it was sent.
    pub async fn deployed_template(&self) -> Result<String> {
        cloudformation::template(self.aws, &self.name).await
    }

    async fn delete_change_set(&self, change_set: &str) -> Result<(), AwsError> {
        cloudformation::delete_change_set(self.aws, &self.name, change_set).await
    }

    /// After an interruption: deletes change set `name` if it was made, and the stack if it
    /// only existed to hold it (REVIEW_IN_PROGRESS, no other run's change set waiting on it).
    /// Returns whether anything was deleted.
    pub async fn discard_change_set(&self, name: &str, creates_stack: bool) -> Result<bool> {
        let mut deleted = self
            .delete_change_set(name)
            .await
            .found()
            .context("cannot delete the change set")?
            .is_some();
        if creates_stack {
            if let Some(stack) = self.describe().await? {
                deleted |= self.release_review_stack(&stack.id).await?;
            }
        }
        Ok(deleted)
    }

    /// What an interrupted `command` (deploy, rollback, destroy) leaves, made tidy; returns
    /// what to tell the user. Before the stack changed there is nothing to undo (the next run
    /// reuses what was pushed, and an upload goes on where it stopped); a change set that was
    /// made and not executed is deleted, with the stack that only held it; a stack that
    /// CloudFormation is applying or deleting goes on, and the next run finds it busy.
    pub async fn tidy_after_interrupt(&self, phase: Phase, command: &str) -> String {
        match phase {
            Phase::Preparing => format!(
                "interrupted before the stack changed: nothing to undo. Run {command} again: \
                 what was pushed is reused, and an unfinished upload goes on from where it stopped"
            ),
            Phase::ChangeSet {
                name,
                creates_stack,
            } => match self.discard_change_set(&name, creates_stack).await {
                Ok(true) => format!(
                    "interrupted: change set {name} deleted{}; the stack is as it was",
                    if creates_stack {
                        ", with the empty stack that held it"
                    } else {
                        ""
                    }
                ),
                Ok(false) => {
                    "interrupted before the change set was made: the stack is as it was".into()
                }
                Err(e) => format!(
                    "interrupted; could not delete change set {name} ({e:#}): delete it in the \
                     CloudFormation console, or leave it ({command} makes a new one)"
                ),
            },
            Phase::Applying => format!(
                "interrupted while CloudFormation works on stack {}: it goes on without us \
                 (stopping half-way is not safe). `ummatics-sentiment info` shows when it is \
                 done; run {command} again after that",
                self.name
            ),
        }
    }

    /// Throws a plan away; a stack that only existed to hold a create change set goes too
    /// (unless another run's change set waits on it).
    pub async fn discard(&self, plan: &Plan) -> Result<()> {
        if let Some(change_set) = &plan.change_set {
            self.delete_change_set(change_set)
                .await
                .context("cannot delete the change set")?;
            if plan.kind == PlanKind::Create {
                if let Some(id) = &plan.stack_id {
                    self.release_review_stack(id).await?;
                }
            }
        }
        Ok(())
    }

    /// The confirmed change set applied, shown as a step: the stack as it ended, or an error
    /// naming the failed resources when it did not reach the plan's goal (a create complete, or
    /// an update complete). Deploy and rollback both end this way.
    pub async fn apply(&self, plan: &Plan, tracker: &Tracker) -> Result<StackState> {
        let step = self.progress.step(format!("stack {}", self.name));
        tracker.set(Phase::Applying);
        let (state, failures) = self.execute(plan).await?;
        let goal = match plan.kind {
            PlanKind::Create => StackStatus::CreateComplete,
            _ => StackStatus::UpdateComplete,
        };
        if state.status != goal {
            step.fail(state.status.as_str());
            bail!(failure_message(&state.name, &state.status, &failures));
        }
        step.done(state.status.as_str());
        Ok(state)
    }

    /// Executes the plan's change set and streams stack events until a terminal state.
    /// Returns the failed resources when the stack did not reach its goal.
    pub async fn execute(&self, plan: &Plan) -> Result<(StackState, Vec<Failure>)> {
        let change_set = plan
            .change_set
            .as_deref()
            .context("there is no change set to execute")?;
        if plan.kind == PlanKind::Create {
            self.claim_create(change_set, plan.stack_id.as_deref())
                .await?;
        }
        let seen = self.event_ids().await?;
        cloudformation::execute_change_set(self.aws, &self.name, change_set)
            .await
            .map_err(|e| {
                // AWS: a change set made stale by another update is OBSOLETE
                // (InvalidChangeSetStatus); a stack another run is updating is "in
                // *_IN_PROGRESS state and can not be updated" (both a conflict). A create
                // change set is deleted when another run's create executes first (not found).
                if e.kind == ErrorKind::Conflict
                    || (plan.kind == PlanKind::Create && e.is_not_found())
                {
                    anyhow!(
                        "another deploy or rollback changed stack {} while this one waited \
                         ({e}): nothing of this run was applied; run deploy again once it \
                         is done",
                        self.name
                    )
                } else {
                    anyhow!(e)
                }
            })
            .context("cannot execute the change set")?;
        self.follow(seen, plan.stack_id.as_deref()).await
    }

    /// Before a create change set is executed: when two first deploys race, AWS lets both
    /// make a create change set on the one REVIEW_IN_PROGRESS stack, executes whichever comes
    /// first and deletes the other. Here the earliest change set goes on and every other run
    /// steps back before executing, deleting its own change set (and a stack of the name
    /// made for it alone, as some stand-ins make) and saying which run it left the stack to.
    async fn claim_create(&self, ours: &str, our_stack: Option<&str>) -> Result<()> {
        match claim_create(ours, &self.live_change_sets().await?) {
            CreateClaim::Ours => Ok(()),
            CreateClaim::Earlier { rival } => {
                self.step_back(ours, our_stack).await?;
                bail!(
                    "another deploy is creating stack {} at the same time: its change set \
                     {rival} was made first and waits to be executed, so this run stepped back \
                     (its own change set is deleted; nothing was applied). Deploy again once \
                     that one is done. If no other deploy runs, a killed one left it: delete it \
                     with `aws cloudformation delete-change-set --stack-name {} \
                     --change-set-name {rival}`",
                    self.name,
                    self.name
                )
            }
            CreateClaim::Executed { rival } => {
                self.step_back(ours, our_stack).await?;
                bail!(
                    "another deploy created stack {} at the same time{}: nothing of this run \
                     was applied; run deploy again to update it",
                    self.name,
                    rival
                        .map(|r| format!(" (change set {r})"))
                        .unwrap_or_default()
                )
            }
        }
    }

    /// A run that lost the race: its change set goes, and the stack made for it alone.
    async fn step_back(&self, ours: &str, our_stack: Option<&str>) -> Result<()> {
        // Best effort: AWS deletes it itself once the other one executes, and refuses to
        // while that stack is CREATE_IN_PROGRESS.
        let _ = self.delete_change_set(ours).await;
        if let Some(our_stack) = our_stack {
            self.release_review_stack(our_stack).await?;
        }
        Ok(())
    }

    /// The change sets on live stacks of this name (AWS keeps one stack per name; a stand-in
    /// may list every stack's change sets, deleted stacks' too).
    async fn live_change_sets(&self) -> Result<Vec<ChangeSetEntry>> {
        let mut entries = cloudformation::change_sets(self.aws, &self.name).await?;
        let mut live = HashSet::new();
        let stacks: HashSet<String> = entries.iter().map(|e| e.stack_id.clone()).collect();
        for id in stacks {
            if describe_stack(self.aws, &id).await?.is_some() {
                live.insert(id);
            }
        }
        entries.retain(|e| live.contains(&e.stack_id));
        Ok(entries)
    }

    /// Deletes the stack with this id when it only existed to hold create change sets and
    /// holds none now: still REVIEW_IN_PROGRESS, with no other run's change set waiting on it
    /// (two first deploys racing share it). Returns whether it was deleted.
    async fn release_review_stack(&self, id: &str) -> Result<bool> {
        let Some(stack) = describe_stack(self.aws, id).await? else {
            return Ok(false);
        };
        if !stack.is_review() {
            return Ok(false);
        }
        let held = self.live_change_sets().await?;
        if held.iter().any(|e| e.stack_id == stack.id && e.waiting) {
            return Ok(false);
        }
        self.delete_id(&stack.id, false).await?;
        Ok(true)
    }

    /// The ids of the events already there (so only new ones are shown).
    async fn event_ids(&self) -> Result<HashSet<String>> {
        Ok(self.events().await?.into_iter().map(|e| e.id).collect())
    }

    async fn events(&self) -> Result<Vec<StackEvent>> {
        cloudformation::events(self.aws, &self.name).await
    }

    /// Prints the events not seen yet, oldest first; returns the resources among them that
    /// failed, with CloudFormation's reasons.
    async fn show_new_events(&self, seen: &mut HashSet<String>) -> Result<Vec<Failure>> {
        let mut failures = Vec::new();
        let mut events = self.events().await?;
        events.reverse(); // oldest first
        for event in events {
            if !seen.insert(event.id.clone()) {
                continue;
            }
            let StackEvent {
                logical_id: logical,
                resource_type: rtype,
                status,
                reason,
                ..
            } = event;
            self.progress.line(format!(
                "{logical:<22} {rtype:<28} {status}{}",
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(" — {reason}")
                }
            ));
            if status.ends_with("_FAILED") && rtype != "AWS::CloudFormation::Stack" {
                failures.push(Failure {
                    logical_id: logical,
                    resource_type: rtype,
                    status,
                    reason,
                });
            }
        }
        Ok(failures)
    }

    /// Prints new events until the stack is in a terminal state (or gone).
    ///
    /// `stack_id`: the stack the executed change set belongs to (followed by id: a name may
    /// stand for another stack while first deploys race). A create's stack still
    /// REVIEW_IN_PROGRESS has not started yet (ExecuteChangeSet returns before CloudFormation
    /// begins): waited for, up to [`START_POLLS`] polls.
    async fn follow(
        &self,
        mut seen: HashSet<String>,
        stack_id: Option<&str>,
    ) -> Result<(StackState, Vec<Failure>)> {
        let mut failures = Vec::new();
        let mut not_started = 0;
        loop {
            failures.extend(self.show_new_events(&mut seen).await?);
            match describe_stack(self.aws, stack_id.unwrap_or(&self.name)).await? {
                None => bail!(
                    "stack {} disappeared while it was being deployed",
                    self.name
                ),
                Some(stack) if stack.is_review() && not_started < START_POLLS => {
                    not_started += 1;
                    tokio::time::sleep(POLL).await
                }
                Some(stack) if !stack.is_busy() => return Ok((stack, failures)),
                Some(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// Deletes the stack and waits until it is gone. `Ok(false)` when there was none.
    pub async fn delete(&self, show_events: bool) -> Result<bool> {
        let Some(stack) = self.describe().await? else {
            return Ok(false);
        };
        self.delete_id(&stack.id, show_events).await?;
        Ok(true)
    }

    /// Deletes the stack with this id (a name may stand for another stack by then) and waits
    /// until it is gone.
    async fn delete_id(&self, id: &str, show_events: bool) -> Result<()> {
        let mut seen = self.event_ids().await?;
        cloudformation::delete_stack(self.aws, id)
            .await
            .with_context(|| format!("cannot delete stack {}", self.name))?;
        loop {
            match describe_stack(self.aws, id).await? {
                None => return Ok(()),
                Some(s) if s.status == StackStatus::DeleteComplete => return Ok(()),
                Some(s) if s.status == StackStatus::DeleteFailed => bail!(
                    "CloudFormation could not delete stack {}: {}",
                    self.name,
                    s.status_reason.unwrap_or_default()
                ),
                Some(_) => {
                    if show_events {
                        self.show_new_events(&mut seen).await?;
                    }
                    tokio::time::sleep(POLL).await
                }
            }
        }
    }
}

/// Runs a command that changes the stack (`deploy`, `rollback`) to its end, or until Ctrl-C,
/// SIGTERM or SIGHUP: then what its phase left is tidied
/// ([`StackDeployer::tidy_after_interrupt`]), said, and the exit status is 130.
pub async fn interruptible<Fut>(
    aws_args: &crate::aws::AwsArgs,
    command: &str,
    work: impl FnOnce(Tracker) -> Fut,
) -> Result<std::process::ExitCode>
where
    Fut: std::future::Future<Output = Result<std::process::ExitCode>>,
{
    let tracker = Tracker::default();
    if let Some(result) = until_interrupted(work(tracker.clone())).await {
        return result;
    }
    let aws = Aws::load(aws_args).await;
    let progress = Progress::new();
    let message = StackDeployer::new(&aws, &progress)
        .tidy_after_interrupt(tracker.get(), command)
        .await;
    eprintln!("{message}");
    Ok(std::process::ExitCode::from(crate::interrupt::EXIT_STATUS))
}

/// The plan, as people read it.
pub fn print_plan(plan: &Plan, progress: &Progress) {
    if plan.kind == PlanKind::None {
        progress.line("no changes: the stack already runs these settings and this image");
        return;
    }
    for p in &plan.parameters {
        progress.line(format!(
            "  {:<18} {} → {}",
            p.name,
            p.from
                .as_deref()
                .map_or_else(|| "(new)".to_string(), |from| shown(&p.name, from)),
            shown(&p.name, &p.to)
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

/// A parameter's value as people read it: the template's placeholders for "not set" (`-1`
/// reserved concurrency, an empty alarm address) are said in words.
fn shown(name: &str, value: &str) -> String {
    match (name, value) {
        ("ReservedConcurrency", "-1") => "none (no cap)".to_string(),
        (_, "") => "none".to_string(),
        // An image URI's digest is 71 characters: its first 12 hex digits tell images apart
        // and keep the line within a terminal's width (`info` has the whole).
        (_, uri) if uri.contains("@sha256:") => match uri.split_once("@sha256:") {
            Some((_, digest)) if digest.len() > 12 => format!("sha256:{}…", &digest[..12]),
            _ => uri.to_string(),
        },
        _ => value.to_string(),
    }
}

/// The failed resources and their reasons, as one error.
pub fn failure_message(stack: &str, status: &StackStatus, failures: &[Failure]) -> String {
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
    if *status == StackStatus::RollbackComplete {
        text.push_str("\nfix the cause above and deploy again: the failed stack will be deleted and created anew");
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn stack_states_are_read_from_the_status_enum() {
        use super::{StackState, StackStatus};
        let state = |status: &str| StackState {
            name: "s".into(),
            id: "id".into(),
            status: StackStatus::from(status),
            status_reason: None,
            created: None,
            last_updated: None,
            parameters: Default::default(),
            outputs: Default::default(),
            tags: Default::default(),
        };
        for busy in [
            "CREATE_IN_PROGRESS",
            "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
            "UPDATE_ROLLBACK_IN_PROGRESS",
            "DELETE_IN_PROGRESS",
            // Newer than the SDK: read by CloudFormation's naming.
            "SOMETHING_NEW_IN_PROGRESS",
        ] {
            assert!(state(busy).is_busy(), "{busy}");
        }
        for settled in [
            "REVIEW_IN_PROGRESS",
            "CREATE_COMPLETE",
            "UPDATE_ROLLBACK_FAILED",
            "SOMETHING_NEW_COMPLETE",
        ] {
            assert!(!state(settled).is_busy(), "{settled}");
        }
        assert!(state("REVIEW_IN_PROGRESS").is_review());
        for failed in ["ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED"] {
            assert!(state(failed).is_failed_create(), "{failed}");
        }
        assert!(!state("UPDATE_ROLLBACK_COMPLETE").is_failed_create());
        // `--output json` keeps CloudFormation's spelling, unknown statuses included.
        let json = serde_json::to_value(state("SOMETHING_NEW_COMPLETE")).unwrap();
        assert_eq!(json["status"], "SOMETHING_NEW_COMPLETE");
        assert_eq!(
            serde_json::to_value(state("UPDATE_COMPLETE")).unwrap()["status"],
            "UPDATE_COMPLETE"
        );
    }

    #[test]
    fn placeholders_are_said_in_words() {
        assert_eq!(shown("ReservedConcurrency", "-1"), "none (no cap)");
        assert_eq!(shown("ReservedConcurrency", "10"), "10");
        assert_eq!(shown("AlarmEmail", ""), "none");
        assert_eq!(shown("MemorySize", "1769"), "1769");
        let uri = format!(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/ummatics-sentiment@sha256:{}",
            "ab".repeat(32)
        );
        assert_eq!(shown("ImageUri", &uri), "sha256:abababababab…");
        assert!(
            format!(
                "  {:<18} {} → {}",
                "ImageUri",
                shown("ImageUri", &uri),
                shown("ImageUri", &uri)
            )
            .chars()
            .count()
                <= 100
        );
    }

    use super::*;

    #[test]
    fn the_dashboard_link_names_region_and_dashboard() {
        assert_eq!(
            dashboard_url("eu-west-1", "sentiment-prod"),
            "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#dashboards/dashboard/sentiment-prod"
        );
    }

    fn entry(name: &str, created: i64, executed: bool, waiting: bool) -> ChangeSetEntry {
        ChangeSetEntry {
            name: name.into(),
            stack_id: format!("stack-of-{name}"),
            created,
            executed,
            waiting,
        }
    }

    #[test]
    fn racing_first_deploys_agree_on_exactly_one_creator() {
        // Both runs see both change sets: the earlier one goes on, the later steps back.
        let both = [entry("a", 10, false, true), entry("b", 20, false, true)];
        assert_eq!(claim_create("a", &both), CreateClaim::Ours);
        assert_eq!(
            claim_create("b", &both),
            CreateClaim::Earlier { rival: "a".into() }
        );
        // Made in the same millisecond: the name decides, the same way for both.
        let tie = [entry("x", 10, false, true), entry("y", 10, false, true)];
        assert_eq!(claim_create("x", &tie), CreateClaim::Ours);
        assert!(matches!(
            claim_create("y", &tie),
            CreateClaim::Earlier { .. }
        ));
        // One was executed: whoever made theirs first, the other run steps back.
        let done = [entry("a", 30, true, false), entry("b", 20, false, true)];
        assert_eq!(
            claim_create("b", &done),
            CreateClaim::Executed {
                rival: Some("a".into())
            }
        );
        // Ours is gone (AWS deletes the others when it executes one).
        assert_eq!(
            claim_create("b", &[entry("a", 10, true, false)]),
            CreateClaim::Executed {
                rival: Some("a".into())
            }
        );
        // Failed or obsolete change sets do not hold the stack; alone, ours goes on.
        let dead = [entry("a", 10, false, false), entry("b", 20, false, true)];
        assert_eq!(claim_create("b", &dead), CreateClaim::Ours);
        assert_eq!(
            claim_create("b", &[entry("b", 20, false, true)]),
            CreateClaim::Ours
        );
    }

    #[test]
    fn parameters_cover_the_template() {
        let params = StackParams::example("r@sha256:00");
        for key in params.to_map().keys() {
            assert!(
                TEMPLATE.contains(&format!("\n  {key}:\n")),
                "{key} is not a template parameter"
            );
            // CloudFormation refuses a template whose parameter and resource share a logical
            // id (moto does not).
            let resources = TEMPLATE
                .split_once("\nResources:\n")
                .and_then(|(_, rest)| rest.split_once("\nOutputs:\n"))
                .map(|(resources, _)| resources)
                .unwrap();
            assert!(
                !resources.contains(&format!("\n  {key}:\n")),
                "{key} names both a parameter and a resource"
            );
        }
    }
}
