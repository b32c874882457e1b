"""SST-2 data and evaluation helpers shared by the model makers (train_small_model.py,
train_mini_model.py)."""

import csv
import sys

import numpy as np
import torch


def read_tsv(path):
    texts, labels = [], []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        if header[:2] != ["text", "label"]:
            sys.exit(f"{path}: expected a 'text<TAB>label' header, got {header}")
        for row in reader:
            texts.append(row[0])
            labels.append(int(row[1]))
    return texts, labels


def pad_batch(encodings):
    length = max(len(e) for e in encodings)
    ids = torch.zeros((len(encodings), length), dtype=torch.long)
    mask = torch.zeros((len(encodings), length), dtype=torch.long)
    for i, e in enumerate(encodings):
        ids[i, : len(e)] = torch.tensor(e)
        mask[i, : len(e)] = 1
    return ids, mask


def logits_of(model, encodings, batch_size=256):
    model.eval()
    order = sorted(range(len(encodings)), key=lambda i: len(encodings[i]))
    result = [None] * len(encodings)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            ids, mask = pad_batch([encodings[i] for i in idx])
            logits = model(input_ids=ids, attention_mask=mask).logits
            for i, row in zip(idx, logits):
                result[i] = row.numpy()
    return np.stack(result)


def accuracy(logits, labels):
    return float((np.argmax(logits, axis=1) == np.array(labels)).mean())
