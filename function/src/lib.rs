//! The ummatics-sentiment Lambda function: a DistilBERT-style sequence classifier on tract,
//! the event handler, and (re-exported) the wire protocol shared with every client.
//!
//! The CLI links this library, so `invoke --local`, `serve` and `eval` run exactly the code
//! that is deployed.

pub mod build_info;
pub mod event;
pub mod model;
pub mod runtime;
pub mod startup;
pub mod telemetry;
mod tokenizer_json;
pub mod tokens;
pub mod weights;

/// The wire contract, from its own crate (the client links it without the model).
pub use ummatics_sentiment_protocol as protocol;

pub use event::{handle, handle_observed, Answer};
pub use model::{
    missing_model_files, Classifier, ClassifierOptions, LoadTimings, Prediction, Usage, MODEL_FILES,
};
pub use protocol::{Request, Response, SentimentResult};
