#!/usr/bin/env bash
# Installs the det Python package (python/det + generated stubs) from the
# build into the system Python's site directory (DET_PYTHON_SITE_DIR, e.g.
# /usr/local/lib/python3.11/dist-packages), so that `python3 -c "import
# det"` works for every trial process a worker starts, also workers started
# by hand. From a build tree without installing: PYTHONPATH=build/python.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${DET_BUILD_DIR:-$root/build}
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
$SUDO cmake --install "$build" --component python >/dev/null
site=$(sed -n 's/^DET_PYTHON_SITE_DIR:PATH=//p' "$build/CMakeCache.txt")
py=$(sed -n 's/^DET_PYTHON:FILEPATH=//p' "$build/CMakeCache.txt")
(cd / && "${py:-python3}" -c "import det, det.experimental.client") ||
  { echo "install-python: 'import det' fails after installing into $site" >&2; exit 1; }
echo "install-python: det installed in $site"
