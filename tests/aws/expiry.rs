//! The live image never expires: twelve declined deploys each push an image, ECR's lifecycle
//! policy (the one deploy sets, read back from moto) is applied to the registry the way AWS
//! documents it, and the image the function runs still pulls and answers from cold.
//!
//! moto stores a lifecycle policy and never applies it, so [`lifecycle`] evaluates one as ECR
//! does, from "Lifecycle policy evaluation rules" in the ECR user guide
//! (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html>), and is
//! checked against the guide's own worked example.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use ummatics_sentiment::image::registry::Registry;

use crate::common::{json_of, standins, ECR_PASSWORD};
use crate::interrupt::{on_a_terminal, type_at};

/// ECR's lifecycle evaluation for `imageCountMoreThan` rules over `tagged` (`tagPrefixList`),
/// `untagged` and `any` selections. It panics on anything else (age rules, tag patterns,
/// archive transitions): it says only what it knows.
mod lifecycle {
    use std::collections::{BTreeSet, HashSet};

    /// An image in the repository.
    pub struct Image {
        pub digest: String,
        pub tags: Vec<String>,
    }

    /// The digests the policy expires from `images` (oldest pushed first). As the guide says:
    /// rules apply lowest `rulePriority` first; an image is expired by one rule at most; a rule
    /// with `imageCountMoreThan` N keeps the N most recently pushed images it selects and marks
    /// the older ones; an image that matches the tagging requirements of a higher-priority rule
    /// cannot be expired by a lower-priority one, which still counts it; a `tagPrefixList`
    /// matches an image when every prefix starts one of its tags.
    pub fn expired(policy: &serde_json::Value, images: &[Image]) -> BTreeSet<String> {
        let mut rules: Vec<&serde_json::Value> =
            policy["rules"].as_array().unwrap().iter().collect();
        rules.sort_by_key(|r| r["rulePriority"].as_u64().unwrap());
        let mut claimed: HashSet<usize> = HashSet::new();
        let mut expired = BTreeSet::new();
        for rule in rules {
            let selection = &rule["selection"];
            assert_eq!(rule["action"]["type"], "expire", "{rule}");
            assert_eq!(selection["countType"], "imageCountMoreThan", "{rule}");
            assert!(selection.get("tagPatternList").is_none(), "{rule}");
            let keep = selection["countNumber"].as_u64().unwrap() as usize;
            let selects = |image: &Image| match selection["tagStatus"].as_str().unwrap() {
                "any" => true,
                "untagged" => image.tags.is_empty(),
                "tagged" => selection["tagPrefixList"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|p| {
                        image
                            .tags
                            .iter()
                            .any(|t| t.starts_with(p.as_str().unwrap()))
                    }),
                other => panic!("tagStatus {other}"),
            };
            // Newest first.
            let selected: Vec<usize> = (0..images.len())
                .rev()
                .filter(|&i| selects(&images[i]))
                .collect();
            for &i in selected.iter().skip(keep) {
                if !claimed.contains(&i) {
                    expired.insert(images[i].digest.clone());
                }
            }
            claimed.extend(selected);
        }
        expired
    }

    /// The guide's "Filtering on multiple rules" example: A [beta-1, prod-1] pushed 10 days
    /// ago, B [beta-2, prod-2] 9 days ago, C [beta-3] 8 days ago; keep one `prod`, then one
    /// `beta`. Rule 1 marks A; rule 2 would mark A and B, but B is rule 1's: only A expires.
    #[test]
    fn the_guides_worked_example() {
        let image = |digest: &str, tags: &[&str]| Image {
            digest: digest.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        };
        let images = [
            image("A", &["beta-1", "prod-1"]),
            image("B", &["beta-2", "prod-2"]),
            image("C", &["beta-3"]),
        ];
        let rule = |priority: u32, prefix: &str| {
            serde_json::json!({
                "rulePriority": priority,
                "selection": {"tagStatus": "tagged", "tagPrefixList": [prefix],
                              "countType": "imageCountMoreThan", "countNumber": 1},
                "action": {"type": "expire"}
            })
        };
        let policy = serde_json::json!({"rules": [rule(1, "prod"), rule(2, "beta")]});
        assert_eq!(
            expired(&policy, &images).into_iter().collect::<Vec<_>>(),
            ["A"]
        );
        // Alone, the beta rule expires both older images.
        let policy = serde_json::json!({"rules": [rule(1, "beta")]});
        assert_eq!(expired(&policy, &images).len(), 2);
    }
}

/// A copy of the mini model that differs in one harmless `config.json` key: a distinct image.
fn model_variant(root: &Path, n: u32) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/sst2-mini");
    let dir = root.join(format!("variant-{n}"));
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["model.onnx", "tokenizer.json"] {
        std::fs::copy(source.join(file), dir.join(file)).unwrap();
    }
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(source.join("config.json")).unwrap()).unwrap();
    config["ummatics_test_variant"] = n.into();
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    dir
}

