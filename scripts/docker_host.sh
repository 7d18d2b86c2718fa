#!/usr/bin/env bash
# Docker and arm64 emulation for the `sam local` tests, on a Linux machine where we are root (CI).
#
#   scripts/docker_host.sh up      make Docker answer; on x86_64 register qemu-aarch64 10.x (binfmt_misc, F flag)
#   scripts/docker_host.sh down    stop what `up` started (dockerd by pid, our binfmt entry), nothing else
#   scripts/docker_host.sh run CMD...   up, CMD, down (down runs whatever CMD returns)
#
# Nothing is started when Docker already answers. Without root or off Linux it starts nothing and says why
# (the Docker tests then skip); with CI=true that is an error, because CI must run them, and with STRICT=1 (the
# sam-* make targets) too, naming what to do instead. `up` says what it found and what it did.
# Networking: containers stay on Docker's default bridge; published ports bind to 127.0.0.1 only (--ip);
# containers reach host servers only through the bridge gateway.
# qemu comes from Debian trixie (bookworm's qemu 7.2 segfaults in onnxruntime), fetched with apt into build/
# using its own config and state, so the host's apt sources are never changed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE="$ROOT/build/docker-host"
QEMU_DIR="$ROOT/build/qemu"
BINFMT=/proc/sys/fs/binfmt_misc
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$STATE"

say() { echo "docker_host: $*" >&2; }
cannot() {
  if [ "${STRICT:-}" = "1" ]; then say "$*: start Docker yourself (or run this as root on Linux), then run this again"; exit 2; fi
  if [ "${CI:-}" = "true" ]; then say "ERROR: $*"; exit 1; fi
  say "$* - the Docker tests will skip"; exit 0
}
BRIDGE_GATEWAY=172.17.0.1  # docker0, the containers' one way to the host (devkit/sam.py bridge_gateway)
docker_answers() { docker info > /dev/null 2>&1; }

install_packages() {
  local missing=()
  command -v dockerd > /dev/null || missing+=(docker.io)
  command -v debootstrap > /dev/null || missing+=(debootstrap)
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > "$STATE/apt.log" 2>&1 \
    || { apt-get update -qq > /dev/null 2>&1 \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > "$STATE/apt.log" 2>&1; }; } \
    || { tail -5 "$STATE/apt.log" >&2; cannot "apt-get install ${missing[*]} failed"; }
}

start_dockerd() {
  say "starting dockerd (log: $STATE/dockerd.log)"
  # --userland-proxy=false: published ports refuse connections until the container listens. With the proxy they
  # accept at once, SAM takes that for a ready emulator and its invoke fails under qemu, where start-up is slow.
  # --bip/--dns: containers resolve names only at the bridge gateway (the only host address they may reach), never
  # at the host's own resolver; nothing answers there unless a test listens (tests/integration/test_sam_local.py
  # records every name a local target looks up, so one that tries an AWS endpoint fails).
  dockerd --host unix:///var/run/docker.sock --ip 127.0.0.1 --userland-proxy=false --pidfile "$STATE/dockerd.pidfile" \
    --bip "$BRIDGE_GATEWAY/16" --dns "$BRIDGE_GATEWAY" > "$STATE/dockerd.log" 2>&1 &
  echo $! > "$STATE/dockerd.pid"
  for _ in $(seq 1 120); do
    docker_answers && return 0
    kill -0 "$(cat "$STATE/dockerd.pid")" 2> /dev/null || break
    sleep 0.5
  done
  tail -5 "$STATE/dockerd.log" >&2
  cannot "dockerd did not answer"
}

qemu_major() { "$1" --version 2> /dev/null | sed -n 's/^qemu-aarch64 version \([0-9]*\)\..*/\1/p'; }

