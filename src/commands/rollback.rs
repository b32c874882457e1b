//! `rollback [--to N]`: puts a kept release live again with one stack update to the
//! parameters it recorded — its image by digest, memory, architecture, URL auth — so nothing
//! is built or pushed, and the function URL (a resource the update does not replace) stays.

use std::fmt;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::aws::lambda::function_info;
use crate::aws::Aws;
use crate::cli::{GlobalArgs, RollbackArgs};
use crate::interrupt::{Phase, Tracker};
use crate::output::{confirm_async, emit, Progress};
use crate::release::ReleaseLog;
use crate::stack::{budget_from_tags, print_plan, Plan, PlanKind, StackDeployer};

/// What rollback did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RollbackOutcome {
    RolledBack,
    /// The release asked for is the live one, or runs exactly what the live one runs.
    AlreadyLive,
    DryRun,
}

#[derive(Debug, Clone, Serialize)]
pub struct RollbackReport {
    pub stack: String,
    pub outcome: RollbackOutcome,
    /// The release that was live.
    pub from: Option<u32>,
    /// The release live now (or that would be, in a dry run).
    pub to: u32,
    pub image_uri: String,
    pub memory_mb: u32,
    pub architecture: String,
    /// The change to the stack (none when the release is already live).
    pub plan: Option<Plan>,
    /// The function URL, unchanged by the rollback.
    pub url: Option<String>,
}

impl fmt::Display for RollbackReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = self
            .from
            .map_or("(none recorded)".to_string(), |n| n.to_string());
        match self.outcome {
            RollbackOutcome::RolledBack => {
                writeln!(f, "stack {}: release {} → {}", self.stack, from, self.to)?
            }
            RollbackOutcome::AlreadyLive => writeln!(
                f,
                "stack {}: release {} already runs (nothing to change)",
                self.stack, self.to
            )?,
            RollbackOutcome::DryRun => writeln!(
                f,
                "stack {}: release {} → {} (dry run: not changed)",
                self.stack, from, self.to
            )?,
        }
        writeln!(f, "  image     {}", self.image_uri)?;
        writeln!(
            f,
            "  config    {} MB, {}",
            self.memory_mb, self.architecture
        )?;
        match &self.url {
            Some(url) => write!(f, "  url       {url} (unchanged)"),
            None => write!(f, "  url       none"),
        }
    }
}

/// Rolls back; on Ctrl-C, a change set not yet executed is deleted (see
/// [`StackDeployer::tidy_after_interrupt`]).
pub async fn run(args: RollbackArgs, global: &GlobalArgs) -> Result<ExitCode> {
    crate::stack::interruptible(&global.aws, "rollback", |tracker| async move {
        rollback(args, global, &tracker).await
    })
    .await
}

async fn rollback(args: RollbackArgs, global: &GlobalArgs, tracker: &Tracker) -> Result<ExitCode> {
    let aws = Aws::load(&global.aws).await;
    let progress = Progress::new();
    let deployer = StackDeployer::new(&aws, &progress);
    let Some(stack) = deployer.describe().await? else {
        bail!(
            "stack {} does not exist in {} (destroyed, or never deployed): there is no release \
             to roll back to; deploy instead",
            aws.names.stack,
            aws.region()
        );
    };
    if stack.is_busy() || stack.is_failed_create() || stack.is_review() {
        bail!(
            "stack {} is {}: it cannot be rolled back now ({})",
            stack.name,
            stack.status,
            if stack.is_busy() {
                "CloudFormation is working on it; wait for it to finish"
            } else {
                "it was never created; deploy instead"
            }
        );
    }
    let log = ReleaseLog::from_template(&deployer.deployed_template().await?)?;
    let target = log.rollback_target(args.to)?.clone();
    // What the release recorded, except what belongs to the stage rather than to a release:
    // its budget record stays as it is now.
    let mut params = target.params.clone();
    params.budget = budget_from_tags(&stack.tags);
    if params.function_name != aws.names.function {
        bail!(
            "release {} is of function {}, not {}: the stack's release log is not this stage's",
            target.number,
            params.function_name,
            aws.names.function
        );
    }
    let mut report = RollbackReport {
        stack: stack.name.clone(),
        outcome: RollbackOutcome::AlreadyLive,
        from: log.live,
        to: target.number,
        image_uri: params.image_uri.clone(),
        memory_mb: params.memory,
        architecture: params.architecture.lambda_name().to_string(),
        plan: None,
        url: None,
    };
    let url = || async {
        Ok::<_, anyhow::Error>(
            function_info(&aws, &aws.names.function)
                .await?
                .and_then(|f| f.url),
        )
    };
    if log.live == Some(target.number) {
        report.url = url().await?;
        emit(global.output, &report)?;
        return Ok(ExitCode::SUCCESS);
    }
    let step = progress.step(format!("change set for {}", stack.name));
    let template = log.with_live(target.number).template()?;
    let change_set = StackDeployer::new_change_set_name();
    tracker.set(Phase::ChangeSet {
        name: change_set.clone(),
        creates_stack: false,
    });
    let plan = deployer
        .plan(&params, Some(&stack), &template, &change_set)
        .await?;
    step.done(match plan.kind {
        PlanKind::None => "no changes",
        _ => "update",
    });
    print_plan(&plan, &progress);
    if plan.kind == PlanKind::None {
        // Release N runs exactly what the live one runs (CloudFormation would not take a
        // change to the log alone).
        report.plan = Some(plan);
        report.url = url().await?;
        emit(global.output, &report)?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.dry_run {
        deployer.discard(&plan).await?;
        report.outcome = RollbackOutcome::DryRun;
        report.plan = Some(plan);
        report.url = url().await?;
        emit(global.output, &report)?;
        return Ok(ExitCode::SUCCESS);
    }
    if !args.yes {
        let answer = confirm_async(
            &format!(
                "put release {} live in place of {}?",
                target.number,
                log.live.map_or("-".into(), |n| n.to_string())
            ),
            "pass --yes to roll back without a prompt (or --dry-run to see what would change)",
        )
        .await;
        if !matches!(answer, Ok(true)) {
            deployer.discard(&plan).await?;
            answer?;
            bail!("cancelled: nothing was changed in the stack");
        }
    }
    deployer.apply(&plan, tracker).await?;
    report.outcome = RollbackOutcome::RolledBack;
    report.plan = Some(plan);
    report.url = url()
        .await
        .context("rolled back, but cannot read the function's URL")?;
    emit(global.output, &report)?;
    Ok(ExitCode::SUCCESS)
}
