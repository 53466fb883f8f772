#!/usr/bin/env bash
# Installs every Debian 12 package that det's build, tests and benchmarks need.
# Idempotent: packages already present are skipped; safe to run twice.
# Usage: scripts/install-deps.sh [--no-bench]   (--no-bench skips the Python peers)
set -euo pipefail

BUILD_PKGS=(
  build-essential cmake pkg-config git ca-certificates xz-utils jq
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libtorch-dev libgloo-dev libdnnl-dev ocl-icd-opencl-dev libopenblas0-openmp
  libyaml-cpp-dev libabsl-dev libgtest-dev libgmock-dev libsqlite3-dev
  libcli11-dev libcpp-httplib-dev libarchive-dev libssl-dev nlohmann-json3-dev
  libpq-dev postgresql-15 iproute2 slurmctld slurmd slurm-client munge
  chromium
  python3 python3-grpcio python3-protobuf python3-yaml python3-numpy python3-torch
)
BENCH_PKGS=(python3-torchvision python3-optuna python3-matplotlib python3-sklearn)

want=("${BUILD_PKGS[@]}")
if [[ "${1:-}" != "--no-bench" ]]; then want+=("${BENCH_PKGS[@]}"); fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#want[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
if ! $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"; then
  # Name the culprit: try each package alone so the failing one is reported.
  for p in "${missing[@]}"; do
    if ! $SUDO apt-get install -y -q --no-install-recommends "$p" >/dev/null 2>&1; then
      echo "install-deps: FAILED to install package '$p'" >&2
    fi
  done
  exit 1
fi
echo "install-deps: done"
