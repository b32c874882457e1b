//! The classifier: a tokenizer, a tract plan and the batching between them.
//!
//! A model directory holds `model.onnx`, `config.json` (`id2label`, `max_position_embeddings`)
//! and either `tokenizer.json` or `vocab.txt` (+ optional `tokenizer_config.json`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{AddedToken, Encoding, Tokenizer, TruncationParams};
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

use crate::protocol::SentimentResult;
use crate::tokens::Cutter;

/// Environment variable: the longest token sequence fed to the model (default: the model window,
/// at most 512). Longer texts are truncated.
pub const ENV_MAX_TOKENS: &str = "UMMATICS_MAX_TOKENS";
/// Environment variable: threads for tokenising and matrix products (default: every core the process may use).
pub const ENV_THREADS: &str = "UMMATICS_THREADS";
/// Environment variable: padded tokens per micro-batch (default [`DEFAULT_BATCH_TOKENS`]).
pub const ENV_BATCH_TOKENS: &str = "UMMATICS_BATCH_TOKENS";

/// Sequences are padded up to a multiple of this. A text's padded length then depends on the
/// text alone, and a micro-batch only holds texts of one padded length, so a text gets the
/// same result whatever it is batched with.
pub const PAD_MULTIPLE: usize = 8;
/// Padded tokens per micro-batch: large enough to keep the matmul kernels busy, small enough
/// that activations of a 512-token batch stay in a few MB.
pub const DEFAULT_BATCH_TOKENS: usize = 4096;
/// Most texts in one micro-batch.
pub const MAX_MICRO_BATCH: usize = 64;

/// The files a model directory may hold, in the order they are looked for.
pub const MODEL_FILES: [&str; 6] = [
    "model.onnx",
    "config.json",
    "tokenizer.json",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

/// What a model lacks, given which files it has: it needs `model.onnx`, `config.json`, and
/// `tokenizer.json` or `vocab.txt` (from which a WordPiece tokenizer is built).
pub fn missing_model_files(has: impl Fn(&str) -> bool) -> Vec<&'static str> {
    let mut missing = Vec::new();
    for name in ["model.onnx", "config.json"] {
        if !has(name) {
            missing.push(name);
        }
    }
    if !has("tokenizer.json") && !has("vocab.txt") {
        missing.push("tokenizer.json (or vocab.txt)");
    }
    missing
}

/// How a classifier runs. `Default` gives the values the function uses without environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassifierOptions {
    /// Truncate token sequences to this length; `None` = the model window, at most 512.
    pub max_tokens: Option<usize>,
    /// Threads for tokenising and matrix products (the classifier's own, nothing process-wide); `None` = all available cores.
    pub threads: Option<usize>,
    /// Padded tokens per micro-batch.
    pub batch_tokens: usize,
}

impl Default for ClassifierOptions {
    fn default() -> Self {
        ClassifierOptions {
            max_tokens: None,
            threads: None,
            batch_tokens: DEFAULT_BATCH_TOKENS,
        }
    }
}

fn env_usize(name: &str, min: usize) -> Result<Option<usize>> {
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => bail!("{name} is not valid UTF-8"),
        Ok(value) if value.trim().is_empty() => Ok(None),
        Ok(value) => match value.trim().parse::<usize>() {
            Ok(n) if n >= min => Ok(Some(n)),
            _ => bail!(
                "{name}={value:?} is not a whole number ≥ {min}; unset it or set e.g. {name}=512"
            ),
        },
    }
}

impl ClassifierOptions {
    /// Reads `UMMATICS_MAX_TOKENS`, `UMMATICS_THREADS`, `UMMATICS_BATCH_TOKENS`.
    pub fn from_env() -> Result<Self> {
        let defaults = ClassifierOptions::default();
        Ok(ClassifierOptions {
            max_tokens: env_usize(ENV_MAX_TOKENS, 2)?,
            threads: env_usize(ENV_THREADS, 1)?,
            batch_tokens: env_usize(ENV_BATCH_TOKENS, 1)?.unwrap_or(defaults.batch_tokens),
        })
    }
}

/// The probabilities for one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Index of the most probable label.
    pub label: usize,
    /// The model's softmax over its labels, in label order (what onnxruntime computes).
    pub probabilities: Vec<f32>,
    /// The calibrated probabilities: softmax of the logits divided by the model's score
    /// temperature (`config.json`'s `score_temperature`; without one, equal to
    /// `probabilities`). Same arg-max, so the label does not change.
    pub scores: Vec<f32>,
    /// The model's logits (what temperature fitting needs).
    pub logits: Vec<f32>,
}

impl Prediction {
    /// The calibrated probability of the label: the score the wire response carries.
    pub fn score(&self) -> f32 {
        self.scores[self.label]
    }
}

/// What one call to [`Classifier::predict_observed`] read and where its time went.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// Tokens fed to the model (special tokens included, padding not).
    pub tokens: usize,
    /// Texts longer than the model's window, of which the model read only the start.
    pub cut: usize,
    /// Time spent tokenising.
    pub tokenize: std::time::Duration,
    /// Time spent in the model (building batches, running the plan, softmax).
    pub model: std::time::Duration,
}

