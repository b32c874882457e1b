//! Facts about AWS Lambda that every layer above may use, and nothing above it: instruction
//! sets, CPU per memory size, prices, limits, log group names, the REPORT line, what a public
//! URL's policy needs and how much concurrency can be reserved. No AWS calls: those are
//! `crate::aws::lambda`'s and `crate::aws::logs`'s, one layer up.

use std::fmt;

use anyhow::Result;
use clap::ValueEnum;
use serde::{Deserialize, Serialize};

/// The memory sizes Lambda accepts, in MB.
pub const MEMORY_MB: std::ops::RangeInclusive<u32> = 128..=10240;

/// `--memory`: megabytes as a whole number (`2048`; `2048MB` too). Other units are refused with
/// the number to write instead (`2GB` is `2048`), and so is a size Lambda does not offer.
pub fn parse_memory_mb(raw: &str) -> Result<u32, String> {
    let trimmed = raw.trim();
    let lower = trimmed.to_ascii_lowercase();
    let digits = lower.strip_suffix("mb").unwrap_or(&lower).trim();
    let range = || format!("{}-{}", MEMORY_MB.start(), MEMORY_MB.end());
    if let Some(gb) = lower.strip_suffix("gb").or_else(|| lower.strip_suffix('g')) {
        return Err(match gb.trim().parse::<f64>() {
            Ok(n) if n > 0.0 => format!(
                "{raw:?}: --memory is in MB, as a whole number: write {:.0}",
                n * 1024.0
            ),
            _ => format!(
                "{raw:?}: --memory is in MB, as a whole number ({})",
                range()
            ),
        });
    }
    let mb: u32 = digits.parse().map_err(|_| {
        format!(
            "{raw:?} is not a memory size: --memory is in MB, as a whole number ({}), e.g. 2048",
            range()
        )
    })?;
    if !MEMORY_MB.contains(&mb) {
        return Err(format!(
            "{mb} MB is not a size Lambda offers: choose {} MB",
            range()
        ));
    }
    Ok(mb)
}

/// The timeouts Lambda accepts, in seconds.
pub const TIMEOUT_S: std::ops::RangeInclusive<u32> = 1..=900;

/// Lambda's instruction-set choices (serialised, and printed, as Lambda names them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum Arch {
    #[value(name = "x86_64", alias = "amd64", alias = "x86-64")]
    #[serde(rename = "x86_64")]
    X86_64,
    #[value(name = "arm64", alias = "aarch64")]
    #[serde(rename = "arm64")]
    Arm64,
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.lambda_name())
    }
}

impl Arch {
    /// The architecture this machine runs.
    pub fn host() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Arm64
        } else {
            Arch::X86_64
        }
    }

    /// Lambda's name (`x86_64`, `arm64`) back to the enum; anything else is x86_64, Lambda's
    /// default.
    pub fn from_lambda_name(name: &str) -> Arch {
        if name == "arm64" {
            Arch::Arm64
        } else {
            Arch::X86_64
        }
    }

    /// Lambda's name exactly (`x86_64`, `arm64`); `None` for anything else.
    pub fn parse_lambda_name(name: &str) -> Option<Arch> {
        [Arch::X86_64, Arch::Arm64]
            .into_iter()
            .find(|arch| arch.lambda_name() == name)
    }

    /// The name Lambda and CloudFormation use.
    pub fn lambda_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }
    /// The Rust target the function is built for.
    pub fn rust_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-musl",
            Arch::Arm64 => "aarch64-unknown-linux-musl",
        }
    }
    /// The OCI/Docker platform architecture.
    pub fn oci_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }
}

/// Who may call a function URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UrlAuth {
    /// Signed requests only (IAM).
    #[serde(rename = "AWS_IAM")]
    AwsIam,
    /// Anyone (a public URL).
    #[serde(rename = "NONE")]
    None,
}

impl UrlAuth {
    /// Lambda's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            UrlAuth::AwsIam => "AWS_IAM",
            UrlAuth::None => "NONE",
        }
    }
}

/// Memory at which Lambda gives a function one full vCPU.
pub const MB_PER_VCPU: u32 = 1769;
/// The most vCPUs a function gets (at 10 240 MB).
pub const MAX_VCPUS: u32 = 6;

