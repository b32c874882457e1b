//! The function's `bootstrap` binary outside the image: how it is built for each architecture
//! (one [`Toolchain`], which `deploy` runs and `doctor` checks), how the build is reported, and
//! how the finished artifact is self-tested — natively or under an emulator — before anything
//! is pushed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::AsyncBufReadExt;

use crate::image::Bootstrap;
use crate::lambda::Arch;
use crate::models::ModelFiles;
use crate::output::Progress;

/// How the function is compiled for one architecture: a static musl binary, with cargo on this
/// machine's own architecture and with cargo-zigbuild (zig as C compiler and linker: no Docker,
/// no cross toolchain beyond `pip install ziglang`) for the other one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Toolchain {
    pub arch: Arch,
}

/// The C compiler tract's kernels are assembled with, for a native musl build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CCompiler {
    /// The variable the `cc` crate reads (`CC_x86_64_unknown_linux_musl`).
    pub variable: String,
    /// The compiler: the variable's value when set, else the default.
    pub program: String,
    /// Whether the variable was set (else the default is used and passed to cargo).
    pub configured: bool,
}

impl Toolchain {
    pub fn new(arch: Arch) -> Toolchain {
        Toolchain { arch }
    }

    pub fn target(self) -> &'static str {
        self.arch.rust_target()
    }

    /// Built with cargo-zigbuild (another architecture than this machine's).
    pub fn cross(self) -> bool {
        self.arch != Arch::host()
    }

    /// `build` or `zigbuild`.
    pub fn cargo_subcommand(self) -> &'static str {
        if self.cross() {
            "zigbuild"
        } else {
            "build"
        }
    }

    /// The C compiler a native build needs (`None` for cross builds: zig is the compiler).
    /// On x86_64, Debian's `musl-gcc` is the default; elsewhere the variable must be set.
    pub fn c_compiler(self) -> Option<CCompiler> {
        if self.cross() {
            return None;
        }
        let variable = format!("CC_{}", self.target().replace('-', "_"));
        let configured = std::env::var(&variable).ok();
        let program = configured.clone().unwrap_or_else(|| match self.arch {
            Arch::X86_64 => "musl-gcc".to_string(),
            Arch::Arm64 => "aarch64-linux-musl-gcc".to_string(),
        });
        Some(CCompiler {
            variable,
            configured: configured.is_some(),
            program,
        })
    }

    /// What to install when a build failed with this `cargo` output, if the output says.
    fn hint(self, output: &[String]) -> Option<String> {
        let says = |needle: &str| output.iter().any(|l| l.contains(needle));
        if self.cross() && (says("no such command") || says("zig")) {
            Some(
                "the cross toolchain is missing: cargo install --locked cargo-zigbuild && pip install ziglang"
                    .into(),
            )
        } else if says("target may not be installed") || says("can't find crate for `core`") {
            Some(format!(
                "the Rust target is missing: rustup target add {}",
                self.target()
            ))
        } else if says("musl-gcc") || says("failed to find tool") {
            Some("the musl C compiler is missing: sudo apt-get install musl-tools".into())
        } else {
            None
        }
    }
}

/// A finished build.
#[derive(Debug, Clone)]
pub struct Built {
    pub path: PathBuf,
    pub crates: usize,
    pub elapsed: Duration,
}

/// Without a terminal, one progress line per this interval (not one per crate).
pub const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(30);

/// What a build shows while cargo compiles: on a terminal, the spinner names each crate; in a
/// log, one line every [`PLAIN_PROGRESS_EVERY`] and nothing in between.
#[derive(Debug)]
pub struct BuildTicker {
    started: Instant,
    last_line: Instant,
    every: Duration,
    /// Crates compiled so far.
    pub crates: usize,
}

impl BuildTicker {
    pub fn new(now: Instant, every: Duration) -> BuildTicker {
        BuildTicker {
            started: now,
            last_line: now,
            every,
            crates: 0,
        }
    }

    /// One crate finished at `now`: the line a log gets, when one is due.
    pub fn compiled(&mut self, name: &str, now: Instant) -> Option<String> {
        self.crates += 1;
        if now.duration_since(self.last_line) < self.every {
            return None;
        }
        self.last_line = now;
        Some(format!(
            "{} crates compiled in {} (latest: {name})",
            self.crates,
            minutes(now.duration_since(self.started))
        ))
    }

    /// The one line that sums a build up.
    pub fn summary(&self, now: Instant) -> String {
        format!(
            "{} crates compiled in {}",
            self.crates,
            minutes(now.duration_since(self.started))
        )
    }
}

