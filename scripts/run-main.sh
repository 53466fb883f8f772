#!/usr/bin/env bash
# The main job: installs what is missing, builds, puts CIFAR-10 in the
# cache, starts a master and a worker (2 CPU slots) on loopback, runs the
# small adaptive (ASHA) search in configs/cifar10/quick.yaml, follows it,
# and prints the best validation metrics. Stops everything it started.
# Usage: scripts/run-main.sh [CONFIG]   (default configs/cifar10/quick.yaml)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
config=${1:-configs/cifar10/quick.yaml}

bash scripts/install-deps.sh --no-bench
data=$(bash scripts/fetch-data.sh | tail -n 1)
# Only what the job runs; scripts/run-tests.sh builds the rest.
DET_BUILD_TARGETS="det det-master det-worker det-trial det_python" bash scripts/build.sh
bash scripts/install-python.sh   # `import det` for trial processes
bin=${DET_BUILD_DIR:-$root/build}/bin

work=$(mktemp -d "${TMPDIR:-/tmp}/det-main.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "run-main: logs and store kept in $work" >&2
}
trap cleanup EXIT INT TERM

"$bin/det-master" --grpc_address 127.0.0.1:0 --http_address 127.0.0.1:0 \
  --db "$work/master.db" --checkpoint_root "$work/checkpoints" \
  --port_file "$work/master.port" >"$work/master.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [[ -s "$work/master.port" ]] && break; sleep 0.1; done
[[ -s "$work/master.port" ]] || { cat "$work/master.log" >&2; exit 1; }
export DET_MASTER=127.0.0.1:$(cat "$work/master.port")
echo "run-main: master at $DET_MASTER" >&2

"$bin/det-worker" --master "$DET_MASTER" --slots 2 --name local-worker \
  --data_dir "$data" --work_dir "$work/worker" >"$work/worker.log" 2>&1 &
pids+=($!)

"$bin/det" experiment create "$config" "$(dirname "$config")" --follow | tee "$work/create.out"
id=$(sed -n 's/^Created experiment \([0-9]*\).*/\1/p' "$work/create.out" | head -n 1)
[[ -n "$id" ]] || { echo "run-main: no experiment was created" >&2; exit 1; }
echo
"$bin/det" experiment list-trials "$id"
echo
echo "best validation metrics of experiment $id:"
"$bin/det" experiment describe "$id" --json | jq '.best_validation_metrics'
