//! Every AWS call, and the only place that builds AWS SDK configuration and clients: one
//! module per service (`cloudformation`, `lambda`, `logs`, `cloudwatch`, `budgets`, `ecr`; STS
//! and IAM here), each call returning the typed [`AwsError`] (or an `anyhow` error carrying it)
//! and plain types of this crate (CloudFormation's `StackStatus` enum is the one SDK type let
//! out). Configuration: the standard credential chain, `--profile`, `--region` (default
//! us-east-1), `--endpoint-url` (else the SDK's own `AWS_ENDPOINT_URL_<SERVICE>` and
//! `AWS_ENDPOINT_URL` variables), and the SDK's retries for every call, capped as the
//! project's one retry policy says (`ummatics_sentiment_client::retry`). Beneath it are only
//! the Lambda facts of `crate::lambda`.

pub mod actions;
pub mod budgets;
pub mod cloudformation;
pub mod cloudwatch;
pub mod ecr;
pub mod error;
pub mod lambda;
pub mod logs;
pub mod regions;

use std::fmt;

use anyhow::Result;
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
pub use error::{AwsError, ErrorKind, Found};
use serde::Serialize;
use ummatics_sentiment_client::sdk_error::{credentials_error, describe, with_causes};

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

/// The old system's names, so existing backends keep working (the function's is the client
/// crate's, where a backend finds it).
pub use ummatics_sentiment_client::DEFAULT_FUNCTION;
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
    /// `--profile` (else the SDK's own choice): read again only to explain a credentials
    /// failure, never on the way to a call.
    profile: Option<String>,
}

/// How the selected profile of `~/.aws/config` signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignIn {
    /// Console sign-in: `aws login` wrote the profile's `login_session`.
    Login,
    /// IAM Identity Center: `sso_session` or `sso_start_url`.
    Sso,
    /// Keys, a role, a process, or no profile at all.
    Other,
}

impl SignIn {
    /// Reads the selected profile (`--profile`, else `AWS_PROFILE`, else `default`) the way the
    /// SDK does; a missing or unreadable file is [`SignIn::Other`].
    async fn of_profile(profile: Option<&str>) -> SignIn {
        use aws_types::os_shim_internal::{Env, Fs};
        let files = aws_runtime::env_config::file::EnvConfigFiles::default();
        let selected = profile.map(|p| std::borrow::Cow::Owned(p.to_string()));
        let Ok(set) = aws_config::profile::load(&Fs::real(), &Env::real(), &files, selected).await
        else {
            return SignIn::Other;
        };
        match set.get_profile(set.selected_profile()) {
            Some(p) if p.get("login_session").is_some() => SignIn::Login,
            Some(p) if p.get("sso_session").is_some() || p.get("sso_start_url").is_some() => {
                SignIn::Sso
            }
            _ => SignIn::Other,
        }
    }
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
        // The default chain (AWS_REGION, then the profile) reads the profile chosen here, not
        // only AWS_PROFILE: `--profile staging` takes staging's region.
        let mut default_chain = aws_config::default_provider::region::DefaultRegionChain::builder();
        if let Some(profile) = &global.profile {
            default_chain = default_chain.profile_name(profile);
        }
        let region = RegionProviderChain::first_try(global.region.clone().map(Region::new))
            .or_else(default_chain.build())
            .or_else(Region::from_static(DEFAULT_REGION));
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(region)
            // The SDK's own retries (throttles, 5xx, transport) with the project's cap on a
            // wait (`retry::Backoff`); the batching client turns them off and retries itself.
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(global.max_attempts)
                    .with_max_backoff(ummatics_sentiment_client::retry::MAX_DELAY),
            );
        if let Some(profile) = &global.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(url) = &global.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let config = placeholder_credentials_for_loopback(loader.load().await).await;
        if let Some(why) = config.region().and_then(|r| regions::unknown(r.as_ref())) {
            eprintln!("warning: {why} (calls to it fail, unless it is newer than this build)");
        }
        Aws {
            config,
            names: Names::for_stage(global.stage.as_deref()),
            profile: global.profile.clone(),
        }
    }

    /// The endpoint every call goes to when one is configured (`--endpoint-url`,
    /// `AWS_ENDPOINT_URL`): stand-ins such as moto or LocalStack. `None`: AWS itself.
    pub fn endpoint(&self) -> Option<String> {
        self.config.endpoint_url().map(str::to_string)
    }

    pub fn region(&self) -> String {
        self.config
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| DEFAULT_REGION.to_string())
    }

    pub(in crate::aws) fn sts(&self) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::new(&self.config)
    }
    pub(in crate::aws) fn ecr(&self) -> aws_sdk_ecr::Client {
        aws_sdk_ecr::Client::new(&self.config)
    }
    pub(in crate::aws) fn cloudformation(&self) -> aws_sdk_cloudformation::Client {
        aws_sdk_cloudformation::Client::new(&self.config)
    }
    pub(in crate::aws) fn lambda(&self) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::new(&self.config)
    }
    pub(in crate::aws) fn logs(&self) -> aws_sdk_cloudwatchlogs::Client {
        aws_sdk_cloudwatchlogs::Client::new(&self.config)
    }
    pub(in crate::aws) fn cloudwatch(&self) -> aws_sdk_cloudwatch::Client {
        aws_sdk_cloudwatch::Client::new(&self.config)
    }
    pub(in crate::aws) fn budgets(&self) -> aws_sdk_budgets::Client {
        aws_sdk_budgets::Client::new(&self.config)
    }
    pub(in crate::aws) fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.config)
    }

    /// Who the credentials belong to (STS GetCallerIdentity). A failure says whether the
    /// credentials are missing, an expired sign-in, rejected, or the endpoint unreachable,
    /// with the command that fixes each.
    pub async fn caller_identity(&self) -> Result<Identity, IdentityError> {
        let out = self.sts().get_caller_identity().send().await;
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                // The profile is read only when its credentials failed: what to tell the user.
                let sign_in = match credentials_error(&e) {
                    Some(_) => SignIn::of_profile(self.profile.as_deref()).await,
                    None => SignIn::Other,
                };
                return Err(IdentityError::of(&e, self, sign_in));
            }
        };
        Ok(Identity {
            account: out.account().unwrap_or_default().to_string(),
            arn: out.arn().unwrap_or_default().to_string(),
        })
    }

    /// Where STS calls go: the configured endpoint, else the region's public one.
    fn sts_endpoint(&self) -> String {
        self.endpoint()
            .unwrap_or_else(|| format!("https://sts.{}.amazonaws.com", self.region()))
    }
}

