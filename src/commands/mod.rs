//! One module per subcommand.

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::config::{Config, TextKey};

pub mod bench;
pub mod deploy;
pub mod destroy;
pub mod doctor;
pub mod eval;
pub mod info;
pub mod invoke;
pub mod logs;
pub mod metrics;
pub mod policy;
pub mod releases;
pub mod rollback;
pub mod serve;
pub mod shell;

/// The configuration file's `region` and `profile` for the commands that call AWS: after
/// the flags, before AWS_REGION and AWS_PROFILE (the file is the project's own choice).
fn connection_from_file(cli: &mut Cli) -> anyhow::Result<()> {
    let explicit = match &cli.command {
        Command::Deploy(args) => args.config.config.clone(),
        Command::Info(args) => args.config.config.clone(),
        Command::Doctor(_)
        | Command::Policy(_)
        | Command::Releases
        | Command::Rollback(_)
        | Command::Destroy(_)
        | Command::Metrics(_)
        | Command::Logs(_) => None,
        Command::Invoke(args) if !args.local => None,
        _ => return Ok(()),
    };
    let aws = &mut cli.global.aws;
    let Some(config) = Config::find(explicit.as_deref(), aws.stage.as_deref())? else {
        return Ok(());
    };
    if aws.region.is_none() {
        aws.region = config.text(TextKey::Region)?.map(|t| t.value);
    }
    if aws.profile.is_none() {
        aws.profile = config.text(TextKey::Profile)?.map(|t| t.value);
    }
    Ok(())
}

/// Runs the parsed command line.
pub async fn run(mut cli: Cli) -> anyhow::Result<ExitCode> {
    connection_from_file(&mut cli)?;
    match cli.command {
        Command::Doctor(args) => doctor::run(args, &cli.global).await,
        Command::Deploy(args) => {
            deploy::run(
                deploy::DeployPlan::from_args(args, cli.global.aws.stage.as_deref())?,
                &cli.global,
            )
            .await
        }
        Command::Info(args) => info::run(args, &cli.global).await,
        Command::Policy(args) => policy::run(args, &cli.global).await,
        Command::Releases => releases::run(&cli.global).await,
        Command::Rollback(args) => rollback::run(args, &cli.global).await,
        Command::Destroy(args) => destroy::run(args, &cli.global).await,
        Command::Invoke(args) => invoke::run(args, &cli.global).await,
        Command::Serve(args) => serve::run(args, &cli.global).await,
        Command::Metrics(args) => metrics::run(args, &cli.global).await,
        Command::Logs(args) => logs::run(args, &cli.global).await,
        Command::Eval(args) => eval::run(args, &cli.global).await,
        Command::Bench(args) => bench::run(args, &cli.global).await,
        Command::Completions(args) => shell::completions(&args),
        Command::Man(args) => shell::man(&args),
    }
}
