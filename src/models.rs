//! Which model runs in-process: the embedded `mini`, a directory, or a Hugging Face id.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use ummatics_sentiment_function::{Classifier, ClassifierOptions};

use crate::image::{ModelFile, ModelFiles};

/// The name that selects the embedded model.
pub const EMBEDDED: &str = "mini";

/// `models/sst2-mini`, built into the binary so the default needs no file and no network.
pub mod embedded {
    pub const NAME: &str = "sst2-mini (embedded)";
    pub const ONNX: &[u8] = include_bytes!("../models/sst2-mini/model.onnx");
    pub const CONFIG: &[u8] = include_bytes!("../models/sst2-mini/config.json");
    pub const TOKENIZER: &[u8] = include_bytes!("../models/sst2-mini/tokenizer.json");
}

/// What `--model` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSpec {
    /// The embedded sst2-mini model.
    Embedded,
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
        if s == EMBEDDED {
            return Ok(ModelSpec::Embedded);
        }
        // An existing directory wins over an id of the same spelling.
        if !Path::new(s).exists() && looks_like_hub_id(s) {
            return Ok(ModelSpec::Hub(s.to_string()));
        }
        Ok(ModelSpec::Dir(PathBuf::from(s)))
    }
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelSpec::Embedded => f.write_str(embedded::NAME),
            ModelSpec::Dir(dir) => write!(f, "{}", dir.display()),
            ModelSpec::Hub(id) => f.write_str(id),
        }
    }
}

impl ModelSpec {
    /// Loads the classifier this spec names.
    pub fn load(&self, options: &ClassifierOptions) -> Result<Classifier> {
        match self {
            ModelSpec::Embedded => Classifier::from_bytes(
                embedded::NAME,
                embedded::ONNX,
                embedded::CONFIG,
                embedded::TOKENIZER,
                options,
            ),
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
        let files = self.files().await?;
        for file in &files.files {
            std::fs::write(dir.join(&file.name), &file.bytes)
                .with_context(|| format!("cannot write {}", dir.join(&file.name).display()))?;
        }
        Ok(ModelSpec::Dir(dir.to_path_buf()))
    }

    /// The files deploy bakes into the image. A Hub id is downloaded once into the Hugging Face
    /// cache (HF_HOME; HF_TOKEN for gated models), preferring `onnx/model.onnx`.
    pub async fn files(&self) -> Result<ModelFiles> {
        match self {
            ModelSpec::Embedded => Ok(ModelFiles {
                source: embedded::NAME.to_string(),
                files: vec![
                    ModelFile {
                        name: "model.onnx".into(),
                        bytes: embedded::ONNX.to_vec(),
                    },
                    ModelFile {
                        name: "config.json".into(),
                        bytes: embedded::CONFIG.to_vec(),
                    },
                    ModelFile {
                        name: "tokenizer.json".into(),
                        bytes: embedded::TOKENIZER.to_vec(),
                    },
                ],
            }),
            ModelSpec::Dir(dir) => ModelFiles::from_dir(dir),
            ModelSpec::Hub(id) => download(id).await,
        }
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
        assert_eq!("mini".parse::<ModelSpec>().unwrap(), ModelSpec::Embedded);
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
