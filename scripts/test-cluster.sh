#!/usr/bin/env bash
# Test only. Prepares the binaries of the live test cluster (test/e2e/live-cluster.test.ts),
# idempotently, under $KF_TEST_FIXTURES/cluster-v1.20.2:
#   src/kubernetes-1.20.2   Debian's 1.20.2 tree, fixed: vendored reflect2 1.0.1 replaced by
#                           Debian's 1.0.2 (Go >= 1.18 binaries of 1.20 crash in 1.0.1), and,
#                           for the kubelet only, no negative OOM score adjustments (this machine
#                           refuses them: runc fails to create every pod sandbox otherwise)
#   out/                    make's output dir with its one GOCACHE (kept: rebuilds are warm)
#   bin/                    kube-apiserver kube-controller-manager kube-scheduler kubelet
#                           kubeadm (stock) kubectl, all from that one fixed tree
#   ready                   written last; when it names this RECIPE, nothing runs
# Installs what it needs from Debian: rsync (make), reflect2 1.0.2, etcd-server (the etcd image), curl.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FIXTURES=${KF_TEST_FIXTURES:-$ROOT/test/.fixtures}
TARBALL=$FIXTURES/kubernetes_1.20.5+really1.20.2.orig.tar.gz
DIR=$FIXTURES/cluster-v1.20.2
TREE=$DIR/src/kubernetes-1.20.2
REFLECT2=/usr/share/gocode/src/github.com/modern-go/reflect2
GO=/usr/lib/go-1.19/bin
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubeadm kubectl)
# Bump RECIPE when the steps below change what is built: a stale cache is then rebuilt.
RECIPE=3
STAMP="recipe $RECIPE: ${BINARIES[*]}"

log() { echo "[test-cluster] $*" >&2; }

missing=()
command -v rsync >/dev/null || missing+=(rsync)
[ -d "$REFLECT2" ] || missing+=(golang-github-modern-go-reflect2-dev)
[ -x /usr/bin/etcd ] || missing+=(etcd-server)
command -v curl >/dev/null || missing+=(curl)   # the test asks the kubelet and etcd for /healthz
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ -s "$TARBALL" ] || { log "missing $TARBALL (scripts/test-env.sh up downloads it)"; exit 1; }
[ -x "$GO/go" ] || { log "missing $GO/go (apt-get install golang-1.19-go)"; exit 1; }

mkdir -p "$DIR"
exec 9>"$DIR/lock"
flock 9
if [ "$(cat "$DIR/ready" 2>/dev/null)" = "$STAMP" ]; then
  log "cluster binaries ready in $DIR/bin"; exit 0
fi
rm -f "$DIR/ready"
start=$(date +%s)

if [ ! -f "$DIR/src.ready" ]; then
  log "unpacking the 1.20.2 tree"
  rm -rf "$DIR/src"
  mkdir -p "$DIR/src"
  tar -C "$DIR/src" -xzf "$TARBALL"
  echo unpacked >"$DIR/src.ready"
fi
# The fixes, idempotent (a RECIPE bump reapplies them without unpacking again: make stays warm).
rm -rf "$TREE/vendor/github.com/modern-go/reflect2"
cp -a "$REFLECT2" "$TREE/vendor/github.com/modern-go/reflect2"
# Kubelet, test only: its OOM score adjustments (-998 for pod sandboxes, -997/-999 elsewhere)
# become 0, and it only warns about kernel tunables (vm.overcommit_memory, kernel.panic,
# kernel.panic_on_oops...) where it would change them: they are global, not the test's to set.
sed -i 's/defaultSandboxOOMAdj int = -998/defaultSandboxOOMAdj int = 0/' "$TREE/pkg/kubelet/dockershim/docker_sandbox.go"
sed -i -e 's/KubeletOOMScoreAdj int = -999/KubeletOOMScoreAdj int = 0/' \
  -e 's/KubeProxyOOMScoreAdj  int = -999/KubeProxyOOMScoreAdj  int = 0/' \
  -e 's/guaranteedOOMScoreAdj int = -997/guaranteedOOMScoreAdj int = 0/' "$TREE/pkg/kubelet/qos/policy.go"
sed -i 's/^\tb := KernelTunableModify$/\tb := KernelTunableWarn/' "$TREE/pkg/kubelet/cm/container_manager_linux.go"
grep -q 'defaultSandboxOOMAdj int = 0' "$TREE/pkg/kubelet/dockershim/docker_sandbox.go" &&
  [ "$(grep -c 'OOMScoreAdj \+int = 0' "$TREE/pkg/kubelet/qos/policy.go")" = 3 ] &&
  grep -q '^.b := KernelTunableWarn$' "$TREE/pkg/kubelet/cm/container_manager_linux.go" ||
  { log "a test-only kubelet change did not apply (another source?)"; exit 1; }

log "make ${BINARIES[*]} (Go 1.19; cold: about 15-25 min on 2 cores)"
whats=()
for b in "${BINARIES[@]}"; do whats+=("cmd/$b"); done
(
  cd "$TREE"
  export PATH=$GO:$PATH
  # Outside the tree, so the tree stays a clean --source-dir for the tool's own build.
  export KUBE_OUTPUT_SUBPATH=../../out
  mkdir -p _output   # make links _output/bin to the output dir; removed below
  # kubelet static like the others: one set of compiled packages for all six (a cgo kubelet
  # would compile nearly the whole tree a second time)
  export KUBE_STATIC_OVERRIDES=kubelet
  export KUBE_GIT_VERSION=v1.20.2 KUBE_GIT_COMMIT=faecb196815e248d3ecfb03c680a4507229c2a56 KUBE_GIT_TREE_STATE=clean
  make WHAT="${whats[*]}" >"$DIR/make.log" 2>&1
) || { log "make failed; the end of $DIR/make.log:"; tail -30 "$DIR/make.log" >&2; exit 1; }

rm -rf "$TREE/_output"
mkdir -p "$DIR/bin"
for b in "${BINARIES[@]}"; do
  install -m 0755 "$DIR/out/bin/linux/amd64/$b" "$DIR/bin/$b"
done
echo "$STAMP" >"$DIR/ready"
log "cluster binaries ready in $DIR/bin ($(( ($(date +%s) - start) / 60 )) min)"