/// `1m 05s`, `42s`.
fn minutes(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// `cargo build --release --target <musl> -p ummatics-sentiment-function --bin bootstrap` in
/// the checkout this tool belongs to. Cargo's own output is shown with `verbose`, and its last
/// lines when the build fails.
pub async fn build(arch: Arch, progress: &Progress, verbose: bool) -> Result<Built> {
    let workspace = workspace_root().context(
        "no ummatics-sentiment checkout here to build the function from: run deploy inside \
         the repository, or pass --bootstrap PATH with a prebuilt static binary",
    )?;
    let toolchain = Toolchain::new(arch);
    let step = progress.step(format!(
        "bootstrap ({}, release{})",
        toolchain.target(),
        if toolchain.cross() {
            ", cargo zigbuild"
        } else {
            ""
        }
    ));
    let mut command = cargo_command(toolchain, &workspace);
    let mut child = command
        .spawn()
        .context("cannot run cargo: is Rust installed? (see `ummatics-sentiment doctor`)")?;
    let group = BuildGroup(child.id());
    let stdout = child.stdout.take().context("no cargo stdout")?;
    let stderr = child.stderr.take().context("no cargo stderr")?;
    let echo = verbose.then(|| progress.clone());
    let errors = tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        let mut tail = std::collections::VecDeque::new();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(progress) = &echo {
                progress.line(&line);
            }
            tail.push_back(line);
            if tail.len() > 40 {
                tail.pop_front();
            }
        }
        Vec::from(tail)
    });
    let mut ticker = BuildTicker::new(Instant::now(), PLAIN_PROGRESS_EVERY);
    let mut executable = None;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await? {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        if let Some(exe) = message["executable"].as_str() {
            executable = Some(PathBuf::from(exe));
        }
        let name = message["target"]["name"].as_str().unwrap_or("?");
        let due = ticker.compiled(name, Instant::now());
        if progress.is_live() {
            step.set(format!("compiled {name} ({} crates)", ticker.crates));
        } else if let Some(line) = due {
            step.set(line);
        }
    }
    let status = child.wait().await?;
    // Cargo has ended: nothing of the group is left to stop.
    std::mem::forget(group);
    let tail = errors.await.unwrap_or_default();
    if !status.success() {
        step.fail("cargo build failed");
        let hint = toolchain
            .hint(&tail)
            .map(|h| format!("\n{h}"))
            .unwrap_or_default();
        bail!("building the function failed:\n{}{hint}", tail.join("\n"));
    }
    let path = executable.context("cargo built no bootstrap executable")?;
    let now = Instant::now();
    step.done(format!("{} → {}", ticker.summary(now), path.display()));
    Ok(Built {
        path,
        crates: ticker.crates,
        elapsed: now.duration_since(ticker.started),
    })
}

/// The build's process group (cargo and the rustc jobs it starts), stopped with SIGTERM when
/// the build is dropped unfinished: a deploy interrupted by Ctrl-C, or by a SIGTERM sent to it
/// alone (a CI timeout, `timeout`), leaves no build running that holds cargo's lock on the
/// target directory. The group is cargo's own, so a terminal's Ctrl-C reaches only deploy,
/// which decides.
struct BuildGroup(Option<u32>);

impl Drop for BuildGroup {
    fn drop(&mut self) {
        if let Some(pid) = self.0.and_then(|pid| i32::try_from(pid).ok()) {
            // SAFETY: killpg only sends signals to the group cargo leads. SIGCONT after
            // SIGTERM (as systemd does) ends a stopped group too.
            unsafe {
                libc::killpg(pid, libc::SIGTERM);
                libc::killpg(pid, libc::SIGCONT);
            }
        }
    }
}

/// The cargo invocation for a release bootstrap, leading a process group of its own.
fn cargo_command(toolchain: Toolchain, workspace: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("cargo");
    command
        .current_dir(workspace)
        .args([
            toolchain.cargo_subcommand(),
            "--release",
            "--locked",
            "--target",
            toolchain.target(),
            "-p",
            "ummatics-sentiment-function",
            "--bin",
            "bootstrap",
            "--message-format=json-render-diagnostics",
        ])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(cc) = toolchain.c_compiler().filter(|cc| !cc.configured) {
        command.env(&cc.variable, &cc.program);
    }
    // Reproducible binaries: no checkout or home paths inside (panic locations carry them).
    // Same Cargo.lock + toolchain + target + these flags → the same bytes on any machine.
    if std::env::var_os("RUSTFLAGS").is_none()
        && std::env::var_os("CARGO_ENCODED_RUSTFLAGS").is_none()
    {
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
        let mut flags = vec![format!(
            "--remap-path-prefix={}=/build",
            workspace.display()
        )];
        if let Some(home) = cargo_home {
            flags.push(format!("--remap-path-prefix={}=/cargo", home.display()));
        }
        command.env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"));
    }
    command
}

/// The checkout holding `function/`: the current directory or one above it, else the one this
/// binary was built from.
pub fn workspace_root() -> Option<PathBuf> {
    let is_root =
        |dir: &Path| dir.join("function/Cargo.toml").is_file() && dir.join("Cargo.toml").is_file();
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            if is_root(dir) {
                return Some(dir.to_path_buf());
            }
        }
    }
    let built_from = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    is_root(&built_from).then_some(built_from)
}

