//! The typed AWS error every call in this folder returns: the SDK's error read once into a
//! kind (not found, throttled, …), the service's code and one line of text. It is the client
//! crate's type, so a backend and the CLI classify alike.

pub use ummatics_sentiment_client::sdk_error::{AwsError, ErrorKind};

/// A call's result with "not found" read as `None`: how every lookup in this folder says that
/// something is absent.
pub trait Found<T> {
    fn found(self) -> Result<Option<T>, AwsError>;
}

impl<T, E: Into<AwsError>> Found<T> for Result<T, E> {
    fn found(self) -> Result<Option<T>, AwsError> {
        match self.map_err(Into::into) {
            Ok(value) => Ok(Some(value)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}