/// Inference threads for a memory size: one per vCPU Lambda gives (one per 1769 MB, up to 6).
pub fn threads_for_memory(memory_mb: u32) -> u32 {
    memory_mb.div_ceil(MB_PER_VCPU).clamp(1, MAX_VCPUS)
}

/// The largest container image Lambda runs, uncompressed, all layers ("10 GB"; read as 10^9
/// bytes per GB, the stricter reading). [Lambda quotas]
pub const IMAGE_LIMIT_BYTES: u64 = 10_000_000_000;

/// Refuses an image whose files (uncompressed) Lambda would not take.
pub fn check_image_size(unpacked_bytes: u64) -> Result<()> {
    if unpacked_bytes > IMAGE_LIMIT_BYTES {
        anyhow::bail!(
            "the image would hold {:.2} GB uncompressed; Lambda runs images of at most 10 GB: \
             use a smaller model (see `eval` and the Models section of the README)",
            unpacked_bytes as f64 / 1e9
        );
    }
    Ok(())
}

/// The log group Lambda writes a function's logs to.
pub fn log_group(function: &str) -> String {
    format!("/aws/lambda/{function}")
}

/// The fields of a Lambda `REPORT` log line (parsed where the client reads an invoke's log
/// tail).
pub use ummatics_sentiment_client::report::Report;

/// The statements a public (`NONE`) function URL needs in the function's resource policy:
/// since October 2025 both `lambda:InvokeFunctionUrl` and `lambda:InvokeFunction` (the latter
/// with the `lambda:InvokedViaFunctionUrl` condition), else AWS answers 403
/// (<https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PublicAccess {
    pub invoke_function_url: bool,
    pub invoke_function: bool,
}

impl PublicAccess {
    /// Both statements are there.
    pub fn complete(self) -> bool {
        self.invoke_function_url && self.invoke_function
    }

    /// Reads a resource policy document (GetPolicy's `Policy`): statements that allow the
    /// public principal `*` each action. AWS writes the URL conditions under `Condition`
    /// (`lambda:FunctionUrlAuthType`, `lambda:InvokedViaFunctionUrl`); moto keeps the
    /// AddPermission fields (`FunctionUrlAuthType`, `InvokedViaFunctionUrl`) as they came —
    /// both are read.
    pub fn from_policy(policy: &serde_json::Value) -> PublicAccess {
        let statements: Vec<&serde_json::Value> = match &policy["Statement"] {
            serde_json::Value::Array(list) => list.iter().collect(),
            one @ serde_json::Value::Object(_) => vec![one],
            _ => Vec::new(),
        };
        let public = |s: &serde_json::Value| {
            s["Effect"] == "Allow" && (s["Principal"] == "*" || s["Principal"]["AWS"] == "*")
        };
        let actions = |s: &serde_json::Value| -> Vec<String> {
            match &s["Action"] {
                serde_json::Value::String(a) => vec![a.clone()],
                serde_json::Value::Array(list) => list
                    .iter()
                    .filter_map(|a| a.as_str().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            }
        };
        let truthy = |v: &serde_json::Value| v == &serde_json::json!(true) || v == "true";
        let via_url = |s: &serde_json::Value| {
            truthy(&s["Condition"]["Bool"]["lambda:InvokedViaFunctionUrl"])
                || truthy(&s["InvokedViaFunctionUrl"])
        };
        let mut access = PublicAccess {
            invoke_function_url: false,
            invoke_function: false,
        };
        for s in statements.into_iter().filter(|s| public(s)) {
            for action in actions(s) {
                match action.as_str() {
                    "lambda:InvokeFunctionUrl" => access.invoke_function_url = true,
                    "lambda:InvokeFunction" if via_url(s) => access.invoke_function = true,
                    "lambda:*" => {
                        access.invoke_function_url = true;
                        access.invoke_function = true;
                    }
                    _ => {}
                }
            }
        }
        access
    }
}

/// Lambda keeps this much of an account's concurrency unreserved in each region: a
/// reservation that would leave less is refused ("Configuring reserved concurrency").
pub const MIN_UNRESERVED: i64 = 100;

/// The Service Quotas page of Lambda's "Concurrent executions" quota.
pub const CONCURRENCY_QUOTA_URL: &str =
    "https://console.aws.amazon.com/servicequotas/home/services/lambda/quotas/L-B99A9384";

/// The account's concurrency in the region (Lambda GetAccountSettings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AccountConcurrency {
    pub total: i64,
    /// What no function has reserved.
    pub unreserved: i64,
}

