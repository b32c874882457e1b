#!/usr/bin/env python3
"""Summarises bench/compare.sh's runs: medians per runtime and thread count, the ratios the
targets are stated in, GB-s per 10 000 texts on Lambda. Markdown, ready for BENCHMARKS.md.

With a candidate model (compare.sh --candidate), its tract and onnxruntime rows join the table and
its ratios are taken against PyTorch on the base model (the old stack), as the targets are.

Cost model: Lambda bills memory × duration; a function gets 1 vCPU at 1769 MB, in proportion
below and above. A run with 1 thread stands for a 1769 MB function, one with 2 threads for
3538 MB (2 vCPUs); per-text time is the warm figure (cold starts are rare and reported apart).
"""

import json
import statistics
import sys
from collections import defaultdict

MB_PER_VCPU = 1769
OLD_STACK_GB_S_PER_10K = 800.0


def main() -> int:
    runs = defaultdict(list)
    accuracy = {}
    with open(sys.argv[1]) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                if "eval" in r:
                    accuracy[r["role"]] = r["eval"]["accuracy"]
                    continue
                runs[(r["threads"], r["runtime"], r.get("role", "base"))].append(r)
    if not runs:
        print("no runs", file=sys.stderr)
        return 1

    def med(rs, *path):
        values = []
        for r in rs:
            v = r
            for p in path:
                v = v[p]
            values.append(v)
        return statistics.median(values)

    any_run = next(iter(runs.values()))[0]
    print(f"{any_run['texts']} texts from {any_run['texts_file']}, calls of {any_run['batch']}, "
          f"{any_run['cpu']}; medians of {len(next(iter(runs.values())))} runs each\n")
    names = {}
    for (_, _, role), rs in runs.items():
        names.setdefault(role, rs[0]["model"])
    for threads in sorted({t for t, _, _ in runs}):
        print(f"### {threads} thread{'s' if threads > 1 else ''}\n")
        print("| runtime + model | SST-2 dev (tract `eval`) | cold start (→ first result) | init (→ ready) | import + load | optimise | first run | warm texts/s | call p50 / p95 | peak RSS | GB-s / 10k texts |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        memory_gb = MB_PER_VCPU * threads / 1024
        figures = {}
        for role, runtime in [(r, rt) for r in ("base", "candidate") for rt in ("pytorch", "tract", "onnxruntime")]:
            rs = runs.get((threads, runtime, role))
            if not rs:
                continue
            acc = f"{100 * accuracy[role]:.2f} %" if role in accuracy else "—"
            c = lambda k: med(rs, "cold_start", k)  # noqa: E731
            tps = med(rs, "warm", "texts_per_s")
            gbs = memory_gb * 10_000 / tps
            figures[(runtime, role)] = {
                "cold": c("total_ms"),
                "ready": c("ready_ms"),
                "rss": med(rs, "peak_rss_mib"),
                "tps": tps,
                "gbs": gbs,
            }
            load = c("load_ms") + (c("import_ms") if "import_ms" in rs[0]["cold_start"] else 0)
            optimise = f"{c('optimise_ms'):.0f} ms" if "optimise_ms" in rs[0]["cold_start"] else "—"
            print(f"| {runtime} + {names[role]} | {acc} | {c('total_ms'):.0f} ms | {c('ready_ms'):.0f} ms | {load:.0f} ms | {optimise} | "
                  f"{c('first_run_ms'):.0f} ms | {tps:.1f} | {med(rs, 'warm', 'call_p50_ms'):.0f} / "
                  f"{med(rs, 'warm', 'call_p95_ms'):.0f} ms | {figures[(runtime, role)]['rss']:.0f} MiB | {gbs:.0f} |")
        print()
        torch = figures.get(("pytorch", "base"))
        for role in ("base", "candidate"):
            ours, ort = figures.get(("tract", role)), figures.get(("onnxruntime", role))
            if ours:
                print(f"tract + {names[role]}:")
            ratios(ours, torch, ort, threads)
        print()
    return 0


def ratios(ours, torch, ort, threads):
    if ours and torch:
        print(f"- cold start (process start → first result of a 50-text call): "
              f"{torch['cold'] / ours['cold']:.1f}× faster than PyTorch + base (target ≥ 5×)")
        print(f"- init (process start → ready, Lambda's Init Duration): "
              f"{torch['ready'] / ours['ready']:.1f}× faster than PyTorch + base")
        print(f"- peak RSS: {ours['rss'] / torch['rss']:.2f}× PyTorch + base's (target ≤ 0.25×)")
        print(f"- warm throughput: {ours['tps'] / torch['tps']:.2f}× PyTorch + base")
    if ours and ort:
        print(f"- warm throughput: {ours['tps'] / ort['tps']:.2f}× onnxruntime on the same model")
    if ours:
        print(f"- cost: {ours['gbs']:.0f} GB-s per 10 000 texts at {MB_PER_VCPU * threads} MB = "
              f"{100 * ours['gbs'] / OLD_STACK_GB_S_PER_10K:.0f} % of the old stack's "
              f"{OLD_STACK_GB_S_PER_10K:.0f} GB-s (target ≤ 25 %)")


if __name__ == "__main__":
    sys.exit(main())
