# shellcheck shell=bash
# Set-up steps shared by scripts/test-env.sh (the test machine) and scripts/quickstart.sh (a
# newcomer's first run on Debian 12): sourced, each function idempotent, progress on stderr.
# Callers set KF_ROOT (the repository) and KF_LOG_TAG before sourcing.

KF_ROOT=${KF_ROOT:?KF_ROOT must name the repository}
KF_LOG_TAG=${KF_LOG_TAG:-setup}
KF_BACKPORTS_SOURCES=/etc/apt/sources.list.d/kubeadm-forever-backports.sources
KF_BACKPORTS_PIN=/etc/apt/preferences.d/kubeadm-forever-backports
# Debian 12's own kubernetes source (the only full tree with cmd/kubeadm in Debian), by version:
# with newer suites in the sources, `apt-get source kubernetes` would pick a client-only package.
KF_K8S_SOURCE_VERSION=1.20.5+really1.20.2-1.1+deb12u1
KF_K8S_TARBALL_NAME=kubernetes_1.20.5+really1.20.2.orig.tar.gz

log() { echo "[$KF_LOG_TAG] $*" >&2; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    log "must run as root (installs Debian packages and starts dockerd)"; exit 1
  fi
}

# install_missing CHECK=PACKAGE ...: installs each PACKAGE whose CHECK (a command name, or an
# absolute path that must exist) is missing, in one apt-get run.
install_missing() {
  local missing=() spec check pkg
  for spec in "$@"; do
    check=${spec%%=*}; pkg=${spec#*=}
    if [[ $check == /* ]]; then [ -e "$check" ] || missing+=("$pkg")
    else command -v "$check" >/dev/null || missing+=("$pkg"); fi
  done
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { log "must run as root to install ${missing[*]}"; exit 1; }
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# npm ci and the TypeScript build, unless dist/ is there and no newer than the sources.
build_tool() {
  if [ -x "$KF_ROOT/dist/cli.js" ] && [ -d "$KF_ROOT/node_modules" ] \
    && [ -z "$(find "$KF_ROOT/src" -newer "$KF_ROOT/dist/cli.js" -name '*.ts' -print -quit)" ]; then
    return
  fi
  log "installing the tool's npm dependencies and building it"
  (cd "$KF_ROOT" && npm ci --no-audit --no-fund >/dev/null && npm run build >/dev/null)
}

# The tool itself, built.
kf() { node "$KF_ROOT/dist/cli.js" "$@"; }

# True when the engine of DOCKER_HOST (or the default socket) answers a ping; needs no docker CLI.
engine_answers() {
  (cd "$KF_ROOT" && node --input-type=module -e "import D from 'dockerode'; await new D().ping();") >/dev/null 2>&1
}

# start_docker PIDFILE LOGFILE: a dockerd on the unix socket and tcp://127.0.0.1:2375 unless an
# engine answers already; its pid goes to PIDFILE (stopped by that pid, never by name).
start_docker() {
  local pidfile=$1 logfile=$2
  if engine_answers; then
    log "docker engine already answering${DOCKER_HOST:+ at $DOCKER_HOST}"; return
  fi
  if [ -n "${DOCKER_HOST:-}" ]; then
    log "DOCKER_HOST=$DOCKER_HOST does not answer; start that engine or unset DOCKER_HOST"; exit 1
  fi
  install_missing dockerd=docker.io
  [ "$(id -u)" = 0 ] || { log "must run as root to start dockerd"; exit 1; }
  mkdir -p "$(dirname "$pidfile")"
  log "starting dockerd"
  dockerd -H unix:///var/run/docker.sock -H tcp://127.0.0.1:2375 >"$logfile" 2>&1 &
  echo $! >"$pidfile"
  KF_STARTED_DOCKERD=1
  for _ in $(seq 1 60); do
    engine_answers && { log "dockerd ready (pid $(cat "$pidfile"))"; return; }
    sleep 1
  done
  log "dockerd did not come up; its log:"; tail -20 "$logfile" >&2; exit 1
}

# stop_docker PIDFILE: stops the dockerd start_docker started, by its pid.
stop_docker() {
  local pidfile=$1 pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile"); log "stopping dockerd pid $pid"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  rm -f "$pidfile"
}

# make_go_image_goroot GOROOT TAG...: the Go image from a GOROOT on this host, made by the
# tool's own image command; kept when every TAG is already there.
make_go_image_goroot() {
  local goroot=$1; shift
  local tags=(); for t in "$@"; do tags+=(--tag "$t"); done
  kf image --goroot "$goroot" "${tags[@]}" --keep-existing >&2
}

# bookworm-backports as an apt source (the machine's own mirror) with a low pin, so that
# `apt-get download -t bookworm-backports` finds newer Go and nothing else changes.
add_backports_source() {
  [ -f "$KF_BACKPORTS_SOURCES" ] && return
  local uris
  uris=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
  log "adding bookworm-backports (pin 50) from ${uris:=http://deb.debian.org/debian}"
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uris" >"$KF_BACKPORTS_SOURCES"
  printf 'Package: *\nPin: release n=bookworm-backports\nPin-Priority: 50\n' >"$KF_BACKPORTS_PIN"
  apt-get update -qq
}

# fetch_go_debs SERIES DIR: Debian's golang-SERIES-go and -src from bookworm-backports,
# downloaded into DIR (never installed: their files only go into an image).
fetch_go_debs() {
  local series=$1 dir=$2
  if compgen -G "$dir/golang-$series-go_*.deb" >/dev/null && compgen -G "$dir/golang-$series-src_*.deb" >/dev/null; then return; fi
  add_backports_source
  mkdir -p "$dir"
  log "downloading golang-$series-go and golang-$series-src (bookworm-backports)"
  (cd "$dir" && apt-get download -qq -o APT::Sandbox::User=root -t bookworm-backports "golang-$series-go" "golang-$series-src" >/dev/null)
}

# The Go version of a downloaded golang-SERIES-go .deb in DIR, e.g. 1.22.12.
go_deb_version() {
  local series=$1 dir=$2 f
  f=$(compgen -G "$dir/golang-$series-go_*.deb" | head -1)
  [ -n "$f" ] || return 1
  basename "$f" | sed -E 's/^golang-[0-9.]+-go_([0-9]+\.[0-9]+(\.[0-9]+)?).*/\1/'
}

# make_go_image_debs SERIES DIR: the image golang:<version>-alpine (the name `build` picks
# for that Go) from the two .deb files, by the tool's image command.
make_go_image_debs() {
  local series=$1 dir=$2
  kf image --tag "golang:$(go_deb_version "$series" "$dir")-alpine" --deb "$(compgen -G "$dir/golang-$series-go_*.deb" | head -1)" \
    --deb "$(compgen -G "$dir/golang-$series-src_*.deb" | head -1)" --keep-existing >&2
}

# fetch_k8s_source DIR: Debian 12's kubernetes 1.20.2 source tarball into DIR.
fetch_k8s_source() {
  local dir=$1
  [ -s "$dir/$KF_K8S_TARBALL_NAME" ] && return
  log "downloading Debian's kubernetes source package"
  if ! grep -q 'deb-src' /etc/apt/sources.list.d/debian.sources 2>/dev/null; then
    sed -i 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources
  fi
  apt-get update -qq
  mkdir -p "$dir"
  (cd "$dir" && apt-get source --download-only "kubernetes=$KF_K8S_SOURCE_VERSION" >/dev/null 2>&1)
  [ -s "$dir/$KF_K8S_TARBALL_NAME" ] || { log "kubernetes source tarball not found after apt-get source"; ls "$dir" >&2; exit 1; }
}
