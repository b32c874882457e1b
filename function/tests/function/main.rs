//! The function crate's integration tests: tract against onnxruntime, batching, model
//! directories, the handler and the Lambda Runtime API. One binary, so the suite links once.

#[path = "../common/mod.rs"]
mod common;

mod batching;
mod bundled;
mod handler;
mod model_dir;
mod parity;
mod runtime_api;
mod wire_props;
