#!/usr/bin/env bash
# Provision a specfleet worker image (Debian 12: its Python 3.11 is what
# ami/requirements.lock was resolved for).
#
# Idempotent: every step checks or converges, so re-running it on a
# half-provisioned machine (or on a baked image) is safe. Used as user-data by
# `specfleet ami bake` (which writes the unit file and passes URLs for the
# wheel and the lock), as the shell provisioner of ami/packer.pkr.hcl, and by
# tests/test_ami_recipe.py in a Debian root file system.
#
# `provision.sh --list-packages` prints the Debian packages it would install
# for SPECFLEET_PIPELINES and exits.
#
# Environment (all optional):
#   SPECFLEET_SOURCE     the specfleet wheel: a path, a URL or `specfleet @ URL`
#                        (a `#sha256=` fragment is checked); required on first run
#   SPECFLEET_LOCK       hashed requirements for specfleet's dependencies (path or
#                        URL; default: requirements.lock next to this script)
#   SPECFLEET_UNIT_FILE  the worker's systemd unit, the one copy there is
#                        (default: specfleet-worker@.service next to this script)
#   SPECFLEET_PIPELINES  pipelines the image runs, space or comma separated
#                        (default: all); decides the Debian packages and extras
#   SPECFLEET_EXTRAS     more specfleet extras to install (comma separated)
#   SPECFLEET_HOME       install root (default /opt/specfleet)
#   SPECFLEET_POWEROFF   set to 1 to power off when done (the bake waits for that)
#   SPECFLEET_AGENT_DEBS AWS's agents as Debian packages, each `URL#sha256=HEX`,
#                        space separated: the CloudWatch agent (ships the worker's
#                        log to `specfleet logs`) and the SSM agent (`specfleet db
#                        tunnel`). Debian's repositories have neither; each file is
#                        checked against its hash before dpkg sees it. Without them
#                        the image works, logs stay on the instance, and the tunnel
#                        needs a base AMI that already runs the SSM agent.
set -euo pipefail

ALL_PIPELINES="echo hydrophone search download spectrogram"
SPECFLEET_HOME="${SPECFLEET_HOME:-/opt/specfleet}"
SPECFLEET_SOURCE="${SPECFLEET_SOURCE:-}"
SPECFLEET_PIPELINES="${SPECFLEET_PIPELINES:-$ALL_PIPELINES}"
SPECFLEET_EXTRAS="${SPECFLEET_EXTRAS:-}"
SPECFLEET_POWEROFF="${SPECFLEET_POWEROFF:-0}"
SPECFLEET_AGENT_DEBS="${SPECFLEET_AGENT_DEBS:-}"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" 2>/dev/null && pwd || echo /nonexistent)"
SPECFLEET_LOCK="${SPECFLEET_LOCK:-$SCRIPT_DIR/requirements.lock}"
SPECFLEET_UNIT_FILE="${SPECFLEET_UNIT_FILE:-$SCRIPT_DIR/specfleet-worker@.service}"
MANIFEST_DIR="$SPECFLEET_HOME/manifest"
export DEBIAN_FRONTEND=noninteractive

# Every image: the venv's Python, TLS roots, and curl for the fleet's user-data
# (it reads the instance id from IMDS).
BASE_PACKAGES=(python3 python3-venv ca-certificates curl)
PIPELINES=()
PACKAGES=("${BASE_PACKAGES[@]}")
EXTRAS=()

