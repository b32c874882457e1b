#!/usr/bin/env bash
# The test stand-ins: moto (AWS APIs), Debian's dockerd (Docker engine) and Debian's
# docker-registry with htpasswd auth whose password is moto's ECR token (the registry).
# Everything binds 127.0.0.1 (dockerd: a unix socket) and lives under one state directory.
#
#   scripts/standins.sh install        # apt/pip-install what is missing (needs root)
#   scripts/standins.sh start DIR      # start all three; writes DIR/env (source it)
#   scripts/standins.sh stop DIR       # stop what `start DIR` started
#
# DIR/env exports the variables the tests read:
#   UMMATICS_TEST_AWS_ENDPOINT   http://127.0.0.1:PORT (moto)
#   UMMATICS_TEST_DOCKER_HOST    unix://DIR/docker/docker.sock
#   UMMATICS_TEST_REGISTRY       127.0.0.1:PORT (docker-registry, basic auth AWS:<ECR token>)
#   UMMATICS_TEST_REGISTRY_LOG   the registry's request log (tests count pushes in it)
set -euo pipefail

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# moto's ECR token for the default account is base64("AWS:123456789012-auth-token").
root=$(cd "$(dirname "$0")/.." && pwd)
ECR_PASSWORD="123456789012-auth-token"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
  say "$what ready"
}

install() {
  local need_apt=()
  command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
  command -v docker-registry >/dev/null 2>&1 || need_apt+=(docker-registry)
  command -v htpasswd >/dev/null 2>&1 || need_apt+=(apache2-utils)
  command -v skopeo >/dev/null 2>&1 || need_apt+=(skopeo)
  command -v musl-gcc >/dev/null 2>&1 || need_apt+=(musl-tools)
  command -v qemu-aarch64-static >/dev/null 2>&1 || need_apt+=(qemu-user-static)
  command -v xz >/dev/null 2>&1 || need_apt+=(xz-utils)
  if [ ${#need_apt[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing ${need_apt[*]}: run as root, or: sudo apt-get install -y ${need_apt[*]}"
    say "apt-get install ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  fi
  if ! python3 -c 'import moto.server' >/dev/null 2>&1; then
    say "pip install moto[server]"
    python3 -m pip install -q 'moto[server]>=5.1,<6'
  fi
  if ! command -v cfn-lint >/dev/null 2>&1; then
    say "pip install cfn-lint"
    python3 -m pip install -q 'cfn-lint>=1,<2'
  fi
  for target in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
    if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$target"; then
      say "rustup target add $target"
      rustup target add "$target"
    fi
  done
  # arm64 cross builds: cargo-zigbuild with zig from PyPI (no Docker, no cross gcc).
  if ! python3 -m ziglang version >/dev/null 2>&1 && ! command -v zig >/dev/null 2>&1; then
    say "pip install ziglang"
    python3 -m pip install -q 'ziglang==0.*'
  fi
  if ! command -v cargo-zigbuild >/dev/null 2>&1; then
    say "cargo install cargo-zigbuild"
    cargo install --locked --quiet cargo-zigbuild
  fi
}

start() {
  local dir=$1
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  : >"$dir/pids"

  # moto
  local moto_port
  moto_port=$(free_port)
  python3 "$root/tests/standins/moto_server.py" -H 127.0.0.1 -p "$moto_port" >"$dir/moto.log" 2>&1 &
  echo $! >>"$dir/pids"
  wait_for 60 "moto on 127.0.0.1:$moto_port" curl -sf "http://127.0.0.1:$moto_port/moto-api/" \
    || { tail -20 "$dir/moto.log" >&2; die "moto did not start (log: $dir/moto.log)"; }

  # dockerd, on a private socket and data root; no network set-up at all.
  local d="$dir/docker"
  mkdir -p "$d"
  [ "$(id -u)" = 0 ] || die "dockerd needs root"
  dockerd -H "unix://$d/docker.sock" --data-root "$d/data" --exec-root "$d/exec" \
    --pidfile "$d/dockerd.pid" --storage-driver overlay2 --iptables=false \
    --ip6tables=false --ip-forward=false --ip-masq=false --bridge=none \
    --exec-opt native.cgroupdriver=cgroupfs >"$dir/dockerd.log" 2>&1 &
  echo $! >>"$dir/pids"
  wait_for 60 "dockerd on $d/docker.sock" docker -H "unix://$d/docker.sock" version \
    || { tail -20 "$dir/dockerd.log" >&2; die "dockerd did not start (log: $dir/dockerd.log)"; }

  # docker-registry with htpasswd auth (never the package's default config: it binds :5000
  # on every interface).
  local reg_port
  reg_port=$(free_port)
  htpasswd -Bbn AWS "$ECR_PASSWORD" >"$dir/htpasswd"
  # A fresh store each start, like moto's fresh ECR: deleted images' blobs are never
  # collected, and each test run leaves hundreds of MB of them (the 300 MB push test alone).
  rm -rf "$dir/registry"
  mkdir -p "$dir/registry"
  cat >"$dir/registry.yml" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $dir/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$reg_port
auth:
  htpasswd:
    realm: ummatics-test
    path: $dir/htpasswd
EOF
  docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 &
  echo $! >>"$dir/pids"
  wait_for 30 "docker-registry on 127.0.0.1:$reg_port" \
    curl -sf -u "AWS:$ECR_PASSWORD" "http://127.0.0.1:$reg_port/v2/" \
    || { tail -20 "$dir/registry.log" >&2; die "docker-registry did not start (log: $dir/registry.log)"; }

  cat >"$dir/env" <<EOF
export UMMATICS_TEST_AWS_ENDPOINT=http://127.0.0.1:$moto_port
export UMMATICS_TEST_DOCKER_HOST=unix://$d/docker.sock
export UMMATICS_TEST_REGISTRY=127.0.0.1:$reg_port
export UMMATICS_TEST_REGISTRY_LOG=$dir/registry.log
EOF
}

stop() {
  local dir=$1
  [ -f "$dir/pids" ] || return 0
  local pid
  while read -r pid; do
    kill "$pid" 2>/dev/null || true
  done <"$dir/pids"
  # Wait for them, dockerd last (it stops its containers first).
  while read -r pid; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  done <"$dir/pids"
  rm -f "$dir/pids"
  # Containers' overlay mounts may outlive dockerd when it is killed.
  grep -o " $dir/docker/[^ ]*" /proc/mounts 2>/dev/null | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
}

case "${1:-}" in
  install) install ;;
  start) start "${2:?usage: standins.sh start DIR}" ;;
  stop) stop "${2:?usage: standins.sh stop DIR}" ;;
  *) die "usage: standins.sh install|start DIR|stop DIR" ;;
esac
