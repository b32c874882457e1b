#!/usr/bin/env bash
# The project's test command: installs what is missing, starts the stand-ins the tests need
# on 127.0.0.1, runs the whole test suite, and stops what it started.
#
#   ./scripts/test.sh            # everything
#   ./scripts/test.sh -- NAME    # pass arguments through to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*"; }

# --- prerequisites ---------------------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "cargo is not installed: install Rust with rustup (https://rustup.rs), then run this again" >&2
    exit 1
  fi
fi
if ! command -v cc >/dev/null 2>&1; then
  say "installing a C compiler (tract assembles its kernels with cc)"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends build-essential
  else
    echo "no C compiler: install gcc or clang (Debian: apt-get install build-essential)" >&2
    exit 1
  fi
fi

# --- stand-ins -------------------------------------------------------------------------------
# Started here, bound to 127.0.0.1, stopped on exit. (None needed yet: the inference tests run
# against committed fixtures and a test-side Runtime API endpoint the tests start themselves.)
pids=()
cleanup() {
  for pid in "${pids[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

# --- tests -----------------------------------------------------------------------------------
if [ "${1:-}" = "--" ]; then shift; fi
say "cargo test --workspace --locked $*"
cargo test --workspace --locked "$@"
