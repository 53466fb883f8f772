#!/bin/sh
# Builds what the benchmarks run, into BUILD_DIR (default: $DET_BUILD_DIR,
# else <repo>/build):
#   det-master det-worker det-fake-trial det   (the project's own targets)
#   det-trial                                  (with --trainer; needs libtorch)
#   det-bench-replay                           (bench/search/replay.cc; only from
#       the top-level build, it links the master's searchers)
#   det-bench-sim                              (bench/sim/: in BUILD_DIR/bin when
#       the top-level CMakeLists.txt adds bench/, else a standalone build of
#       bench/ in BUILD_DIR/bench-tools)
# JOBS (default 2) sets make's parallelism.
#
#   bench/build.sh [--trainer] [BUILD_DIR]
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd)
TRAINER=0
if [ "${1:-}" = "--trainer" ]; then TRAINER=1; shift; fi
B=${1:-${DET_BUILD_DIR:-$REPO/build}}
JOBS=${JOBS:-2}

if [ ! -f "$B/CMakeCache.txt" ]; then
  cmake -S "$REPO" -B "$B" -DCMAKE_BUILD_TYPE=Release
fi
targets="det-master det-worker det-fake-trial det"
if [ "$TRAINER" = 1 ]; then targets="$targets det-trial"; fi
# shellcheck disable=SC2086
make -C "$B" -j"$JOBS" $targets

if grep -q 'add_subdirectory(bench)' "$REPO/CMakeLists.txt"; then
  make -C "$B" -j"$JOBS" det-bench-sim det-bench-replay
else
  if [ ! -f "$B/bench-tools/CMakeCache.txt" ]; then
    cmake -S "$REPO/bench" -B "$B/bench-tools" -DCMAKE_BUILD_TYPE=Release
  fi
  make -C "$B/bench-tools" -j"$JOBS" det-bench-sim
fi
echo "bench/build.sh: binaries in $B/bin; det-bench-sim in $B/bin or $B/bench-tools/bin"