/// Where the time of loading a classifier went, stage by stage (`bench` prints them, so that
/// init can be aimed at).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoadTimings {
    /// Opening and mapping `model.onnx` (none for a model built into the binary); its pages
    /// are read as they are decoded.
    pub read: std::time::Duration,
    /// Decoding the ONNX protobuf.
    pub decode: std::time::Duration,
    /// Expanding compact (int8, f16) weights to f32 ([`crate::weights`]).
    pub expand: std::time::Duration,
    /// Building tract's graph from the ONNX nodes.
    pub parse: std::time::Duration,
    /// Reading `config.json` and loading the tokenizer.
    pub tokenizer: std::time::Duration,
    /// Declaring the input shapes and analysing types and shapes (a typed graph).
    pub typing: std::time::Duration,
    /// Decluttering the typed graph.
    pub declutter: std::time::Duration,
    /// Optimising into kernels and building the runnable plan.
    pub optimise: std::time::Duration,
    /// The test run on one short text that ends loading.
    pub warm_up: std::time::Duration,
}

impl LoadTimings {
    /// Reading and parsing: the files, the graph, the tokenizer.
    pub fn loading(&self) -> std::time::Duration {
        self.read + self.decode + self.expand + self.parse + self.tokenizer
    }

    /// Turning the graph into a runnable plan.
    pub fn preparing(&self) -> std::time::Duration {
        self.typing + self.declutter + self.optimise
    }

    /// The whole load, ready to answer.
    pub fn total(&self) -> std::time::Duration {
        self.loading() + self.preparing() + self.warm_up
    }

    /// Each stage by name, in the order they run.
    pub fn stages(&self) -> [(&'static str, std::time::Duration); 9] {
        [
            ("tokenizer", self.tokenizer),
            ("read", self.read),
            ("decode", self.decode),
            ("expand", self.expand),
            ("parse", self.parse),
            ("typing", self.typing),
            ("declutter", self.declutter),
            ("optimise", self.optimise),
            ("warm-up", self.warm_up),
        ]
    }
}

/// `tokenizer 12 ms, read 0 ms, …`: one line for logs and `--self-test`.
impl std::fmt::Display for LoadTimings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (name, took)) in self.stages().iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{name} {:.1} ms", took.as_secs_f64() * 1e3)?;
        }
        Ok(())
    }
}

/// Adds the time `f` takes to one stage of `clock`.
fn timed<R>(
    clock: &std::cell::Cell<LoadTimings>,
    stage: fn(&mut LoadTimings) -> &mut std::time::Duration,
    f: impl FnOnce() -> R,
) -> R {
    let started = Instant::now();
    let result = f();
    let mut timings = clock.get();
    *stage(&mut timings) += started.elapsed();
    clock.set(timings);
    result
}

/// What the model directory's `config.json` tells us.
#[derive(Debug, Clone)]
struct ModelConfig {
    labels: Vec<String>,
    max_position_embeddings: Option<usize>,
    /// `score_temperature`: the logits are divided by it before the scores' softmax.
    temperature: f32,
}

/// The `config.json` key of a model's score temperature (fitted by `eval --fit-temperature`).
pub const TEMPERATURE_KEY: &str = "score_temperature";

fn read_config(path: &Path) -> Result<ModelConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the model config", path.display()))?;
    parse_config(&text, &path.display())
}

/// Parses `config.json`; `path` names it in error messages.
fn parse_config(text: &str, path: &dyn std::fmt::Display) -> Result<ModelConfig> {
    let value: serde_json::Value =
        serde_json::from_str(text).with_context(|| format!("{path}: not valid JSON"))?;
    let id2label = value
        .get("id2label")
        .and_then(|v| v.as_object())
        .ok_or_else(|| {
            anyhow!(
                "{}: no \"id2label\" object; add e.g. \"id2label\": {{\"0\": \"NEGATIVE\", \"1\": \"POSITIVE\"}}",
                path
            )
        })?;
    let mut labels = vec![None; id2label.len()];
    for (key, label) in id2label {
        let index: usize = key
            .parse()
            .ok()
            .filter(|i| *i < labels.len())
            .ok_or_else(|| {
                anyhow!(
                    "{}: id2label key {key:?} is not an index 0..{}",
                    path,
                    labels.len()
                )
            })?;
        let label = label
            .as_str()
            .ok_or_else(|| anyhow!("{}: id2label[{key:?}] is not a string", path))?;
        labels[index] = Some(label.to_lowercase());
    }
    let labels: Vec<String> = labels.into_iter().flatten().collect();
    if labels.len() < 2 {
        bail!(
            "{}: id2label must name at least two labels, found {}",
            path,
            labels.len()
        );
    }
    let max_position_embeddings = match value.get("max_position_embeddings") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(v.as_u64().filter(|n| *n >= 2).ok_or_else(|| {
            anyhow!(
                "{}: max_position_embeddings must be a whole number ≥ 2, got {v}",
                path
            )
        })? as usize),
    };
    let temperature = match value.get(TEMPERATURE_KEY) {
        None | Some(serde_json::Value::Null) => 1.0,
        Some(v) => v
            .as_f64()
            .filter(|t| t.is_finite() && (0.01..=100.0).contains(t))
            .ok_or_else(|| {
                anyhow!(
                    "{}: {TEMPERATURE_KEY} must be a number from 0.01 to 100 (1 leaves the scores as the model gives them), got {v}",
                    path
                )
            })? as f32,
    };
    Ok(ModelConfig {
        labels,
        max_position_embeddings,
        temperature,
    })
}

