#!/usr/bin/env bash
# Configures and builds det into ./build (Release). Extra args go to cmake.
# DET_BUILD_TARGETS (space-separated) builds only those targets, e.g. the
# main job's binaries; unset builds everything, the tests included.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${DET_BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE:-Release} "$@" >/dev/null
targets=()
for t in ${DET_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$build" -j"$(nproc)" "${targets[@]}"
