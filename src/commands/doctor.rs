//! `doctor`: is everything deploy needs here? One line per prerequisite, with the exact
//! command that fixes each missing one.

use std::fmt;
use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use crate::aws::{regions, Aws, Identity};
use crate::bootstrap::{self, Toolchain};
use crate::carried::Carried;
use crate::cli::{DoctorArgs, GlobalArgs};
use crate::image::docker::{unreachable_hint, Engine};
use crate::lambda::Arch;
use crate::models::ModelSpec;
use crate::output::emit;

/// One prerequisite.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    /// What was found, or what is wrong.
    pub detail: String,
    /// The command (or step) that fixes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// Deploy cannot work without it (the Docker engine is optional: the daemonless builder
    /// makes images without one).
    pub required: bool,
}

impl Check {
    fn ok(name: &str, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            ok: true,
            detail: detail.into(),
            fix: None,
            required: true,
        }
    }
    fn missing(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
            required: true,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    pub ok: bool,
    pub checks: Vec<Check>,
}

impl fmt::Display for DoctorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.checks {
            let mark = crate::output::mark(
                check.ok,
                crate::output::colour(std::io::stdout().is_terminal()),
            );
            writeln!(f, "{mark} {:<18} {}", check.name, check.detail)?;
            if let Some(fix) = &check.fix {
                writeln!(f, "  {:<18} fix: {fix}", "")?;
            }
        }
        if self.ok {
            write!(f, "everything deploy needs is here")
        } else {
            let n = self.checks.iter().filter(|c| !c.ok && c.required).count();
            write!(f, "{n} prerequisite(s) missing: run the fixes above, then `ummatics-sentiment doctor` again")
        }
    }
}

pub async fn run(args: DoctorArgs, global: &GlobalArgs) -> Result<ExitCode> {
    let aws = Aws::load(&global.aws).await;
    let mut checks = Vec::new();

    let identity = aws.caller_identity().await;
    checks.push(match &identity {
        Ok(id) => Check::ok(
            "AWS credentials",
            format!("account {} as {}", id.account, id.arn),
        ),
        Err(e) => Check::missing("AWS credentials", e.detail(), e.fix()),
    });
    if let Ok(id) = &identity {
        checks.push(permissions_check(&aws, id).await);
    }
    let region = aws.region();
    let endpoint = aws
        .endpoint()
        .map(|url| format!(" (endpoint {url})"))
        .unwrap_or_default();
    checks.push(match regions::unknown(&region) {
        None => Check::ok(
            "AWS region",
            format!(
                "{region}, {}{endpoint}",
                regions::describe(&region).unwrap_or_default()
            ),
        ),
        Some(why) => Check::missing(
            "AWS region",
            format!("{why}{endpoint}"),
            "--region NAME (or AWS_REGION, or region = in the profile)",
        ),
    });

    checks.push(match Engine::connect().await {
        Ok(engine) => Check::ok(
            "Docker engine",
            format!(
                "{} (API {}, {}/{})",
                engine.version.version,
                engine.version.api_version,
                engine.version.os,
                engine.version.arch
            ),
        ),
        Err(_) => Check {
            required: false,
            ..Check::missing(
                "Docker engine",
                format!(
                    "{} (optional: deploy builds the image without a daemon, --builder oci)",
                    unreachable_hint()
                ),
                "sudo systemctl start docker (Debian/Ubuntu: sudo apt-get install docker.io first)",
            )
        },
    });

    checks.extend(function_checks(&args).await);
    checks.push(model_check(&args.model).await);

    let ok = checks.iter().all(|c| c.ok || !c.required);
    emit(global.output, &DoctorReport { ok, checks })?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Whether the caller may do what deploy, rollback and destroy do: every action of
/// `policy --deployer` simulated for the caller (IAM SimulatePrincipalPolicy) on this stage's
/// resources. Not every caller can be simulated (the root user, a role with a path, no
/// `iam:SimulatePrincipalPolicy`): then it says so and is not a failure.
async fn permissions_check(aws: &Aws, id: &Identity) -> Check {
    let not_checked = |why: String| {
        Check {
        required: false,
        ..Check::ok(
            "deploy permissions",
            format!("not checked: {why}; `ummatics-sentiment policy --deployer` prints what deploy needs"),
        )
    }
    };
    let principal = match simulation_principal(&id.arn) {
        Ok(principal) => principal,
        Err(why) => return not_checked(why),
    };
    match aws.missing_actions(&principal, &id.account).await {
        Ok(missing) if missing.is_empty() => Check::ok(
            "deploy permissions",
            format!("{principal} may do all that deploy, rollback and destroy do"),
        ),
        Ok(missing) => Check::missing(
            "deploy permissions",
            format!(
                "{principal} is not allowed {} action(s) deploy, rollback or destroy need: {}",
                missing.len(),
                missing.join(", ")
            ),
            "ummatics-sentiment policy --deployer > deployer-policy.json, make it a managed policy (aws iam create-policy --policy-document file://deployer-policy.json) and attach it to this user or role",
        ),
        Err(e) => not_checked(format!("{e:#}")),
    }
}

/// The IAM principal to simulate for a caller ARN: a user as it is, an assumed role's role.
fn simulation_principal(arn: &str) -> Result<String, String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [_, partition, service, _, account, resource] = parts[..] else {
        return Err(format!("{arn} is not an ARN"));
    };
    let path: Vec<&str> = resource.split('/').collect();
    match (service, &path[..]) {
        (_, ["root"]) => Err("the account's root user may do everything (AWS advises deploying as an IAM user or role)".into()),
        ("iam", ["user", ..]) => Ok(arn.to_string()),
        ("sts", ["assumed-role", role, _]) => {
            Ok(format!("arn:{partition}:iam::{account}:role/{role}"))
        }
        _ => Err(format!("{arn} is neither an IAM user nor an assumed role")),
    }
}

async fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .output()
        .await
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Where deploy gets the function for `--arch`: carried by this binary (nothing to install), or
/// built from a checkout (then the toolchain is checked, as it is with `--build-function`).
async fn function_checks(args: &DoctorArgs) -> Vec<Check> {
    let carried = match Carried::this_binary() {
        Ok(carried) => carried,
        Err(e) => {
            return vec![Check::missing(
                "function",
                format!("{e:#}"),
                "download and install the release again (README, \"Install\")",
            )]
        }
    };
    let carries_arch = carried.as_ref().is_some_and(|c| c.has(args.arch));
    let mut checks = Vec::new();
    match &carried {
        Some(c) if carries_arch => checks.push(Check::ok(
            "function",
            format!(
                "carried: {} (deploy compiles nothing)",
                c.describe()
            ),
        )),
        Some(c) => checks.push(Check {
            required: false,
            ..Check::missing(
                "function",
                format!(
                    "carried for {} only, not {}",
                    c.architectures()
                        .iter()
                        .map(|a| a.lambda_name())
                        .collect::<Vec<_>>()
                        .join(" and "),
                    args.arch.lambda_name()
                ),
                format!(
                    "deploy --bootstrap PATH with a static {} bootstrap, or build one in a checkout",
                    args.arch.rust_target()
                ),
            )
        }),
        None if bootstrap::workspace_root().is_some() => checks.push(Check::ok(
            "function",
            "built from this checkout by deploy (a development build carries none)",
        )),
        None => checks.push(Check::missing(
            "function",
            "this binary carries no function (a development build) and there is no checkout here",
            "install a release (README, \"Install\"), or deploy --bootstrap PATH",
        )),
    }
    // The toolchain matters only where deploy would compile: asked to, or a development build
    // inside a checkout.
    let builds =
        args.build_function || (carried.is_none() && bootstrap::workspace_root().is_some());
    if builds {
        checks.extend(toolchain_checks(args.arch).await);
    }
    checks
}

