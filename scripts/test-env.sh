#!/usr/bin/env bash
# Prepares this machine for the full test suite (Debian 12, as root), idempotently:
#   Debian packages, a Docker engine (unix socket + tcp://127.0.0.1:2375), the test Go image
#   made from Debian's Go (no registry here), and Debian's Kubernetes 1.20.2 source tarball.
# Usage: scripts/test-env.sh up     start/prepare; prints the dockerd pid it started (if any)
#        scripts/test-env.sh down   stop the engine this script started (by its pid file)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FIXTURES=${KF_TEST_FIXTURES:-$ROOT/test/.fixtures}
PIDFILE=$FIXTURES/dockerd.pid
GO_IMAGE=${KF_TEST_GO_IMAGE:-local/golang:1.19.8}
K8S_TARBALL=$FIXTURES/kubernetes_1.20.5+really1.20.2.orig.tar.gz

log() { echo "[test-env] $*" >&2; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    log "must run as root (installs Debian packages and starts dockerd)"; exit 1
  fi
}

install_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  [ -x /usr/lib/go-1.19/bin/go ] || missing+=(golang-1.19-go)
  [ -x /bin/busybox ] || missing+=(busybox-static)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v git >/dev/null || missing+=(git)
  command -v unshare >/dev/null || missing+=(util-linux)
  command -v strings >/dev/null || missing+=(binutils)   # the reproducibility test greps the binary for host paths
  [ -x /usr/bin/time ] || missing+=(time)   # GNU time: the bench (and its smoke test) reads peak RSS
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

start_docker() {
  if docker info >/dev/null 2>&1; then
    log "docker engine already answering"; return
  fi
  mkdir -p "$FIXTURES"
  log "starting dockerd"
  dockerd -H unix:///var/run/docker.sock -H tcp://127.0.0.1:2375 >"$FIXTURES/dockerd.log" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && { log "dockerd ready (pid $(cat "$PIDFILE"))"; return; }
    sleep 1
  done
  log "dockerd did not come up; its log:"; tail -20 "$FIXTURES/dockerd.log" >&2; exit 1
}

make_go_image() {
  if docker image inspect "$GO_IMAGE" >/dev/null 2>&1; then return; fi
  log "making $GO_IMAGE from Debian's Go"
  local r; r=$(mktemp -d)
  mkdir -p "$r/bin" "$r/usr/local" "$r/tmp" "$r/etc" "$r/go"
  chmod 1777 "$r/tmp"
  cp /bin/busybox "$r/bin/"
  for a in sh ls cat mkdir rm cp mv tar env sleep true; do ln -s busybox "$r/bin/$a"; done
  cp -aL /usr/lib/go-1.19 "$r/usr/local/go"
  for l in $(ldd /usr/lib/go-1.19/bin/go | grep -o '/[^ :]*'); do
    mkdir -p "$r$(dirname "$l")"; cp -L "$l" "$r$l"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
  tar -C "$r" -c . | docker import -c 'ENV PATH=/usr/local/go/bin:/bin' -c 'ENV GOPATH=/go' - "$GO_IMAGE" >/dev/null
  rm -rf "$r"
}

fetch_k8s_source() {
  [ -s "$K8S_TARBALL" ] && return
  log "downloading Debian's kubernetes source package"
  if ! grep -q 'deb-src' /etc/apt/sources.list.d/debian.sources 2>/dev/null; then
    sed -i 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources
  fi
  apt-get update -qq
  mkdir -p "$FIXTURES"
  (cd "$FIXTURES" && apt-get source --download-only kubernetes >/dev/null 2>&1)
  [ -s "$K8S_TARBALL" ] || { log "kubernetes source tarball not found after apt-get source"; ls "$FIXTURES" >&2; exit 1; }
}

case "${1:-up}" in
  up)
    need_root; install_packages; start_docker; make_go_image; fetch_k8s_source
    KF_TEST_FIXTURES=$FIXTURES bash "$ROOT/scripts/test-cluster.sh"   # live-cluster e2e binaries (cached)
    log "ready: image $GO_IMAGE, source $K8S_TARBALL" ;;
  down)
    if [ -f "$PIDFILE" ]; then
      pid=$(cat "$PIDFILE"); log "stopping dockerd pid $pid"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
      rm -f "$PIDFILE"
    fi ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
