#!/usr/bin/env bash
# The quickstart (README, `npm run quickstart`): on a fresh Debian 12 machine, as root, sets up
# what is missing with the same steps as the test set-up (scripts/lib/machine.sh): the tool's
# npm dependencies and build, Debian's Go 1.19 and busybox-static, a Docker engine (none is
# installed or started when one answers, locally or at DOCKER_HOST), the Go image made by the
# tool's own `image` command, and Debian's Kubernetes 1.20.2 source. Then it builds kubeadm
# v1.20.2 with 199-year leaves and 200-year CAs from that source, verifies it, prints the expiry
# of the certificates it issued and what to do next with a real cluster.
#
# Why Go 1.19 and not 1.15.5 (the Go of the official v1.20.2): no Debian 12 suite carries Go
# 1.15 and no registry is needed here; the 1.20.2 tree builds in GOPATH mode with Go 1.19 and the
# binary reports the same version strings (only its goVersion says go1.19.8). For a real 1.20
# cluster, build with the Go its kubeadm names (`kubeadm version`), in an image you load.
#
# Environment: KF_QUICKSTART_DIR (default ./quickstart: the binary, a dockerd log),
# KF_QUICKSTART_SOURCE_DIR (where the source tarball is or goes; default KF_QUICKSTART_DIR),
# KUBEADM_FOREVER_CACHE_DIR / DOCKER_HOST as for the tool.
set -euo pipefail

KF_ROOT=$(cd "$(dirname "$0")/.." && pwd)
KF_LOG_TAG=quickstart
# shellcheck source=lib/machine.sh
. "$KF_ROOT/scripts/lib/machine.sh"

WORK=$(mkdir -p "${KF_QUICKSTART_DIR:-$PWD/quickstart}" && cd "${KF_QUICKSTART_DIR:-$PWD/quickstart}" && pwd)
SOURCE_DIR=${KF_QUICKSTART_SOURCE_DIR:-$WORK}
GOROOT_119=/usr/lib/go-1.19
K8S_VERSION=v1.20.2
K8S_COMMIT=faecb196815e248d3ecfb03c680a4507229c2a56
OUT=$WORK/kubeadm-$K8S_VERSION-forever
started=$SECONDS

step() { log "$(( SECONDS - started ))s: $*"; }

step "1/6 the tool"
build_tool
step "2/6 Debian's Go 1.19 and busybox-static"
install_missing "$GOROOT_119/bin/go=golang-1.19-go" /bin/busybox=busybox-static
step "3/6 a Docker engine"
start_docker "$WORK/dockerd.pid" "$WORK/dockerd.log"
step "4/6 the Go image (kubeadm-forever image --goroot $GOROOT_119)"
make_go_image_goroot "$GOROOT_119"
GO_VERSION=$(sed -n '1s/^go//p' "$GOROOT_119/VERSION")
step "5/6 Debian's kubernetes $K8S_VERSION source"
fetch_k8s_source "$SOURCE_DIR"
step "6/6 build kubeadm $K8S_VERSION with Go $GO_VERSION (golang:$GO_VERSION-alpine), then verify it"
kf build --kubernetes-version "$K8S_VERSION" --commit "$K8S_COMMIT" --go-version "$GO_VERSION" \
  --source-tarball "$SOURCE_DIR/$KF_K8S_TARBALL_NAME" --out "$OUT" >&2
echo
echo "The certificates $OUT issued (kubeadm init phase certs all, in a temp dir):"
kf verify "$OUT" --kubernetes-version "$K8S_VERSION" --commit "$K8S_COMMIT"
cat <<NEXT

Done in $(( SECONDS - started ))s: $OUT is kubeadm $K8S_VERSION that issues 199-year certificates
and 200-year CAs.${KF_STARTED_DOCKERD:+ dockerd (pid $(cat "$WORK/dockerd.pid" 2>/dev/null)) keeps running.}

Next, with a real cluster (README: "The air-gapped workflow"):
  1. on a control-plane node:  kubeadm version -o json > kubeadm-version.json
  2. here:  kubeadm-forever build --version-file kubeadm-version.json --out ./kubeadm-custom
     (it needs the Go image the file names, golang:<go>-alpine: make it with
     kubeadm-forever image --goroot DIR or --deb golang-1.NN-go_….deb --deb golang-1.NN-src_….deb,
     or docker load it)
  3. on each control-plane node:
       kubeadm-forever ca extend --pki-dir /etc/kubernetes/pki
       kubeadm-forever renew --kubeadm ./kubeadm-custom --dry-run   # then without --dry-run
       kubeadm-forever check --min-years 150
NEXT
