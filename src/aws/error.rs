//! The typed AWS error every call in this folder returns: the SDK's error read once into a
//! kind (not found, throttled, …), the service's code and one line of text. It is the client
//! crate's type, so a backend and the CLI classify alike.

pub use ummatics_sentiment_client::sdk_error::{AwsError, ErrorKind};