/// Whether `url` points at this machine (`serve`, stand-ins): 127.0.0.0/8, ::1, localhost.
pub fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Against an endpoint on this machine (`serve`, stand-ins) that checks no signature, a user
/// with no AWS credentials configured at all gets placeholder ones instead of a refusal:
/// `serve` works offline. Anywhere else, or when a configured source fails, the credential
/// chain stands as it is.
async fn placeholder_credentials_for_loopback(config: SdkConfig) -> SdkConfig {
    use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
    let Some(endpoint) = config.endpoint_url() else {
        return config;
    };
    if !is_loopback(endpoint) {
        return config;
    }
    // Only when nothing is configured at all: a configured source that fails (an expired
    // sign-in) must say so, not be papered over.
    let nothing_configured = match config.credentials_provider() {
        Some(provider) => matches!(
            provider.provide_credentials().await,
            Err(aws_credential_types::provider::error::CredentialsError::CredentialsNotLoaded(_))
        ),
        None => true,
    };
    if !nothing_configured {
        return config;
    }
    let placeholder = aws_credential_types::Credentials::new(
        "loopback",
        "loopback",
        None,
        None,
        "placeholder for a loopback endpoint",
    );
    config
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(placeholder))
        .build()
}

/// Why the caller identity could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityError {
    /// No provider of the chain (environment, profile, SSO, console sign-in, container,
    /// instance) has credentials.
    Missing(String),
    /// A console sign-in (`aws login`, a profile with `login_session`) whose cached session
    /// is missing, expired or cannot be refreshed.
    LoginSession(String),
    /// An IAM Identity Center (`aws sso login`) session that is missing or expired.
    SsoSession(String),
    /// Some credentials provider failed otherwise (a `credential_process`, a role to assume).
    Provider(String),
    /// Credentials were found; the endpoint could not be reached (no network, DNS, proxy).
    Unreachable { endpoint: String, detail: String },
    /// STS answered and refused the credentials (wrong keys, expired session token).
    Rejected(String),
}

