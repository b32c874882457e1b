//! `destroy`: stack (events streamed), image repository with its images, log group — and the
//! images in `--registry` when deploy pushed there. Idempotent: nothing there is a success.

use std::fmt;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use crate::aws::{describe, error_code, Aws};
use crate::budget;
use crate::cli::{DestroyArgs, GlobalArgs};
use crate::image::ecr;
use crate::image::registry::{self, Registry};
use crate::lambda::log_group;
use crate::output::{ask, emit, Progress};
use crate::stack::StackDeployer;

#[derive(Debug, Clone, Serialize)]
pub struct DestroyReport {
    pub stack: String,
    /// What was removed, one entry per thing.
    pub removed: Vec<String>,
}

impl fmt::Display for DestroyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.removed.is_empty() {
            return write!(f, "nothing to remove: {} is not deployed", self.stack);
        }
        for item in &self.removed {
            writeln!(f, "removed {item}")?;
        }
        write!(f, "nothing billable is left for {}", self.stack)
    }
}

fn confirm_name(stack: &str) -> Result<()> {
    let answer = ask(
        &format!("This deletes stack {stack}, its image repository, its logs and its budget. Type the stack name to go on: "),
        &format!("destroy deletes stack {stack} and its images and logs: pass --yes"),
    )?;
    if answer != stack {
        bail!("cancelled: {answer:?} is not {stack:?}; nothing was deleted");
    }
    Ok(())
}

pub async fn run(args: DestroyArgs, global: &GlobalArgs) -> Result<ExitCode> {
    if let Some(registry) = &args.registry {
        registry::endpoint_url(registry, args.insecure_registry)
            .context("--registry is refused")?;
    }
    let aws = Aws::load(&global.aws).await;
    let progress = Progress::new();
    let deployer = StackDeployer::new(&aws, &progress);
    let stack = deployer.describe().await?;
    let repository = ecr::repository(&aws, &aws.names.repository).await?;
    let group = log_group(&aws.names.function);
    let log_group = log_group_exists(&aws, &group).await?;
    let registry_has_images = match &args.registry {
        Some(host) => {
            let login = ecr::login(&aws).await?;
            let registry = Registry::new(
                host,
                &login.username,
                &login.password,
                args.insecure_registry,
            )?;
            let tags = registry.tags(&aws.names.repository).await?;
            (!tags.is_empty()).then_some(registry)
        }
        None => None,
    };
    let account = aws.caller_identity().await?.account;
    let budget_name = budget::name_for(&aws.names.stack);
    // Without Budgets permissions the rest is still destroyed; the budget is named, not hidden.
    let budget = match budget::describe_budget(&aws, &account, &budget_name).await {
        Ok(budget) => budget,
        Err(e) => {
            progress.line(format!(
                "warning: {e:#}; if deploy made a budget {budget_name}, delete it in the Billing \
                 console (it costs nothing, but keeps e-mailing)"
            ));
            None
        }
    };
    let mut report = DestroyReport {
        stack: aws.names.stack.clone(),
        removed: Vec::new(),
    };
    if stack.is_none()
        && repository.is_none()
        && !log_group
        && registry_has_images.is_none()
        && budget.is_none()
    {
        emit(global.output, &report)?;
        return Ok(ExitCode::SUCCESS);
    }
    if !args.yes {
        confirm_name(&aws.names.stack)?;
    }

    if let Some(stack) = stack {
        let step = progress.step(format!("stack {}", stack.name));
        deployer.delete(true).await?;
        step.done("deleted");
        report
            .removed
            .push(format!("stack {} ({})", stack.name, stack.status));
    }
    if repository.is_some() {
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
    if log_group_exists(&aws, &group).await? {
        let step = progress.step(format!("log group {}", group));
        match aws
            .logs()
            .delete_log_group()
            .log_group_name(&group)
            .send()
            .await
        {
            Ok(_) => {
                step.done("deleted");
                report.removed.push(format!("log group {}", group));
            }
            Err(e) if error_code(&e) == Some("ResourceNotFoundException") => {
                step.done("already gone")
            }
            Err(e) => {
                return Err(anyhow!(describe(&e)))
                    .with_context(|| format!("cannot delete log group {}", group))
            }
        }
    } else if log_group {
        report
            .removed
            .push(format!("log group {} (with the stack)", group));
    }
    if let Some(budget) = budget {
        let step = progress.step(format!("budget {budget_name}"));
        if budget::delete_budget(&aws, &account, &budget_name).await? {
            step.done("deleted");
            report.removed.push(format!(
                "budget {budget_name} (${:.2}/month)",
                budget.limit_usd
            ));
        } else {
            step.done("already gone");
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

async fn log_group_exists(aws: &Aws, name: &str) -> Result<bool> {
    let out = aws
        .logs()
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .map_err(|e| anyhow!(describe(&e)))
        .context("cannot list log groups")?;
    Ok(out
        .log_groups()
        .iter()
        .any(|g| g.log_group_name() == Some(name)))
}
