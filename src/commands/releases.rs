//! `releases`: the stage's releases as its stack records them, newest first, the live one
//! marked, and whether the stack still runs what the live release says.

use std::fmt;
use std::process::ExitCode;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::aws::Aws;
use crate::cli::GlobalArgs;
use crate::output::{emit, Progress};
use crate::release::{Release, ReleaseLog};
use crate::stack::StackDeployer;

#[derive(Debug, Clone, Serialize)]
pub struct ReleasesReport {
    pub stack: String,
    /// The live release's number.
    pub live: Option<u32>,
    /// Newest first, as the table lists them.
    pub releases: Vec<Release>,
    #[serde(skip)]
    pub log: ReleaseLog,
    /// The stack parameters that differ from the live release's (someone changed the stack
    /// outside deploy and rollback), as `NAME: recorded → running`.
    pub drift: Vec<String>,
}

impl fmt::Display for ReleasesReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "stack {}", self.stack)?;
        write!(f, "{}", self.log)?;
        if !self.drift.is_empty() {
            write!(
                f,
                "\nwarning: the stack no longer runs what the live release recorded ({}): it was \
                 changed outside deploy",
                self.drift.join("; ")
            )?;
        }
        Ok(())
    }
}

pub async fn run(global: &GlobalArgs) -> Result<ExitCode> {
    let aws = Aws::load(&global.aws).await;
    let progress = Progress::new();
    let deployer = StackDeployer::new(&aws, &progress);
    let Some(stack) = deployer.describe().await? else {
        bail!(
            "stack {} is not deployed in {}: there are no releases (deploy makes release 1)",
            aws.names.stack,
            aws.region()
        );
    };
    let log = ReleaseLog::from_template(&deployer.deployed_template().await?)?;
    let drift = match log.live() {
        Some(live) => live
            .params
            .to_map()
            .into_iter()
            .filter_map(|(name, recorded)| {
                let running = stack.parameters.get(&name)?;
                (*running != recorded).then(|| format!("{name}: {recorded} → {running}"))
            })
            .collect(),
        None => Vec::new(),
    };
    emit(
        global.output,
        &ReleasesReport {
            stack: stack.name,
            live: log.live,
            releases: log.releases.iter().rev().cloned().collect(),
            log,
            drift,
        },
    )?;
    Ok(ExitCode::SUCCESS)
}
