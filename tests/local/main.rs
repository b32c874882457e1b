//! Tests that need nothing but this checkout: the CLI run in-process models (`invoke --local`,
//! `eval`, `bench`), `serve` behind the Lambda Invoke API, and a Hugging Face Hub stand-in, all
//! on loopback. One binary, so the suite links once.

#[path = "../common/mod.rs"]
mod common;

mod architecture;
mod cli_bench;
mod cli_eval;
mod cli_help;
mod cli_invoke;
mod everyday;
mod faults;
mod hub;
mod load;
mod serve;
