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
    ip=iproute2 \
    nsenter=util-linux
  # strings: the reproducibility test greps the binary for host paths;
  # GNU time: the bench (and its smoke test) reads peak RSS
  [ -x "$FIXTURES/promtool" ] || fetch_promtool   # Prometheus' checker for check --output prometheus
  install_sshd
}

# sshd for the multi-node test cluster, which starts one per node itself (sshd -D -f CONFIG):
# the package's own service must not start, so a policy-rc.d refuses it during the install
# (unless the machine has one already, as Docker images do).
install_sshd() {
  [ -x /usr/sbin/sshd ] && return 0
  local policy=/usr/sbin/policy-rc.d made=0 rc=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && made=1
  fi
  install_missing /usr/sbin/sshd=openssh-server || rc=$?
  [ "$made" = 1 ] && rm -f "$policy"
  return "$rc"
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
