#!/usr/bin/env bash
# Re-lock specfleet's dependencies. One command, one source (pyproject.toml),
# three locks, every package pinned with == and the sha256 of each of its files:
#
#   requirements/dev.lock    ./dev's .venv, so CI's: the project with its `test`
#                            extra (every extra the tests use) + the build backend
#   requirements/tools.lock  checkov's own venv (.venv-tools; its pins clash with ours)
#   requirements/pbp.lock    MBARI's pbp, the sound-level reference (.venv-pbp; likewise)
#   requirements/localstack.lock  LocalStack for ./dev test --localstack (.venv-localstack;
#                            CPython 3.13, its own pins)
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
PBP=mbari-pbp==1.9.0
# LocalStack run on the host (./dev test --localstack): localstack-core's
# runtime, which serves its own SQS, S3 and SNS. Its open ranges admit
# releases it does not start with: cbor2 6 moved the decoder its request
# parser imports (cbor2._decoder), and pyOpenSSL 26.2 dropped
# X509.add_extensions, with which it signs its start-up certificate.
LOCALSTACK=("localstack-core[base-runtime]==4.14.0" "cbor2<6" "pyopenssl<26.2")
LOCALSTACK_PYTHON=3.13

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

{
  echo "# MBARI's pbp venv (.venv-pbp). Written by requirements/lock.sh (./dev lock): do not edit by hand."
  echo "$PBP" | uv pip compile - --python-version 3.11 "${common[@]}"
} >requirements/pbp.lock

{
  echo "# LocalStack's own venv (.venv-localstack, CPython $LOCALSTACK_PYTHON). Written by requirements/lock.sh (./dev lock): do not edit by hand."
  printf '%s\n' "${LOCALSTACK[@]}" | uv pip compile - --python-version "$LOCALSTACK_PYTHON" "${common[@]}"
} >requirements/localstack.lock

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

for lock in requirements/dev.lock requirements/tools.lock requirements/pbp.lock requirements/localstack.lock ami/requirements.lock; do
  echo "wrote $lock ($(grep -c '^[A-Za-z0-9]' "$lock") packages)"
done