/// Builds a BERT WordPiece tokenizer from `vocab.txt` and `tokenizer_config.json`, as the
/// Hugging Face `BertTokenizerFast` does when there is no `tokenizer.json`.
fn wordpiece_tokenizer(dir: &Path) -> Result<Tokenizer> {
    let vocab = dir.join("vocab.txt");
    let config_path = dir.join("tokenizer_config.json");
    let config: serde_json::Value = if config_path.exists() {
        let text = std::fs::read_to_string(&config_path)
            .with_context(|| format!("{}: cannot read", config_path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not valid JSON", config_path.display()))?
    } else {
        serde_json::json!({})
    };
    let flag = |name: &str, default: bool| {
        config
            .get(name)
            .and_then(|v| v.as_bool())
            .unwrap_or(default)
    };
    let token = |name: &str, default: &str| {
        config
            .get(name)
            .and_then(|v| {
                v.as_str()
                    .or_else(|| v.get("content").and_then(|c| c.as_str()))
            })
            .unwrap_or(default)
            .to_string()
    };
    let lowercase = flag("do_lower_case", true);
    let strip_accents = config.get("strip_accents").and_then(|v| v.as_bool());
    let handle_chinese = flag("tokenize_chinese_chars", true);
    let unk = token("unk_token", "[UNK]");
    let cls = token("cls_token", "[CLS]");
    let sep = token("sep_token", "[SEP]");
    let pad = token("pad_token", "[PAD]");
    let mask = token("mask_token", "[MASK]");

    let vocab_str = vocab
        .to_str()
        .ok_or_else(|| anyhow!("{}: path is not valid UTF-8", vocab.display()))?;
    let model = WordPiece::from_file(vocab_str)
        .unk_token(unk.clone())
        .build()
        .map_err(|e| {
            anyhow!(
                "{}: cannot load the WordPiece vocabulary: {e}",
                vocab.display()
            )
        })?;
    let mut tokenizer = Tokenizer::new(model);
    let id = |t: &Tokenizer, token: &str| {
        t.token_to_id(token).ok_or_else(|| {
            anyhow!(
                "{}: the special token {token:?} is not in the vocabulary",
                vocab.display()
            )
        })
    };
    let cls_id = id(&tokenizer, &cls)?;
    let sep_id = id(&tokenizer, &sep)?;
    id(&tokenizer, &unk)?;
    tokenizer
        .with_normalizer(Some(BertNormalizer::new(
            true,
            handle_chinese,
            strip_accents,
            lowercase,
        )))
        .map_err(|e| anyhow!("tokenizer normaliser: {e}"))?;
    tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
    tokenizer.with_post_processor(Some(BertProcessing::new(
        (sep.clone(), sep_id),
        (cls.clone(), cls_id),
    )));
    let specials: Vec<AddedToken> = [&pad, &unk, &cls, &sep, &mask]
        .into_iter()
        .filter(|t| tokenizer.token_to_id(t).is_some())
        .map(|t| AddedToken::from(t.clone(), true))
        .collect();
    tokenizer.add_special_tokens(specials).map_err(|e| {
        anyhow!(
            "{}: cannot register the special tokens: {e}",
            vocab.display()
        )
    })?;
    Ok(tokenizer)
}

/// What each model input is fed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InputRole {
    Ids,
    Mask,
    TypeIds,
}

type Plan = Arc<TypedRunnableModel>;

/// One optimised plan for every shape, or — for graphs tract cannot optimise with a symbolic
/// batch (transformers ≥ 5 legacy exports flatten over `batch × sequence`) — one plan per batch
/// size, built on first use and cached. Batches are then split into power-of-two sizes so at
/// most a handful of plans are ever built.
enum Plans {
    Symbolic(Plan),
    PerBatchSize {
        template: Box<InferenceModel>,
        cache: Mutex<HashMap<usize, Plan>>,
    },
}

/// A sequence classifier: tokenizer + tract plan + labels.
pub struct Classifier {
    tokenizer: Tokenizer,
    cutter: Cutter,
    plans: Plans,
    inputs: Vec<InputRole>,
    input_type: DatumType,
    logits_output: usize,
    labels: Vec<String>,
    temperature: f32,
    threads: Threads,
    max_tokens: usize,
    batch_tokens: usize,
    pad_id: u32,
    source: String,
    timings: LoadTimings,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("source", &self.source)
            .field("labels", &self.labels)
            .field("max_tokens", &self.max_tokens)
            .field("fixed_batch_plans", &self.uses_fixed_batch_plans())
            .finish()
    }
}

/// The threads a classifier runs on, for tokenising and for matrix products alike: the calling
/// thread alone, or a pool of its own. Nothing process-wide: two classifiers (or a classifier
/// and the rest of the program) do not share or change each other's threads, and
/// `--threads 1` is one thread.
#[derive(Clone)]
enum Threads {
    One,
    Pool(Arc<rayon::ThreadPool>),
}

impl Threads {
    fn new(threads: usize) -> Result<Threads> {
        if threads <= 1 {
            return Ok(Threads::One);
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("tract-{i}"))
            .build()
            .with_context(|| format!("cannot start {threads} inference threads"))?;
        Ok(Threads::Pool(Arc::new(pool)))
    }

    fn count(&self) -> usize {
        match self {
            Threads::One => 1,
            Threads::Pool(pool) => pool.current_num_threads(),
        }
    }

