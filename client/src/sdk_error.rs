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

/// What kind of failure an AWS call met: read once from the SDK's error (its code, and for
/// the few refusals a service reports only in words, its message), so callers match on this
/// instead of on text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The named thing does not exist: any `…NotFound…` code, IAM's `NoSuchEntity`, and
    /// CloudFormation's `ValidationError` "… does not exist" (its only way to say so).
    NotFound,
    /// Something of that name exists already (`…AlreadyExists…`, Budgets'
    /// `DuplicateRecordException`, CloudFormation's `ValidationError` "… already exists").
    AlreadyExists,
    /// Another change holds the resource (CloudFormation's `InvalidChangeSetStatus` or a stack
    /// "in …_IN_PROGRESS state"; `ResourceConflictException`, `ResourceInUseException`).
    Conflict,
    /// Throttled (`Throttling…`, `TooManyRequests…`, `RequestLimitExceeded`, `SlowDown`).
    Throttled,
    /// The service failed on its side (`ServiceException`, `InternalFailure`,
    /// `ServiceUnavailable`, Lambda's `ResourceNotReady`/`EC2…`/`ENI…`), or answered with no
    /// code the SDK could read (a proxy's 502 page): transient.
    ServiceFailure,
    /// No answer: a refused or dropped connection, a timeout, an answer that could not be read.
    Transport,
    /// The credential chain had nothing usable (or the session expired).
    Credentials,
    /// The caller lacks a permission.
    AccessDenied,
    /// Any other refusal (a bad request): the same call would be refused again.
    Refused,
}

/// An SDK error as the project handles it: its kind, the service's code, and one line of text
/// ([`describe`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub kind: ErrorKind,
    pub code: Option<String>,
    pub message: String,
}

impl AwsError {
    /// Reads an SDK error of any service.
    pub fn from_sdk<E, R>(error: &SdkError<E, R>) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug,
    {
        let code = error_code(error).map(str::to_string);
        let message = describe(error);
        let kind = if is_credentials_error(error) {
            ErrorKind::Credentials
        } else {
            match error {
                SdkError::ServiceError(service) => {
                    classify(code.as_deref(), service.err().message().unwrap_or_default())
                }
                SdkError::DispatchFailure(_)
                | SdkError::TimeoutError(_)
                | SdkError::ResponseError(_) => ErrorKind::Transport,
                _ => ErrorKind::Refused,
            }
        };
        AwsError {
            kind,
            code,
            message,
        }
    }

    /// Whether the same call may succeed if tried again after a wait.
    pub fn retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Throttled | ErrorKind::ServiceFailure | ErrorKind::Transport
        )
    }

    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }
}

/// A service's answer (`code`, `message`) as an [`ErrorKind`].
pub fn classify(code: Option<&str>, message: &str) -> ErrorKind {
    let Some(code) = code else {
        return ErrorKind::ServiceFailure;
    };
    let has = |part: &str| code.contains(part);
    if has("NotFound") || code == "NoSuchEntity" || code == "NoSuchKey" {
        ErrorKind::NotFound
    } else if has("AlreadyExists") || code == "DuplicateRecordException" {
        ErrorKind::AlreadyExists
    } else if has("Throttl")
        || has("TooManyRequests")
        || has("RequestLimitExceeded")
        || code == "SlowDown"
    {
        ErrorKind::Throttled
    } else if code == "InvalidChangeSetStatus"
        || code == "ResourceConflictException"
        || code == "ResourceInUseException"
    {
        ErrorKind::Conflict
    } else if has("ServiceException")
        || has("InternalFailure")
        || has("InternalError")
        || has("ServiceUnavailable")
        || has("ResourceNotReady")
        || code.starts_with("EC2")
        || code.starts_with("ENI")
    {
        ErrorKind::ServiceFailure
    } else if has("AccessDenied") || code == "UnauthorizedOperation" || code == "AuthorizationError"
    {
        ErrorKind::AccessDenied
    } else if has("ExpiredToken")
        || code == "UnrecognizedClientException"
        || code == "InvalidClientTokenId"
    {
        ErrorKind::Credentials
    } else if code == "ValidationError" {
        // CloudFormation reports these three only as a ValidationError's words.
        if message.contains("does not exist") {
            ErrorKind::NotFound
        } else if message.contains("already exists") {
            ErrorKind::AlreadyExists
        } else if message.contains("_IN_PROGRESS state") {
            ErrorKind::Conflict
        } else {
            ErrorKind::Refused
        }
    } else {
        ErrorKind::Refused
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AwsError {}

impl<E, R> From<SdkError<E, R>> for AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    fn from(error: SdkError<E, R>) -> AwsError {
        AwsError::from_sdk(&error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_into_kinds() {
        use ErrorKind::*;
        for (code, message, kind) in [
            ("ResourceNotFoundException", "", NotFound),
            ("RepositoryNotFoundException", "", NotFound),
            ("ChangeSetNotFound", "", NotFound),
            ("NotFoundException", "", NotFound),
            (
                "ValidationError",
                "Stack with id x does not exist",
                NotFound,
            ),
            ("ValidationError", "Stack [x] already exists", AlreadyExists),
            (
                "ValidationError",
                "Stack:x is in UPDATE_IN_PROGRESS state and can not be updated.",
                Conflict,
            ),
            ("ValidationError", "Parameter Foo is not allowed", Refused),
            ("RepositoryAlreadyExistsException", "", AlreadyExists),
            ("DuplicateRecordException", "", AlreadyExists),
            ("InvalidChangeSetStatus", "", Conflict),
            ("ThrottlingException", "", Throttled),
            ("Throttling", "", Throttled),
            ("TooManyRequestsException", "", Throttled),
            ("ServiceException", "", ServiceFailure),
            ("EC2UnexpectedException", "", ServiceFailure),
            ("AccessDeniedException", "", AccessDenied),
            ("ExpiredTokenException", "", Credentials),
            ("RequestTooLargeException", "", Refused),
        ] {
            assert_eq!(classify(Some(code), message), kind, "{code}: {message}");
        }
        // An answer without a code (an HTML error page) is retried, as before the kinds.
        assert_eq!(classify(None, ""), ServiceFailure);
    }
}
