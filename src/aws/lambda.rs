//! AWS Lambda calls: a function's configuration, URL and resource policy, the account's and
//! function's concurrency, and one raw invoke (`invoke --payload`). Batched invokes are the
//! client crate's (`ummatics_sentiment_client::BatchInvoker`). What these facts mean (arches,
//! limits, what a public URL needs) is `crate::lambda`'s.

use anyhow::{Context, Result};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::FunctionUrlAuthType;
use serde::Serialize;

use aws_sdk_lambda::operation::get_function::GetFunctionOutput;

use super::{Aws, AwsError, Found};
use crate::lambda::{AccountConcurrency, Arch, PublicAccess, UrlAuth};

/// A deployed function's configuration.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionInfo {
    pub name: String,
    pub arn: String,
    pub memory_mb: i32,
    pub timeout_s: i32,
    pub architecture: String,
    pub image_uri: Option<String>,
    pub image_digest: Option<String>,
    pub last_modified: Option<String>,
    pub state: Option<String>,
    pub url: Option<String>,
    /// Who may call the URL (`None`: no URL).
    pub url_auth: Option<UrlAuth>,
    /// The function's reserved concurrency: the most instances that run at once (`None`: no
    /// cap, the account's unreserved pool).
    pub reserved_concurrency: Option<i32>,
    /// For a public URL: whether the resource policy grants what AWS requires.
    pub public_access: Option<PublicAccess>,
}

impl FunctionInfo {
    pub fn arch(&self) -> Arch {
        Arch::from_lambda_name(&self.architecture)
    }
}

/// The account's concurrency in the region (Lambda GetAccountSettings).
pub async fn account_concurrency(aws: &Aws) -> Result<AccountConcurrency> {
    let out = aws
        .lambda()
        .get_account_settings()
        .send()
        .await
        .map_err(AwsError::from)
        .context("cannot read the account's Lambda quotas (Lambda GetAccountSettings)")?;
    let limit = out
        .account_limit()
        .context("GetAccountSettings returned no AccountLimit")?;
    let total = i64::from(limit.concurrent_executions());
    Ok(AccountConcurrency {
        total,
        unreserved: limit
            .unreserved_concurrent_executions()
            .map_or(total, i64::from),
    })
}

/// The function's own reservation now (Lambda GetFunctionConcurrency); none for a function
/// that does not exist.
pub async fn reserved_concurrency(aws: &Aws, name: &str) -> Result<Option<i64>> {
    let out = aws
        .lambda()
        .get_function_concurrency()
        .function_name(name)
        .send()
        .await
        .found()
        .with_context(|| format!("cannot read the concurrency of {name}"))?;
    Ok(out.and_then(|out| out.reserved_concurrent_executions().map(i64::from)))
}

/// Lambda GetFunction; `None` when there is no such function.
async fn get_function(aws: &Aws, name: &str) -> Result<Option<GetFunctionOutput>> {
    aws.lambda()
        .get_function()
        .function_name(name)
        .send()
        .await
        .found()
        .with_context(|| format!("cannot read function {name} (Lambda GetFunction)"))
}

/// Whether a function of this name exists (Lambda GetFunction).
pub async fn function_exists(aws: &Aws, name: &str) -> Result<bool> {
    Ok(get_function(aws, name).await?.is_some())
}

/// Function `name`'s configuration and URL, or `None` when there is no such function.
pub async fn function_info(aws: &Aws, name: &str) -> Result<Option<FunctionInfo>> {
    let Some(out) = get_function(aws, name).await? else {
        return Ok(None);
    };
    let config = out
        .configuration()
        .context("GetFunction returned no configuration")?;
    let reserved_concurrency = out
        .concurrency()
        .and_then(|c| c.reserved_concurrent_executions());
    let image_uri = out.code().and_then(|c| c.image_uri()).map(str::to_string);
    let url = function_url(aws, name).await?;
    let public_access = match &url {
        Some(FunctionUrl {
            auth: UrlAuth::None,
            ..
        }) => Some(public_access(aws, name).await?),
        _ => None,
    };
    let image_digest = image_uri
        .as_deref()
        .and_then(|u| u.split_once('@'))
        .map(|(_, d)| d.to_string());
    Ok(Some(FunctionInfo {
        name: config.function_name().unwrap_or_default().to_string(),
        arn: config.function_arn().unwrap_or_default().to_string(),
        memory_mb: config.memory_size().unwrap_or_default(),
        timeout_s: config.timeout().unwrap_or_default(),
        architecture: config
            .architectures()
            .first()
            .map(|a| a.as_str().to_string())
            .unwrap_or_else(|| "x86_64".into()),
        image_uri,
        image_digest,
        last_modified: config.last_modified().map(str::to_string),
        state: config.state().map(|s| s.as_str().to_string()),
        url_auth: url.as_ref().map(|u| u.auth),
        url: url.map(|u| u.url),
        reserved_concurrency,
        public_access,
    }))
}

/// A function URL and who may call it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionUrl {
    pub url: String,
    pub auth: UrlAuth,
}

/// The function URL, read from Lambda (not a stack output: moto cannot serve that); none →
/// `None`.
pub async fn function_url(aws: &Aws, function: &str) -> Result<Option<FunctionUrl>> {
    let out = aws
        .lambda()
        .get_function_url_config()
        .function_name(function)
        .send()
        .await
        .found()
        .context("cannot read the function URL")?;
    Ok(out.map(|out| FunctionUrl {
        url: out.function_url().to_string(),
        auth: match out.auth_type() {
            FunctionUrlAuthType::None => UrlAuth::None,
            _ => UrlAuth::AwsIam,
        },
    }))
}

/// What the function's resource policy grants the public (no policy: nothing).
pub async fn public_access(aws: &Aws, function: &str) -> Result<PublicAccess> {
    let out = aws
        .lambda()
        .get_policy()
        .function_name(function)
        .send()
        .await
        .found()
        .with_context(|| format!("cannot read the resource policy of {function}"))?;
    let policy = out.as_ref().and_then(|out| out.policy()).unwrap_or("{}");
    let policy: serde_json::Value = serde_json::from_str(policy)
        .with_context(|| format!("the resource policy of {function} is not JSON"))?;
    Ok(PublicAccess::from_policy(&policy))
}

/// What one raw invoke answered: the payload's bytes, and Lambda's function error (its
/// `X-Amz-Function-Error`) when the function failed.
#[derive(Debug, Clone)]
pub struct Invoked {
    pub payload: Vec<u8>,
    pub function_error: Option<String>,
}

/// Invoke (RequestResponse) with this payload, once (the SDK's retries apply). Typed: a
/// missing function is [`AwsError::is_not_found`].
pub async fn invoke(aws: &Aws, function: &str, payload: Vec<u8>) -> Result<Invoked, AwsError> {
    let out = aws
        .lambda()
        .invoke()
        .function_name(function)
        .payload(Blob::new(payload))
        .send()
        .await?;
    Ok(Invoked {
        payload: out
            .payload()
            .map(|b| b.as_ref().to_vec())
            .unwrap_or_default(),
        function_error: out.function_error().map(str::to_string),
    })
}

/// The batching client (the client crate's) on this configuration's Lambda client.
pub fn invoker(
    aws: &Aws,
    function: &str,
    options: ummatics_sentiment_client::InvokerOptions,
) -> ummatics_sentiment_client::BatchInvoker {
    ummatics_sentiment_client::BatchInvoker::new(aws.lambda(), function, options)
}
