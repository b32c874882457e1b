//! What a deploy did: the report printed as text or as `--output json`, from one struct.

use super::*;

/// The release a deploy made or left live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReleaseReport {
    pub number: u32,
    /// Made by this deploy.
    pub new: bool,
}

/// What the gate measured, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct GateReport {
    pub data: String,
    pub data_sha256: String,
    pub examples: usize,
    pub accuracy: f64,
    pub min_accuracy: f64,
    /// The live release's accuracy on the same file, when it passed a gate on it.
    pub live_accuracy: Option<f64>,
}

/// What a deploy did to the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Created,
    Updated,
    /// Nothing to update: the stack already runs these settings and this image.
    Unchanged,
    /// `--dry-run`: previewed, nothing changed.
    DryRun,
}

/// Which builder made the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BuilderKind {
    Docker,
    Oci,
}

/// Whether the artifact was run before the push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SmokeTest {
    #[serde(rename = "passed")]
    Passed,
    /// Passed under an emulator (another architecture than this machine's).
    #[serde(rename = "passed (emulated)")]
    PassedEmulated,
    /// No push, `--no-smoke-test`, or an architecture this machine cannot run.
    #[serde(rename = "skipped")]
    Skipped,
}

/// What deploy did, for people and for programs.
#[derive(Debug, Clone, Serialize)]
pub struct DeployReport {
    pub stack: String,
    pub outcome: Outcome,
    pub function_name: String,
    pub function_arn: Option<String>,
    pub region: String,
    pub image_uri: String,
    pub image_digest: Option<String>,
    pub image_tag: String,
    /// Whether an image was pushed by this run.
    pub pushed: bool,
    pub plan: Plan,
    pub builder: BuilderKind,
    /// The function binary in the image: where it came from, its version and SHA-256.
    pub function: FunctionRecord,
    /// The OCI builder's blobs and whether each was uploaded.
    pub blobs: Vec<oci::BlobReport>,
    pub smoke_test: SmokeTest,
    pub memory_mb: u32,
    pub timeout_s: u32,
    pub architecture: String,
    /// GB-s and dollars per 10 000 texts at this memory size, from measured throughput.
    pub estimate: sizing::Estimate,
    pub url: Option<String>,
    pub url_auth: UrlAuth,
    /// The stack's CloudWatch dashboard (none in a dry run).
    pub dashboard: Option<Dashboard>,
    /// The most instances at once (`None`: no cap).
    pub reserved_concurrency: Option<u32>,
    /// With a cap: the most an hour of compute can cost (every instance busy all hour).
    pub worst_case_usd_per_hour: Option<f64>,
    /// `--gate`: what the model scored.
    pub gate: Option<GateReport>,
    /// `--budget`, or a budget an earlier deploy made.
    pub budget: Option<BudgetReport>,
    /// The release live after this deploy (`new`: this deploy made it; in a dry run, would).
    pub release: Option<ReleaseReport>,
    /// The configuration file read, if any.
    pub config: Option<ConfigUsed>,
    /// Every setting with where it came from: `flag`, `FILE:LINE [stages.NAME]` or `default`.
    pub settings: StageSettings,
    pub next: String,
}

impl fmt::Display for DeployReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.outcome {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged (nothing to update)",
            Outcome::DryRun => "not changed (dry run)",
        };
        writeln!(f, "stack {}: {verb}", self.stack)?;
        writeln!(f, "  function  {}", self.function_name)?;
        if let Some(arn) = &self.function_arn {
            writeln!(f, "  arn       {arn}")?;
        }
        writeln!(
            f,
            "  config    {} MB, {} s, {}",
            self.memory_mb, self.timeout_s, self.architecture
        )?;
        writeln!(f, "  bootstrap {}", self.function)?;
        writeln!(f, "  estimate  {}", self.estimate)?;
        if let Some(g) = &self.gate {
            writeln!(
                f,
                "  gate      {:.2} % on {} ({} examples; required {:.2} %)",
                g.accuracy * 100.0,
                g.data,
                g.examples,
                g.min_accuracy * 100.0
            )?;
        }
        writeln!(
            f,
            "  image     {}{}",
            self.image_uri,
            if self.pushed { " (pushed now)" } else { "" }
        )?;
        match &self.url {
            Some(url) => writeln!(f, "  url       {url} (auth {})", self.url_auth.as_str())?,
            None => writeln!(f, "  url       none")?,
        }
        if let Some(d) = &self.dashboard {
            writeln!(f, "  dashboard {}", d.url)?;
        }
        if let Some(b) = &self.budget {
            writeln!(f, "  budget    {b}")?;
        }
        match &self.release {
            Some(r) if r.new && self.outcome == Outcome::DryRun => {
                writeln!(f, "  release   {} (would be made)", r.number)?
            }
            Some(r) if r.new => writeln!(
                f,
                "  release   {} (new; `releases` lists them, `rollback` goes back)",
                r.number
            )?,
            Some(r) => writeln!(f, "  release   {} (still live)", r.number)?,
            None => {}
        }
        if let Some(cap) = self.reserved_concurrency {
            write!(f, "  cap       {cap} at once (reserved concurrency)")?;
            match self.worst_case_usd_per_hour {
                Some(usd_h) => writeln!(f, "; compute at most {}/hour", usd(usd_h))?,
                None => writeln!(f)?,
            }
        }
        write!(f, "next: {}", self.next)
    }
}