/// Every tag of the repository, by digest.
async fn tags_by_digest(registry: &Registry, repository: &str) -> HashMap<String, Vec<String>> {
    let mut by_digest: HashMap<String, Vec<String>> = HashMap::new();
    for (tag, digest) in registry.tagged(repository).await.unwrap() {
        if let Some(digest) = digest {
            by_digest.entry(digest).or_default().push(tag);
        }
    }
    by_digest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_image_outlives_twelve_declined_deploys_and_starts_cold() {
    use lifecycle::{expired, Image};
    let s = standins();
    let stage = "expiry";
    let repository = "ummatics-sentiment-expiry";
    s.destroy(stage);
    let sdk = s.sdk().await;
    let registry = Registry::new(&s.registry, "AWS", ECR_PASSWORD, false).unwrap();
    let models = tempfile::tempdir().unwrap();
    let bootstrap = s.bootstrap.display().to_string();
    let args = |model: &Path| {
        [
            "--model".to_string(),
            model.display().to_string(),
            "--builder".into(),
            "oci".into(),
            "--no-smoke-test".into(),
        ]
    };

    // Release 1 goes live.
    let live = json_of(
        &mut s.deploy(
            stage,
            &args(&model_variant(models.path(), 0))
                .each_ref()
                .map(String::as_str),
        ),
    );
    assert_eq!(live["outcome"], "created", "{live:#}");
    let live_digest = live["image_digest"].as_str().unwrap().to_string();
    let mut pushed = vec![live_digest.clone()];

    // Twelve deploys of other models, each declined at its "apply these changes?" prompt:
    // each pushed its image before the change set was shown, and changed nothing.
    for n in 1..=12 {
        let model = model_variant(models.path(), n);
        let mut deploy = vec![
            "deploy",
            "--registry",
            &s.registry,
            "--bootstrap",
            &bootstrap,
        ];
        let extra = args(&model);
        deploy.extend(extra.iter().map(String::as_str));
        let (child, output) = on_a_terminal(&s, stage, &deploy);
        let (code, text) = type_at(child, output, "apply these changes?", b"n\n");
        assert_eq!(code, 1, "{text}");
        assert!(text.contains("nothing was changed"), "{text}");
        let new: Vec<String> = tags_by_digest(&registry, repository)
            .await
            .into_keys()
            .filter(|d| !pushed.contains(d))
            .collect();
        assert_eq!(new.len(), 1, "deploy {n} pushed {new:?}\n{text}");
        pushed.extend(new);
    }
    let function = aws_sdk_lambda::Client::new(&sdk)
        .get_function()
        .function_name("ummatics-sentiment-analysis-expiry")
        .send()
        .await
        .unwrap();
    let running = function.code().unwrap().image_uri().unwrap().to_string();
    assert!(running.ends_with(&format!("@{live_digest}")), "{running}");

    // `info` shows ten of the fourteen tags (the live image has two), in lexical order, and
    // says how many it left out; `--output json` lists them all.
    let out = s.cli(stage).arg("info").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("(deploy's --registry; 14 tagged)\n"),
        "{text}"
    );
    let shown: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("images "))
        .skip(1)
        .take_while(|l| l.starts_with("  sha256:"))
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    let mut sorted = shown.clone();
    sorted.sort_unstable();
    assert_eq!((shown.len(), &shown), (10, &sorted), "{text}");
    assert!(
        text.contains("\n  … 4 more (--output json lists them all)\n"),
        "{text}"
    );
    let listed = json_of(s.cli(stage).args(["--output", "json", "info"]));
    assert_eq!(listed["registry"]["images"].as_array().unwrap().len(), 14);

    // ECR applies the repository's policy to the thirteen images, oldest first.
    let policy = aws_sdk_ecr::Client::new(&sdk)
        .get_lifecycle_policy()
        .repository_name(repository)
        .send()
        .await
        .unwrap();
    let policy: serde_json::Value =
        serde_json::from_str(policy.lifecycle_policy_text().unwrap()).unwrap();
    let tags = tags_by_digest(&registry, repository).await;
    let images: Vec<Image> = pushed
        .iter()
        .map(|digest| Image {
            digest: digest.clone(),
            tags: tags.get(digest).cloned().unwrap_or_default(),
        })
        .collect();
    let gone = expired(&policy, &images);
    // The two oldest declined images go; the live one, oldest of all, stays by its keep- tag.
    assert_eq!(
        gone,
        BTreeSet::from([pushed[1].clone(), pushed[2].clone()]),
        "{policy:#}"
    );
    // Keeping only "the 10 newest images" would have expired the live one first.
    let newest_ten = serde_json::json!({"rules": [{
        "rulePriority": 1,
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 10},
        "action": {"type": "expire"}
    }]});
    assert!(expired(&newest_ten, &images).contains(&live_digest));
    for digest in &gone {
        assert!(registry.delete_manifest(repository, digest).await.unwrap());
        assert_eq!(
            registry.manifest_digest(repository, digest).await.unwrap(),
            None
        );
    }

    // A cold start: the live digest pulls from the registry into dockerd and answers.
    s.run_self_test_in_docker(&format!("{}/{repository}@{live_digest}", s.registry));
    s.destroy(stage);
}
