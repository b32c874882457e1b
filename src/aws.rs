//! The only place that builds AWS SDK configuration and clients: the standard credential chain,
//! `--profile`, `--region` (default us-east-1), `--endpoint-url` (else the SDK's own
//! `AWS_ENDPOINT_URL_<SERVICE>` and `AWS_ENDPOINT_URL` variables), and one retry policy for
//! every call.

use std::fmt;

use anyhow::{Context, Result};
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use serde::Serialize;

/// The flags that choose the AWS account, region and endpoint, and the deployment's names;
/// flattened into every command's global flags.
#[derive(Debug, Clone, clap::Args)]
pub struct AwsArgs {
    /// Deployment stage: suffixes the function, stack and repository names
    /// (`--stage dev` → `ummatics-sentiment-analysis-dev`, …) so several live side by side.
    #[arg(long, global = true, value_name = "NAME", value_parser = parse_stage)]
    pub stage: Option<String>,
    /// AWS region (default: AWS_REGION, then the profile's region, then us-east-1).
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
    /// Named profile from ~/.aws/config and ~/.aws/credentials.
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// Send every AWS call to this endpoint (LocalStack, moto, a VPC endpoint). Without the
    /// flag the SDK's own variables apply: AWS_ENDPOINT_URL_<SERVICE> (one service, e.g.
    /// AWS_ENDPOINT_URL_CLOUDFORMATION), then AWS_ENDPOINT_URL.
    // Not `env = "AWS_ENDPOINT_URL"`: an endpoint set in code outranks the per-service
    // variables in the SDK, so the SDK reads that variable itself.
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Attempts per AWS call, retries of throttling and transient errors included.
    #[arg(long, global = true, value_name = "N", env = "UMMATICS_AWS_MAX_ATTEMPTS", hide_env_values = true,
          default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10), hide = true)]
    pub max_attempts: u32,
}

/// Stage names end up in function, stack and repository names: keep to what all three allow.
pub fn parse_stage(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 16
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && !s.ends_with('-');
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not a stage name: use 1–16 lowercase letters, digits and inner hyphens (e.g. dev, prod-eu)"
        ))
    }
}

/// The old system's names, so existing backends keep working.
pub const DEFAULT_FUNCTION: &str = "ummatics-sentiment-analysis";
pub const DEFAULT_STACK: &str = "ummatics-sentiment-stack";
pub const DEFAULT_REPOSITORY: &str = "ummatics-sentiment";
pub const DEFAULT_REGION: &str = "us-east-1";

/// The names of what a deployment owns; `--stage NAME` suffixes all three.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Names {
    pub function: String,
    pub stack: String,
    pub repository: String,
}

impl Names {
    pub fn for_stage(stage: Option<&str>) -> Names {
        let suffix = stage.map(|s| format!("-{s}")).unwrap_or_default();
        Names {
            function: format!("{DEFAULT_FUNCTION}{suffix}"),
            stack: format!("{DEFAULT_STACK}{suffix}"),
            repository: format!("{DEFAULT_REPOSITORY}{suffix}"),
        }
    }
}

/// SDK configuration plus the deployment's names: what every AWS-facing command needs.
#[derive(Clone)]
pub struct Aws {
    pub config: SdkConfig,
    pub names: Names,
}

impl fmt::Debug for Aws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Aws")
            .field("region", &self.region())
            .field("names", &self.names)
            .finish()
    }
}

impl Aws {
    /// Loads configuration the way the AWS CLI does, overridden by the global flags.
    pub async fn load(global: &AwsArgs) -> Aws {
        let region = RegionProviderChain::first_try(global.region.clone().map(Region::new))
            .or_default_provider()
            .or_else(Region::from_static(DEFAULT_REGION));
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(region)
            .retry_config(RetryConfig::standard().with_max_attempts(global.max_attempts));
        if let Some(profile) = &global.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(url) = &global.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        Aws {
            config: loader.load().await,
            names: Names::for_stage(global.stage.as_deref()),
        }
    }

    pub fn region(&self) -> String {
        self.config
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| DEFAULT_REGION.to_string())
    }

    pub fn sts(&self) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::new(&self.config)
    }
    pub fn ecr(&self) -> aws_sdk_ecr::Client {
        aws_sdk_ecr::Client::new(&self.config)
    }
    pub fn cloudformation(&self) -> aws_sdk_cloudformation::Client {
        aws_sdk_cloudformation::Client::new(&self.config)
    }
    pub fn lambda(&self) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::new(&self.config)
    }
    pub fn logs(&self) -> aws_sdk_cloudwatchlogs::Client {
        aws_sdk_cloudwatchlogs::Client::new(&self.config)
    }
    pub fn cloudwatch(&self) -> aws_sdk_cloudwatch::Client {
        aws_sdk_cloudwatch::Client::new(&self.config)
    }
    pub fn budgets(&self) -> aws_sdk_budgets::Client {
        aws_sdk_budgets::Client::new(&self.config)
    }

    /// Who the credentials belong to (STS GetCallerIdentity).
    pub async fn caller_identity(&self) -> Result<Identity> {
        let out = self
            .sts()
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| anyhow::anyhow!(describe(&e)))
            .context("could not read the caller identity (STS GetCallerIdentity)")?;
        Ok(Identity {
            account: out.account().unwrap_or_default().to_string(),
            arn: out.arn().unwrap_or_default().to_string(),
        })
    }
}

/// The account and principal behind the credentials.
#[derive(Debug, Clone, Serialize)]
pub struct Identity {
    pub account: String,
    pub arn: String,
}

/// One line for an SDK error: the service's code and message where there is one, else the
/// transport failure with its cause (the SDK's own `Display` says only "dispatch failure").
pub fn describe<E, R>(error: &aws_sdk_sts::error::SdkError<E, R>) -> String
where
    E: aws_sdk_sts::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    use aws_sdk_sts::error::SdkError;
    match error {
        SdkError::ServiceError(service) => {
            let err = service.err();
            match (err.code(), err.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_string(),
                _ => {
                    // No code: usually an answer the SDK could not parse; say why.
                    let mut text = format!("{err}");
                    let mut source = std::error::Error::source(err);
                    while let Some(cause) = source {
                        text.push_str(": ");
                        text.push_str(&cause.to_string());
                        source = cause.source();
                    }
                    text
                }
            }
        }
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    }
}

/// The service's error code, if the call reached the service.
pub fn error_code<E, R>(error: &aws_sdk_sts::error::SdkError<E, R>) -> Option<&str>
where
    E: aws_sdk_sts::error::ProvideErrorMetadata,
{
    match error {
        aws_sdk_sts::error::SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_suffixes_all_three_names() {
        let plain = Names::for_stage(None);
        assert_eq!(plain.function, "ummatics-sentiment-analysis");
        assert_eq!(plain.stack, "ummatics-sentiment-stack");
        assert_eq!(plain.repository, "ummatics-sentiment");
        let dev = Names::for_stage(Some("dev"));
        assert_eq!(dev.function, "ummatics-sentiment-analysis-dev");
        assert_eq!(dev.stack, "ummatics-sentiment-stack-dev");
        assert_eq!(dev.repository, "ummatics-sentiment-dev");
    }
}