    /// `f` over `items`, in order: on the pool, or one by one on this thread.
    fn map<T: Sync, R: Send>(&self, items: &[T], f: impl Fn(&T) -> R + Sync + Send) -> Vec<R> {
        use rayon::prelude::*;
        match self {
            Threads::One => items.iter().map(f).collect(),
            Threads::Pool(pool) => pool.install(|| items.par_iter().map(f).collect()),
        }
    }

    /// Runs `f` with tract's matrix products on these threads (a thread-local setting).
    fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        use tract_linalg::multithread::{multithread_tract_scope, Executor};
        let executor = match self {
            Threads::One => Executor::SingleThread,
            Threads::Pool(pool) => Executor::MultiThread(pool.clone()),
        };
        multithread_tract_scope(executor, f)
    }
}

/// Cores this process may use.
pub fn available_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Turns a decoded ONNX model into tract's graph: compact weights are expanded to f32 first
/// ([`crate::weights`]); `dir` resolves external data files; `path` names the file in errors.
fn parse_graph(
    mut proto: tract_onnx::pb::ModelProto,
    dir: Option<&Path>,
    path: &dyn std::fmt::Display,
    clock: &std::cell::Cell<LoadTimings>,
) -> Result<InferenceModel> {
    timed(
        clock,
        |t| &mut t.expand,
        || crate::weights::expand_compact_weights(&mut proto),
    )
    .with_context(|| format!("{path}: cannot expand the compact weights"))?;
    let (model, unresolved) = timed(
        clock,
        |t| &mut t.parse,
        || -> Result<_> {
            let weights = crate::weights::take_weights(&mut proto);
            let parsed = tract_onnx::onnx()
                .parse(&proto, dir.and_then(Path::to_str))
                .map_err(|e| anyhow!("{path}: cannot load the ONNX graph: {e:#}"))?;
            drop(proto);
            let (mut model, mut unresolved) = (parsed.model, parsed.unresolved_inputs);
            crate::weights::install_weights(
                &mut model,
                &parsed.outlets_by_name,
                &mut unresolved,
                weights,
            )
            .with_context(|| format!("{path}: cannot load the ONNX graph's weights"))?;
            Ok((model, unresolved))
        },
    )?;
    if !unresolved.is_empty() {
        bail!(
            "{path}: cannot load the ONNX graph: inputs {unresolved:?} are read but never defined"
        );
    }
    Ok(model)
}

/// Maps a model file into memory, read-only.
fn map_file(path: &Path) -> std::io::Result<memmap2::Mmap> {
    let file = std::fs::File::open(path)?;
    // SAFETY: the map is read-only and lives only while the file is decoded (tract maps model
    // files the same way). A file rewritten by another process during those milliseconds gives
    // wrong weights, as reading it half-written would; one truncated meanwhile ends the process
    // with SIGBUS. In Lambda the model lies in the read-only image.
    unsafe { memmap2::Mmap::map(&file) }
}

/// Decodes ONNX protobuf from bytes in place (no copy of the whole file first).
fn decode_onnx(bytes: &[u8]) -> Result<tract_onnx::pb::ModelProto, prost::DecodeError> {
    <tract_onnx::pb::ModelProto as prost::Message>::decode(bytes)
}

fn round_up(len: usize, multiple: usize) -> usize {
    len.div_ceil(multiple) * multiple
}