/// How this machine runs a binary of some architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runner {
    /// Directly: it is this machine's architecture.
    Native,
    /// Under user-mode emulation (Debian's qemu-user-static): the emulator's program name.
    Emulated(String),
}

impl Runner {
    /// How to run `arch` binaries here; `None` when this machine cannot.
    pub fn for_arch(arch: Arch) -> Option<Runner> {
        if arch == Arch::host() {
            return Some(Runner::Native);
        }
        let name = match arch {
            Arch::Arm64 => "aarch64",
            Arch::X86_64 => "x86_64",
        };
        let path = std::env::var_os("PATH")?;
        [format!("qemu-{name}-static"), format!("qemu-{name}")]
            .into_iter()
            .find(|candidate| std::env::split_paths(&path).any(|dir| dir.join(candidate).is_file()))
            .map(Runner::Emulated)
    }

    fn command(&self, program: &Path) -> tokio::process::Command {
        match self {
            Runner::Native => tokio::process::Command::new(program),
            Runner::Emulated(emulator) => {
                let mut c = tokio::process::Command::new(emulator);
                c.arg(program);
                c
            }
        }
    }
}

/// `bootstrap --self-test --model DIR` on the artifact, with the model written to a temporary
/// directory: the binary and the files that go into the image, run before anything is pushed.
pub async fn self_test(bootstrap: &Bootstrap, model: &ModelFiles, runner: &Runner) -> Result<()> {
    let dir = tempfile::tempdir().context("cannot make a temporary directory")?;
    let model_dir = dir.path().join("model");
    std::fs::create_dir(&model_dir).context("cannot make a temporary directory")?;
    model.write_to(&model_dir)?;
    // The very bytes that go into the image (a carried function has no file of its own).
    let program = dir.path().join("bootstrap");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o755)
            .open(&program)
            .context("cannot write the bootstrap to a temporary directory")?;
        std::io::Write::write_all(&mut file, &bootstrap.bytes)
            .context("cannot write the bootstrap to a temporary directory")?;
    }
    let output = runner
        .command(&program)
        .arg("--self-test")
        .arg("--model")
        .arg(&model_dir)
        // Interrupted, deploy stops the self-test too.
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("cannot run {}", bootstrap.path.display()))?;
    if !output.status.success() {
        bail!(
            "the function's self-test failed ({}), nothing was pushed:\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr).trim_end()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_gets_one_line_per_interval_not_one_per_crate() {
        let start = Instant::now();
        let mut ticker = BuildTicker::new(start, Duration::from_secs(30));
        // 250 crates over 5 minutes, one every 1.2 s.
        let lines: Vec<String> = (1..=250)
            .filter_map(|i| {
                let at = start + Duration::from_millis(1200 * i);
                ticker.compiled(&format!("crate{i}"), at)
            })
            .collect();
        assert_eq!(lines.len(), 10, "{lines:#?}");
        assert_eq!(lines[0], "25 crates compiled in 30s (latest: crate25)");
        assert_eq!(lines[9], "250 crates compiled in 5m 00s (latest: crate250)");
        assert_eq!(
            ticker.summary(start + Duration::from_secs(301)),
            "250 crates compiled in 5m 01s"
        );
    }

    #[test]
    fn a_quick_build_prints_no_progress_line_at_all() {
        let start = Instant::now();
        let mut ticker = BuildTicker::new(start, Duration::from_secs(30));
        for i in 0..40 {
            assert_eq!(
                ticker.compiled("x", start + Duration::from_millis(500 * i)),
                None
            );
        }
    }

    #[test]
    fn build_failures_name_what_to_install() {
        let cross = Toolchain::new(match Arch::host() {
            Arch::X86_64 => Arch::Arm64,
            Arch::Arm64 => Arch::X86_64,
        });
        let native = Toolchain::new(Arch::host());
        let out = |s: &str| vec![s.to_string()];
        assert!(cross
            .hint(&out("error: no such command: `zigbuild`"))
            .unwrap()
            .contains("cargo install --locked cargo-zigbuild"));
        assert_eq!(
            native
                .hint(&out(
                    "note: the `x86_64-unknown-linux-musl` target may not be installed"
                ))
                .unwrap(),
            format!(
                "the Rust target is missing: rustup target add {}",
                native.target()
            )
        );
        assert!(native
            .hint(&out("failed to find tool \"musl-gcc\""))
            .unwrap()
            .contains("apt-get install musl-tools"));
        assert_eq!(native.hint(&out("error[E0308]: mismatched types")), None);
        assert!(cross.c_compiler().is_none());
        assert_eq!(native.cargo_subcommand(), "build");
        assert_eq!(cross.cargo_subcommand(), "zigbuild");
    }

    #[test]
    fn this_machine_runs_its_own_binaries_natively() {
        assert_eq!(Runner::for_arch(Arch::host()), Some(Runner::Native));
    }
}
