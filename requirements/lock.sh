#!/usr/bin/env bash
# Re-lock specfleet's dependencies. One command, one source (pyproject.toml),
# three locks, every package pinned with == and the sha256 of each of its files:
#
#   requirements/dev.lock    ./dev's .venv, so CI's: the project with its `test`
#                            extra (every extra the tests use) + the build backend
#   requirements/tools.lock  checkov's own venv (.venv-tools; its pins clash with ours)
#   ami/requirements.lock    the worker image: the core + the extras of the
#                            pipelines an image serves, resolved *within*
#                            dev.lock's pins, so the image runs exactly the
#                            versions the tests ran (tests/test_lock.py checks)
#
#   ./dev lock        (= requirements/lock.sh) after changing a dependency, or
#                     to take new releases; then ./dev test: updating
#                     dependencies is a commit of its own that ran the suite.
#
# For CPython 3.11 on x86_64 glibc Linux (the developers', CI's and the
# image's platform; aarch64 resolves to the same pins), binary wheels only
# (./dev and provision.sh install with --only-binary: nothing is built).
# Needs the package index; uv (pinned here) goes into a throwaway venv.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.8
PLATFORM=x86_64-manylinux_2_36
# Debian 12's Python, the image's.
AMI_PYTHON=3.11.2
# The extras an image installs: those of the pipelines' fleet profiles.
AMI_EXTRAS=(hydrophone music spectrogram)
CHECKOV=checkov==3.3.30

tools="$(mktemp -d)"
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
uv() { "$tools/venv/bin/uv" "$@"; }
# --native-tls: trust the system's CA store (corporate proxies), not only uv's.
common=(--generate-hashes --only-binary :all: --python-platform "$PLATFORM" --native-tls --quiet --no-header)

{
  echo "# ./dev's .venv and CI. Written by requirements/lock.sh (./dev lock) from pyproject.toml's"
  echo "# \`test\` extra and requirements/build.in: do not edit by hand."
  uv pip compile pyproject.toml requirements/build.in --extra test --python-version 3.11 "${common[@]}"
} >requirements/dev.lock

{
  echo "# checkov's own venv (.venv-tools). Written by requirements/lock.sh (./dev lock): do not edit by hand."
  echo "$CHECKOV" | uv pip compile - --python-version 3.11 "${common[@]}"
} >requirements/tools.lock

# The image resolves within the dev lock's versions: same pins, fewer packages.
sed -n 's/^\([A-Za-z0-9._-]*==[^ ;]*\).*/\1/p' requirements/dev.lock >"$tools/dev-pins.txt"
extras=()
for extra in "${AMI_EXTRAS[@]}"; do extras+=(--extra "$extra"); done
{
  echo "# The worker image's venv (ami/provision.sh). Written by requirements/lock.sh (./dev lock) from"
  echo "# pyproject.toml (the core + ${AMI_EXTRAS[*]}), within requirements/dev.lock's pins: do not edit by hand."
  uv pip compile pyproject.toml "${extras[@]}" --constraint "$tools/dev-pins.txt" \
    --python-version "$AMI_PYTHON" "${common[@]}"
} >ami/requirements.lock

for lock in requirements/dev.lock requirements/tools.lock ami/requirements.lock; do
  echo "wrote $lock ($(grep -c '^[A-Za-z0-9]' "$lock") packages)"
done
