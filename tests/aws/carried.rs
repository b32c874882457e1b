//! The binary ships its function: the CLI as a release builds it (`scripts/carry.sh` attaches
//! both bootstraps; `scripts/test.sh` does it to the test build), copied alone into an empty
//! folder and run with a bare environment — no cargo or rustc on PATH, an empty HOME, outside
//! any checkout — deploys x86_64 and arm64 with the daemonless builder, and the image's
//! `bootstrap` is byte for byte the one it carries. Its packaging: `install.sh` installs a good
//! tarball and refuses a tampered one.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use ummatics_sentiment_function::build_info::BuildId;

use crate::common::{StandIns, ECR_PASSWORD};

fn carried_cli() -> PathBuf {
    std::env::var_os("UMMATICS_TEST_CARRIED_CLI")
        .expect(
            "UMMATICS_TEST_CARRIED_CLI is not set: scripts/test.sh attaches the bootstraps to \
             the test build (scripts/carry.sh); run the tests with it",
        )
        .into()
}

/// An empty folder holding only the binary, an empty HOME, and a PATH of one folder with
/// only the emulator in it: nothing else of this machine is reachable by name.
struct Bare {
    _root: tempfile::TempDir,
    dir: PathBuf,
    home: PathBuf,
    bin: PathBuf,
    exe: PathBuf,
}

impl Bare {
    fn new() -> Bare {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("work");
        let home = root.path().join("home");
        let bin = root.path().join("bin");
        for d in [&dir, &home, &bin] {
            std::fs::create_dir(d).unwrap();
        }
        let exe = dir.join("ummatics-sentiment");
        std::fs::copy(carried_cli(), &exe).unwrap();
        let qemu = which("qemu-aarch64-static")
            .expect("qemu-aarch64-static is not installed (scripts/standins.sh install)");
        std::os::unix::fs::symlink(qemu, bin.join("qemu-aarch64-static")).unwrap();
        for tool in [
            "cargo",
            "rustc",
            "rustup",
            "cargo-zigbuild",
            "zig",
            "musl-gcc",
        ] {
            assert!(!bin.join(tool).exists());
        }
        // Outside any checkout: no Cargo.toml in the folder or above it.
        assert!(dir
            .ancestors()
            .all(|d| !d.join("Cargo.toml").exists() && !d.join("function").exists()));
        Bare {
            _root: root,
            dir,
            home,
            bin,
            exe,
        }
    }

