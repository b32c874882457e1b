//! AWS SDK errors as one line of text and as a code: what every caller (this crate's and the
//! CLI's) shows and matches on. The SDK's `SdkError` is one type across every service crate,
//! so these serve Lambda's errors and CloudFormation's alike.

use std::fmt;

use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};

/// The credential chain's own error (no credentials, an expired session) wherever it sits
/// among an SDK error's causes.
pub fn credentials_error<E, R>(
    error: &SdkError<E, R>,
) -> Option<&aws_credential_types::provider::error::CredentialsError>
where
    E: std::error::Error + 'static,
    R: fmt::Debug,
{
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(credentials) = cause.downcast_ref() {
            return Some(credentials);
        }
        source = cause.source();
    }
    None
}

/// Whether an SDK error is the credential chain's: never worth another try.
pub fn is_credentials_error<E, R>(error: &SdkError<E, R>) -> bool
where
    E: std::error::Error + 'static,
    R: fmt::Debug,
{
    credentials_error(error).is_some()
}

/// An error's message followed by each of its causes', `: `-separated.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// One line for an SDK error: the service's code and message where there is one, else the
/// transport failure with its cause (the SDK's own `Display` says only "dispatch failure").
pub fn describe<E, R>(error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    match error {
        SdkError::ServiceError(service) => {
            let err = service.err();
            match (err.code(), err.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_string(),
                // No code: usually an answer the SDK could not parse; say why.
                _ => with_causes(err),
            }
        }
        other => with_causes(other),
    }
}

/// The service's error code, if the call reached the service.
pub fn error_code<E, R>(error: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match error {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}