impl Classifier {
    /// Loads a model directory. Errors name the file and what is wrong with it.
    pub fn load(dir: impl AsRef<Path>, options: &ClassifierOptions) -> Result<Classifier> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            if dir.exists() {
                bail!("model directory {}: not a directory", dir.display());
            }
            bail!("model directory {} does not exist", dir.display());
        }
        let onnx_path = dir.join("model.onnx");
        let config_path = dir.join("config.json");
        let missing = missing_model_files(|name| dir.join(name).is_file());
        if !missing.is_empty() {
            bail!(
                "model directory {}: {} {} missing; a model directory holds model.onnx, config.json and tokenizer.json (or vocab.txt)",
                dir.display(),
                missing.join(", "),
                if missing.len() == 1 { "is" } else { "are" }
            );
        }
        let clock = std::cell::Cell::new(LoadTimings::default());
        let (config, tokenizer) = timed(
            &clock,
            |t| &mut t.tokenizer,
            || -> Result<_> {
                let config = read_config(&config_path)?;
                let tokenizer_json = dir.join("tokenizer.json");
                let tokenizer = if tokenizer_json.is_file() {
                    let bytes = std::fs::read(&tokenizer_json)
                        .with_context(|| format!("{}: cannot read", tokenizer_json.display()))?;
                    crate::tokenizer_json::load(&bytes).map_err(|e| {
                        anyhow!(
                            "{}: cannot load the tokenizer: {e}",
                            tokenizer_json.display()
                        )
                    })?
                } else {
                    // missing_model_files made sure vocab.txt is there.
                    wordpiece_tokenizer(dir)?
                };
                Ok((config, tokenizer))
            },
        )?;
        let read = || {
            // Mapped, not read: the decode copies each tensor once, straight from the page
            // cache (a read would copy the whole file first, and tract's reader a second time).
            let map = timed(&clock, |t| &mut t.read, || map_file(&onnx_path))
                .with_context(|| format!("{}: cannot read", onnx_path.display()))?;
            let proto = timed(&clock, |t| &mut t.decode, || decode_onnx(&map)).map_err(|e| {
                anyhow!(
                    "{}: cannot load the ONNX graph: not ONNX protobuf: {e:#}",
                    onnx_path.display()
                )
            })?;
            drop(map);
            parse_graph(proto, Some(dir), &onnx_path.display(), &clock)
        };
        Self::assemble(
            dir.display().to_string(),
            config,
            tokenizer,
            &clock,
            &read,
            options,
        )
    }

    /// Loads a model held in memory (the CLI's embedded model). `name` stands for the
    /// directory in messages.
    pub fn from_bytes(
        name: &str,
        onnx: &[u8],
        config_json: &[u8],
        tokenizer_json: &[u8],
        options: &ClassifierOptions,
    ) -> Result<Classifier> {
        let clock = std::cell::Cell::new(LoadTimings::default());
        let (config, tokenizer) = timed(
            &clock,
            |t| &mut t.tokenizer,
            || -> Result<_> {
                let config_text = std::str::from_utf8(config_json)
                    .map_err(|e| anyhow!("{name}/config.json: not UTF-8: {e}"))?;
                let config = parse_config(config_text, &format!("{name}/config.json"))?;
                let tokenizer = crate::tokenizer_json::load(tokenizer_json).map_err(|e| {
                    anyhow!("{name}/tokenizer.json: cannot load the tokenizer: {e}")
                })?;
                Ok((config, tokenizer))
            },
        )?;
        let read = || {
            let proto = timed(&clock, |t| &mut t.decode, || decode_onnx(onnx)).map_err(|e| {
                anyhow!("{name}/model.onnx: cannot load the ONNX graph: not ONNX protobuf: {e:#}")
            })?;
            parse_graph(proto, None, &format!("{name}/model.onnx"), &clock)
        };
        Self::assemble(name.to_string(), config, tokenizer, &clock, &read, options)
    }

    /// The common part of loading: parsing the graph, tokenizer settings, input roles, the
    /// plan, a test run. `clock` holds the stages' times so far. `read` parses the graph;
    /// the rare fallback calls it a second time rather than keeping a copy of the graph
    /// around while optimising, which would raise peak memory by the size of the weights.
    fn assemble(
        source: String,
        config: ModelConfig,
        mut tokenizer: Tokenizer,
        clock: &std::cell::Cell<LoadTimings>,
        read: &dyn Fn() -> Result<InferenceModel>,
        options: &ClassifierOptions,
    ) -> Result<Classifier> {
        let model = read()?;
        let onnx_path = format!("{source}/model.onnx");
        let max_tokens = max_tokens_for(&config, options, &format!("{source}/config.json"))?;
        let pad_id = prepare_tokenizer(&mut tokenizer, max_tokens)?;
        let threads = Threads::new(options.threads.unwrap_or_else(available_cores))?;
        let (inputs, input_type) = graph_inputs(&model, &onnx_path)?;
        let logits_output = logits_outlet(&model, &onnx_path)?;

        // Only the logits are computed; the fallback's re-read graph gets the same treatment.
        let prepare = |mut model: InferenceModel| -> Result<InferenceModel> {
            let outputs = model
                .output_outlets()
                .map_err(onnx_error(&onnx_path))?
                .to_vec();
            if outputs.len() > 1 {
                model
                    .select_output_outlets(&[outputs[logits_output]])
                    .map_err(onnx_error(&onnx_path))?;
            }
            Ok(model)
        };
        let plans = build_plans(
            prepare(model)?,
            &|| prepare(read()?),
            &inputs,
            input_type,
            &onnx_path,
            clock,
        )?;

        let cutter = Cutter::for_tokenizer(&tokenizer, max_tokens);
        let mut classifier = Classifier {
            tokenizer,
            cutter,
            plans,
            inputs,
            input_type,
            // The graph now has the logits as its only output.
            logits_output: 0,
            labels: config.labels,
            temperature: config.temperature,
            threads,
            max_tokens,
            batch_tokens: options.batch_tokens.max(1),
            pad_id,
            source,
            timings: LoadTimings::default(),
        };
        // One run now: checks that the graph's outputs match config.json's labels, and warms
        // caches so the first request is as fast as the others.
        let warm_up_started = Instant::now();
        classifier
            .predict(&["warm-up"])
            .with_context(|| format!("model {}: the first test run failed", classifier.source))?;
        classifier.timings = LoadTimings {
            warm_up: warm_up_started.elapsed(),
            ..clock.get()
        };
        Ok(classifier)
    }

    /// The labels, lower-cased, in the model's order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The score temperature (`config.json`'s `score_temperature`, else 1).
    pub fn temperature(&self) -> f32 {
        self.temperature
    }

    /// The longest token sequence fed to the model.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Where the model was loaded from: its directory, or the embedded model's name.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Where the time of loading went.
    pub fn load_timings(&self) -> LoadTimings {
        self.timings
    }

    /// Whether this graph needed the per-batch-size fallback.
    pub fn uses_fixed_batch_plans(&self) -> bool {
        matches!(self.plans, Plans::PerBatchSize { .. })
    }

    /// Tokenises texts (with special tokens, truncated to the window).
    /// The work per text is bounded by the window, not by the text's length (see
    /// [`crate::tokens`]), and the cut-off tokens are not kept.
    pub fn encode<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<Encoding>> {
        Ok(self
            .encode_marked(texts)?
            .into_iter()
            .map(|(encoding, _)| encoding)
            .collect())
    }

    /// [`Classifier::encode`], each with whether the text was cut at the window. Runs on the
    /// classifier's threads.
    pub fn encode_marked<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
    ) -> Result<Vec<(Encoding, bool)>> {
        self.threads
            .map(texts, |t| {
                self.cutter.encode_marked(&self.tokenizer, t.as_ref())
            })
            .into_iter()
            .collect()
    }

    /// The threads this classifier tokenises and multiplies on (`ClassifierOptions::threads`).
    pub fn threads(&self) -> usize {
        self.threads.count()
    }

    /// Labels and scores in the wire format, in input order.
    pub fn classify<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<SentimentResult>> {
        Ok(self.classify_observed(texts)?.0)
    }

    /// [`Classifier::classify`], with what the call read and where its time went.
    pub fn classify_observed<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
    ) -> Result<(Vec<SentimentResult>, Usage)> {
        let (predictions, usage) = self.predict_observed(texts)?;
        let results = predictions
            .into_iter()
            .map(|p| SentimentResult {
                sentiment: self.labels[p.label].clone(),
                score: p.score(),
            })
            .collect();
        Ok((results, usage))
    }

    /// Full probability vectors, in input order.
    pub fn predict<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<Prediction>> {
        Ok(self.predict_observed(texts)?.0)
    }

    /// [`Classifier::predict`], with what the call read and where its time went.
    pub fn predict_observed<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
    ) -> Result<(Vec<Prediction>, Usage)> {
        if texts.is_empty() {
            return Ok((Vec::new(), Usage::default()));
        }
        let tokenizing = Instant::now();
        let marked = self.encode_marked(texts)?;
        let tokenize = tokenizing.elapsed();
        let modelling = Instant::now();
        let usage = Usage {
            tokens: marked.iter().map(|(e, _)| e.get_ids().len()).sum(),
            cut: marked.iter().filter(|(_, cut)| *cut).count(),
            tokenize,
            model: std::time::Duration::ZERO,
        };
        let encodings: Vec<Encoding> = marked.into_iter().map(|(e, _)| e).collect();
        let padded: Vec<usize> = encodings
            .iter()
            .map(|e| round_up(e.get_ids().len().max(1), PAD_MULTIPLE).min(self.max_tokens))
            .collect();
        // Shortest first, so each micro-batch holds texts of one padded length.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| padded[i]);

        let mut results: Vec<Option<Prediction>> = vec![None; texts.len()];
        let mut start = 0;
        while start < order.len() {
            let len = padded[order[start]];
            let cap = (self.batch_tokens / len).clamp(1, MAX_MICRO_BATCH);
            let mut end = start + 1;
            while end < order.len() && end - start < cap && padded[order[end]] == len {
                end += 1;
            }
            let batch: Vec<&Encoding> = order[start..end].iter().map(|&i| &encodings[i]).collect();
            let predictions = self.threads.run(|| self.run_batch(&batch, len))?;
            for (&i, prediction) in order[start..end].iter().zip(predictions) {
                results[i] = Some(prediction);
            }
            start = end;
        }
        let predictions = results
            .into_iter()
            .enumerate()
            .map(|(i, p)| p.ok_or_else(|| anyhow!("internal error: text {i} got no prediction")))
            .collect::<Result<Vec<_>>>()?;
        let usage = Usage {
            model: modelling.elapsed(),
            ..usage
        };
        Ok((predictions, usage))
    }

    /// Runs one micro-batch of equal padded length, through the fallback's power-of-two plans
    /// where needed.
    fn run_batch(&self, batch: &[&Encoding], len: usize) -> Result<Vec<Prediction>> {
        match &self.plans {
            Plans::Symbolic(plan) => self.run_plan(plan, batch, len),
            Plans::PerBatchSize { template, cache } => {
                let mut out = Vec::with_capacity(batch.len());
                let mut rest = batch;
                while !rest.is_empty() {
                    let size = 1usize << rest.len().ilog2();
                    let plan = {
                        let mut cache = cache
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner());
                        match cache.get(&size) {
                            Some(plan) => plan.clone(),
                            None => {
                                let plan = optimise(
                                    (**template).clone(),
                                    Some(size),
                                    &self.inputs,
                                    self.input_type,
                                )
                                .with_context(|| {
                                    format!("cannot build a plan for batch size {size}")
                                })?;
                                cache.insert(size, plan.clone());
                                plan
                            }
                        }
                    };
                    out.extend(self.run_plan(&plan, &rest[..size], len)?);
                    rest = &rest[size..];
                }
                Ok(out)
            }
        }
    }

    fn run_plan(&self, plan: &Plan, batch: &[&Encoding], len: usize) -> Result<Vec<Prediction>> {
        let n = batch.len();
        let mut ids = vec![self.pad_id as i64; n * len];
        let mut mask = vec![0i64; n * len];
        let mut type_ids = vec![0i64; n * len];
        for (row, encoding) in batch.iter().enumerate() {
            let base = row * len;
            for (j, ((&id, &m), &t)) in encoding
                .get_ids()
                .iter()
                .zip(encoding.get_attention_mask())
                .zip(encoding.get_type_ids())
                .take(len)
                .enumerate()
            {
                ids[base + j] = id as i64;
                mask[base + j] = m as i64;
                type_ids[base + j] = t as i64;
            }
        }
        let mut tensors = TVec::new();
        for role in &self.inputs {
            let data = match role {
                InputRole::Ids => &ids,
                InputRole::Mask => &mask,
                InputRole::TypeIds => &type_ids,
            };
            let tensor = Tensor::from_shape(&[n, len], data)?;
            let tensor = if self.input_type == i32::datum_type() {
                tensor.cast_to::<i32>()?.into_owned()
            } else {
                tensor
            };
            tensors.push(tensor.into_tvalue());
        }
        let outputs = plan
            .run(tensors)
            .map_err(|e| anyhow!("inference failed: {e:#}"))?;
        let logits = outputs
            .get(self.logits_output)
            .ok_or_else(|| anyhow!("the model returned no logits"))?;
        let logits = logits
            .to_plain_array_view::<f32>()
            .map_err(|e| anyhow!("the model's logits are not f32: {e}"))?;
        let shape = logits.shape();
        if shape.len() != 2 || shape[0] != n || shape[1] != self.labels.len() {
            bail!(
                "the model returned logits of shape {shape:?}, expected [{n}, {}] (one per label in config.json's id2label)",
                self.labels.len()
            );
        }
        logits
            .outer_iter()
            .map(|row| softmax_calibrated(row.iter().copied(), self.temperature))
            .collect()
    }
}

