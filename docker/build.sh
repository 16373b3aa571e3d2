#!/usr/bin/env bash
# docker/build.sh [TAG]: the tool's FROM-scratch image from npm run dist's amd64 executable and
# the libraries `ldd` lists for it (copied from this machine), built offline. Prints the tag.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
exe="$root/dist-bin/kubeadm-forever-linux-amd64"
[ -x "$exe" ] || { printf "error: %s is missing\nnext: run 'npm run dist' first\n" "$exe" >&2; exit 1; }
version="$(node -p "require('$root/package.json').version")"
tag="${1:-kubeadm-forever:$version}"
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/tmp" "$ctx/rootfs/root"
chmod 1777 "$ctx/rootfs/tmp"
cp "$exe" "$ctx/rootfs/kubeadm-forever"
# ldd's "name => /path (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)" lines: the paths
for lib in $(ldd "$exe" | grep -o '/[^ ]* (0x' | cut -d' ' -f1); do
  mkdir -p "$ctx/rootfs$(dirname "$lib")"
  cp -L "$lib" "$ctx/rootfs$lib"
done
cp "$root/docker/Dockerfile" "$ctx/Dockerfile"
docker build -q -t "$tag" "$ctx" >/dev/null
echo "$tag"
