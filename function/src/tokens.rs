//! Tokenising with work bounded by the model window, not by the length of the text.
//!
//! The model reads a text's first `max_tokens` tokens. Tokenising a whole megabyte of `!` (a
//! million tokens) to keep 128 of them costs ~120 MB of memory and most of the request's time.
//! So a text longer than a first byte budget is tokenised a prefix at a time. Each prefix ends
//! at a *cut*: a place where, for this tokenizer, nothing after it can change the tokens before
//! it. When the prefix alone overflows the window, its tokens are the whole text's first tokens
//! and the result is identical (and the text is marked as cut); otherwise the budget doubles (so
//! the total work is at most twice that of tokenising the text once) until the prefix
//! overflows the window or is the whole text.
//!
//! Where a cut may fall depends on the tokenizer, and is decided once, at load ([`Cutter::for_tokenizer`]):
//! - BERT's pre-tokenizer splits at every whitespace and punctuation character, so a cut may
//!   fall after ASCII punctuation, or before ASCII whitespace or punctuation (never right after
//!   whitespace, so a trailing-`Strip` normaliser sees the same text);
//! - whitespace-splitting pre-tokenizers (byte-level BPE with its regex, Metaspace with
//!   splitting, `Whitespace`, `WhitespaceSplit`, and sequences of those with `Punctuation` and
//!   `Digits`) may be cut before ASCII whitespace that follows a non-whitespace character;
//! - anything else (a custom `Split` regex, fixed-length pieces, a `Replace` or precompiled
//!   normaliser, which may join characters across a cut) is never cut: such a text is
//!   tokenised whole, which the 1 MiB per-text limit still bounds.
//!
//! A cut never splits an added token (`[MASK]`, `<s>`…) that the text spells out.
//! The cut-off tokens (`Encoding::overflowing`) are dropped before the batch is built.

use anyhow::{anyhow, Result};
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{Encoding, Tokenizer};

/// Bytes of text tokenised first, per token of the window: English averages 4–5 bytes per
/// token, so almost every text that fills the window does so within this budget.
pub const BUDGET_BYTES_PER_TOKEN: usize = 8;
/// The smallest first budget, whatever the window.
pub const MIN_FIRST_BUDGET: usize = 1024;

/// Where a text may be cut for a given tokenizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutRule {
    /// BERT: after ASCII punctuation, or before ASCII whitespace or punctuation.
    Words,
    /// Before ASCII whitespace that follows a non-whitespace character.
    Spaces,
    /// Never: the text is tokenised whole.
    Never,
}

/// Tokenises one text at a time with bounded work; see the module documentation.
#[derive(Debug, Clone)]
pub struct Cutter {
    rule: CutRule,
    /// The added tokens' texts, which a cut must not split.
    added: Vec<String>,
    first_budget: usize,
}

