//! Shell conventions: completion scripts (clap_complete) and man pages (clap_mangen), both
//! generated from the one command-line definition in `cli`, so they cannot drift from it.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};

const BIN: &str = "ummatics-sentiment";

/// `completions SHELL`: the script on stdout.
pub fn completions(args: &CompletionsArgs) -> Result<ExitCode> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), BIN, &mut script);
    if args.shell == clap_complete::Shell::Bash {
        script = bash_subcommand_arms(&String::from_utf8_lossy(&script)).into_bytes();
    }
    write_stdout(&script)
}

/// clap_complete 4.6 names a hyphenated binary's subcommands two ways in its bash script: the
/// loop over the words sets `ummatics__sentiment__subcmd__deploy`, the arms that offer the
/// flags test `ummatics__subcmd__sentiment__subcmd__deploy` (clap-rs/clap#6421), so nothing
/// after the subcommand completed (`deploy --<TAB>` offered nothing, `--arch <TAB>` listed
/// files). The arms get the name the loop sets; a fixed clap_complete makes this a no-op.
fn bash_subcommand_arms(script: &str) -> String {
    let stem = BIN.replace('-', "__");
    let (first, rest) = stem.split_once("__").unwrap_or((&stem, ""));
    if rest.is_empty() {
        return script.to_string();
    }
    script.replace(&format!("{first}__subcmd__{rest}__"), &format!("{stem}__"))
}

/// `man`: the main page on stdout, or every page into `--dir`.
pub fn man(args: &ManArgs) -> Result<ExitCode> {
    let command = Cli::command();
    match &args.dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .context("cannot render the man page")?;
            write_stdout(&page)
        }
        Some(dir) => {
            if !dir.is_dir() {
                anyhow::bail!(
                    "{} is not a directory; create it first (e.g. mkdir -p {})",
                    dir.display(),
                    dir.display()
                );
            }
            clap_mangen::generate_to(command, dir)
                .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
            eprintln!(
                "wrote {BIN}.1 and one page per subcommand into {}",
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes all of `bytes`; a closed pipe (`| head`) is not an error worth a message.
fn write_stdout(bytes: &[u8]) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e).context("cannot write to stdout"),
    }
}
