//! `destroy`: stack (events streamed), image repository with its images, log group — and the
//! images in the registry `deploy --registry` pushed to (`--registry`, else the stack's tag). Idempotent: nothing there is a success.

use std::fmt;
use std::process::ExitCode;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::aws::logs::{delete_log_group, log_group_tags};
use crate::aws::Aws;
use crate::budget;
use crate::cli::{DestroyArgs, GlobalArgs};
use crate::image::ecr;
use crate::image::registry;
use crate::interrupt::{until_interrupted, Phase, Tracker};
use crate::lambda::log_group;
use crate::output::{ask_async, emit, Progress};
use crate::stack::{budget_from_tags, StackDeployer, StackState, TAG_REGISTRY, TAG_TOOL};

#[derive(Debug, Clone, Serialize)]
pub struct DestroyReport {
    pub stack: String,
    /// What was removed, one entry per thing.
    pub removed: Vec<String>,
    /// What has one of this stage's names but is not this tool's, left as it was (and why).
    pub left: Vec<String>,
}

impl fmt::Display for DestroyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for item in &self.left {
            writeln!(f, "left alone: {item}")?;
        }
        if self.removed.is_empty() {
            return write!(f, "nothing to remove: {} is not deployed", self.stack);
        }
        for item in &self.removed {
            writeln!(f, "removed {item}")?;
        }
        write!(
            f,
            "nothing billable of this tool's is left for {}",
            self.stack
        )
    }
}

async fn confirm_name(stack: &str) -> Result<()> {
    let answer = ask_async(
        &format!("This deletes stack {stack}, its image repository, its logs and its budget. Type the stack name to go on: "),
        &format!("destroy deletes stack {stack} and its images and logs: pass --yes"),
    )
    .await?;
    if answer != stack {
        bail!("cancelled: {answer:?} is not {stack:?}; nothing was deleted");
    }
    Ok(())
}

/// What exists under this stage's names, and which of it is this tool's to delete: the stack
/// when it carries the tool's tag; the repository when it is tagged as this stack's (or is
/// untagged beside a stack of ours: an earlier version made it); the log group when the stack
/// is ours (it is the stack's) or it carries the stack's tag; the budget when the stack's tags
/// record it.
struct Found {
    stack: Option<StackState>,
    repository: bool,
    log_group: bool,
    budget: Option<budget::BudgetState>,
    account: String,
    left: Vec<String>,
}

async fn survey(aws: &Aws, deployer: &StackDeployer<'_>, progress: &Progress) -> Result<Found> {
    let stack_name = &aws.names.stack;
    let mut left = Vec::new();
    let stack = match deployer.describe().await? {
        Some(stack) if !stack.is_ours() => {
            left.push(format!(
                "stack {} (no {TAG_TOOL} tag: this tool did not make it)",
                stack.name
            ));
            None
        }
        other => other,
    };
    let repository = match ecr::repository(aws, &aws.names.repository).await? {
        None => false,
        Some(r) => match ecr::owner(aws, &r, stack_name).await? {
            ecr::Owner::This => true,
            ecr::Owner::Untagged if stack.is_some() => true,
            ecr::Owner::Untagged => {
                left.push(format!(
                    "ECR repository {} (no {} tag: this tool did not make it; delete it \
                     yourself if it is yours)",
                    r.name,
                    ecr::TAG_STACK
                ));
                false
            }
            ecr::Owner::Stack(other) => {
                left.push(format!(
                    "ECR repository {} (it belongs to stack {other})",
                    r.name
                ));
                false
            }
        },
    };
    let group = log_group(&aws.names.function);
    let log_group = match log_group_tags(aws, &group).await? {
        None => false,
        Some(_) if stack.is_some() => true,
        Some(tags) if tags.get(ecr::TAG_STACK) == Some(stack_name) => true,
        Some(_) => {
            left.push(format!(
                "log group {group} (no stack of ours, and no {} tag naming {stack_name})",
                ecr::TAG_STACK
            ));
            false
        }
    };
    let account = aws.caller_identity().await?.account;
    let budget_name = budget::name_for(stack_name, &aws.region());
    // Without Budgets permissions the rest is still destroyed; the budget is named, not hidden.
    let budget = match crate::aws::budgets::describe(aws, &account, &budget_name).await {
        Ok(Some(budget)) => {
            let recorded = stack
                .as_ref()
                .is_some_and(|s| budget_from_tags(&s.tags).is_some());
            if !recorded {
                left.push(format!(
                    "budget {budget_name} (no stack of ours records it; delete it in the Billing \
                     console if it is yours)"
                ));
            }
            recorded.then_some(budget)
        }
        // A stack of ours that records a budget made before names carried the region: its
        // budget has the stack's name alone.
        Ok(None)
            if stack
                .as_ref()
                .is_some_and(|s| budget_from_tags(&s.tags).is_some()) =>
        {
            crate::aws::budgets::describe(aws, &account, stack_name)
                .await
                .ok()
                .flatten()
        }
        Ok(None) => None,
        Err(e) => {
            progress.line(format!(
                "warning: {e:#}; if deploy made a budget {budget_name}, delete it in the Billing \
                 console (it costs nothing, but keeps e-mailing)"
            ));
            None
        }
    };
    Ok(Found {
        stack,
        repository,
        log_group,
        budget,
        account,
        left,
    })
}

