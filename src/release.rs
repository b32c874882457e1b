//! Releases: every deploy that changes the stack is a numbered release — image, model (name,
//! SHA-256, accuracy when known), the stack's parameters, when and by whom. The log of the last
//! [`KEPT`] lives in the stack's own template (its `Metadata` section), so it changes in the
//! same CloudFormation update as what it describes: an update that fails and rolls back takes
//! its record back with it, and `destroy` leaves nothing behind.
//!
//! Each release's image also carries a slot tag in the repository, `keep-(N mod KEPT)`: the
//! tag moves to the new image as the oldest release leaves the log, so the images with a
//! `keep-` tag are exactly those of the kept releases, and the lifecycle policy
//! (`image::ecr::LIFECYCLE_POLICY`) never expires one.

use std::fmt;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::stack::{template_metadata, template_with_metadata, StackParams};

/// How many releases are kept (and can be rolled back to).
pub const KEPT: u32 = 10;

/// The template's `Metadata` key holding the log.
pub const METADATA_KEY: &str = "UmmaticsSentimentReleases";

/// The repository tag that keeps release `number`'s image from expiring.
pub fn keep_tag(number: u32) -> String {
    format!("keep-{}", number % KEPT)
}

/// The model a release carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// What the deploy named (`sst2-minilm (embedded)`, a directory, a Hub id).
    pub name: String,
    /// `ModelFiles::sha256`: the same files, the same digest.
    pub sha256: String,
    /// Accuracy on a labelled file, when a gate measured it (or an earlier release did, for
    /// the same model).
    pub accuracy: Option<f64>,
    /// The SHA-256 of the file the accuracy was measured on.
    pub accuracy_data_sha256: Option<String>,
}

/// Where deploy got the function binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FunctionSource {
    /// The one the CLI carries (a release build).
    Carried,
    /// `--bootstrap PATH`.
    Prebuilt,
    /// Compiled from a checkout by this deploy.
    Built,
}

impl fmt::Display for FunctionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FunctionSource::Carried => "carried",
            FunctionSource::Prebuilt => "--bootstrap",
            FunctionSource::Built => "built from the checkout",
        })
    }
}

/// The function binary a release runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionRecord {
    pub source: FunctionSource,
    /// The workspace version the binary names (none for a binary that is not ours).
    pub version: Option<String>,
    /// The commit it was built from (`unknown` for a plain `cargo build`).
    pub commit: Option<String>,
    /// Hex SHA-256 of the binary.
    pub sha256: String,
}

impl fmt::Display for FunctionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.version, &self.commit) {
            (Some(v), Some(c)) => write!(f, "{v} (commit {c})")?,
            _ => write!(f, "unknown version")?,
        }
        write!(
            f,
            ", {}, sha256:{}",
            self.source,
            &self.sha256[..12.min(self.sha256.len())]
        )
    }
}

/// One release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    pub number: u32,
    /// RFC 3339, UTC.
    pub deployed_at: String,
    /// The caller ARN of whoever deployed it.
    pub deployed_by: String,
    pub model: ModelRecord,
    /// The function binary (absent in releases made before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionRecord>,
    /// Everything the stack was given: image by digest, memory, architecture, URL auth, …
    pub params: StackParams,
}

impl Release {
    /// `sha256:…` of the image, from its URI.
    pub fn image_digest(&self) -> Option<&str> {
        self.params
            .image_uri
            .split_once('@')
            .map(|(_, digest)| digest)
    }
}

/// The releases the stack records, oldest first, and which one is live.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReleaseLog {
    pub live: Option<u32>,
    pub releases: Vec<Release>,
}

impl ReleaseLog {
    /// The log in a deployed template (empty when the stack predates releases).
    pub fn from_template(body: &str) -> Result<ReleaseLog> {
        match template_metadata(body, METADATA_KEY) {
            None => Ok(ReleaseLog::default()),
            Some(json) => serde_json::from_str(&json)
                .context("the stack's release log (template Metadata) is not readable"),
        }
    }

    /// The template to send: ours, with this log in its `Metadata`.
    pub fn template(&self) -> Result<String> {
        let json = serde_json::to_string(self).context("cannot write the release log")?;
        Ok(template_with_metadata(METADATA_KEY, &json))
    }

    /// The number the next release gets.
    pub fn next_number(&self) -> u32 {
        self.releases.iter().map(|r| r.number).max().unwrap_or(0) + 1
    }

    /// With `release` added and live; only the newest [`KEPT`] stay.
    pub fn with(&self, release: Release) -> ReleaseLog {
        let mut log = self.clone();
        log.live = Some(release.number);
        log.releases.retain(|r| r.number != release.number);
        log.releases.push(release);
        log.releases.sort_by_key(|r| r.number);
        let excess = log.releases.len().saturating_sub(KEPT as usize);
        log.releases.drain(..excess);
        log
    }

    /// The same log with release `number` live.
    pub fn with_live(&self, number: u32) -> ReleaseLog {
        ReleaseLog {
            live: Some(number),
            releases: self.releases.clone(),
        }
    }

    pub fn get(&self, number: u32) -> Option<&Release> {
        self.releases.iter().find(|r| r.number == number)
    }

    pub fn live(&self) -> Option<&Release> {
        self.live.and_then(|n| self.get(n))
    }

