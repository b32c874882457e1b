//! The command line as users meet it: clap's own consistency checks, a snapshot of every
//! subcommand's `--help` (a changed flag is a visible diff; review with `cargo insta review`
//! or rerun with INSTA_UPDATE=always and read the diff), examples at the end of every help,
//! completion scripts and man pages generated from the same definition.

use crate::common;

use clap::CommandFactory;
use std::time::Duration;
use ummatics_sentiment::cli::Cli;

/// clap's debug assertions over the whole definition (conflicting names, bad defaults, …).
#[test]
fn the_command_line_definition_is_consistent() {
    Cli::command().debug_assert();
}

/// A short flag means one thing in every subcommand (`-f` was `--file` for invoke and
/// `--follow` for logs).
#[test]
fn each_short_flag_means_one_thing_everywhere() {
    let mut command = Cli::command();
    command.build();
    let mut meaning: std::collections::BTreeMap<char, (String, String)> = Default::default();
    for sub in command.get_subcommands() {
        for arg in sub.get_arguments() {
            let (Some(short), Some(long)) = (arg.get_short(), arg.get_long()) else {
                continue;
            };
            let here = (long.to_string(), sub.get_name().to_string());
            match meaning.get(&short) {
                Some((other, at)) if *other != here.0 => panic!(
                    "-{short} is --{} in `{}` but --{other} in `{at}`",
                    here.0, here.1
                ),
                _ => {
                    meaning.insert(short, here);
                }
            }
        }
    }
    assert!(meaning.contains_key(&'f'), "{meaning:?}");
}

/// Every subcommand's long help, at a fixed width so the snapshot does not follow the terminal.
#[test]
fn help_for_every_subcommand_is_snapshotted_and_ends_with_examples() {
    let mut command = Cli::command().term_width(100);
    command.build();
    insta::assert_snapshot!("main", command.render_long_help().to_string());
    let names: Vec<String> = command
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .filter(|name| name != "help")
        .collect();
    assert!(names.len() >= 13, "{names:?}");
    for name in names {
        let sub = command.find_subcommand_mut(&name).unwrap();
        let help = sub.render_long_help().to_string();
        let examples = help
            .rsplit_once("Examples:\n")
            .unwrap_or_else(|| panic!("`{name} --help` has no examples"))
            .1;
        let lines: Vec<&str> = examples.lines().collect();
        assert!(
            (2..=3).contains(&lines.len()),
            "`{name} --help` should end with two or three examples:\n{examples}"
        );
        for line in lines {
            assert!(line.contains("ummatics-sentiment "), "{name}: {line}");
        }
        insta::assert_snapshot!(name.clone(), help);
    }
}

/// Every example in every `--help` parses with today's flags (each is run through clap, not
/// executed).
#[test]
fn every_example_in_the_help_parses() {
    let mut command = Cli::command().term_width(1000);
    command.build();
    for sub in command.get_subcommands_mut() {
        let help = sub.render_long_help().to_string();
        let Some((_, examples)) = help.rsplit_once("Examples:\n") else {
            continue;
        };
        for example in examples.lines() {
            let line = example.split(" # ").next().unwrap().trim();
            let line = line.split(" > ").next().unwrap();
            let line = line.split(" && ").next().unwrap();
            // The command itself: after any `VAR=value` prefix.
            let words: Vec<String> = shell_words(line)
                .into_iter()
                .skip_while(|w| w.contains('=') && !w.starts_with('-'))
                .collect();
            assert_eq!(words[0], "ummatics-sentiment", "{example}");
            if let Err(e) = Cli::command().try_get_matches_from(&words) {
                panic!("example `{example}` does not parse: {e}");
            }
        }
    }
}

/// Splits on spaces, keeping '…' and "…" quoted words whole.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ' ') => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            (_, c) => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

#[test]
fn completion_scripts_are_generated_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let output = common::cli()
            .args(["completions", shell])
            .timeout(Duration::from_secs(30))
            .output()
            .unwrap();
        assert!(output.status.success(), "{shell}: {output:?}");
        let script = String::from_utf8(output.stdout).unwrap();
        for word in ["deploy", "invoke", "--concurrency", "completions"] {
            assert!(script.contains(word), "{shell} script lacks {word}");
        }
    }
    // bash accepts the script and registers it.
    let script = common::cli()
        .args(["completions", "bash"])
        .output()
        .unwrap()
        .stdout;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("completion.bash");
    std::fs::write(&path, script).unwrap();
    let registered = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p ummatics-sentiment",
            path.display()
        ))
        .output()
        .unwrap();
    assert!(registered.status.success(), "{registered:?}");
    // A real bash completes a subcommand's flag and a flag's value through the script's own
    // function, as a <TAB> would (clap_complete's arms for hyphenated names did not match).
    let complete = |words: &[&str]| -> String {
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let n = words.len();
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {} && COMP_WORDS=({}) && COMP_CWORD={} && \
                 _ummatics__sentiment ummatics-sentiment '{}' '{}' && echo \"${{COMPREPLY[*]}}\"",
                path.display(),
                quoted.join(" "),
                n - 1,
                words[n - 1],
                words[n - 2],
            ))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    assert_eq!(
        complete(&["ummatics-sentiment", "deploy", "--ar"]),
        "--arch"
    );
    assert_eq!(
        complete(&["ummatics-sentiment", "deploy", "--arch", ""]),
        "x86_64 arm64"
    );
    assert_eq!(
        complete(&["ummatics-sentiment", "invoke", "--lo"]),
        "--local --log"
    );
    assert!(complete(&["ummatics-sentiment", "de"]).contains("deploy"));
    let bad = common::cli()
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("possible values"));
}

#[test]
fn man_pages_are_written_for_the_command_and_every_subcommand() {
    let output = common::cli().arg("man").output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let page = String::from_utf8(output.stdout).unwrap();
    assert!(page.starts_with(".ie \\n(.g .ds Aq") || page.contains(".TH ummatics-sentiment 1"));
    assert!(page.contains(".TH ummatics-sentiment 1"), "{page}");
    assert!(page.contains("deploy"));

    let dir = tempfile::tempdir().unwrap();
    let output = common::cli()
        .args(["man", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    for page in [
        "ummatics-sentiment.1",
        "ummatics-sentiment-deploy.1",
        "ummatics-sentiment-invoke.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
        assert!(text.contains(".TH"), "{page}");
    }
    let missing = common::cli()
        .args(["man", "--dir"])
        .arg(dir.path().join("nope"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("is not a directory"));
}
