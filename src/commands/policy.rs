//! `policy`: the least-privilege IAM policy a backend host needs to call this function (its
//! ARN only) — what the old deployment guide had people write by hand; with `--deployer`,
//! the one the deploying identity needs (`aws::actions`).

use std::fmt;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;
use serde_json::{json, Value};

use crate::aws::actions::deployer_policy;
use crate::aws::lambda::function_info;
use crate::aws::Aws;
use crate::cli::{GlobalArgs, PolicyArgs};
use crate::output::emit;

#[derive(Debug, Clone, Serialize)]
pub struct PolicyReport {
    pub function_arn: String,
    /// False when the function is not deployed yet and the ARN was composed from the account,
    /// region and name.
    pub deployed: bool,
    pub policy: Value,
}

impl fmt::Display for PolicyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string_pretty(&self.policy).map_err(|_| fmt::Error)?;
        write!(f, "{text}")
    }
}

/// Invoke (SDK) and InvokeFunctionUrl (signed URL calls) on this one function.
pub fn policy_for(function_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "InvokeUmmaticsSentiment",
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": function_arn
            },
            {
                "Sid": "InvokeUmmaticsSentimentUrl",
                "Effect": "Allow",
                "Action": "lambda:InvokeFunctionUrl",
                "Resource": function_arn,
                "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}}
            }
        ]
    })
}

/// The deployer's policy, for the caller's account.
#[derive(Debug, Clone, Serialize)]
pub struct DeployerPolicyReport {
    pub account: String,
    pub policy: Value,
}

impl fmt::Display for DeployerPolicyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string_pretty(&self.policy).map_err(|_| fmt::Error)?;
        write!(f, "{text}")
    }
}

pub async fn run(args: PolicyArgs, global: &GlobalArgs) -> Result<ExitCode> {
    let aws = Aws::load(&global.aws).await;
    if args.deployer {
        let id = aws.caller_identity().await?;
        let partition = id.arn.split(':').nth(1).unwrap_or("aws");
        emit(
            global.output,
            &DeployerPolicyReport {
                policy: deployer_policy(partition, &id.account),
                account: id.account,
            },
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let (function_arn, deployed) = match function_info(&aws, &aws.names.function).await? {
        Some(f) => (f.arn, true),
        None => {
            let id = aws.caller_identity().await?;
            let partition = id.arn.split(':').nth(1).unwrap_or("aws").to_string();
            eprintln!(
                "note: {} is not deployed in {}; the ARN below is where deploy will put it",
                aws.names.function,
                aws.region()
            );
            (
                format!(
                    "arn:{partition}:lambda:{}:{}:function:{}",
                    aws.region(),
                    id.account,
                    aws.names.function
                ),
                false,
            )
        }
    };
    let report = PolicyReport {
        policy: policy_for(&function_arn),
        function_arn,
        deployed,
    };
    emit(global.output, &report)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_only_the_function() {
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:f";
        let p = policy_for(arn);
        for statement in p["Statement"].as_array().unwrap() {
            assert_eq!(statement["Resource"], arn);
            assert!(statement["Action"]
                .as_str()
                .unwrap()
                .starts_with("lambda:Invoke"));
        }
    }
}
