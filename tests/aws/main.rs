//! Tests against the AWS stand-ins that `scripts/test.sh` starts on 127.0.0.1 (moto, dockerd,
//! a registry with ECR's token as its password): deploy, the daemonless OCI builder, arm64
//! images under qemu, metrics and logs. They fail, never skip, when the stand-ins are missing.

#[path = "../common/mod.rs"]
mod common;

mod account;
mod arm64;
mod carried;
mod config;
mod deploy;
mod expiry;
mod interrupt;
mod lifecycle;
mod observe;
mod oci;
mod ownership;
mod push;
mod telemetry;
mod terminal;
