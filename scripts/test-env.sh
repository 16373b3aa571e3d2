#!/usr/bin/env bash
# Prepares this machine for the full test suite (Debian 12, as root), idempotently:
#   Debian packages, a Docker engine (unix socket + tcp://127.0.0.1:2375), the test Go images
#   made by the tool's own `image` command (no registry here) from Debian's Go 1.19 and from
#   Debian's golang-1.22-go/-src .debs (bookworm-backports, downloaded, never installed), and
#   Debian's Kubernetes 1.20.2 source tarball. The steps live in scripts/lib/machine.sh, which
#   scripts/quickstart.sh uses too. Needs the tool built (npm ci && npm run build; .ci/run does).
# Usage: scripts/test-env.sh up     start/prepare; prints the dockerd pid it started (if any)
#        scripts/test-env.sh down   stop the engine this script started (by its pid file)
set -euo pipefail

KF_ROOT=$(cd "$(dirname "$0")/.." && pwd)
KF_LOG_TAG=test-env
# shellcheck source=lib/machine.sh
. "$KF_ROOT/scripts/lib/machine.sh"

FIXTURES=${KF_TEST_FIXTURES:-$KF_ROOT/test/.fixtures}
PIDFILE=$FIXTURES/dockerd.pid
GO_IMAGE=${KF_TEST_GO_IMAGE:-local/golang:1.19.8}
GO_DEBS=$FIXTURES/go-debs

install_packages() {
  install_missing \
    dockerd=docker.io \
    /usr/lib/go-1.19/bin/go=golang-1.19-go \
    /bin/busybox=busybox-static \
    openssl=openssl \
    git=git \
    unshare=util-linux \
    strings=binutils \
    /usr/bin/time=time \
    /usr/bin/qemu-aarch64-static=qemu-user-static \
    /usr/aarch64-linux-gnu/lib/libc.so.6=libc6-arm64-cross \
    /usr/aarch64-linux-gnu/lib/libstdc++.so.6=libstdc++6-arm64-cross \
    /usr/aarch64-linux-gnu/lib/libgcc_s.so.1=libgcc-s1-arm64-cross \
    ip=iproute2 \
    nsenter=util-linux \
    ansible-inventory=ansible-core
  # ansible-inventory: the inventory reader is checked against Ansible's own
  install_without_service /usr/sbin/sshd=openssh-server
  # the arm64 libraries Node links: npm run dist makes the arm64 executable's blob with the
  # arm64 Node under qemu, and the tests run that executable;
  # strings: the reproducibility test greps the binary for host paths;
  # GNU time: the bench (and its smoke test) reads peak RSS;
  # qemu-user-static: verify runs the arm64 kubeadm of a multi-platform build under it
  [ -x "$FIXTURES/promtool" ] || fetch_promtool   # Prometheus' checker for check --output prometheus
}

# A package whose service must not start (openssh-server: the fleet tests and the multi-node
# cluster run their own sshd per node with their own host keys): policy-rc.d answers 101
# (action forbidden) while it installs, unless one is there already.
install_without_service() {
  local check=${1%%=*} added=
  [ -e "$check" ] && return
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d && added=1
  fi
  install_missing "$1" || { [ -z "$added" ] || rm -f /usr/sbin/policy-rc.d; return 1; }
  [ -z "$added" ] || rm -f /usr/sbin/policy-rc.d
}

# promtool alone, from Debian's prometheus package: installing the package would also start a
# Prometheus server (its init script) that nothing here needs.
fetch_promtool() {
  local d; d=$(mktemp -d)
  log "fetching promtool from Debian's prometheus package"
  (cd "$d" && apt-get download -qq prometheus 2>/dev/null) || { apt-get update -qq; (cd "$d" && apt-get download -qq prometheus); }
  dpkg -x "$d"/prometheus_*.deb "$d/x"
  mkdir -p "$FIXTURES"
  install -m 0755 "$d/x/usr/bin/promtool" "$FIXTURES/promtool"
  rm -rf "$d"
}

case "${1:-up}" in
  up)
    need_root
    install_packages
    start_docker "$PIDFILE" "$FIXTURES/dockerd.log"
    # also under the name build picks for that Go: the quickstart test then finds it made
    make_go_image_goroot /usr/lib/go-1.19 "$GO_IMAGE" "golang:$(sed -n '1s/^go//p' /usr/lib/go-1.19/VERSION)-alpine"
    fetch_go_debs 1.22 "$GO_DEBS"
    make_go_image_debs 1.22 "$GO_DEBS"
    fetch_k8s_source "$FIXTURES"
    KF_TEST_FIXTURES=$FIXTURES bash "$KF_ROOT/scripts/test-cluster.sh"   # live-cluster e2e binaries (cached)
    log "ready: images $GO_IMAGE and golang:$(go_deb_version 1.22 "$GO_DEBS")-alpine, source $FIXTURES/$KF_K8S_TARBALL_NAME" ;;
  down)
    stop_docker "$PIDFILE" ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
