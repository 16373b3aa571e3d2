#!/usr/bin/env bash
# The air-gapped walk-through, as a script that runs (README: "The air-gapped workflow").
#
#   inside:   record `kubeadm version -o json` of the cluster
#   outside:  build the custom kubeadm for exactly that version, export a bundle
#   inside:   verify the bundle, import it into the local cache, check the binary, next steps
#
# Progress and every command's report go to stderr; stdout gets only WORK, where all files are.
# Both sides run on this machine here, each with its own cache dir, so the bundle is the only
# thing that crosses. Everything can be set from the environment (a test runs it on a fixture):
#
#   KF             the tool, e.g. "node /path/dist/cli.js" (split on spaces)  [kubeadm-forever]
#   KUBEADM        the cluster's stock kubeadm, for `version -o json`          [kubeadm]
#   VERSION_FILE   a saved `kubeadm version -o json` instead of running KUBEADM
#   PLATFORMS      --platform for the build                                  [linux/amd64]
#   BUILD_ARGS     more build flags, e.g. "--source-tarball k8s.tar.gz --image local/golang:1.19.8"
#   WORK           where everything goes (kept)                              [a new temp dir]
#   OUTSIDE_CACHE, INSIDE_CACHE   the two cache dirs                         [$WORK/...]
#   RUN_VERIFY     0 skips `kubeadm-forever verify` of the imported binary     [1]
set -euo pipefail

read -r -a KF_CMD <<<"${KF:-kubeadm-forever}"
read -r -a BUILD_EXTRA <<<"${BUILD_ARGS:-}"
KUBEADM="${KUBEADM:-kubeadm}"
PLATFORMS="${PLATFORMS:-linux/amd64}"
WORK="${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/kubeadm-forever-airgap.XXXXXX")}"
OUTSIDE_CACHE="${OUTSIDE_CACHE:-$WORK/outside-cache}"
INSIDE_CACHE="${INSIDE_CACHE:-$WORK/inside-cache}"
RUN_VERIFY="${RUN_VERIFY:-1}"
mkdir -p "$WORK"

kf() { "${KF_CMD[@]}" "$@"; }
say() { printf '\n== %s\n' "$*" >&2; }
# json FILE a.0.b: one field of a JSON file (with the node that runs the tool anyway)
json() {
  node -e 'const [f, p] = process.argv.slice(1); let v = JSON.parse(require("fs").readFileSync(f, "utf8"));
    for (const k of p.split(".")) v = v == null ? undefined : v[k];
    if (v === undefined) { console.error(`no ${p} in ${f}`); process.exit(1); }
    process.stdout.write(String(v));' "$1" "$2"
}

# ---------------------------------------------------------------- inside (1)
say "inside: record the version the cluster runs"
if [[ -n "${VERSION_FILE:-}" ]]; then
  cp "$VERSION_FILE" "$WORK/kubeadm-version.json"
else
  "$KUBEADM" version -o json >"$WORK/kubeadm-version.json"
fi
cat "$WORK/kubeadm-version.json" >&2

# ---------------------------------------------------------------- outside
say "outside: build kubeadm for that version ($PLATFORMS)"
kf build --version-file "$WORK/kubeadm-version.json" --platform "$PLATFORMS" \
  --out "$WORK/kubeadm-custom" --cache-dir "$OUTSIDE_CACHE" --json "${BUILD_EXTRA[@]}" >"$WORK/build.json"
git_version="$(json "$WORK/kubeadm-version.json" clientVersion.gitVersion)"

# exactly the binaries just built: their cache keys, from the manifests build --json points to
keys=()
n_platforms=$(tr ',' '\n' <<<"$PLATFORMS" | grep -c .)
for ((i = 0; i < n_platforms; i++)); do
  if ((n_platforms == 1)); then manifest="$(json "$WORK/build.json" manifest)"; else manifest="$(json "$WORK/build.json" "binaries.$i.manifest")"; fi
  keys+=(--key "$(json "$manifest" key)")
done

say "outside: export the bundle for $git_version"
bundle="$WORK/kubeadm-forever-bundle-$git_version.tar.gz"
# --no-tool: this walk-through runs the tool from the checkout on both sides; to carry the tool
# itself, npm run dist and pass --tool-dir dist-bin instead
kf bundle export --out "$bundle" "${keys[@]}" --no-tool --cache-dir "$OUTSIDE_CACHE" --json >"$WORK/export.json"
echo "bundle sha256 $(json "$WORK/export.json" sha256) (note it; compare inside)" >&2

# ---------------------------------------------------------------- the transfer
say "carry the bundle in"
mkdir -p "$WORK/inside"
cp "$bundle" "$WORK/inside/"
inside_bundle="$WORK/inside/$(basename "$bundle")"
sha256sum "$inside_bundle" >&2

# ---------------------------------------------------------------- inside (2)
say "inside: verify the bundle"
kf bundle verify "$inside_bundle" >&2

say "inside: import it into the local cache"
kf bundle import "$inside_bundle" --cache-dir "$INSIDE_CACHE" --json >"$WORK/import.json"
kf cache ls --cache-dir "$INSIDE_CACHE" >&2

host_platform="linux/$(node -p 'process.arch === "x64" ? "amd64" : process.arch')"
for ((i = 0; i < n_platforms; i++)); do
  platform="$(json "$WORK/import.json" "$i.platform")"
  bin="$(kf cache path "$(json "$WORK/import.json" "$i.key")" --platform "$platform" --cache-dir "$INSIDE_CACHE")"
  echo "$platform: $bin" >&2
  if [[ "$platform" == "$host_platform" ]]; then
    cp "$bin" "$WORK/inside/kubeadm-custom"
    if [[ "$RUN_VERIFY" == 1 ]]; then
      say "inside: check the binary (version strings, certificate lifetimes)"
      kf verify "$WORK/inside/kubeadm-custom" >&2
    fi
  fi
done

say "next, from an admin host that reaches every node over ssh"
cat >&2 <<EOF
  kubeadm-forever rollout --inventory hosts.ini --kubeadm $WORK/inside/kubeadm-custom --dry-run
  kubeadm-forever rollout --inventory hosts.ini --kubeadm $WORK/inside/kubeadm-custom
  kubeadm-forever rollout --inventory hosts.ini --report
EOF
say "or by hand, on each control-plane node (then every other node's CA copies: docs/rollout.md)"
cat >&2 <<EOF
  kubeadm-forever ca extend --pki-dir /etc/kubernetes/pki      # same keys, long-lived CAs
  kubeadm-forever renew --kubeadm $WORK/inside/kubeadm-custom --dry-run
  kubeadm-forever renew --kubeadm $WORK/inside/kubeadm-custom  # backup, certs renew all, restart, check
  kubeadm-forever check --min-years 150
  (1.31 and later: renew also sets certificateValidityPeriod in the kubeadm-config ConfigMap)
EOF
echo "$WORK"