    /// Where `rollback` goes: release `to`, or the newest one before the live one.
    pub fn rollback_target(&self, to: Option<u32>) -> Result<&Release> {
        let numbers = || {
            self.releases
                .iter()
                .map(|r| r.number.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if self.releases.is_empty() {
            bail!(
                "the stack records no releases (it was deployed by a version before releases): \
                 deploy once, then roll back to an earlier release of this version"
            );
        }
        match to {
            Some(n) => self.get(n).with_context(|| {
                format!(
                    "there is no release {n}: the kept releases are {} (the last {KEPT})",
                    numbers()
                )
            }),
            None => {
                let live = self.live.unwrap_or(u32::MAX);
                self.releases
                    .iter()
                    .rev()
                    .find(|r| r.number < live)
                    .with_context(|| {
                        format!(
                            "release {live} is the oldest kept release: there is nothing before it \
                             to roll back to (kept: {})",
                            numbers()
                        )
                    })
            }
        }
    }
}

impl fmt::Display for ReleaseLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.releases.is_empty() {
            return write!(f, "no releases recorded: deploy makes release 1");
        }
        writeln!(
            f,
            "   #  {:<20}  {:<19}  {:<7}  {:>6}  {:<24}  {:>8}  by",
            "deployed", "image", "arch", "memory", "model", "accuracy"
        )?;
        for r in self.releases.iter().rev() {
            let marker = if Some(r.number) == self.live {
                '*'
            } else {
                ' '
            };
            let digest = r.image_digest().unwrap_or(&r.params.image_uri);
            let short = digest.get(..19).unwrap_or(digest);
            writeln!(
                f,
                "{marker}{:>3}  {:<20}  {short:<19}  {:<7}  {:>3} MB  {:<24}  {:>8}  {}",
                r.number,
                r.deployed_at,
                r.params.architecture,
                r.params.memory,
                truncate(&r.model.name, 24),
                r.model
                    .accuracy
                    .map_or("-".to_string(), |a| format!("{:.2} %", a * 100.0)),
                r.deployed_by
            )?;
        }
        match self.live {
            Some(n) => write!(f, "* live: release {n}"),
            None => write!(f, "no release is marked live"),
        }
    }
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(width - 1).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(number: u32) -> Release {
        Release {
            number,
            deployed_at: "2026-11-30T12:00:00Z".into(),
            deployed_by: "arn:aws:iam::123456789012:user/o'brien".into(),
            model: ModelRecord {
                name: "sst2-minilm (embedded)".into(),
                sha256: "ab".repeat(32),
                accuracy: Some(0.9014),
                accuracy_data_sha256: None,
            },
            function: None,
            params: StackParams::example(&format!("r@sha256:{number:064}")),
        }
    }

    #[test]
    fn the_log_round_trips_through_the_template() {
        let log = ReleaseLog::default().with(release(1)).with(release(2));
        let body = log.template().unwrap();
        assert!(body.starts_with(crate::stack::TEMPLATE));
        assert_eq!(ReleaseLog::from_template(&body).unwrap(), log);
        // A template without a log (an older deploy) is an empty log.
        assert_eq!(
            ReleaseLog::from_template(crate::stack::TEMPLATE).unwrap(),
            ReleaseLog::default()
        );
    }

    #[test]
    fn only_the_newest_are_kept_and_their_slot_tags_are_distinct() {
        let mut log = ReleaseLog::default();
        for n in 1..=12 {
            log = log.with(release(n));
        }
        let numbers: Vec<u32> = log.releases.iter().map(|r| r.number).collect();
        assert_eq!(numbers, (3..=12).collect::<Vec<_>>());
        assert_eq!(log.live, Some(12));
        let mut tags: Vec<String> = numbers.iter().map(|&n| keep_tag(n)).collect();
        tags.sort();
        tags.dedup();
        assert_eq!(tags.len(), KEPT as usize);
    }

    #[test]
    fn the_lifecycle_policy_never_expires_a_kept_release() {
        let policy: serde_json::Value =
            serde_json::from_str(crate::image::ecr::LIFECYCLE_POLICY).unwrap();
        let rules = policy["rules"].as_array().unwrap();
        let first = &rules[0]["selection"];
        assert_eq!(rules[0]["rulePriority"], 1);
        assert_eq!(first["tagStatus"], "tagged");
        let prefix = first["tagPrefixList"][0].as_str().unwrap();
        // At most KEPT images carry a slot tag, and rule 1 expires only beyond its count.
        let slots: std::collections::HashSet<String> = (1..=1000).map(keep_tag).collect();
        assert_eq!(slots.len(), KEPT as usize);
        assert!(slots.iter().all(|t| t.starts_with(prefix)));
        assert!(first["countNumber"].as_u64().unwrap() >= u64::from(KEPT));
        // The catch-all rule comes last (ECR requires it) and is the only other one.
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[1]["selection"]["tagStatus"], "any");
        assert_eq!(rules[1]["rulePriority"], 2);
    }

    #[test]
    fn rollback_goes_to_the_release_before_the_live_one() {
        let log = ReleaseLog::default()
            .with(release(1))
            .with(release(2))
            .with(release(3));
        assert_eq!(log.rollback_target(None).unwrap().number, 2);
        let back = log.with_live(2);
        assert_eq!(back.rollback_target(None).unwrap().number, 1);
        let err = back.with_live(1).rollback_target(None).unwrap_err();
        assert!(err.to_string().contains("nothing before it"), "{err}");
        let err = log.rollback_target(Some(7)).unwrap_err();
        assert!(
            err.to_string().contains("the kept releases are 1, 2, 3"),
            "{err}"
        );
        assert!(ReleaseLog::default().rollback_target(None).is_err());
    }
}