fetch_qemu() {
  [ -x "$QEMU_DIR/qemu-aarch64" ] && return 0
  local apt="$QEMU_DIR/apt"
  rm -rf "$apt" && mkdir -p "$apt/state/lists/partial" "$apt/cache/archives/partial"
  echo "deb $MIRROR trixie main" > "$apt/sources.list"
  touch "$apt/state/status"
  local opts=(-o "Dir::State=$apt/state" -o "Dir::State::status=$apt/state/status" -o "Dir::Cache=$apt/cache"
    -o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
    -o APT::Architecture=amd64 -o APT::Architectures=amd64 -o APT::Sandbox::User=root)
  say "fetching qemu-user from Debian trixie into $QEMU_DIR"
  apt-get "${opts[@]}" -qq update
  (cd "$apt" && apt-get "${opts[@]}" -qq download qemu-user)
  dpkg-deb -x "$apt"/qemu-user_*.deb "$apt/x"
  cp "$apt/x/usr/bin/qemu-aarch64" "$QEMU_DIR/qemu-aarch64"
  rm -rf "$apt"
}

register_qemu() {
  [ "$(uname -m)" = "x86_64" ] || return 0
  [ -e "$BINFMT/register" ] || mount -t binfmt_misc binfmt_misc "$BINFMT" || cannot "cannot mount binfmt_misc"
  if [ -e "$BINFMT/qemu-aarch64" ]; then
    local interp
    interp=$(sed -n 's/^interpreter //p' "$BINFMT/qemu-aarch64")
    if grep -q '^flags: .*F' "$BINFMT/qemu-aarch64" && [ "$(qemu_major "$interp")" -ge 10 ] 2> /dev/null; then
      say "arm64 emulation: $interp (qemu $(qemu_major "$interp"), F flag) already registered"
      return 0
    fi
    say "replacing the qemu-aarch64 binfmt entry ($interp): qemu < 10 segfaults in onnxruntime"
    echo -1 > "$BINFMT/qemu-aarch64"
  fi
  fetch_qemu
  local magic='\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
  local mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
  echo ":qemu-aarch64:M::$magic:$mask:$QEMU_DIR/qemu-aarch64:F" > "$BINFMT/register"
  touch "$STATE/binfmt.registered"
  say "registered $("$QEMU_DIR/qemu-aarch64" --version | head -1) for arm64 (F flag)"
}

up() {
  if docker_answers; then
    if [ -f "$STATE/dockerd.pid" ] && kill -0 "$(cat "$STATE/dockerd.pid")" 2> /dev/null; then
      say "Docker answers: dockerd pid $(cat "$STATE/dockerd.pid"), started earlier by this script ('make docker-down' stops it)"
    else
      say "Docker answers (a daemon not started here: left alone)"
    fi
  else
    [ "$(uname -s)" = "Linux" ] || cannot "Docker is not answering and this is not Linux"
    [ "$(id -u)" = "0" ] || cannot "Docker is not answering and we are not root"
    install_packages
    start_dockerd
    say "dockerd started (pid $(cat "$STATE/dockerd.pid")); 'make docker-down' stops it"
  fi
  if [ "$(uname -s)" = "Linux" ] && [ "$(id -u)" = "0" ]; then
    install_packages
    register_qemu
  fi
}

down() {
  if [ -f "$STATE/dockerd.pid" ]; then
    local pid
    pid=$(cat "$STATE/dockerd.pid")
    if kill -0 "$pid" 2> /dev/null; then
      say "stopping dockerd (pid $pid)"
      kill "$pid"
      for _ in $(seq 1 60); do kill -0 "$pid" 2> /dev/null || break; sleep 0.5; done
      kill -9 "$pid" 2> /dev/null || true
    fi
    rm -f "$STATE/dockerd.pid"
  fi
  if [ -f "$STATE/binfmt.registered" ]; then
    [ -e "$BINFMT/qemu-aarch64" ] && echo -1 > "$BINFMT/qemu-aarch64"
    rm -f "$STATE/binfmt.registered"
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  run)
    shift
    up
    status=0
    "$@" || status=$?
    down
    exit "$status"
    ;;
  *) echo "usage: $0 up|down|run CMD..." >&2; exit 2 ;;
esac
