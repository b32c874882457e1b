//! The daemonless builder end to end: deploy with no Docker engine (auto → oci), the image
//! pushed blob by blob to the htpasswd registry, inspected by skopeo, pulled and self-tested by
//! dockerd, redeployed unchanged (nothing sent), and a model change that re-sends only the
//! model layer.

use crate::common::{json_of, standins, StandIns};

fn deploy(s: &StandIns, stage: &str, extra: &[&str]) -> serde_json::Value {
    json_of(&mut s.deploy(stage, extra))
}

/// PUTs in the registry's access log that completed an upload of this blob to `repo`.
fn blob_puts(s: &StandIns, repo: &str, digest: &str) -> usize {
    let put = format!("\"PUT /v2/{repo}/blobs/uploads/");
    let plain = format!("digest={digest}");
    let encoded = format!("digest={}", digest.replace(':', "%3A"));
    std::fs::read_to_string(&s.registry_log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&put) && (l.contains(&plain) || l.contains(&encoded)))
        .count()
}

#[test]
fn daemonless_deploy_push_inspect_run_redeploy() {
    let s = standins();
    // A repository of its own per run: the registry keeps blobs of deleted images, and this
    // test asserts what a first push uploads.
    let stage = &format!("oci{}", std::process::id());
    let repo = &format!("ummatics-sentiment-{stage}");
    s.destroy(stage);

    // No engine answers: auto picks the daemonless builder.
    let mut no_engine = s.cli(stage);
    no_engine
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["--output", "json", "deploy", "--yes", "--registry"])
        .arg(&s.registry)
        .arg("--bootstrap")
        .arg(&s.bootstrap);
    let first = json_of(&mut no_engine);
    assert_eq!(first["builder"], "oci", "{first:#}");
    assert_eq!(first["outcome"], "created");
    assert_eq!(first["pushed"], true);
    assert_eq!(first["smoke_test"], "passed");
    let blobs = first["blobs"].as_array().unwrap();
    assert_eq!(blobs.len(), 3, "bootstrap layer, model layer, config");
    assert!(blobs.iter().all(|b| b["uploaded"] == true));
    let digest = first["image_digest"].as_str().unwrap().to_string();
    let bootstrap_layer = blobs[0]["digest"].as_str().unwrap().to_string();
    let model_layer = blobs[1]["digest"].as_str().unwrap().to_string();

    // skopeo sees the config and architecture deploy wrote.
    let info = s.skopeo_inspect(repo, &digest, false);
    assert_eq!(info["Architecture"], "amd64");
    assert_eq!(info["Os"], "linux");
    assert_eq!(info["Digest"], digest.as_str());
    assert_eq!(info["Layers"].as_array().unwrap().len(), 2);
    let config = s.skopeo_inspect(repo, &digest, true);
    assert_eq!(config["config"]["Entrypoint"][0], "/var/runtime/bootstrap");

    // `info` says where the images went (the registry deploy was given), and lists them there.
    let out = s.cli(stage).arg("info").output().unwrap();
    let info = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{info}");
    let tag = first["image_tag"].as_str().unwrap();
    assert!(
        info.contains(&format!(
            "images      {}/{repo} (deploy's --registry; 2 tagged)\n  {digest}  keep-1\n  {digest}  {tag}\n",
            s.registry
        )),
        "{info}"
    );
    assert!(
        info.contains("(ECR: the credential for the registry above; no images here)"),
        "{info}"
    );
    assert!(!info.contains("(0 images)"), "{info}");

    // dockerd pulls the daemonless image and runs its self-test with no network.
    let image = format!("{}/{repo}@{digest}", s.registry);
    s.run_self_test_in_docker(&image);

    // The same inputs again: the same digest, nothing sent, nothing updated.
    let uploads = s.registry_uploads(repo);
    let again = deploy(&s, stage, &["--builder", "oci"]);
    assert_eq!(
        again["image_digest"],
        digest.as_str(),
        "the build is not reproducible"
    );
    assert_eq!(again["pushed"], false);
    assert_eq!(again["outcome"], "unchanged");
    assert_eq!(
        s.registry_uploads(repo),
        uploads,
        "an unchanged redeploy uploaded something"
    );

    // A model change: only the model layer (and config, manifest) go; the binary's layer is
    // found by HEAD and skipped.
    let changed = deploy(
        &s,
        stage,
        &[
            "--builder",
            "oci",
            "--model",
            "tests/fixtures/tiny-distilbert",
            "--no-smoke-test",
        ],
    );
    assert_eq!(changed["outcome"], "updated", "{changed:#}");
    let blobs = changed["blobs"].as_array().unwrap();
    assert_eq!(blobs[0]["digest"], bootstrap_layer.as_str());
    assert_eq!(blobs[0]["uploaded"], false);
    assert_ne!(blobs[1]["digest"], model_layer.as_str());
    assert_eq!(blobs[1]["uploaded"], true);
    assert_eq!(
        blob_puts(&s, repo, &bootstrap_layer),
        1,
        "the binary's layer was sent twice"
    );

    // Without --registry: the stack's tag says where deploy pushed, and its images go too.
    let destroyed = json_of(s.cli(stage).args(["--output", "json", "destroy", "--yes"]));
    let removed = destroyed["removed"].to_string();
    assert!(removed.contains("stack"), "{removed}");
    assert!(
        removed.contains(&format!("image(s) from {}/{repo}", s.registry)),
        "{removed}"
    );
    assert!(s.registry_tags(repo).is_empty());
}
