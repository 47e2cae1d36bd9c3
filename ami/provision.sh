#!/usr/bin/env bash
# Provision a specfleet worker image (Debian 12 / Ubuntu 22.04+ base).
#
# Idempotent: every step checks or converges, so re-running it on a
# half-provisioned machine (or on a baked image) is safe. Used as user-data by
# `specfleet ami bake` and as the shell provisioner of ami/packer.pkr.hcl.
#
# Environment (all optional):
#   SPECFLEET_SOURCE   pip requirement for specfleet, e.g. a wheel URL (required on
#                      first run; `specfleet ami bake` uploads this checkout's wheel)
#   SPECFLEET_HOME     install root (default /opt/specfleet)
#   SPECFLEET_POWEROFF set to 1 to power off when done (the bake waits for that)
set -euo pipefail

SPECFLEET_HOME="${SPECFLEET_HOME:-/opt/specfleet}"
SPECFLEET_SOURCE="${SPECFLEET_SOURCE:-}"
SPECFLEET_POWEROFF="${SPECFLEET_POWEROFF:-0}"
UNIT_URL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" 2>/dev/null && pwd || echo /nonexistent)"
export DEBIAN_FRONTEND=noninteractive

log() { printf '[provision] %s\n' "$*" >&2; }

install_packages() {
  local wanted=(python3 python3-venv python3-pip ffmpeg chromium chromium-driver curl ca-certificates libsndfile1 libmpg123-0 git)
  local missing=()
  local pkg
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -y
    apt-get install -y --no-install-recommends "${missing[@]}"
  else
    log "system packages present"
  fi
}

create_user() {
  if ! id -u specfleet >/dev/null 2>&1; then
    log "creating user specfleet"
    useradd --system --home-dir "$SPECFLEET_HOME" --shell /usr/sbin/nologin specfleet
  fi
  install -d -o specfleet -g specfleet -m 0755 "$SPECFLEET_HOME" "$SPECFLEET_HOME/work"
}

install_specfleet() {
  if [[ -z "$SPECFLEET_SOURCE" ]]; then
    if [[ -x "$SPECFLEET_HOME/venv/bin/specfleet" ]]; then
      log "specfleet already installed; set SPECFLEET_SOURCE to upgrade"
      return
    fi
    log "SPECFLEET_SOURCE is not set: give a pip requirement (wheel URL or path) for specfleet"
    exit 2
  fi
  if [[ ! -x "$SPECFLEET_HOME/venv/bin/python" ]]; then
    log "creating venv"
    python3 -m venv "$SPECFLEET_HOME/venv"
  fi
  log "installing specfleet ($SPECFLEET_SOURCE)"
  "$SPECFLEET_HOME/venv/bin/pip" install --quiet --upgrade pip
  "$SPECFLEET_HOME/venv/bin/pip" install --quiet --upgrade "$SPECFLEET_SOURCE"
  ln -sf "$SPECFLEET_HOME/venv/bin/specfleet" /usr/local/bin/specfleet
}

install_unit() {
  local unit=/etc/systemd/system/specfleet-worker@.service
  if [[ -f "$UNIT_URL_DIR/specfleet-worker@.service" ]]; then
    install -m 0644 "$UNIT_URL_DIR/specfleet-worker@.service" "$unit"
  elif [[ ! -f "$unit" ]]; then
    # user-data runs this script alone: write the unit from the copy below.
    cat > "$unit" <<'UNIT'
[Unit]
Description=specfleet worker for pipeline %i
Wants=network-online.target
After=network-online.target
StartLimitIntervalSec=600
StartLimitBurst=10

[Service]
Type=simple
User=specfleet
Group=specfleet
WorkingDirectory=/opt/specfleet/work
EnvironmentFile=/etc/specfleet/%i.env
Environment=NUMBA_CACHE_DIR=/opt/specfleet/numba-cache
ExecStart=/opt/specfleet/venv/bin/specfleet work %i
Restart=always
RestartSec=10
RestartPreventExitStatus=75
KillSignal=SIGTERM
TimeoutStopSec=150
NoNewPrivileges=true
ProtectSystem=full
PrivateTmp=true

[Install]
WantedBy=multi-user.target
UNIT
  fi
  systemctl daemon-reload
}

# Compile the spectrogram kernels (numba) and load every library once now,
# so a new instance's first track does not pay for it.
warm_caches() {
  log "warming the spectrogram kernels' cache"
  install -d -o specfleet -g specfleet -m 0755 "$SPECFLEET_HOME/numba-cache"
  runuser -u specfleet -- env NUMBA_CACHE_DIR="$SPECFLEET_HOME/numba-cache" "$SPECFLEET_HOME/venv/bin/python" -c \
    'from specfleet.pipelines.spectrogram import dsp, worker; worker.warm_up(dsp.SpectroParams())'
}

check_tools() {
  log "checking tools"
  ffmpeg -hide_banner -version >/dev/null
  command -v chromium >/dev/null
  command -v chromedriver >/dev/null
  "$SPECFLEET_HOME/venv/bin/specfleet" --help >/dev/null
}

main() {
  if [[ $EUID -ne 0 ]]; then
    log "run as root"
    exit 1
  fi
  install_packages
  create_user
  install_specfleet
  install_unit
  warm_caches
  check_tools
  # An image must not carry this machine's identity into the instances.
  cloud-init clean --logs >/dev/null 2>&1 || true
  log "done"
  if [[ "$SPECFLEET_POWEROFF" == "1" ]]; then
    systemctl --no-block poweroff
  fi
}

main "$@"
