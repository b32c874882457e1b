#!/usr/bin/env python3
"""The references `ummatics-sentiment bench` is measured against, with the same figures.

  pytorch      the stack we replace: a transformers `pipeline("sentiment-analysis")` on PyTorch,
               called with each call's texts and batch_size = the call's size (its best setting)
  onnxruntime  the same ONNX graph as ours on onnxruntime (CPU provider, all graph
               optimisations), texts tokenised by `tokenizers` and padded to the longest

Same texts file, calls of --batch texts, --threads intra-op threads (inter-op 1), --rounds
passes. Cold start is process start → first result (the interpreter's start and the imports
included, as on Lambda), split into import / load / first run. Peak RSS is VmHWM.

    /tmp/bench-venv/bin/python tools/bench_reference.py pytorch --model /tmp/bench-model \
        --texts ../shared/data/sst2-dev.tsv --threads 2 --output json

Needs torch, transformers, onnxruntime, tokenizers (tools/requirements-fixture.txt). Run by
hand or by bench/compare.sh; CI never installs torch.
"""

import time

IMPORT_STARTED = time.perf_counter()

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402


def process_age() -> float:
    """Seconds since this process started, from /proc, as the Rust side measures it."""
    with open("/proc/self/stat") as f:
        stat = f.read()
    start_ticks = float(stat[stat.rindex(")") + 2 :].split()[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))


AGE_AT_START = process_age()


def peak_rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def cpu_name() -> str:
    name = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name}, {len(os.sched_getaffinity(0))} cores"


def read_texts(path: str, column: str) -> list:
    with open(path, encoding="utf-8") as f:
        if path.endswith(".tsv") or path.endswith(".csv"):
            reader = csv.DictReader(
                f,
                delimiter="\t" if path.endswith(".tsv") else ",",
                quoting=csv.QUOTE_NONE if path.endswith(".tsv") else csv.QUOTE_MINIMAL,
            )
            return [row[column] for row in reader]
        if path.endswith(".jsonl"):
            return [json.loads(line)[column] for line in f if line.strip()]
        return f.read().splitlines()


def quantile(values: list, q: float) -> float:
    """Nearest rank, as the Rust side computes it."""
    values = sorted(values)
    rank = math.ceil(q * len(values))
    return values[min(max(rank, 1), len(values)) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runtime", choices=["pytorch", "onnxruntime"])
    parser.add_argument("--model", required=True, help="made by tools/make_bench_model.py")
    parser.add_argument("--texts", required=True)
    parser.add_argument("--column", default="text")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--output", choices=["human", "json"], default="human")
    args = parser.parse_args()

    texts = read_texts(args.texts, args.column)
    calls = [texts[i : i + args.batch] for i in range(0, len(texts), args.batch)]

    import_started = time.perf_counter()
    if args.runtime == "pytorch":
        import torch
        from transformers import pipeline

        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(1)
    else:
        import numpy as np
        import onnxruntime as ort
        from tokenizers import Tokenizer
    imported = time.perf_counter()

    if args.runtime == "pytorch":
        classifier = pipeline(
            "sentiment-analysis", model=args.model, tokenizer=args.model, framework="pt", device=-1
        )
        version = f"transformers pipeline on torch {torch.__version__}"
        tokenizer = classifier.tokenizer

        def classify(batch):
            with torch.inference_mode():
                return classifier(batch, batch_size=len(batch), truncation=True)

        def count_tokens(all_texts):
            return sum(len(ids) for ids in tokenizer(all_texts, truncation=True)["input_ids"])

    else:
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(
            os.path.join(args.model, "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        tokenizer = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
        tokenizer.enable_truncation(512)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        version = f"onnxruntime {ort.__version__}"

        def classify(batch):
            encodings = tokenizer.encode_batch(batch)
            feed = {
                "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            }
            (logits,) = session.run(["logits"], feed)
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)

        def count_tokens(all_texts):
            tokenizer.no_padding()
            n = sum(len(e.ids) for e in tokenizer.encode_batch(all_texts))
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
            return n

    loaded = time.perf_counter()
    classify(calls[0])
    first_result = time.perf_counter()

    latencies = []
    warm_started = time.perf_counter()
    for _ in range(args.rounds):
        for call in calls:
            t = time.perf_counter()
            classify(call)
            latencies.append((time.perf_counter() - t) * 1000.0)
    seconds = time.perf_counter() - warm_started

    process_ms = (AGE_AT_START + (import_started - IMPORT_STARTED)) * 1000.0
    report = {
        "runtime": args.runtime,
        "version": version,
        "model": args.model,
        "texts_file": args.texts,
        "texts": len(texts),
        "mean_tokens": count_tokens(texts) / len(texts),
        "batch": args.batch,
        "threads": args.threads,
        "cold_start": {
            "total_ms": process_ms + (first_result - import_started) * 1000.0,
            # Ready to answer: what Lambda reports as Init Duration.
            "ready_ms": process_ms + (loaded - import_started) * 1000.0,
            "process_ms": process_ms,
            "import_ms": (imported - import_started) * 1000.0,
            "load_ms": (loaded - imported) * 1000.0,
            "first_run_ms": (first_result - loaded) * 1000.0,
        },
        "warm": {
            "calls": len(latencies),
            "texts": len(texts) * args.rounds,
            "seconds": seconds,
            "texts_per_s": len(texts) * args.rounds / seconds,
            "call_p50_ms": quantile(latencies, 0.50),
            "call_p95_ms": quantile(latencies, 0.95),
        },
        "peak_rss_mib": peak_rss_mib(),
        "cpu": cpu_name(),
    }
    if args.output == "json":
        print(json.dumps(report))
    else:
        c, w = report["cold_start"], report["warm"]
        print(f"{version} on {args.model}: {len(texts)} texts, calls of {args.batch}, {args.threads} threads")
        print(f"cold start: process → first result  {c['total_ms']:.0f} ms")
        print(f"  process start → ready (init)      {c['ready_ms']:.0f} ms")
        print(f"  process start → import            {c['process_ms']:.0f} ms")
        print(f"  import                            {c['import_ms']:.0f} ms")
        print(f"  load                              {c['load_ms']:.0f} ms")
        print(f"  first run                         {c['first_run_ms']:.0f} ms")
        print(f"warm throughput                     {w['texts_per_s']:.1f} texts/s")
        print(f"warm call latency p50 / p95         {w['call_p50_ms']:.0f} / {w['call_p95_ms']:.0f} ms")
        print(f"peak RSS                            {report['peak_rss_mib']:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
