#!/usr/bin/env python3
"""Cold and warm starts the way Lambda sees them: a function `bootstrap` run under a Runtime
API emulator on loopback, one pinned core.

Init Duration = process start -> the bootstrap's first `GET /next` (the model loaded);
Duration = an event handed out -> its response posted. Each run is a fresh process that
answers `--calls` events of the same 50 SST-2 dev texts (so the first call and a warm one do
the same work), then is stopped;
builds and models are interleaved run by run, and the tables show medians of `--runs` runs.

    bench/lambda_emulator.py --build musl=target/x86_64-unknown-linux-musl/release/bootstrap \\
        --build glibc=target/release/bootstrap --model minilm=models/sst2-minilm \\
        --model mini=models/sst2-mini --cpu 0 --runs 3 --calls 4

Prints a Markdown table (and `--json FILE` writes every measurement). The cost columns price a
cold and a warm call at `--memory` MB as Lambda bills them (a cold call: INIT + Duration).
"""

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

X86_64_PER_GB_S = 0.0000166667  # src/pricing.rs, us-east-1 tier 1
PER_REQUEST = 0.20 / 1_000_000


class Run:
    """One process's events and what the emulator saw of them."""

    def __init__(self, events):
        self.events = events
        self.next_event = 0
        self.started = None
        self.first_next = None
        self.handed = {}
        self.answered = {}
        self.bodies = {}
        self.errors = []
        self.done = threading.Event()
        self.lock = threading.Lock()


def handler_for(run):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as separate writes: without TCP_NODELAY, Nagle's algorithm
        # and the client's delayed ACK add ~40 ms to every event handed out on a kept-alive
        # connection (seen as warm calls slower than the first).
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def do_GET(self):
            if not self.path.endswith("/invocation/next"):
                self.send_error(404)
                return
            now = time.perf_counter()
            with run.lock:
                if run.first_next is None:
                    run.first_next = now
                i = run.next_event
                run.next_event += 1
            if i >= len(run.events):
                run.done.set()
                # Held until the process is stopped: the function waits here as on Lambda.
                time.sleep(3600)
                return
            body = json.dumps({"texts": run.events[i]}).encode()
            self.send_response(200)
            self.send_header("Lambda-Runtime-Aws-Request-Id", f"request-{i}")
            deadline = int(time.time() * 1000) + 60_000
            self.send_header("Lambda-Runtime-Deadline-Ms", str(deadline))
            self.send_header(
                "Lambda-Runtime-Invoked-Function-Arn",
                "arn:aws:lambda:us-east-1:123456789012:function:bench",
            )
            self.send_header("Lambda-Runtime-Trace-Id", "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            run.handed[i] = time.perf_counter()
            self.wfile.write(body)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            now = time.perf_counter()
            parts = self.path.split("/")
            if "response" in parts:
                i = int(parts[parts.index("invocation") + 1].split("-")[-1])
                run.answered[i] = now
                run.bodies[i] = body
            else:
                run.errors.append(body.decode(errors="replace"))
                run.done.set()
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


def measure(bootstrap, model_dir, events, cpu, memory, extra_env=None):
    run = Run(events)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(run))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": "us-east-1",
        "UMMATICS_MODEL_DIR": model_dir,
        "UMMATICS_THREADS": "1",
        "UMMATICS_TELEMETRY": "off",
        **(extra_env or {}),
    }
    command = [bootstrap]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu)] + command
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    finished = run.done.wait(timeout=300)
    process.kill()
    _, stderr = process.communicate()
    server.shutdown()
    if not finished or run.errors or run.first_next is None:
        raise SystemExit(
            f"{bootstrap} with {model_dir}: no answer ({run.errors or 'timeout'}):\n"
            + stderr.decode(errors="replace")[-2000:]
        )
    durations = [1000 * (run.answered[i] - run.handed[i]) for i in range(len(events))]
    for i, body in run.bodies.items():
        answer = json.loads(body)
        if answer.get("statusCode") != 200 or answer["body"]["count"] != len(events[i]):
            raise SystemExit(f"event {i}: unexpected answer {body[:200]!r}")
    return {
        "init_ms": 1000 * (run.first_next - started),
        "first_ms": durations[0],
        "warm_ms": statistics.median(durations[1:]) if len(durations) > 1 else None,
        "durations_ms": durations,
    }


def gb_s(ms, memory):
    return ms / 1000 * memory / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", action="append", required=True, help="LABEL=PATH of a bootstrap")
    parser.add_argument("--model", action="append", required=True, help="LABEL=DIR of a model")
    parser.add_argument("--texts", default="tests/fixtures/sst2-dev.tsv")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=4, help="events per process (the first is cold)")
    parser.add_argument("--cpu", type=int, default=0, help="core to pin to (-1: none)")
    parser.add_argument("--memory", type=int, default=1769, help="MB the cost is priced at")
    parser.add_argument("--json", help="write every measurement here")
    parser.add_argument("--env", action="append", default=[],
                        help="LABEL:KEY=VALUE: an environment variable for one build's processes "
                             "(e.g. glibc:MIMALLOC_ALLOW_THP=0); the same path may be given twice "
                             "under two labels")
    args = parser.parse_args()
    if args.runs < 1 or args.calls < 2:
        parser.error("--runs must be at least 1 and --calls at least 2 (one cold, one warm)")
    builds = [b.split("=", 1) for b in args.build]
    models = [m.split("=", 1) for m in args.model]
    for label, path in builds + models:
        if not os.path.exists(path):
            parser.error(f"{label}: {path} does not exist")
    build_env = {}
    for spec in args.env:
        label, _, pair = spec.partition(":")
        key, eq, value = pair.partition("=")
        if label not in dict(builds) or not key or not eq:
            parser.error(f"--env {spec}: expected LABEL:KEY=VALUE with LABEL one of the builds")
        build_env.setdefault(label, {})[key] = value
    with open(args.texts, newline="") as f:
        texts = [row["text"] for row in csv.DictReader(f, delimiter="\t")]
    # The same 50 texts every call, so that the first call and a warm one do the same work.
    events = [texts[:50]] * args.calls
    cpu = None if args.cpu < 0 else args.cpu
    results = {}
    for run in range(args.runs):
        for model, model_dir in models:
            for build, bootstrap in builds:
                m = measure(bootstrap, model_dir, events, cpu, args.memory, build_env.get(build))
                results.setdefault((model, build), []).append(m)
                print(
                    f"run {run + 1} {model} {build}: init {m['init_ms']:.0f} ms, first "
                    f"{m['first_ms']:.0f} ms, warm {m['warm_ms']:.0f} ms",
                    file=sys.stderr,
                )
    med = lambda key, rows: statistics.median(r[key] for r in rows)  # noqa: E731
    print(
        "| model | build | init (Init Duration) | first invoke | warm invoke | init / warm "
        "| (init + first) / warm | cold call GB-s ($) | warm call GB-s ($) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for (model, build), rows in results.items():
        init, first, warm = med("init_ms", rows), med("first_ms", rows), med("warm_ms", rows)
        cold = gb_s(init + first, args.memory)
        hot = gb_s(warm, args.memory)
        print(
            f"| {model} | {build} | {init:.0f} ms | {first:.0f} ms | {warm:.0f} ms "
            f"| {init / warm:.2f} | {(init + first) / warm:.2f} "
            f"| {cold:.3f} (${cold * X86_64_PER_GB_S + PER_REQUEST:.7f}) "
            f"| {hot:.3f} (${hot * X86_64_PER_GB_S + PER_REQUEST:.7f}) |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {f"{m}/{b}": rows for (m, b), rows in results.items()},
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
