#!/bin/sh
# Installs a release of ummatics-sentiment: checks the tarball against its .sha256, unpacks the
# one binary, checks that it runs, and puts it into a directory on your PATH.
#
#   sh install.sh [--prefix DIR] [TARBALL]
#
# TARBALL defaults to the ummatics-sentiment-*-<this machine>-unknown-linux-musl.tar.gz next to
# this script; TARBALL.sha256 must be next to it. DIR defaults to ~/.local/bin. Nothing is
# installed unless every check passes.
set -eu

die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

prefix="${HOME:-}/.local/bin"
tarball=""
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (usage: sh install.sh [--prefix DIR] [TARBALL])" ;;
    *) [ -z "$tarball" ] || die "one tarball at a time"; tarball=$1; shift ;;
  esac
done
[ -n "$prefix" ] && [ "$prefix" != "/.local/bin" ] || die "HOME is not set: pass --prefix DIR"

if [ -z "$tarball" ]; then
  here=$(cd "$(dirname "$0")" && pwd)
  machine=$(uname -m)
  case $machine in arm64) machine=aarch64 ;; esac
  set -- "$here"/ummatics-sentiment-*-"$machine"-unknown-linux-musl.tar.gz
  [ -f "$1" ] || die "no ummatics-sentiment-*-$machine-unknown-linux-musl.tar.gz next to this script: pass the tarball"
  [ $# -eq 1 ] || die "several releases next to this script ($*): pass the one to install"
  tarball=$1
fi
[ -f "$tarball" ] || die "no file $tarball"
sums="$tarball.sha256"
[ -f "$sums" ] || die "no $sums next to the tarball: download it too, then run this again"

# The checksum file names the tarball by its released name; check the file given, whatever it
# is called now.
expected=$(cut -d' ' -f1 <"$sums")
case $expected in
  *[!0-9a-f]* | "") die "$sums is not a sha256sum line" ;;
esac
[ ${#expected} -eq 64 ] || die "$sums is not a sha256sum line"
if command -v sha256sum >/dev/null 2>&1; then
  actual=$(sha256sum <"$tarball" | cut -d' ' -f1)
else
  actual=$(shasum -a 256 <"$tarball" | cut -d' ' -f1)
fi
if [ "$actual" != "$expected" ]; then
  die "checksum mismatch: $tarball has sha256 $actual, $sums says $expected. The download is damaged or was tampered with; nothing was installed. Download both files again."
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
tar -xzf "$tarball" -C "$work" || die "$tarball cannot be unpacked; nothing was installed"
[ -f "$work/ummatics-sentiment" ] || die "$tarball holds no ummatics-sentiment binary; nothing was installed"
version=$("$work/ummatics-sentiment" --version 2>&1) ||
  die "the binary does not run on this machine ($(uname -sm)): $version; nothing was installed"

mkdir -p "$prefix" || die "cannot make $prefix"
cp "$work/ummatics-sentiment" "$prefix/.ummatics-sentiment.installing.$$" ||
  die "cannot write into $prefix"
chmod 755 "$prefix/.ummatics-sentiment.installing.$$"
mv -f "$prefix/.ummatics-sentiment.installing.$$" "$prefix/ummatics-sentiment"
echo "installed $prefix/ummatics-sentiment ($version)"
case ":${PATH:-}:" in
  *":$prefix:"*) ;;
  *) echo "$prefix is not on your PATH: add it, e.g. echo 'export PATH=\"$prefix:\$PATH\"' >> ~/.profile" ;;
esac