fn ascii_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Normalisers that work character by character (or on the whole text's ends only), so a
/// cut cannot change what they do to the text before it.
fn local_normalizer(n: &NormalizerWrapper) -> bool {
    match n {
        NormalizerWrapper::BertNormalizer(_)
        | NormalizerWrapper::StripNormalizer(_)
        | NormalizerWrapper::StripAccents(_)
        | NormalizerWrapper::NFC(_)
        | NormalizerWrapper::NFD(_)
        | NormalizerWrapper::NFKC(_)
        | NormalizerWrapper::NFKD(_)
        | NormalizerWrapper::Lowercase(_)
        | NormalizerWrapper::Nmt(_)
        | NormalizerWrapper::Prepend(_)
        | NormalizerWrapper::ByteLevel(_) => true,
        NormalizerWrapper::Sequence(seq) => seq.as_ref().iter().all(local_normalizer),
        NormalizerWrapper::Precompiled(_) | NormalizerWrapper::Replace(_) => false,
    }
}

/// Whether a pre-tokenizer splits at ASCII whitespace; `None` when it may join across it.
fn splits_at_spaces(p: &PreTokenizerWrapper) -> Option<bool> {
    match p {
        PreTokenizerWrapper::BertPreTokenizer(_)
        | PreTokenizerWrapper::Whitespace(_)
        | PreTokenizerWrapper::WhitespaceSplit(_) => Some(true),
        PreTokenizerWrapper::ByteLevel(b) => b.use_regex.then_some(true),
        PreTokenizerWrapper::Metaspace(m) => m.get_split().then_some(true),
        PreTokenizerWrapper::Punctuation(_) | PreTokenizerWrapper::Digits(_) => Some(false),
        PreTokenizerWrapper::Sequence(seq) => {
            let mut any = false;
            for p in seq.as_ref() {
                any |= splits_at_spaces(p)?;
            }
            Some(any)
        }
        PreTokenizerWrapper::Delimiter(_)
        | PreTokenizerWrapper::Split(_)
        | PreTokenizerWrapper::UnicodeScripts(_)
        | PreTokenizerWrapper::FixedLength(_) => None,
    }
}

impl CutRule {
    /// The rule for a tokenizer, from its normaliser and pre-tokenizer.
    pub fn for_tokenizer(tokenizer: &Tokenizer) -> CutRule {
        if !tokenizer.get_normalizer().is_none_or(local_normalizer) {
            return CutRule::Never;
        }
        match tokenizer.get_pre_tokenizer() {
            Some(PreTokenizerWrapper::BertPreTokenizer(_)) => CutRule::Words,
            Some(p) if splits_at_spaces(p) == Some(true) => CutRule::Spaces,
            _ => CutRule::Never,
        }
    }

    /// Whether the text may be cut between `before` and `after`.
    fn allows(self, before: char, after: char) -> bool {
        match self {
            CutRule::Words => {
                !before.is_whitespace()
                    && (before.is_ascii_punctuation()
                        || ascii_space(after)
                        || after.is_ascii_punctuation())
            }
            CutRule::Spaces => !before.is_whitespace() && ascii_space(after),
            CutRule::Never => false,
        }
    }
}

impl Cutter {
    /// The cutter for a tokenizer whose window is `max_tokens`.
    pub fn for_tokenizer(tokenizer: &Tokenizer, max_tokens: usize) -> Cutter {
        let added = tokenizer
            .get_added_tokens_decoder()
            .into_values()
            .map(|t| t.content)
            .filter(|c| !c.is_empty())
            .collect();
        Cutter {
            rule: CutRule::for_tokenizer(tokenizer),
            added,
            first_budget: (max_tokens * BUDGET_BYTES_PER_TOKEN).max(MIN_FIRST_BUDGET),
        }
    }

    /// The rule in use.
    pub fn rule(&self) -> CutRule {
        self.rule
    }

    /// Sets the first byte budget (tests use small ones to exercise many cuts).
    pub fn with_first_budget(mut self, bytes: usize) -> Cutter {
        self.first_budget = bytes.max(1);
        self
    }

    /// Whether an added token spelled out in the text spans byte `at`.
    fn splits_added_token(&self, text: &str, at: usize) -> bool {
        self.added.iter().any(|token| {
            let n = token.len();
            // Occurrences that start before `at` and end after it lie in this window.
            let mut start = at.saturating_sub(n - 1);
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            let mut end = (at + n - 1).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            let window = text[start..end].to_ascii_lowercase();
            let token = token.to_ascii_lowercase();
            window.match_indices(&token).any(|(i, _)| {
                let s = start + i;
                s < at && s + n > at
            })
        })
    }

    /// The last cut at or before byte `budget` (exclusive of 0), if any.
    fn cut_before(&self, text: &str, budget: usize) -> Option<usize> {
        if self.rule == CutRule::Never {
            return None;
        }
        let mut at = budget.min(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let head = &text[..at];
        let mut after = text[at..].chars().next()?;
        for (i, before) in head.char_indices().rev() {
            let cut = i + before.len_utf8();
            if self.rule.allows(before, after) && !self.splits_added_token(text, cut) {
                return Some(cut);
            }
            after = before;
        }
        None
    }

    /// The text's encoding, truncated to the tokenizer's window, without the cut-off tokens —
    /// identical to tokenising the whole text and truncating.
    /// `tokenizer` truncates to the window this cutter was made for.
    pub fn encode(&self, tokenizer: &Tokenizer, text: &str) -> Result<Encoding> {
        Ok(self.encode_marked(tokenizer, text)?.0)
    }

    /// [`Cutter::encode`], and whether the text was cut: whether it has tokens beyond the
    /// window that the model does not read.
    pub fn encode_marked(&self, tokenizer: &Tokenizer, text: &str) -> Result<(Encoding, bool)> {
        // Whether the part overflowed the window: then its tokens are the text's first ones and
        // the text is cut. (A part that fills the window exactly says nothing about the rest,
        // which may tokenise to nothing: the next, longer part tells.)
        let encode = |part: &str| -> Result<(Encoding, bool)> {
            let mut encoding = tokenizer
                .encode_fast(part, true)
                .map_err(|e| anyhow!("tokenisation failed: {e}"))?;
            let overflowed = !encoding.take_overflowing().is_empty();
            Ok((encoding, overflowed))
        };
        let mut budget = self.first_budget;
        let mut tried = 0;
        while budget < text.len() {
            match self.cut_before(text, budget) {
                Some(cut) if cut > tried => {
                    tried = cut;
                    let (encoding, overflowed) = encode(&text[..cut])?;
                    if overflowed {
                        return Ok((encoding, true));
                    }
                }
                _ => {}
            }
            budget = budget.saturating_mul(2);
        }
        encode(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tokenizers::models::bpe::{BpeTrainer, BPE};
    use tokenizers::models::TrainerWrapper;
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::TruncationParams;

    const BERT: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/sst2-minilm/tokenizer.json"
    );

    fn truncated(mut tokenizer: Tokenizer, max_tokens: usize) -> Tokenizer {
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..Default::default()
            }))
            .unwrap();
        tokenizer
    }

    fn bert(max_tokens: usize) -> Tokenizer {
        static BASE: std::sync::OnceLock<Tokenizer> = std::sync::OnceLock::new();
        let base = BASE.get_or_init(|| Tokenizer::from_file(BERT).unwrap());
        truncated(base.clone(), max_tokens)
    }

    /// A byte-level BPE (GPT-2/RoBERTa style) trained here on a few sentences (once).
    fn byte_level(max_tokens: usize) -> Tokenizer {
        static BASE: std::sync::OnceLock<Tokenizer> = std::sync::OnceLock::new();
        truncated(BASE.get_or_init(train_byte_level).clone(), max_tokens)
    }

    fn train_byte_level() -> Tokenizer {
        let mut tokenizer = Tokenizer::new(BPE::default());
        tokenizer.with_pre_tokenizer(Some(ByteLevel::default()));
        let mut trainer = TrainerWrapper::BpeTrainer(
            BpeTrainer::builder()
                .vocab_size(400)
                .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
                .show_progress(false)
                .build(),
        );
        let corpus = [
            "I love this! It is not bad at all, don't you think?",
            "This is terrible... the worst thing I have bought; 12 of 10 would not buy again",
            "nice box, broken product -- no complaints about the shipping though!!!",
        ];
        tokenizer.train(&mut trainer, corpus.iter()).unwrap();
        tokenizer
            .add_special_tokens([tokenizers::AddedToken::from("<mask>", true)])
            .unwrap();
        tokenizer
    }

    /// Pieces that make cuts interesting: runs of punctuation and spaces, accents as combining
    /// marks, control characters, CJK, emoji, contractions, long words, added tokens spelled
    /// out (also in the wrong case).
    fn pieces() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "good", "bad", "not", "movie", " ", "  ", "\t", "\n", "\r\n", "!", "!!!", ",", ".",
            "é", "e\u{301}", "\u{301}", "[MASK]", "[mask]", "[SEP]", "<mask>", "\u{0}", "\u{7}",
            "日本語", "😀", "don't", "it's", "12", "3.5", "\u{a0}", "\u{3000}",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ])
        .prop_map(str::to_string)
    }

    fn texts() -> impl Strategy<Value = String> {
        prop::collection::vec(pieces(), 0..300).prop_map(|p| p.concat())
    }

    fn same_as_whole(tokenizer: &Tokenizer, max_tokens: usize, budget: usize, text: &str) {
        let cutter = Cutter::for_tokenizer(tokenizer, max_tokens).with_first_budget(budget);
        let (bounded, cut) = cutter.encode_marked(tokenizer, text).unwrap();
        let whole = tokenizer.encode_fast(text, true).unwrap();
        assert_eq!(
            cut,
            !whole.get_overflowing().is_empty(),
            "{text:?} (budget {budget}): marked cut {cut}"
        );
        assert_eq!(
            bounded.get_ids(),
            whole.get_ids(),
            "{text:?} (budget {budget})"
        );
        assert_eq!(bounded.get_type_ids(), whole.get_type_ids());
        assert_eq!(bounded.get_attention_mask(), whole.get_attention_mask());
        assert!(bounded.get_overflowing().is_empty(), "cut-off tokens kept");
    }

    /// What makes the bounded encoding exact: the tokens of the text before any allowed cut are
    /// the first tokens of the whole text.
    fn prefix_tokens_are_kept(tokenizer: &Tokenizer, text: &str) {
        let mut tokenizer = tokenizer.clone();
        tokenizer.with_truncation(None).unwrap();
        let cutter = Cutter::for_tokenizer(&tokenizer, 512);
        let whole = tokenizer.encode_fast(text, false).unwrap();
        let mut cuts: Vec<usize> = (1..=text.len())
            .filter_map(|budget| cutter.cut_before(text, budget))
            .collect();
        cuts.dedup();
        for cut in cuts {
            let prefix = tokenizer.encode_fast(&text[..cut], false).unwrap();
            let n = prefix.get_ids().len();
            assert!(
                whole.get_ids().len() >= n && prefix.get_ids() == &whole.get_ids()[..n],
                "cut at {cut} of {text:?} changes the tokens before it: {:?} vs {:?}",
                prefix.get_tokens(),
                &whole.get_tokens()[..n.min(whole.get_tokens().len())]
            );
        }
    }

    #[test]
    fn rules_follow_the_tokenizer() {
        assert_eq!(Cutter::for_tokenizer(&bert(16), 16).rule(), CutRule::Words);
        assert_eq!(
            Cutter::for_tokenizer(&byte_level(16), 16).rule(),
            CutRule::Spaces
        );
        let mut fixed = bert(16);
        fixed.with_pre_tokenizer(Some(
            tokenizers::pre_tokenizers::fixed_length::FixedLength::new(4),
        ));
        assert_eq!(Cutter::for_tokenizer(&fixed, 16).rule(), CutRule::Never);
    }

    #[test]
    fn a_token_dense_megabyte_is_cut_within_the_first_budget() {
        let tokenizer = bert(128);
        let cutter = Cutter::for_tokenizer(&tokenizer, 128);
        let text = "!".repeat(1_048_000);
        assert_eq!(cutter.cut_before(&text, 1024), Some(1024));
        same_as_whole(&tokenizer, 128, 1024, &text);
    }

    #[test]
    fn a_cut_never_splits_a_spelled_out_added_token() {
        let tokenizer = bert(8);
        let cutter = Cutter::for_tokenizer(&tokenizer, 8);
        // A budget of 3 falls inside "[MASK]" (bytes 2..8): the cut goes before it.
        assert_eq!(cutter.cut_before("a [MASK] b", 5), Some(1));
        same_as_whole(&tokenizer, 8, 5, "a [MASK] b c d e f g h i j k");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn bert_results_are_identical_around_the_budget(
            text in texts(), budget in 1usize..400, max_tokens in prop::sample::select(vec![4usize, 16, 64]),
        ) {
            same_as_whole(&bert(max_tokens), max_tokens, budget, &text);
        }

        #[test]
        fn byte_level_results_are_identical_around_the_budget(
            text in texts(), budget in 1usize..400, max_tokens in prop::sample::select(vec![4usize, 16, 64]),
        ) {
            same_as_whole(&byte_level(max_tokens), max_tokens, budget, &text);
        }

        #[test]
        fn bert_cuts_keep_the_tokens_before_them(text in prop::collection::vec(pieces(), 0..40).prop_map(|p| p.concat())) {
            prefix_tokens_are_kept(&bert(512), &text);
        }

        #[test]
        fn byte_level_cuts_keep_the_tokens_before_them(text in prop::collection::vec(pieces(), 0..40).prop_map(|p| p.concat())) {
            prefix_tokens_are_kept(&byte_level(512), &text);
        }
    }
}