/// Softmax in f32 and the arg-max; refuses non-finite logits rather than returning NaN scores.
pub fn softmax(logits: impl Iterator<Item = f32>) -> Result<Prediction> {
    softmax_calibrated(logits, 1.0)
}

/// [`softmax`], with the scores taken at `temperature` (the logits divided by it).
pub fn softmax_calibrated(
    logits: impl Iterator<Item = f32>,
    temperature: f32,
) -> Result<Prediction> {
    let logits: Vec<f32> = logits.collect();
    if logits.is_empty() || logits.iter().any(|x| !x.is_finite()) {
        bail!("the model produced non-finite logits {logits:?}");
    }
    let probabilities = softmax_of(&logits, 1.0);
    let scores = if temperature == 1.0 {
        probabilities.clone()
    } else {
        softmax_of(&logits, temperature)
    };
    let mut label = 0;
    for (i, p) in probabilities.iter().enumerate() {
        if *p > probabilities[label] {
            label = i;
        }
    }
    Ok(Prediction {
        label,
        probabilities,
        scores,
        logits,
    })
}

fn softmax_of(logits: &[f32], temperature: f32) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits
        .iter()
        .map(|x| ((x - max) / temperature).exp())
        .collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

/// Errors from tract about the graph, prefixed with its path.
fn onnx_error(onnx_path: &str) -> impl Fn(TractError) -> anyhow::Error + '_ {
    move |e| anyhow!("{onnx_path}: {e:#}")
}

