//! One module per subcommand.

use std::process::ExitCode;

use crate::cli::{Cli, Command};

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

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
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