impl IdentityError {
    fn of<E, R>(
        error: &aws_sdk_sts::error::SdkError<E, R>,
        aws: &Aws,
        sign_in: SignIn,
    ) -> IdentityError
    where
        E: aws_sdk_sts::error::ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug,
    {
        use aws_sdk_sts::error::SdkError;
        let text = describe(error);
        if let SdkError::ServiceError(_) = error {
            return IdentityError::Rejected(text);
        }
        if let Some(credentials) = credentials_error(error) {
            return Self::of_credentials(credentials, sign_in, text);
        }
        match error {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
                IdentityError::Unreachable {
                    endpoint: aws.sts_endpoint(),
                    detail: text,
                }
            }
            _ => IdentityError::Provider(text),
        }
    }

    fn of_credentials(
        error: &aws_credential_types::provider::error::CredentialsError,
        sign_in: SignIn,
        text: String,
    ) -> IdentityError {
        use aws_credential_types::provider::error::CredentialsError;
        let chain = with_causes(error);
        match (sign_in, error) {
            (SignIn::Login, _) => IdentityError::LoginSession(chain),
            (SignIn::Sso, _) => IdentityError::SsoSession(chain),
            (SignIn::Other, CredentialsError::CredentialsNotLoaded(_)) => {
                IdentityError::Missing(text)
            }
            (SignIn::Other, _) => IdentityError::Provider(chain),
        }
    }

    /// What was wrong, in a line.
    pub fn detail(&self) -> String {
        match self {
            IdentityError::Missing(_) => "no credentials found (environment, profiles, SSO, console sign-in, container and instance roles were tried)".to_string(),
            IdentityError::LoginSession(e) => format!("the console sign-in session cannot be used: {e}"),
            IdentityError::SsoSession(e) => format!("the IAM Identity Center session cannot be used: {e}"),
            IdentityError::Provider(e) => format!("the credentials provider failed: {e}"),
            IdentityError::Unreachable { endpoint, detail } => {
                format!("could not reach STS at {endpoint} (no network, DNS or a proxy?): {detail}")
            }
            IdentityError::Rejected(e) => format!("STS refused the credentials: {e}"),
        }
    }

    /// The command (or step) that fixes it.
    pub fn fix(&self) -> &'static str {
        match self {
            IdentityError::Missing(_) => "aws login (console sign-in, AWS's recommendation for local development), or aws sso login --profile NAME, or aws configure",
            IdentityError::LoginSession(_) => "aws login (add --profile NAME for a named profile), then run this again",
            IdentityError::SsoSession(_) => "aws sso login --profile NAME, then run this again",
            IdentityError::Provider(_) => "check the profile's credential_process / role_arn settings (aws configure list --profile NAME)",
            IdentityError::Unreachable { .. } => "check the network connection and proxy settings (HTTPS_PROXY), and that --region names a real region",
            IdentityError::Rejected(_) => "aws login again (or aws sso login / aws configure): the keys or their session token are no longer valid",
        }
    }
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "could not read the caller identity (STS GetCallerIdentity): {}; fix: {}",
            self.detail(),
            self.fix()
        )
    }
}

impl std::error::Error for IdentityError {}

impl Aws {
    /// The deployer actions (`actions::deployer_actions`) IAM does not allow `principal` on
    /// this stage's resources in this region (SimulatePrincipalPolicy, one call per kind of
    /// resource).
    pub async fn missing_actions(&self, principal: &str, account: &str) -> Result<Vec<String>> {
        use anyhow::Context;
        let partition = principal.split(':').nth(1).unwrap_or("aws");
        let all = actions::deployer_actions();
        let mut scopes: Vec<actions::Scope> = all.iter().map(|(s, _)| *s).collect();
        scopes.dedup();
        let mut missing = Vec::new();
        for scope in scopes {
            let names: Vec<String> = all
                .iter()
                .filter(|(s, _)| *s == scope)
                .map(|(_, a)| a.to_string())
                .collect();
            let resource = scope.example(partition, account, &self.region(), &self.names);
            let out = self
                .iam()
                .simulate_principal_policy()
                .policy_source_arn(principal)
                .set_action_names(Some(names))
                .set_resource_arns(resource.map(|r| vec![r]))
                .send()
                .await
                .map_err(AwsError::from)
                .context("IAM SimulatePrincipalPolicy")?;
            for result in out.evaluation_results() {
                if result.eval_decision()
                    != &aws_sdk_iam::types::PolicyEvaluationDecisionType::Allowed
                {
                    missing.push(result.eval_action_name().to_string());
                }
            }
        }
        missing.sort();
        missing.dedup();
        Ok(missing)
    }
}

/// The account and principal behind the credentials.
#[derive(Debug, Clone, Serialize)]
pub struct Identity {
    pub account: String,
    pub arn: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_endpoints() {
        for url in [
            "http://127.0.0.1:9000",
            "http://localhost:4566/",
            "http://[::1]:9000",
            "127.0.0.5:80",
        ] {
            assert!(is_loopback(url), "{url}");
        }
        for url in [
            "https://lambda.us-east-1.amazonaws.com",
            "http://10.0.0.1:9000",
            "http://localhost.example.com",
        ] {
            assert!(!is_loopback(url), "{url}");
        }
    }

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