    /// `env -i` with only what a user's shell would give, plus the stand-ins' endpoint.
    fn command(&self, s: &StandIns) -> Command {
        let mut command = Command::new(&self.exe);
        command
            .env_clear()
            .current_dir(&self.dir)
            .env("HOME", &self.home)
            .env("PATH", &self.bin)
            .env("AWS_ENDPOINT_URL", &s.aws_endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("UMMATICS_AWS_MAX_ATTEMPTS", "1");
        command
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn run(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn sha256_of(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// The `var/runtime/bootstrap` file of the image's first layer, read from the registry.
fn bootstrap_in_registry(s: &StandIns, repository: &str, layer: &str) -> Vec<u8> {
    let out = Command::new("curl")
        .args([
            "-sfL",
            "-u",
            &format!("AWS:{ECR_PASSWORD}"),
            &format!("http://{}/v2/{repository}/blobs/{layer}", s.registry),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "cannot fetch blob {layer}");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(out.stdout.as_slice()));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap() == Path::new("var/runtime/bootstrap") {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            return bytes;
        }
    }
    panic!("no var/runtime/bootstrap in layer {layer}");
}

#[test]
fn the_released_binary_alone_deploys_both_architectures_with_the_function_it_carries() {
    let s = crate::common::standins();
    let bare = Bare::new();
    let cli_build = BuildId::current();

    // It says which build it is, and that it carries the function for both architectures;
    // doctor asks for no toolchain.
    let version = run(bare.command(&s).arg("--version"));
    assert_eq!(version.trim(), format!("ummatics-sentiment {cli_build}"));
    let doctor: serde_json::Value = serde_json::from_str(&run(bare
        .command(&s)
        .args(["--output", "json", "doctor", "--arch", "arm64"])))
    .unwrap();
    let checks = doctor["checks"].as_array().unwrap();
    let function = checks.iter().find(|c| c["name"] == "function").unwrap();
    assert_eq!(function["ok"], true, "{doctor:#}");
    assert!(
        function["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("carried: {cli_build} for x86_64 and arm64")),
        "{doctor:#}"
    );
    for toolchain in ["Rust toolchain", "Rust target", "cargo-zigbuild", "zig"] {
        assert!(
            checks.iter().all(|c| c["name"] != toolchain),
            "doctor checks {toolchain} though the function is carried: {doctor:#}"
        );
    }

    // invoke --local runs from there too.
    let local =
        run(bare
            .command(&s)
            .args(["invoke", "--local", "I love this!", "This is terrible"]));
    assert!(
        local.contains("positive") && local.contains("negative"),
        "{local}"
    );

    let pid = std::process::id();
    for (arch, carried_file, model, smoke) in [
        ("x86_64", &s.bootstrap, "minilm", "passed"),
        // The small model under qemu: the emulated smoke test of the default takes ~50 s.
        ("arm64", &s.bootstrap_arm64, "mini", "passed (emulated)"),
    ] {
        // Stage names have at most 16 characters; CI's process ids have seven digits.
        let stage = format!("car{}{pid}", &arch[..1]);
        let repository = format!("ummatics-sentiment-{stage}");
        s.destroy(&stage);
        let report: serde_json::Value = serde_json::from_str(&run(bare
            .command(&s)
            .args(["--stage", &stage, "--output", "json", "deploy", "--yes"])
            .args(["--arch", arch, "--model", model, "--builder", "oci"])
            .args(["--registry", &s.registry])))
        .unwrap();
        assert_eq!(report["outcome"], "created", "{report:#}");
        assert_eq!(report["architecture"], arch);
        assert_eq!(report["smoke_test"], smoke, "{report:#}");
        // The report names the carried function: this build, and the file's SHA-256.
        let function = &report["function"];
        assert_eq!(function["source"], "carried", "{report:#}");
        assert_eq!(function["version"], cli_build.version.as_str());
        assert_eq!(function["commit"], cli_build.commit.as_str());
        assert_eq!(function["sha256"], sha256_of(carried_file).as_str());

        // The image's bootstrap is byte for byte the carried one; its labels name the build.
        let layer = report["blobs"][0]["digest"].as_str().unwrap();
        let pushed = bootstrap_in_registry(&s, &repository, layer);
        assert!(
            pushed == std::fs::read(carried_file).unwrap(),
            "the {arch} image's bootstrap is not the carried one"
        );
        let digest = report["image_digest"].as_str().unwrap();
        let config = s.skopeo_inspect(&repository, digest, true);
        let labels = &config["config"]["Labels"];
        assert_eq!(
            labels["org.opencontainers.image.version"],
            cli_build.version.as_str()
        );
        assert_eq!(
            labels["org.opencontainers.image.revision"],
            cli_build.commit.as_str()
        );

        // info shows the deployed function's build beside the CLI's: the same.
        let info = run(bare.command(&s).args(["--stage", &stage, "info"]));
        assert!(
            info.contains(&format!("  bootstrap {cli_build}, carried, sha256:")),
            "{info}"
        );
        assert!(
            info.contains(&format!("  cli       {cli_build} (the same build)")),
            "{info}"
        );
        s.destroy(&stage);
    }
}

#[test]
fn install_sh_installs_a_good_tarball_and_refuses_a_tampered_one() {
    let out = tempfile::tempdir().unwrap();
    let target = "x86_64-unknown-linux-musl";
    let package = Command::new("scripts/release.sh")
        .args(["--package"])
        .arg(carried_cli())
        .arg(target)
        .arg(out.path())
        // The test build is large and is not shipped: the fastest gzip will do.
        .env("RELEASE_GZIP_LEVEL", "1")
        .output()
        .unwrap();
    assert!(
        package.status.success(),
        "{}",
        String::from_utf8_lossy(&package.stderr)
    );
    let name = format!(
        "ummatics-sentiment-{}-{target}.tar.gz",
        BuildId::current().version
    );
    let tarball = out.path().join(&name);
    let install = out.path().join("install.sh");
    // The .sha256 is sha256sum's own format.
    let check = Command::new("sha256sum")
        .args(["-c", &format!("{name}.sha256")])
        .current_dir(out.path())
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");

    // `sh install.sh --prefix PREFIX TARBALL`.
    let install_into = |prefix: &Path, tarball: &Path| {
        Command::new("sh")
            .arg(&install)
            .arg("--prefix")
            .arg(prefix)
            .arg(tarball)
            .env("HOME", out.path())
            .output()
            .unwrap()
    };

    // A good tarball: installed into --prefix, and it runs.
    let prefix = out.path().join("prefix/bin");
    let done = install_into(&prefix, &tarball);
    let said = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let installed = prefix.join("ummatics-sentiment");
    assert!(
        said.contains(&format!("installed {}", installed.display())),
        "{said}"
    );
    assert_eq!(sha256_of(&installed), sha256_of(&carried_cli()));
    let version = run(Command::new(&installed).arg("--version"));
    assert!(version.starts_with("ummatics-sentiment "), "{version}");

    // One changed byte: refused, nothing installed.
    let tampered_dir = out.path().join("tampered");
    std::fs::create_dir(&tampered_dir).unwrap();
    let tampered = tampered_dir.join(&name);
    let mut bytes = std::fs::read(&tarball).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&tampered, bytes).unwrap();
    std::fs::copy(
        out.path().join(format!("{name}.sha256")),
        tampered_dir.join(format!("{name}.sha256")),
    )
    .unwrap();
    let other_prefix = out.path().join("other/bin");
    let refused = install_into(&other_prefix, &tampered);
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "a tampered tarball was installed"
    );
    assert!(error.contains("checksum mismatch"), "{error}");
    assert!(error.contains("nothing was installed"), "{error}");
    assert!(!other_prefix.join("ummatics-sentiment").exists());

    // Without its .sha256 there is nothing to check against: refused too.
    std::fs::remove_file(tampered_dir.join(format!("{name}.sha256"))).unwrap();
    let refused = install_into(&other_prefix, &tampered);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains(".sha256"));
    assert!(!other_prefix.exists());
}
