//! arm64: the cross-built bootstrap is a static aarch64 ELF that passes its self-test under
//! qemu-user-static, and `deploy --arch arm64` writes an arm64 image and stack.

use crate::common::{json_of, standins};
use ummatics_sentiment::image::ElfInfo;
use ummatics_sentiment::lambda::Arch;

#[test]
fn arm64_bootstrap_is_static_aarch64_and_self_tests_under_qemu() {
    let s = standins();
    let bytes = std::fs::read(&s.bootstrap_arm64).unwrap();
    let elf = ElfInfo::parse(&bytes).unwrap();
    assert_eq!(elf.arch, Arch::Arm64);
    assert!(!elf.dynamic, "the arm64 bootstrap needs a dynamic loader");
    let out = std::process::Command::new("qemu-aarch64-static")
        .arg(&s.bootstrap_arm64)
        .args(["--self-test", "--model", "models/sst2-mini"])
        .output()
        .expect("qemu-aarch64-static is not installed (scripts/standins.sh install)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_arm64_writes_an_arm64_image_and_stack() {
    let s = standins();
    let stage = "arm";
    let repo = "ummatics-sentiment-arm";
    s.destroy(stage);
    let report = json_of(
        s.cli(stage)
            .args([
                "--output",
                "json",
                "deploy",
                "--yes",
                // The small model: the emulated smoke test runs the image under qemu, where
                // the default model takes 50 s to load and answer, the small one 4 s; what is
                // checked here is the arm64 image and stack, not the model.
                "--model",
                "mini",
                "--arch",
                "arm64",
                "--builder",
                "oci",
                "--registry",
            ])
            .arg(&s.registry)
            .arg("--bootstrap")
            .arg(&s.bootstrap_arm64),
    );
    assert_eq!(report["architecture"], "arm64");
    assert_eq!(report["smoke_test"], "passed (emulated)", "{report:#}");
    let digest = report["image_digest"].as_str().unwrap();
    let info = s.skopeo_inspect(repo, digest, false);
    assert_eq!(info["Architecture"], "arm64");
    let cfn = aws_sdk_cloudformation::Client::new(&s.sdk().await);
    let stack = cfn
        .describe_stacks()
        .stack_name("ummatics-sentiment-stack-arm")
        .send()
        .await
        .unwrap();
    let arch = stack.stacks()[0]
        .parameters()
        .iter()
        .find(|p| p.parameter_key() == Some("Architecture"))
        .and_then(|p| p.parameter_value())
        .map(str::to_string);
    assert_eq!(arch.as_deref(), Some("arm64"));

    // An x86_64 binary for an arm64 function is refused before anything is built.
    let out = s
        .cli(stage)
        .args(["deploy", "--yes", "--arch", "arm64", "--bootstrap"])
        .arg(&s.bootstrap)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("is built for x86_64, but the function is arm64"));

    s.destroy(stage);
}

#[test]
fn doctor_checks_the_cross_toolchain_for_arm64() {
    let s = standins();
    let report = json_of(
        s.cli("arm")
            .args(["--output", "json", "doctor", "--arch", "arm64"]),
    );
    for name in ["cargo-zigbuild", "zig", "Rust target"] {
        let check = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name} not checked: {report:#}"));
        assert_eq!(check["ok"], true, "{check:#}");
    }
}
