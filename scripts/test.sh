#!/usr/bin/env bash
# The project's test command: installs what is missing, starts the stand-ins the tests need
# on 127.0.0.1, runs the whole test suite, and stops what it started.
#
#   ./scripts/test.sh            # everything
#   ./scripts/test.sh -- NAME    # pass arguments through to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*"; }

# Timing per phase, printed at the end (and on failure).
phases=()
phase_start=$SECONDS
phase() { # phase NAME: closes the running phase, starts NAME
  local now=$SECONDS
  if [ -n "${phase_name:-}" ]; then phases+=("$(printf '%-34s %4d s' "$phase_name" $((now - phase_start)))"); fi
  phase_name="$1"; phase_start=$now
}
summary() {
  phase ""
  echo "==> time per phase"; printf '    %s\n' "${phases[@]}"; echo "    total $SECONDS s"
}

# tract picks its matmul kernels by CPU feature (AVX2+FMA, AVX-512, NEON): a failure report
# should always say which this host has.
if [ -r /proc/cpuinfo ]; then
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
  flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512f|avx512bw|avx512_vnni|avx512vl|amx_tile)$' | sort | tr '\n' ' ')
  say "CPU: ${cpu:-unknown} ($(nproc) cores); features: ${flags:-none of avx2/fma/avx512}"
fi
phase "install prerequisites"

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
# moto (AWS APIs), dockerd (Docker engine) and docker-registry (htpasswd auth with moto's ECR
# token): installed when missing, started on 127.0.0.1 / a private socket, stopped on exit.
# The deploy tests fail (never skip) when these are absent.
./scripts/standins.sh install
phase "start stand-ins"
state="$(pwd)/target/standins"
cleanup() { ./scripts/standins.sh stop "$state" || true; summary; }
trap cleanup EXIT
./scripts/standins.sh stop "$state" || true
./scripts/standins.sh start "$state"
# shellcheck disable=SC1091
. "$state/env"

# One build of everything, for x86_64-unknown-linux-musl: the tests, the CLI and the function
# as the image carries it (a static musl `bootstrap`: the function crate's binary is built for
# its integration tests), so the deploy tests push and run a real image and nothing is compiled
# twice for x86_64. The musl C compiler assembles tract's kernels (and aws-lc's C).
export CC_x86_64_unknown_linux_musl=musl-gcc
target=x86_64-unknown-linux-musl
# The commit every binary names (function/build.rs): the CLI and both bootstraps, so the CLI
# can carry them (scripts/carry.sh checks they are one build). Set it yourself to keep one
# value across commits and skip the rebuild a new commit causes.
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' Cargo.toml)
export UMMATICS_BUILD_COMMIT="${UMMATICS_BUILD_COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}"
export UMMATICS_TEST_BOOTSTRAP="$(pwd)/target/$target/debug/bootstrap"
# arm64's bootstrap is cross-built with cargo-zigbuild (run under qemu-user-static by the
# tests) at the same time, in a target directory of its own (cargo locks one per build), so
# the two builds fill each other's idle cores.
arm_dir="$(pwd)/target/cross"
export UMMATICS_TEST_BOOTSTRAP_ARM64="$arm_dir/aarch64-unknown-linux-musl/debug/bootstrap"
arm_log="$(pwd)/target/cross-arm64.log"
mkdir -p "$arm_dir"
# The tests only check that it cross-builds, is static and answers its self-test (and the
# arm64 image) under qemu, so it is built unoptimised: Cargo.toml's opt-level 2 for tract,
# tokenizers and the rest is turned off for this build alone. Measured on a 2-core host:
# 495 s and 932 CPU-s to build with it, 164 s and 281 CPU-s without; the self-test under qemu
# takes 13 s instead of 4.
arm_unoptimised=()
for package in $(sed -n 's/^\[profile\.dev\.package\.\([A-Za-z0-9_-]*\)\]$/\1/p' Cargo.toml); do
  arm_unoptimised+=(--config "profile.dev.package.$package.opt-level=0")
done
say "cargo zigbuild --target aarch64-unknown-linux-musl -p ummatics-sentiment-function --bin bootstrap, unoptimised (background, log: $arm_log)"
CARGO_TARGET_DIR="$arm_dir" cargo zigbuild --locked "${arm_unoptimised[@]}" --target aarch64-unknown-linux-musl \
  -p ummatics-sentiment-function --bin bootstrap >"$arm_log" 2>&1 &
arm_pid=$!

# --- tests -----------------------------------------------------------------------------------
if [ "${1:-}" = "--" ]; then shift; fi
phase "build tests + bootstrap (x86_64-musl)"
say "cargo test --workspace --locked --target $target --no-run"
cargo test --workspace --locked --target "$target" --no-run
phase "wait for the arm64 bootstrap"
if ! wait "$arm_pid"; then
  tail -n 60 "$arm_log" >&2
  echo "the arm64 bootstrap did not build (full log: $arm_log)" >&2
  exit 1
fi
# The CLI as a release makes it: the test build with both test bootstraps attached
# (scripts/carry.sh, as scripts/release.sh does; xz -0, as the tests do not ship it).
phase "attach the bootstraps to the CLI"
export UMMATICS_TEST_CARRIED_CLI="$(pwd)/target/carried/ummatics-sentiment"
mkdir -p target/carried
./scripts/carry.sh --level 0 --cli "target/$target/debug/ummatics-sentiment" \
  --out "$UMMATICS_TEST_CARRIED_CLI" --version "$version" --commit "$UMMATICS_BUILD_COMMIT" \
  --function "x86_64=$UMMATICS_TEST_BOOTSTRAP" --function "arm64=$UMMATICS_TEST_BOOTSTRAP_ARM64"
phase "run tests"
say "cargo test --workspace --locked --target $target $*"
cargo test --workspace --locked --target "$target" "$@"
