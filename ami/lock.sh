#!/usr/bin/env bash
# Re-lock what provision.sh installs into the image's venv: writes
# ami/requirements.lock, specfleet's dependencies (plus the extras named as
# arguments) pinned with ==, each with the sha256 of every file of that release,
# for Debian 12's Python (3.11.2) on x86_64 glibc Linux; aarch64 resolves to the
# same pins. Binary wheels only (provision.sh installs with --only-binary).
#
#   ami/lock.sh [EXTRA...]     run after changing pyproject.toml's dependencies
#
# Needs the package index; uv (pinned here) goes into a throwaway venv.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.8
PYTHON_VERSION=3.11.2
PLATFORM=x86_64-manylinux_2_36

tools="$(mktemp -d)"
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools"
"$tools/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"

extras=()
for extra in "$@"; do
  extras+=(--extra "$extra")
done
# --native-tls: trust the system's CA store (corporate proxies), not only uv's.
"$tools/bin/uv" pip compile pyproject.toml "${extras[@]}" \
  --generate-hashes --only-binary :all: \
  --python-version "$PYTHON_VERSION" --python-platform "$PLATFORM" \
  --native-tls --quiet \
  --custom-compile-command "ami/lock.sh${*:+ $*}" \
  --output-file ami/requirements.lock
echo "wrote ami/requirements.lock ($(grep -c '^[a-z]' ami/requirements.lock) packages)"
