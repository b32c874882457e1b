//! Shared helpers for the CLI's integration tests.
#![allow(dead_code)]

use assert_cmd::Command;

/// The `ummatics-sentiment` binary, with the environment's model settings cleared.
pub fn cli() -> Command {
    let mut command = Command::cargo_bin("ummatics-sentiment").unwrap();
    command
        .env_remove("UMMATICS_MAX_TOKENS")
        .env_remove("UMMATICS_THREADS")
        .env_remove("UMMATICS_BATCH_TOKENS");
    command
}

/// Runs the CLI with `args`, asserts it succeeded (showing its stderr if not), returns stdout.
pub fn stdout_of<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let output = cli().args(args).output().unwrap();
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}
