//! Which model runs in-process: one built into the binary (`minilm`, the default, or `mini`),
//! a directory, or a Hugging Face id; and the files deploy bakes into the image.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use ummatics_sentiment_function::{
    missing_model_files, Classifier, ClassifierOptions, MODEL_FILES,
};

/// The models built into the binary, so the default needs no file and no network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedded {
    /// `models/sst2-minilm`: the default — MiniLM-L6-H384 fine-tuned on SST-2, int8 weights.
    Minilm,
    /// `models/sst2-mini`: a 1.7 M-parameter DistilBERT, less accurate, 40× less compute.
    Mini,
}

impl Embedded {
    /// The one `--model` picks when none is given.
    pub const DEFAULT: Embedded = Embedded::Minilm;

    /// The name `--model` takes.
    pub fn spec(self) -> &'static str {
        match self {
            Embedded::Minilm => "minilm",
            Embedded::Mini => "mini",
        }
    }

    /// The model's own name (its directory under `models/`).
    pub fn model_name(self) -> &'static str {
        match self {
            Embedded::Minilm => "sst2-minilm",
            Embedded::Mini => "sst2-mini",
        }
    }

    /// The name it goes by in messages and reports.
    pub fn name(self) -> &'static str {
        match self {
            Embedded::Minilm => "sst2-minilm (embedded)",
            Embedded::Mini => "sst2-mini (embedded)",
        }
    }

    /// `model.onnx`, `config.json` and `tokenizer.json`.
    fn files(self) -> [(&'static str, &'static [u8]); 3] {
        match self {
            Embedded::Minilm => [
                ("model.onnx", MINILM_ONNX),
                ("config.json", MINILM_CONFIG),
                ("tokenizer.json", MINILM_TOKENIZER),
            ],
            Embedded::Mini => [
                ("model.onnx", MINI_ONNX),
                ("config.json", MINI_CONFIG),
                ("tokenizer.json", MINI_TOKENIZER),
            ],
        }
    }
}

// The embedded files as statics: one copy each in the binary. (`include_bytes!` inside a
// function body is a constant, copied into every codegen unit that inlines the function: the
// release CLI held each model three times and each tokenizer six.)
static MINILM_ONNX: &[u8] = include_bytes!("../models/sst2-minilm/model.onnx");
static MINILM_CONFIG: &[u8] = include_bytes!("../models/sst2-minilm/config.json");
static MINILM_TOKENIZER: &[u8] = include_bytes!("../models/sst2-minilm/tokenizer.json");
static MINI_ONNX: &[u8] = include_bytes!("../models/sst2-mini/model.onnx");
static MINI_CONFIG: &[u8] = include_bytes!("../models/sst2-mini/config.json");
static MINI_TOKENIZER: &[u8] = include_bytes!("../models/sst2-mini/tokenizer.json");

/// What `--model` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSpec {
    /// A model built into the binary.
    Embedded(Embedded),
    /// A model directory.
    Dir(PathBuf),
    /// A Hugging Face Hub id such as `distilbert/distilbert-base-uncased-finetuned-sst-2-english`.
    Hub(String),
}

/// `owner/name`: one slash, Hub-legal characters, not a relative path.
fn looks_like_hub_id(s: &str) -> bool {
    let legal = |part: &str| {
        !part.is_empty()
            && !part.starts_with('.')
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match s.split_once('/') {
        Some((owner, name)) => legal(owner) && legal(name),
        None => false,
    }
}

impl FromStr for ModelSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err("the model is empty; pass `mini`, a directory or a Hugging Face id".into());
        }
        for embedded in [Embedded::Minilm, Embedded::Mini] {
            if s == embedded.spec() {
                return Ok(ModelSpec::Embedded(embedded));
            }
        }
        // An existing directory wins over an id of the same spelling.
        if !Path::new(s).exists() && looks_like_hub_id(s) {
            return Ok(ModelSpec::Hub(s.to_string()));
        }
        Ok(ModelSpec::Dir(PathBuf::from(s)))
    }
}