/// cargo, the musl target, and the C compiler tract's kernels need for it.
async fn toolchain_checks(arch: Arch) -> Vec<Check> {
    let mut checks = Vec::new();
    let toolchain = Toolchain::new(arch);
    let target = toolchain.target();
    match command_output("cargo", &["--version"]).await {
        Some(version) => checks.push(Check::ok("Rust toolchain", version)),
        None => {
            checks.push(Check::missing(
                "Rust toolchain",
                "cargo is not on PATH",
                "curl --proto '=https' -sSf https://sh.rustup.rs | sh",
            ));
            return checks;
        }
    }
    match command_output("rustup", &["target", "list", "--installed"]).await {
        Some(list) if list.lines().any(|l| l.trim() == target) => {
            checks.push(Check::ok("Rust target", target))
        }
        Some(_) => checks.push(Check::missing(
            "Rust target",
            format!("{target} is not installed"),
            format!("rustup target add {target}"),
        )),
        None => checks.push(Check::missing(
            "Rust target",
            "rustup is not on PATH, so the target cannot be checked",
            format!("install rustup, then: rustup target add {target}"),
        )),
    }
    if toolchain.cross() {
        // Cross builds go through cargo-zigbuild with zig (PyPI's ziglang works).
        match command_output("cargo-zigbuild", &["--version"]).await {
            Some(v) => checks.push(Check::ok("cargo-zigbuild", v)),
            None => checks.push(Check::missing(
                "cargo-zigbuild",
                format!("needed to cross-build for {target}"),
                "cargo install --locked cargo-zigbuild",
            )),
        }
        let zig = match command_output("zig", &["version"]).await {
            Some(v) => Some(v),
            None => command_output("python3", &["-m", "ziglang", "version"]).await,
        };
        match zig {
            Some(v) => checks.push(Check::ok("zig", v)),
            None => checks.push(Check::missing(
                "zig",
                "not found (cargo-zigbuild links with it)",
                "pip install ziglang",
            )),
        }
        return checks;
    }
    let Some(cc) = toolchain.c_compiler() else {
        return checks;
    };
    match command_output("sh", &["-c", &format!("command -v {}", cc.program)]).await {
        Some(path) => checks.push(Check::ok("musl C compiler", path)),
        None => checks.push(Check::missing(
            "musl C compiler",
            format!(
                "{} not found (tract assembles its kernels with a C compiler)",
                cc.program
            ),
            match arch {
                Arch::X86_64 => "sudo apt-get install musl-tools".to_string(),
                Arch::Arm64 => format!(
                    "install an aarch64 musl cross compiler and set {}, or pass --bootstrap PATH to deploy",
                    cc.variable
                ),
            },
        )),
    }
    checks
}

async fn model_check(model: &ModelSpec) -> Check {
    match model {
        ModelSpec::Hub(id) => Check::ok(
            "model",
            format!("{id} (Hugging Face; downloaded into the cache at deploy)"),
        ),
        other => match other.files().await {
            Ok(files) => Check::ok(
                "model",
                format!(
                    "{} ({} files, {})",
                    files.source,
                    files.files.len(),
                    crate::output::human_bytes(files.total_bytes())
                ),
            ),
            Err(e) => Check::missing(
                "model",
                format!("{e:#}"),
                "pass --model mini or a model directory",
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_principal_simulated_for_each_kind_of_caller() {
        assert_eq!(
            simulation_principal("arn:aws:iam::123456789012:user/deployer"),
            Ok("arn:aws:iam::123456789012:user/deployer".into())
        );
        assert_eq!(
            simulation_principal("arn:aws:sts::123456789012:assumed-role/Deploy/ci-run-7"),
            Ok("arn:aws:iam::123456789012:role/Deploy".into())
        );
        assert!(simulation_principal("arn:aws:iam::123456789012:root").is_err());
        assert!(simulation_principal("arn:aws:sts::123456789012:federated-user/x").is_err());
        assert!(simulation_principal("nonsense").is_err());
    }
}