/// Destroys; on Ctrl-C before the stack's deletion nothing is half-done, and once
/// CloudFormation deletes the stack it goes on (run destroy again for the rest).
pub async fn run(args: DestroyArgs, global: &GlobalArgs) -> Result<ExitCode> {
    let tracker = Tracker::default();
    if let Some(result) = until_interrupted(destroy(args, global, &tracker)).await {
        return result;
    }
    eprintln!(
        "{}",
        match tracker.get() {
            Phase::Applying =>
                "interrupted while the stack is deleted: CloudFormation goes on \
                 without us. Run destroy again to finish (it waits for nothing that is gone)",
            _ => "interrupted: what was deleted is gone, the rest is as it was; run destroy again",
        }
    );
    Ok(ExitCode::from(crate::interrupt::EXIT_STATUS))
}

async fn destroy(args: DestroyArgs, global: &GlobalArgs, tracker: &Tracker) -> Result<ExitCode> {
    args.registry.check()?;
    let aws = Aws::load(&global.aws).await;
    if args.registry.registry.is_some() {
        registry::refuse_on_aws(aws.endpoint().as_deref())?;
    }
    let progress = Progress::new();
    let deployer = StackDeployer::new(&aws, &progress);
    let mut found = survey(&aws, &deployer, &progress).await?;
    // The registry deploy pushed to: --registry, else the one the stack's tag records (a
    // `deploy --registry`), so its images are not forgotten.
    let recorded = found
        .stack
        .as_ref()
        .and_then(|stack| stack.tags.get(TAG_REGISTRY))
        .cloned();
    let registry_has_images = match args.registry.registry.clone().or(recorded) {
        Some(host) => {
            let look = async {
                let registry =
                    ecr::registry(&aws, Some(&host), args.registry.insecure_registry).await?;
                let tags = registry.tags(&aws.names.repository).await?;
                anyhow::Ok((!tags.is_empty()).then_some(registry))
            };
            match look.await {
                Ok(found) => found,
                // Only the recorded one may be out of reach: say what is left there.
                Err(e) if args.registry.registry.is_none() => {
                    found.left.push(format!(
                        "images of {} in {host}, the registry deploy pushed to (cannot reach it: \
                         {e:#}); delete them there, or run destroy again with --registry {host}",
                        aws.names.repository
                    ));
                    None
                }
                Err(e) => return Err(e),
            }
        }
        None => None,
    };
    let mut report = DestroyReport {
        stack: aws.names.stack.clone(),
        removed: Vec::new(),
        left: found.left,
    };
    if found.stack.is_none()
        && !found.repository
        && !found.log_group
        && registry_has_images.is_none()
        && found.budget.is_none()
    {
        emit(global.output, &report)?;
        return Ok(ExitCode::SUCCESS);
    }
    if !args.yes {
        confirm_name(&aws.names.stack).await?;
    }

    // The budget first: the stack's tags are what say it is ours, so an interrupted destroy
    // that already deleted the stack could no longer tell.
    if let Some(budget) = found.budget {
        let account = &found.account;
        // Its own name: the region's, or (made by an earlier version) the stack's.
        let budget_name = budget.name.clone();
        let step = progress.step(format!("budget {budget_name}"));
        if crate::aws::budgets::delete(&aws, account, &budget_name).await? {
            step.done("deleted");
            report.removed.push(format!(
                "budget {budget_name} (${:.2}/month)",
                budget.limit_usd
            ));
        } else {
            step.done("already gone");
        }
    }
    if let Some(stack) = &found.stack {
        let step = progress.step(format!("stack {}", stack.name));
        tracker.set(Phase::Applying);
        deployer.delete(true).await?;
        tracker.set(Phase::Preparing);
        step.done("deleted");
        report
            .removed
            .push(format!("stack {} ({})", stack.name, stack.status));
    }
    if found.repository {
        let step = progress.step(format!("ECR repository {}", aws.names.repository));
        if let Some(images) = ecr::delete_repository(&aws, &aws.names.repository).await? {
            step.done(format!("deleted with {images} image(s)"));
            report.removed.push(format!(
                "ECR repository {} ({images} image(s))",
                aws.names.repository
            ));
        } else {
            step.done("already gone");
        }
    }
    // The stack owns the log group, but Lambda recreates it if the function logged after.
    let group = log_group(&aws.names.function);
    if found.log_group {
        if log_group_tags(&aws, &group).await?.is_some() {
            let step = progress.step(format!("log group {}", group));
            if delete_log_group(&aws, &group).await? {
                step.done("deleted");
                report.removed.push(format!("log group {}", group));
            } else {
                step.done("already gone");
            }
        } else {
            report
                .removed
                .push(format!("log group {} (with the stack)", group));
        }
    }
    if let Some(registry) = registry_has_images {
        let step = progress.step(format!("images in {}", registry.host()));
        let removed = registry.delete_all(&aws.names.repository).await?;
        step.done(format!("{} deleted", removed.len()));
        report.removed.push(format!(
            "{} image(s) from {}/{}",
            removed.len(),
            registry.host(),
            aws.names.repository
        ));
    }
    emit(global.output, &report)?;
    Ok(ExitCode::SUCCESS)
}
