#!/usr/bin/env bash
# The test command: installs what is missing, builds, puts CIFAR-10 in the
# cache, and runs the CTest suite. Arguments go to ctest, e.g.
#   scripts/run-tests.sh -L unit          # unit tests only
#   scripts/run-tests.sh -L integration   # integration tests only
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash scripts/install-deps.sh --no-bench
DET_TEST_DATA_DIR=$(bash scripts/fetch-data.sh | tail -n 1)
export DET_TEST_DATA_DIR

start=$(date +%s)
bash scripts/build.sh
bash scripts/install-python.sh   # `import det` for trial processes
echo "run-tests: build took $(( $(date +%s) - start )) s"

start=$(date +%s)
ctest --test-dir "${DET_BUILD_DIR:-$root/build}" --output-on-failure \
      --timeout 600 -j2 "$@"
echo "run-tests: tests took $(( $(date +%s) - start )) s"