/// Tokens per text: `UMMATICS_MAX_TOKENS` / the option when set (refused above the model
/// window), else the window, at most 512.
fn max_tokens_for(
    config: &ModelConfig,
    options: &ClassifierOptions,
    config_path: &str,
) -> Result<usize> {
    let window = config.max_position_embeddings.unwrap_or(512);
    match options.max_tokens {
        Some(n) if n > window => bail!(
            "max tokens {n} is larger than the model window ({window}, max_position_embeddings in {config_path}); use at most {window}"
        ),
        Some(n) => Ok(n),
        None => Ok(window.min(512)),
    }
}

/// Truncation to `max_tokens` and no padding (tokenizer.json may carry fixed padding, e.g. to
/// 128: we pad ourselves, per batch); returns the padding token's id.
fn prepare_tokenizer(tokenizer: &mut Tokenizer, max_tokens: usize) -> Result<u32> {
    let pad_id = tokenizer
        .get_padding()
        .map(|p| p.pad_id)
        .or_else(|| tokenizer.token_to_id("[PAD]"))
        .or_else(|| tokenizer.token_to_id("<pad>"))
        .unwrap_or(0);
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: max_tokens,
            ..Default::default()
        }))
        .map_err(|e| anyhow!("cannot truncate to {max_tokens} tokens: {e}"))?;
    Ok(pad_id)
}

/// What each graph input is, by name, and their integer type (int64 or int32).
fn graph_inputs(model: &InferenceModel, onnx_path: &str) -> Result<(Vec<InputRole>, DatumType)> {
    let mut inputs = Vec::new();
    let mut input_type = None;
    let outlets = model.input_outlets().map_err(onnx_error(onnx_path))?;
    for (i, outlet) in outlets.iter().enumerate() {
        let name = model.node(outlet.node).name.to_lowercase();
        let role = if name.contains("input_ids") {
            InputRole::Ids
        } else if name.contains("attention_mask") {
            InputRole::Mask
        } else if name.contains("token_type_ids") {
            InputRole::TypeIds
        } else {
            bail!("{onnx_path}: input {name:?} is not one of input_ids, attention_mask, token_type_ids");
        };
        let fact = model.input_fact(i).map_err(onnx_error(onnx_path))?;
        let dt = fact.datum_type.concretize().unwrap_or(i64::datum_type());
        if dt != i64::datum_type() && dt != i32::datum_type() {
            bail!("{onnx_path}: input {name:?} has type {dt:?}; expected int64 or int32");
        }
        input_type = Some(dt);
        inputs.push(role);
    }
    if !inputs.contains(&InputRole::Ids) {
        bail!("{onnx_path}: the graph has no input_ids input");
    }
    Ok((inputs, input_type.unwrap_or(i64::datum_type())))
}

