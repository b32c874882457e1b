#!/usr/bin/env bash
# Builds a release of ummatics-sentiment from a clean checkout: one static binary per CLI
# target that carries the function's static `bootstrap` for both Lambda architectures, so
# `deploy` needs no toolchain.
#
#   scripts/release.sh OUT                    # x86_64 CLI (+ aarch64 CLI, see below)
#   scripts/release.sh --no-arm64-cli OUT     # the x86_64 tarball only
#   scripts/release.sh --allow-dirty OUT      # from a checkout with uncommitted changes
#   scripts/release.sh --package CLI TARGET OUT   # only the packaging step (the tests use it)
#
# Writes into OUT:
#   ummatics-sentiment-VERSION-x86_64-unknown-linux-musl.tar.gz (+ .sha256, sha256sum -c format)
#   ummatics-sentiment-VERSION-aarch64-unknown-linux-musl.tar.gz (+ .sha256), unless
#     --no-arm64-cli
#   install.sh (checks a tarball against its .sha256 and installs the binary)
#
# Needs: Rust with the x86_64-unknown-linux-musl and aarch64-unknown-linux-musl targets,
# Debian's musl-tools (musl-gcc), and cargo-zigbuild with zig (pip install ziglang) for
# everything aarch64 — `./scripts/standins.sh install` installs all of it as root.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'release.sh: %s\n' "$*" >&2; exit 1; }

# The workspace version: workspace.package's `version`.
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' Cargo.toml)
[ -n "$version" ] || die "no version in Cargo.toml's [workspace.package]"

# package CLI TARGET OUT: the tarball, its .sha256 and install.sh. The tarball holds the one
# binary, with fixed owner and mtime, so the same binary gives the same tarball
# (RELEASE_GZIP_LEVEL, default 9: the tests package a large debug build at 1).
package() {
  local cli=$1 target=$2 out=$3
  local name="ummatics-sentiment-$version-$target"
  [ -f "$cli" ] || die "no CLI binary at $cli"
  mkdir -p "$out"
  local stage
  stage=$(mktemp -d)
  cp "$cli" "$stage/ummatics-sentiment"
  chmod 755 "$stage/ummatics-sentiment"
  tar --format=gnu --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
    -C "$stage" -cf - ummatics-sentiment | gzip -"${RELEASE_GZIP_LEVEL:-9}" -n >"$out/$name.tar.gz"
  rm -rf "$stage"
  (cd "$out" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
  cp scripts/install.sh "$out/install.sh"
  chmod 755 "$out/install.sh"
  say "$out/$name.tar.gz ($(du -h "$out/$name.tar.gz" | cut -f1); binary $(du -h "$cli" | cut -f1))"
}

allow_dirty=false arm64_cli=true
while [ $# -gt 0 ]; do
  case $1 in
    --package) [ $# -eq 4 ] || die "usage: release.sh --package CLI TARGET OUT"; package "$2" "$3" "$4"; exit 0 ;;
    --allow-dirty) allow_dirty=true; shift ;;
    --no-arm64-cli) arm64_cli=false; shift ;;
    -*) die "unknown option $1 (see the comment at the top of this script)" ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || die "usage: release.sh [--no-arm64-cli] [--allow-dirty] OUT"
out=$1
mkdir -p "$out"
out=$(cd "$out" && pwd)

commit=$(git rev-parse --short=12 HEAD) || die "not a git checkout"
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  $allow_dirty || die "the checkout has uncommitted changes: commit them, or pass --allow-dirty"
  commit="$commit-dirty"
fi
export UMMATICS_BUILD_COMMIT=$commit
command -v cargo-zigbuild >/dev/null || die "cargo-zigbuild is missing: cargo install --locked cargo-zigbuild (and pip install ziglang)"
command -v musl-gcc >/dev/null || die "musl-gcc is missing: apt-get install musl-tools"
export CC_x86_64_unknown_linux_musl=${CC_x86_64_unknown_linux_musl:-musl-gcc}
# No checkout or home paths inside the binaries (panic locations carry them): the same
# Cargo.lock, toolchain and commit give the same bytes on any machine.
export CARGO_ENCODED_RUSTFLAGS="--remap-path-prefix=$(pwd)=/build"$'\x1f'"--remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo"
started=$SECONDS

x86=x86_64-unknown-linux-musl arm=aarch64-unknown-linux-musl
say "ummatics-sentiment $version (commit $commit)"
# The x86_64 CLI and bootstrap in one cargo run: their dependencies are built once.
say "cargo build --release --target $x86: the CLI and the function"
cargo build --release --locked --target "$x86" -p ummatics-sentiment -p ummatics-sentiment-function \
  --bin ummatics-sentiment --bin bootstrap
say "cargo zigbuild --release --target $arm: the function"
cargo zigbuild --release --locked --target "$arm" -p ummatics-sentiment-function --bin bootstrap
functions=(--function "x86_64=target/$x86/release/bootstrap" --function "arm64=target/$arm/release/bootstrap")

carried="target/release-carried"
mkdir -p "$carried"
scripts/carry.sh --cli "target/$x86/release/ummatics-sentiment" --out "$carried/$x86" \
  --version "$version" --commit "$commit" "${functions[@]}"
package "$carried/$x86" "$x86" "$out"

if $arm64_cli; then
  say "cargo zigbuild --release --target $arm: the CLI"
  cargo zigbuild --release --locked --target "$arm" -p ummatics-sentiment --bin ummatics-sentiment
  scripts/carry.sh --cli "target/$arm/release/ummatics-sentiment" --out "$carried/$arm" \
    --version "$version" --commit "$commit" "${functions[@]}"
  package "$carried/$arm" "$arm" "$out"
fi
say "release $version (commit $commit) in $out after $((SECONDS - started)) s:"
ls -l "$out" >&2