impl AccountConcurrency {
    /// Whether `wanted` can be reserved for a function that now reserves `current`, leaving
    /// [`MIN_UNRESERVED`]; the refusal says the numbers and the way out. `public_default`:
    /// the reservation is the cap deploy gives a public URL, not one the user asked for.
    pub fn check_reservation(
        &self,
        region: &str,
        wanted: u32,
        current: Option<i64>,
        public_default: bool,
    ) -> Result<(), String> {
        let available = self.unreserved + current.unwrap_or(0) - MIN_UNRESERVED;
        if i64::from(wanted) <= available {
            return Ok(());
        }
        let account = format!(
            "this account has {} concurrent executions in {region}, {} of them unreserved, and \
             Lambda keeps {MIN_UNRESERVED} unreserved",
            self.total, self.unreserved
        );
        let quota = format!(
            "request a higher \"Concurrent executions\" quota ({CONCURRENCY_QUOTA_URL}; new \
             accounts start low)"
        );
        Err(if public_default {
            format!(
                "a public URL gets a reserved concurrency of {wanted} (its cost cap), and {account}: \
                 at most {} can be reserved. {quota}, or deploy without --public-url (an \
                 IAM-authenticated URL needs no cap)",
                available.max(0)
            )
        } else if available > 0 {
            format!(
                "reserved concurrency {wanted} cannot be set: {account}, so at most {available} \
                 can be reserved. Use --reserved-concurrency {available} or less, or {quota}"
            )
        } else {
            format!(
                "reserved concurrency {wanted} cannot be set: {account}, so none can be \
                 reserved. Drop --reserved-concurrency, or {quota}"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn arch_and_url_auth_are_stored_as_lambda_names() {
        use super::{Arch, UrlAuth};
        // Release records written before these were typed hold exactly these strings.
        for (arch, name) in [(Arch::X86_64, "\"x86_64\""), (Arch::Arm64, "\"arm64\"")] {
            assert_eq!(serde_json::to_string(&arch).unwrap(), name);
            assert_eq!(serde_json::from_str::<Arch>(name).unwrap(), arch);
        }
        assert_eq!(format!("{:<7}|", Arch::Arm64), "arm64  |");
        for (auth, name) in [
            (UrlAuth::AwsIam, "\"AWS_IAM\""),
            (UrlAuth::None, "\"NONE\""),
        ] {
            assert_eq!(serde_json::from_str::<UrlAuth>(name).unwrap(), auth);
        }
        assert!(serde_json::from_str::<Arch>("\"sparc\"").is_err());
    }

    #[test]
    fn a_reservation_must_leave_100_unreserved() {
        let fresh = AccountConcurrency {
            total: 1000,
            unreserved: 1000,
        };
        assert!(fresh.check_reservation("us-east-1", 10, None, true).is_ok());
        assert!(fresh
            .check_reservation("us-east-1", 900, None, false)
            .is_ok());
        let e = fresh
            .check_reservation("us-east-1", 901, None, false)
            .unwrap_err();
        assert!(e.contains("at most 900 can be reserved"), "{e}");
        assert!(e.contains("--reserved-concurrency 900 or less"), "{e}");
        // The function's own reservation is given back first.
        let used = AccountConcurrency {
            total: 1000,
            unreserved: 100,
        };
        assert!(used
            .check_reservation("us-east-1", 10, Some(10), true)
            .is_ok());
        assert!(used
            .check_reservation("us-east-1", 11, Some(10), false)
            .is_err());
        // A new account: 10 in all, nothing can be reserved, so a public URL needs a quota.
        let new = AccountConcurrency {
            total: 10,
            unreserved: 10,
        };
        let e = new
            .check_reservation("ca-west-1", 10, None, true)
            .unwrap_err();
        assert!(e.contains("10 concurrent executions in ca-west-1"), "{e}");
        assert!(e.contains("without --public-url"), "{e}");
        assert!(e.contains(CONCURRENCY_QUOTA_URL), "{e}");
        let e = new
            .check_reservation("ca-west-1", 5, None, false)
            .unwrap_err();
        assert!(e.contains("none can be reserved"), "{e}");
    }

    use super::*;

    #[test]
    fn memory_is_megabytes_as_a_whole_number() {
        assert_eq!(parse_memory_mb("2048"), Ok(2048));
        assert_eq!(parse_memory_mb("2048MB"), Ok(2048));
        assert_eq!(parse_memory_mb(" 1769 mb"), Ok(1769));
        assert_eq!(
            parse_memory_mb("2GB").unwrap_err(),
            "\"2GB\": --memory is in MB, as a whole number: write 2048"
        );
        assert!(parse_memory_mb("1.5g").unwrap_err().contains("write 1536"));
        assert!(parse_memory_mb("lots").unwrap_err().contains("e.g. 2048"));
        assert!(parse_memory_mb("64")
            .unwrap_err()
            .contains("64 MB is not a size Lambda offers: choose 128-10240 MB"));
    }

    #[test]
    fn images_over_ten_gb_are_refused() {
        assert!(check_image_size(IMAGE_LIMIT_BYTES).is_ok());
        let e = check_image_size(IMAGE_LIMIT_BYTES + 1).unwrap_err();
        assert!(e.to_string().contains("at most 10 GB"), "{e}");
    }

    #[test]
    fn a_public_url_needs_both_statements_in_aws_or_motos_shape() {
        use serde_json::json;
        let aws = json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "url", "Effect": "Allow", "Principal": "*",
             "Action": "lambda:InvokeFunctionUrl", "Resource": "arn",
             "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}}},
            {"Sid": "invoke", "Effect": "Allow", "Principal": "*",
             "Action": "lambda:InvokeFunction", "Resource": "arn",
             "Condition": {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}}]});
        assert!(PublicAccess::from_policy(&aws).complete());
        let moto = json!({"Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "lambda:InvokeFunctionUrl",
             "FunctionUrlAuthType": "NONE"},
            {"Effect": "Allow", "Principal": "*", "Action": "lambda:InvokeFunction",
             "InvokedViaFunctionUrl": true}]});
        assert!(PublicAccess::from_policy(&moto).complete());
        // The template before October 2025's change: the URL action only → 403 on AWS.
        let old = json!({"Statement": [{"Effect": "Allow", "Principal": "*",
            "Action": "lambda:InvokeFunctionUrl"}]});
        let access = PublicAccess::from_policy(&old);
        assert!(access.invoke_function_url && !access.invoke_function);
        // InvokeFunction for everyone without the URL condition is not what is asked for.
        let open = json!({"Statement": [{"Effect": "Allow", "Principal": "*",
            "Action": "lambda:InvokeFunction"}]});
        assert!(!PublicAccess::from_policy(&open).invoke_function);
        assert!(!PublicAccess::from_policy(&json!({})).invoke_function_url);
    }

    #[test]
    fn threads_follow_lambdas_vcpus() {
        assert_eq!(threads_for_memory(128), 1);
        assert_eq!(threads_for_memory(MB_PER_VCPU), 1);
        assert_eq!(threads_for_memory(MB_PER_VCPU + 1), 2);
        assert_eq!(threads_for_memory(3538), 2);
        assert_eq!(threads_for_memory(10_240), 6);
    }

    #[test]
    fn report_lines_parse_with_tabs_or_spaces() {
        let line = "REPORT RequestId: 1\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 2048 MB\tMax Memory Used: 80 MB\tInit Duration: 150.00 ms\t";
        let report = Report::parse(line).unwrap();
        assert_eq!(report.billed_ms, 13.0);
        assert_eq!(report.init_ms, Some(150.0));
        let tail = format!("START RequestId: 1\nEND RequestId: 1\n{line}\n");
        assert_eq!(Report::last_in(&tail), Some(report));
        assert_eq!(Report::parse("START RequestId: 1"), None);
    }

    #[test]
    fn arch_names_round_trip() {
        for arch in [Arch::X86_64, Arch::Arm64] {
            assert_eq!(Arch::from_lambda_name(arch.lambda_name()), arch);
        }
        assert_eq!(log_group("f"), "/aws/lambda/f");
    }
}
