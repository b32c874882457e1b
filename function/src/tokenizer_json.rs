//! Reading `tokenizer.json` in a third of the time `Tokenizer::from_bytes` takes, for the
//! common case of a WordPiece (BERT-family) tokenizer.
//!
//! `tokenizers` reads its model through an internally tagged enum, so serde first buffers the
//! whole model — 30,522 vocabulary entries for BERT — as generic `Content` values, then reads
//! them a second time: 13 ms of a 130 ms cold start for the default model. Here the file's
//! top-level keys are split without parsing their values; the `model` value is read straight
//! into `tokenizers`' own `WordPiece` (its own `Deserialize`, no buffering); the rest of the
//! file is read by `tokenizers` itself with a stand-in model that holds only the added tokens,
//! and the real model is put in its place.
//!
//! The result is the tokenizer `Tokenizer::from_bytes` builds, or nothing is taken from this
//! path: anything else (another model type, an added token the vocabulary lacks or numbers
//! differently, any error) goes the ordinary way, which reports the errors. Tests compare the
//! two tokenizers' complete serialised forms.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::Tokenizer;

/// Loads a `tokenizer.json` held in memory.
pub fn load(bytes: &[u8]) -> tokenizers::Result<Tokenizer> {
    match wordpiece(bytes) {
        Some(tokenizer) => Ok(tokenizer),
        None => Tokenizer::from_bytes(bytes),
    }
}

/// The fast path: `None` whenever it cannot give exactly what `Tokenizer::from_bytes` gives.
fn wordpiece(bytes: &[u8]) -> Option<Tokenizer> {
    #[derive(Deserialize)]
    struct Added {
        id: u32,
        content: String,
    }
    let mut top: BTreeMap<String, Box<RawValue>> = serde_json::from_slice(bytes).ok()?;
    let model: WordPiece = serde_json::from_str(top.get("model")?.get()).ok()?;
    let added: Vec<Added> = match top.get("added_tokens") {
        Some(raw) => serde_json::from_str(raw.get()).ok()?,
        None => Vec::new(),
    };
    // `from_bytes` gives an added token the vocabulary's id when it has one and a new id after
    // the vocabulary's otherwise; the stand-in model reproduces the first case only.
    use tokenizers::Model;
    if added
        .iter()
        .any(|a| model.token_to_id(&a.content) != Some(a.id))
    {
        return None;
    }
    let stand_in = WordPiece::builder()
        .vocab(
            added
                .into_iter()
                .map(|a| (a.content, a.id))
                .collect::<ahash::AHashMap<String, u32>>(),
        )
        .unk_token(model.unk_token.clone())
        .continuing_subword_prefix(model.continuing_subword_prefix.clone())
        .max_input_chars_per_word(model.max_input_chars_per_word)
        .build()
        .ok()?;
    top.insert(
        "model".to_string(),
        RawValue::from_string(serde_json::to_string(&stand_in).ok()?).ok()?,
    );
    let mut tokenizer: Tokenizer = serde_json::to_string(&top).ok()?.parse().ok()?;
    tokenizer.with_model(model);
    Some(tokenizer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_file(path: &str) -> Vec<u8> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        std::fs::read(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The whole tokenizer as JSON: vocabulary, added tokens, normaliser, pre-tokenizer,
    /// post-processor, decoder, truncation and padding.
    fn serialised(tokenizer: &Tokenizer) -> serde_json::Value {
        serde_json::to_value(tokenizer).unwrap()
    }

    fn assert_same_as_tokenizers(bytes: &[u8]) {
        let fast = wordpiece(bytes).expect("the fast path takes this file");
        let slow = Tokenizer::from_bytes(bytes).unwrap();
        assert_eq!(serialised(&fast), serialised(&slow));
        for text in [
            "I love this! [MASK] It is wonderful.",
            "naïve café 東京 ##x",
            "",
        ] {
            let a = fast.encode(text, true).unwrap();
            let b = slow.encode(text, true).unwrap();
            assert_eq!(a.get_ids(), b.get_ids(), "{text:?}");
            assert_eq!(a.get_offsets(), b.get_offsets(), "{text:?}");
        }
    }

    #[test]
    fn bundled_tokenizers_load_as_tokenizers_loads_them() {
        for model in ["sst2-minilm", "sst2-mini"] {
            assert_same_as_tokenizers(&repo_file(&format!("models/{model}/tokenizer.json")));
        }
    }

    fn edited(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
        let mut json: serde_json::Value =
            serde_json::from_slice(&repo_file("models/sst2-minilm/tokenizer.json")).unwrap();
        edit(&mut json);
        serde_json::to_vec(&json).unwrap()
    }

    #[test]
    fn settings_beside_the_model_are_kept() {
        // Truncation, padding, a normaliser setting and an added token that is not special.
        let bytes = edited(|json| {
            json["truncation"] = serde_json::json!({"direction": "Right", "max_length": 7,
                "strategy": "LongestFirst", "stride": 0});
            json["padding"] = serde_json::json!({"strategy": {"Fixed": 9}, "direction": "Left",
                "pad_to_multiple_of": null, "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"});
            json["normalizer"]["lowercase"] = serde_json::json!(false);
            let the = json["model"]["vocab"]["the"].clone();
            json["added_tokens"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({
                "id": the, "content": "the", "single_word": true, "lstrip": false,
                "rstrip": false, "normalized": true, "special": false}));
        });
        assert_same_as_tokenizers(&bytes);
    }

    #[test]
    fn what_the_fast_path_cannot_reproduce_goes_the_ordinary_way() {
        // An added token outside the vocabulary gets a new id from `tokenizers`.
        let outside = edited(|json| {
            json["added_tokens"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({
                "id": 30522, "content": "<new>", "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": true}));
        });
        assert!(wordpiece(&outside).is_none());
        let loaded = load(&outside).unwrap();
        assert_eq!(loaded.token_to_id("<new>"), Some(30522));
        // Not WordPiece.
        let bpe = edited(|json| {
            json["model"] = serde_json::json!({"type": "WordLevel",
                "vocab": {"[UNK]": 100, "[PAD]": 0, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103},
                "unk_token": "[UNK]"});
        });
        assert!(wordpiece(&bpe).is_none());
        assert!(load(&bpe).is_ok());
        // Broken files keep the error `tokenizers` gives.
        for bad in [&b"{"[..], b"[]", b"{\"model\": 3}", b""] {
            assert!(wordpiece(bad).is_none());
            let fast = load(bad).map(|_| ()).unwrap_err().to_string();
            let slow = Tokenizer::from_bytes(bad)
                .map(|_| ())
                .unwrap_err()
                .to_string();
            assert_eq!(fast, slow);
        }
        // A wrong version is refused, as `tokenizers` refuses it.
        let version = edited(|json| json["version"] = serde_json::json!("2.0"));
        assert!(load(&version).is_err());
    }
}
