#!/usr/bin/env bash
# Attaches the function's static bootstraps to a CLI binary, so that `deploy` needs no
# toolchain (the layout is read by src/carried.rs):
#
#   [the CLI][payload: tar of manifest.json + bootstrap-ARCH.xz][20-digit length][magic]
#
#   scripts/carry.sh --cli PATH --out PATH --version V --commit C \
#       --function x86_64=PATH [--function arm64=PATH] [--level 0-9]
#
# --level is xz's (default 9; the tests use 0, as they ship nothing).
#
# Each bootstrap must be the same build as the CLI: its build marker (function/src/build_info.rs)
# must name V+C. The output is written next to --out and renamed into place when complete.
set -euo pipefail

die() { printf 'carry.sh: %s\n' "$*" >&2; exit 1; }
magic='UMMATICS-CARRIED-FUNCTION-V1'

cli="" out="" version="" commit="" level=9
functions=()
while [ $# -gt 0 ]; do
  case $1 in
    --cli) cli=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    --commit) commit=$2; shift 2 ;;
    --function) functions+=("$2"); shift 2 ;;
    --level) level=$2; shift 2 ;;
    *) die "unknown argument $1 (see the comment at the top of this script)" ;;
  esac
done
[ -n "$cli" ] && [ -n "$out" ] && [ -n "$version" ] && [ -n "$commit" ] ||
  die "--cli, --out, --version and --commit are required"
[ ${#functions[@]} -gt 0 ] || die "at least one --function ARCH=PATH is required"
[ -f "$cli" ] || die "no CLI binary at $cli"
case $level in [0-9]) ;; *) die "--level must be 0-9" ;; esac
if tail -c $((${#magic} + 1)) "$cli" | cmp -s - <(printf '%s\n' "$magic"); then
  die "$cli already carries a function: attach to the binary cargo built"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
entries=()
for spec in "${functions[@]}"; do
  arch=${spec%%=*}
  path=${spec#*=}
  case $arch in x86_64 | arm64) ;; *) die "architecture $arch: use x86_64 or arm64" ;; esac
  [ -f "$path" ] || die "no $arch bootstrap at $path"
  [ ! -e "$work/bootstrap-$arch.xz" ] || die "$arch is given twice"
  grep -qaF "ummatics-sentiment-function-build=$version+$commit" "$path" ||
    die "$path is not the function of build $version+$commit (build it with UMMATICS_BUILD_COMMIT=$commit)"
  # One thread: xz's output is then the same on every machine.
  xz -"$level" -T1 -c "$path" >"$work/bootstrap-$arch.xz"
  sha=$(sha256sum "$path" | cut -d' ' -f1)
  bytes=$(stat -c %s "$path")
  entries+=("{\"arch\":\"$arch\",\"file\":\"bootstrap-$arch.xz\",\"sha256\":\"$sha\",\"bytes\":$bytes}")
done
joined=$(IFS=,; echo "${entries[*]}")
printf '{"format":1,"version":"%s","commit":"%s","functions":[%s]}\n' \
  "$version" "$commit" "$joined" >"$work/manifest.json"
(cd "$work" && tar --format=gnu --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
  -cf payload.tar manifest.json bootstrap-*.xz)

tmp="$out.partial.$$"
trap 'rm -rf "$work" "$tmp"' EXIT
cat "$cli" "$work/payload.tar" >"$tmp"
printf '%020d%s\n' "$(stat -c %s "$work/payload.tar")" "$magic" >>"$tmp"
chmod 755 "$tmp"
mv "$tmp" "$out"
printf 'carry.sh: %s carries %s (%s bytes)\n' "$out" \
  "$(printf '%s\n' "${functions[@]}" | cut -d= -f1 | paste -sd' ')" "$(stat -c %s "$out")"