impl serde::Serialize for ModelSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelSpec::Embedded(embedded) => f.write_str(embedded.name()),
            ModelSpec::Dir(dir) => write!(f, "{}", dir.display()),
            ModelSpec::Hub(id) => f.write_str(id),
        }
    }
}

impl ModelSpec {
    /// The model's name in the function's telemetry (its `Model` dimension): the built-in
    /// name, the Hugging Face id, or the directory's own name (not its whole path).
    pub fn metric_name(&self) -> String {
        match self {
            ModelSpec::Embedded(embedded) => embedded.model_name().to_string(),
            ModelSpec::Hub(id) => id.clone(),
            ModelSpec::Dir(dir) => dir
                .canonicalize()
                .unwrap_or_else(|_| dir.clone())
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| dir.display().to_string()),
        }
    }

    /// Loads the classifier this spec names (freed memory kept for reuse while it loads:
    /// `startup::while_loading`).
    pub fn load(&self, options: &ClassifierOptions) -> Result<Classifier> {
        ummatics_sentiment_function::startup::while_loading(|| self.load_now(options))
    }

    fn load_now(&self, options: &ClassifierOptions) -> Result<Classifier> {
        match self {
            ModelSpec::Embedded(embedded) => {
                let [(_, onnx), (_, config), (_, tokenizer)] = embedded.files();
                Classifier::from_bytes(embedded.name(), onnx, config, tokenizer, options)
            }
            ModelSpec::Dir(dir) => Classifier::load(dir, options),
            ModelSpec::Hub(id) => bail!(
                "{id:?} is a Hugging Face model id: resolve it first (ModelSpec::resolve downloads it)"
            ),
        }
    }
}

impl ModelSpec {
    /// A Hub id becomes a local directory (downloaded once into the Hugging Face cache, then
    /// gathered into `dir`); the other kinds are returned as they are.
    pub async fn resolve(self, dir: &Path) -> Result<ModelSpec> {
        let ModelSpec::Hub(_) = &self else {
            return Ok(self);
        };
        self.files().await?.write_to(dir)?;
        Ok(ModelSpec::Dir(dir.to_path_buf()))
    }

    /// The files deploy bakes into the image. A Hub id is downloaded once into the Hugging Face
    /// cache (HF_HOME; HF_TOKEN for gated models), preferring `onnx/model.onnx`.
    pub async fn files(&self) -> Result<ModelFiles> {
        match self {
            ModelSpec::Embedded(embedded) => Ok(ModelFiles {
                source: embedded.name().to_string(),
                files: embedded
                    .files()
                    .into_iter()
                    .map(|(name, bytes)| ModelFile {
                        name: name.to_string(),
                        bytes: bytes.to_vec(),
                    })
                    .collect(),
            }),
            ModelSpec::Dir(dir) => {
                let dir = dir.clone();
                crate::interrupt::off_the_workers(move || ModelFiles::from_dir(&dir)).await
            }
            ModelSpec::Hub(id) => download(id).await,
        }
    }
}

/// One file of the image's model directory.
#[derive(Clone)]
pub struct ModelFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

impl fmt::Debug for ModelFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} bytes)", self.name, self.bytes.len())
    }
}

/// The model baked into the image.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// What the user named (`sst2-minilm (embedded)`, a directory, a Hub id).
    pub source: String,
    pub files: Vec<ModelFile>,
}

impl ModelFiles {
    /// Reads a model directory, refusing one that lacks what the function needs.
    pub fn from_dir(dir: &Path) -> Result<ModelFiles> {
        if !dir.is_dir() {
            bail!(
                "model directory {} does not exist; pass --model mini, a directory holding \
                 model.onnx, config.json and tokenizer.json, or a Hugging Face id",
                dir.display()
            );
        }
        let mut files = Vec::new();
        for name in MODEL_FILES {
            let path = dir.join(name);
            if path.is_file() {
                let bytes = std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                files.push(ModelFile {
                    name: name.to_string(),
                    bytes,
                });
            }
        }
        let model = ModelFiles {
            source: dir.display().to_string(),
            files,
        };
        model.check()?;
        Ok(model)
    }