/// The output holding the logits (by node or outlet name), else the first.
fn logits_outlet(model: &InferenceModel, onnx_path: &str) -> Result<usize> {
    Ok(model
        .output_outlets()
        .map_err(onnx_error(onnx_path))?
        .iter()
        .position(|o| {
            let node = model.node(o.node);
            node.name.contains("logits")
                || model.outlet_label(*o).is_some_and(|l| l.contains("logits"))
        })
        .unwrap_or(0))
}

/// One plan with a symbolic batch size; or, for graphs tract cannot optimise that way (known
/// case: transformers ≥ 5 exports flatten over two symbols), one plan per batch size made
/// from the graph `reread` gives.
fn build_plans(
    model: InferenceModel,
    reread: &dyn Fn() -> Result<InferenceModel>,
    inputs: &[InputRole],
    input_type: DatumType,
    onnx_path: &str,
    clock: &std::cell::Cell<LoadTimings>,
) -> Result<Plans> {
    let symbolic = match optimise_timed(model, None, inputs, input_type, clock) {
        Ok(plan) => return Ok(Plans::Symbolic(plan)),
        Err(e) => e,
    };
    let model = reread()?;
    let plan = optimise_timed(model.clone(), Some(1), inputs, input_type, clock).map_err(|fixed| {
        anyhow!(
            "{onnx_path}: tract cannot optimise this graph: {symbolic:#} (with a fixed batch size too: {fixed:#})"
        )
    })?;
    tracing::warn!(
        "{onnx_path}: no plan for a symbolic batch size ({symbolic}); building one plan per batch size"
    );
    Ok(Plans::PerBatchSize {
        template: Box::new(model),
        cache: Mutex::new(HashMap::from([(1, plan)])),
    })
}

/// Declares the inputs as `[batch, sequence]` (batch concrete when given) and optimises.
fn optimise(
    model: InferenceModel,
    batch: Option<usize>,
    inputs: &[InputRole],
    input_type: DatumType,
) -> TractResult<Plan> {
    optimise_timed(
        model,
        batch,
        inputs,
        input_type,
        &std::cell::Cell::new(LoadTimings::default()),
    )
}

/// [`optimise`], its stages timed into `clock`: typing (what `into_typed` does), decluttering
/// and optimising into the plan — what `into_optimized` does, one stage at a time.
fn optimise_timed(
    mut model: InferenceModel,
    batch: Option<usize>,
    inputs: &[InputRole],
    input_type: DatumType,
    clock: &std::cell::Cell<LoadTimings>,
) -> TractResult<Plan> {
    let batch = match batch {
        Some(n) => n.to_dim(),
        None => model.symbols.sym("batch").to_dim(),
    };
    let sequence = model.symbols.sym("sequence").to_dim();
    for i in 0..inputs.len() {
        model.set_input_fact(
            i,
            InferenceFact::dt_shape(input_type, tvec![batch.clone(), sequence.clone()]),
        )?;
    }
    let mut typed = timed(clock, |t| &mut t.typing, || model.into_typed())?;
    timed(clock, |t| &mut t.declutter, || typed.declutter())?;
    timed(
        clock,
        |t| &mut t.optimise,
        || {
            typed.optimize()?;
            typed.into_runnable()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_is_normalised_and_picks_the_largest() {
        let p = softmax([1.0f32, 3.0].into_iter()).unwrap();
        assert_eq!(p.label, 1);
        assert!((p.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((p.score() - 0.880_797).abs() < 1e-5);
        // Large logits do not overflow.
        let p = softmax([1000.0f32, -1000.0].into_iter()).unwrap();
        assert_eq!(p.label, 0);
        assert_eq!(p.score(), 1.0);
        assert!(softmax([f32::NAN, 0.0].into_iter()).is_err());
        assert!(softmax(std::iter::empty()).is_err());
    }

    #[test]
    fn a_temperature_softens_the_score_and_keeps_the_label() {
        // Logits 1 and 3 at temperature 2: softmax(0.5, 1.5) = 0.731059 for the second.
        let p = softmax_calibrated([1.0f32, 3.0].into_iter(), 2.0).unwrap();
        assert_eq!(p.label, 1);
        assert!((p.probabilities[1] - 0.880_797).abs() < 1e-5, "raw kept");
        assert!((p.score() - 0.731_059).abs() < 1e-5, "{p:?}");
        assert!((p.scores.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        // Below 1 it sharpens; the label never moves.
        let sharp = softmax_calibrated([1.0f32, 3.0].into_iter(), 0.5).unwrap();
        assert_eq!(sharp.label, 1);
        assert!(sharp.score() > 0.98);
    }

    #[test]
    fn config_temperature_is_checked() {
        let base = r#"{"id2label": {"0": "NEGATIVE", "1": "POSITIVE"}"#;
        let parse = |extra: &str| parse_config(&format!("{base}{extra}}}"), &"m/config.json");
        assert_eq!(parse("").unwrap().temperature, 1.0);
        assert_eq!(
            parse(r#", "score_temperature": 1.5"#).unwrap().temperature,
            1.5
        );
        for bad in [
            r#", "score_temperature": 0"#,
            r#", "score_temperature": "2""#,
            r#", "score_temperature": -1"#,
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(
                e.contains("m/config.json: score_temperature must be a number"),
                "{e}"
            );
        }
    }

    #[test]
    fn padding_rounds_up() {
        assert_eq!(round_up(1, 8), 8);
        assert_eq!(round_up(8, 8), 8);
        assert_eq!(round_up(9, 8), 16);
    }
}
