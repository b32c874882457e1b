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