    /// Checks the required files are present.
    pub fn check(&self) -> Result<()> {
        let missing = missing_model_files(|name| self.files.iter().any(|f| f.name == name));
        if !missing.is_empty() {
            bail!(
                "model {} lacks {}: a model directory holds model.onnx, config.json and \
                 tokenizer.json (export one with tools/onnx_export.py)",
                self.source,
                missing.join(", ")
            );
        }
        Ok(())
    }

    /// Writes the files into `dir` (which exists), as a model directory the function reads.
    pub fn write_to(&self, dir: &Path) -> Result<()> {
        for file in &self.files {
            let path = dir.join(&file.name);
            std::fs::write(&path, &file.bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }

    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes.len() as u64).sum()
    }

    /// One SHA-256 for the whole model: over each file's name and its own SHA-256, in name
    /// order, so the same files give the same digest wherever they were read from.
    pub fn sha256(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut files: Vec<&ModelFile> = self.files.iter().collect();
        files.sort_by(|a, b| a.name.cmp(&b.name));
        let mut all = Sha256::new();
        for file in files {
            all.update(file.name.as_bytes());
            all.update([0]);
            all.update(Sha256::digest(&file.bytes));
        }
        hex::encode(all.finalize())
    }
}

/// Downloads (or finds in the cache) a Hub model's ONNX export, config and tokenizer.
async fn download(id: &str) -> Result<ModelFiles> {
    let api = hf_hub::api::tokio::ApiBuilder::from_env()
        .with_progress(false)
        .build()
        .context("cannot set up the Hugging Face client")?;
    let repo = api.model(id.to_string());
    let offline_hint = || {
        format!(
            "cannot download {id:?} from the Hugging Face Hub (no network, a wrong id, or a \
             gated model without HF_TOKEN): download model.onnx (or onnx/model.onnx), \
             config.json and tokenizer.json into a directory and pass --model DIR"
        )
    };
    let onnx = match repo.get("onnx/model.onnx").await {
        Ok(path) => path,
        Err(_) => repo.get("model.onnx").await.with_context(offline_hint)?,
    };
    let mut files = vec![ModelFile {
        name: "model.onnx".into(),
        bytes: std::fs::read(&onnx).with_context(|| format!("cannot read {}", onnx.display()))?,
    }];
    for (name, required) in [
        ("config.json", true),
        ("tokenizer.json", false),
        ("vocab.txt", false),
        ("tokenizer_config.json", false),
    ] {
        match repo.get(name).await {
            Ok(path) => files.push(ModelFile {
                name: name.into(),
                bytes: std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
            }),
            Err(e) if required => return Err(e).with_context(offline_hint),
            Err(_) => {}
        }
    }
    let model = ModelFiles {
        source: id.to_string(),
        files,
    };
    model.check()?;
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_kinds() {
        assert_eq!(
            "mini".parse::<ModelSpec>().unwrap(),
            ModelSpec::Embedded(Embedded::Mini)
        );
        assert_eq!(
            "minilm".parse::<ModelSpec>().unwrap(),
            ModelSpec::Embedded(Embedded::DEFAULT)
        );
        assert_eq!(
            "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
                .parse::<ModelSpec>()
                .unwrap(),
            ModelSpec::Hub("distilbert/distilbert-base-uncased-finetuned-sst-2-english".into())
        );
        assert_eq!(
            "./models/x".parse::<ModelSpec>().unwrap(),
            ModelSpec::Dir("./models/x".into())
        );
        assert_eq!(
            "/abs/dir".parse::<ModelSpec>().unwrap(),
            ModelSpec::Dir("/abs/dir".into())
        );
        assert_eq!(
            "a/b/c".parse::<ModelSpec>().unwrap(),
            ModelSpec::Dir("a/b/c".into())
        );
        // An existing directory is a directory, even when it reads like an id (tests run in
        // the package root).
        assert_eq!(
            "tests/fixtures".parse::<ModelSpec>().unwrap(),
            ModelSpec::Dir("tests/fixtures".into())
        );
        assert!("".parse::<ModelSpec>().is_err());
    }
}