log() { printf '[provision %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "$*"; exit 2; }

# The Debian packages each pipeline needs beyond specfleet's own dependencies
# (a test checks they equal its spec's FleetProfile.apt_packages). ffmpeg comes
# from the imageio-ffmpeg wheel (specfleet.ffmpeg), so no Debian ffmpeg. Its
# Python extras come from `ami bake` (SPECFLEET_EXTRAS, from the specs); the
# lock holds every extra's dependencies (./dev lock writes it).
select_pipelines() {
  local name
  for name in ${SPECFLEET_PIPELINES//,/ }; do
    case "$name" in
      echo | hydrophone | download) ;;
      search) PACKAGES+=(chromium chromium-driver) ;;
      spectrogram) PACKAGES+=(libmpg123-0) ;;
      *) die "unknown pipeline '$name' in SPECFLEET_PIPELINES; choose from: $ALL_PIPELINES" ;;
    esac
    PIPELINES+=("$name")
  done
  ((${#PIPELINES[@]})) || die "SPECFLEET_PIPELINES is empty; choose from: $ALL_PIPELINES"
  local extra
  for extra in ${SPECFLEET_EXTRAS//,/ }; do
    [[ "$extra" =~ ^[a-z][a-z0-9_-]*$ ]] || die "bad extra '$extra' in SPECFLEET_EXTRAS"
    EXTRAS+=("$extra")
  done
}

has_pipeline() {
  local name
  for name in "${PIPELINES[@]}"; do
    [[ "$name" == "$1" ]] && return 0
  done
  return 1
}

is_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

install_packages() {
  local missing=() pkg
  for pkg in "${PACKAGES[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -y
    apt-get install -y --no-install-recommends "${missing[@]}"
    apt-get clean
  else
    log "system packages present"
  fi
}

# AWS's agents (CloudWatch, SSM) from pinned .deb files: download, check the
# sha256 given with each URL, then install; a mismatch stops the bake.
install_agents() {
  local spec url hash file
  [[ -n "$SPECFLEET_AGENT_DEBS" ]] || { log "no agent packages given (SPECFLEET_AGENT_DEBS): logs stay on the instance"; return 0; }
  for spec in $SPECFLEET_AGENT_DEBS; do
    url="${spec%%#sha256=*}"
    hash="${spec##*#sha256=}"
    [[ "$url" != "$spec" && "$hash" =~ ^[0-9a-f]{64}$ ]] || die "agent package '${spec%%\?*}' must look like URL#sha256=<64 hex digits>"
    file="$(mktemp --suffix=.deb)"
    log "fetching ${url%%\?*}"
    curl --fail --silent --show-error --location --proto '=https,file' --max-time 600 -o "$file" "$url"
    echo "$hash  $file" | sha256sum --check --quiet - || die "${url%%\?*}: sha256 does not match $hash"
    apt-get install -y --no-install-recommends "$file"
    rm -f "$file"
  done
}

create_user() {
  if ! id -u specfleet >/dev/null 2>&1; then
    log "creating user specfleet"
    useradd --system --home-dir "$SPECFLEET_HOME" --shell /usr/sbin/nologin specfleet
  fi
  install -d -o specfleet -g specfleet -m 0755 "$SPECFLEET_HOME" "$SPECFLEET_HOME/work" "$SPECFLEET_HOME/numba-cache"
}

# Dependencies from the hashed lock only (no resolver, no source builds), then
# this checkout's wheel with --no-index: pip may fetch nothing more, so the
# install fails, naming the package, if the lock does not cover specfleet and
# its extras. The Debian venv's pip is kept (its version is in the manifest).
install_specfleet() {
  local venv="$SPECFLEET_HOME/venv"
  if [[ -z "$SPECFLEET_SOURCE" ]]; then
    if [[ -x "$venv/bin/specfleet" ]]; then
      log "specfleet already installed; set SPECFLEET_SOURCE to upgrade"
      return
    fi
    die "SPECFLEET_SOURCE is not set: give the specfleet wheel (path or URL)"
  fi
  if [[ ! -x "$venv/bin/python" ]]; then
    log "creating venv"
    python3 -m venv "$venv"
  fi
  local pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-input)
  # Log URLs without their query: a presigned URL's signature is a credential.
  log "installing the locked dependencies (${SPECFLEET_LOCK%%\?*})"
  "${pip[@]}" install --quiet --no-cache-dir --no-compile --require-hashes --only-binary :all: -r "$SPECFLEET_LOCK"

  local download="$SPECFLEET_HOME/dist"
  rm -rf "$download"
  log "fetching specfleet (${SPECFLEET_SOURCE%%\?*})"
  "${pip[@]}" download --quiet --no-cache-dir --no-deps --no-index -d "$download" "$SPECFLEET_SOURCE"
  local wheels=("$download"/specfleet-*.whl)
  [[ -f "${wheels[0]}" ]] || die "SPECFLEET_SOURCE did not give a specfleet wheel"
  local target="${wheels[0]}"
  if ((${#EXTRAS[@]})); then
    target+="[$(IFS=,; echo "${EXTRAS[*]}")]"
  fi
  "${pip[@]}" uninstall --quiet --yes specfleet >/dev/null 2>&1 || true
  "${pip[@]}" install --quiet --no-cache-dir --no-compile --no-index "$target"
  "${pip[@]}" check
  rm -rf "$download"
  # Byte-compile here, on every core (pip compiles one file at a time): the
  # service user cannot write the venv, so a missing .pyc is compiled again
  # at every worker start.
  log "byte-compiling the venv"
  "$venv/bin/python" -m compileall -q -j 0 "$venv/lib" >/dev/null
  ln -sf "$venv/bin/specfleet" /usr/local/bin/specfleet
}

install_unit() {
  local unit=/etc/systemd/system/specfleet-worker@.service
  [[ -f "$SPECFLEET_UNIT_FILE" ]] || die "no unit file at $SPECFLEET_UNIT_FILE (set SPECFLEET_UNIT_FILE)"
  install -m 0644 "$SPECFLEET_UNIT_FILE" "$unit"
  if systemd_running; then
    systemctl daemon-reload
  else
    log "systemd is not running here (image build in a chroot): no daemon-reload needed"
  fi
}

# sd_booted(3): systemd is PID 1 when this directory exists.
systemd_running() { [[ -d /run/systemd/system ]]; }

# Compile the spectrogram kernels (numba) and load every library once now,
# so a new instance's first track does not pay for it.
warm_caches() {
  has_pipeline spectrogram || return 0
  log "warming the spectrogram kernels' cache"
  runuser -u specfleet -- env NUMBA_CACHE_DIR="$SPECFLEET_HOME/numba-cache" "$SPECFLEET_HOME/venv/bin/python" -c \
    'from specfleet.pipelines.melwindows import compute, dsp; compute.warm_up(dsp.SpectroParams())'
}

check_tools() {
  log "checking tools for: ${PIPELINES[*]}"
  local python="$SPECFLEET_HOME/venv/bin/python" name
  "$SPECFLEET_HOME/venv/bin/specfleet" --help >/dev/null
  for name in "${PIPELINES[@]}"; do
    "$python" -c 'import sys; from specfleet.pipelines import get_spec; get_spec(sys.argv[1]).handler.load()' "$name"
  done
  if has_pipeline download; then
    "$python" -c 'import subprocess; from specfleet.ffmpeg import ffmpeg_path; subprocess.run([ffmpeg_path(), "-version"], check=True, capture_output=True)'
  fi
  if has_pipeline download || has_pipeline search; then
    # YouTube needs a JS runtime (the deno wheel, in the venv's bin) seen by
    # yt-dlp as the worker's check sees it, as the service user.
    runuser -u specfleet -- "$python" -c 'from specfleet.pipelines.music.jsruntime import check_js_runtime
from specfleet.pipelines.music.settings import MusicSettings
print("yt-dlp JS runtime:", check_js_runtime(MusicSettings()).describe())' >&2
  fi
  if has_pipeline search; then
    chromium --version >/dev/null
    chromedriver --version >/dev/null
  fi
  if has_pipeline spectrogram; then
    "$python" -c 'from specfleet.pipelines.melwindows import mpg123; assert mpg123.available(), "libmpg123 did not load"'
  fi
}

# What the image holds, exactly: every Debian package and Python distribution
# with its version (Debian's are pinned by the release, not by this script).
write_manifest() {
  install -d -m 0755 "$MANIFEST_DIR"
  dpkg-query -W -f='${Package}=${Version}\n' | sort >"$MANIFEST_DIR/debian-packages.txt"
  "$SPECFLEET_HOME/venv/bin/python" -m pip --disable-pip-version-check freeze --all | sort >"$MANIFEST_DIR/python-packages.txt"
  printf '%s\n' "${PIPELINES[@]}" >"$MANIFEST_DIR/pipelines.txt"
  log "manifest in $MANIFEST_DIR"
}

main() {
  select_pipelines
  if [[ "${1:-}" == "--list-packages" ]]; then
    printf '%s\n' "${PACKAGES[@]}"
    return
  fi
  if [[ $EUID -ne 0 ]]; then
    log "run as root"
    exit 1
  fi
  install_packages
  install_agents
  create_user
  install_specfleet
  install_unit
  warm_caches
  check_tools
  write_manifest
  # An image must not carry this machine's identity into the instances.
  if command -v cloud-init >/dev/null; then
    cloud-init clean --logs >/dev/null
  fi
  log "done"
  if [[ "$SPECFLEET_POWEROFF" == "1" ]]; then
    if systemd_running; then
      systemctl --no-block poweroff
    else
      log "systemd is not running here: not powering off"
    fi
  fi
}

main "$@"
