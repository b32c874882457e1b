#!/usr/bin/env bash
# Ours against the stack we replace, in one run: `ummatics-sentiment bench` (tract), the
# transformers pipeline on PyTorch and onnxruntime, each a fresh process (so every run has a
# cold start), interleaved — ours, pytorch, onnxruntime, ours, … — so that whatever else the
# machine does falls on all three alike. Then medians per runtime and thread count, the ratios
# the targets are stated in, and GB-s per 10 000 texts on Lambda.
#
#   bench/compare.sh [--model DIR] [--candidate DIR] [--texts FILE] [--threads "1 2"]
#                    [--repeat N] [--rounds N] [--python PATH] [--bin PATH] [--out FILE]
#
# --model     made by tools/make_bench_model.py (default /tmp/bench-model)
# --candidate a second model (e.g. models/sst2-minilm), run by tract and onnxruntime in the same
#             rounds; its SST-2 dev accuracy through tract (`eval`) goes in the table too
# --texts   default: SST-2 dev (tests/fixtures/sst2-dev.tsv, 872 sentences)
# --python  a Python with torch, transformers, onnxruntime (default: $BENCH_PYTHON or python3)
# --bin     default: target/release/ummatics-sentiment, built when missing
# --out     every run's JSON, one per line (default: bench/results.jsonl)
#
# Run on a quiet machine: no builds or tests alongside.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
model=/tmp/bench-model
candidate=
texts="$root/tests/fixtures/sst2-dev.tsv"
threads="1 2"
repeat=3
rounds=1
python="${BENCH_PYTHON:-python3}"
bin="$root/target/release/ummatics-sentiment"
out="$root/bench/results.jsonl"

while [ $# -gt 0 ]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --candidate) candidate="$2"; shift 2 ;;
    --texts) texts="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

for f in model.onnx model.safetensors config.json tokenizer.json; do
  if [ ! -f "$model/$f" ]; then
    echo "compare.sh: $model/$f is missing; make the model with tools/make_bench_model.py $model" >&2
    exit 2
  fi
done
if [ -n "$candidate" ]; then
  for f in model.onnx config.json tokenizer.json; do
    [ -f "$candidate/$f" ] || { echo "compare.sh: $candidate/$f is missing" >&2; exit 2; }
  done
fi
[ -f "$texts" ] || { echo "compare.sh: no texts file $texts" >&2; exit 2; }
if ! "$python" -c 'import torch, transformers, onnxruntime, tokenizers' 2>/dev/null; then
  echo "compare.sh: $python lacks torch/transformers/onnxruntime; pass --python (see tools/requirements-fixture.txt)" >&2
  exit 2
fi
if [ ! -x "$bin" ]; then
  (cd "$root" && cargo build --release --locked --bin ummatics-sentiment)
fi

# Each run's JSON gets the role of its model: "base" (--model) or "candidate".
tag() { python3 -c 'import json, sys; r = json.load(sys.stdin); r["role"] = sys.argv[1]; print(json.dumps(r))' "$1"; }

runs="tract:base pytorch:base onnxruntime:base"
[ -n "$candidate" ] && runs="$runs tract:candidate onnxruntime:candidate"
: > "$out"
for t in $threads; do
  for i in $(seq "$repeat"); do
    for run in $runs; do
      runtime="${run%%:*}" role="${run##*:}"
      dir="$model"; [ "$role" = candidate ] && dir="$candidate"
      echo "threads $t, run $i/$repeat: $runtime on $dir" >&2
      if [ "$runtime" = tract ]; then
        "$bin" --output json bench --model "$dir" --texts "$texts" --threads "$t" --rounds "$rounds" | tag "$role" >> "$out"
      else
        "$python" "$root/tools/bench_reference.py" "$runtime" --model "$dir" --texts "$texts" \
          --threads "$t" --rounds "$rounds" --output json | tag "$role" >> "$out"
      fi
    done
  done
done
if [ -n "$candidate" ]; then
  echo "accuracy: eval --model $candidate" >&2
  "$bin" --output json eval --model "$candidate" --data "$texts" \
    | python3 -c 'import json, sys; r = json.load(sys.stdin); print(json.dumps({"role": "candidate", "eval": r}))' >> "$out"
fi

python3 "$root/bench/summarise.py" "$out"
