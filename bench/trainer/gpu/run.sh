#!/bin/bash
# The GPU check of det-trial, run THERE: on a machine with an NVIDIA GPU,
# CMake, ninja, g++, nvcc and pip's torch (python3 on PATH), but no network,
# no apt and none of det-trial's other build dependencies. Run it from the
# repository root with the folder bench/trainer/gpu/fetch-debs.sh filled HERE
# carried along (.gpu-carry/: Debian 12 .debs and a CIFAR-10 subset).
#
#   bench/trainer/gpu/run.sh            # everything goes to $OUT
#
# Steps (each with its own timeout; a failed step is recorded and the next
# ones still run, so one run gives all the evidence; the whole run is held
# to BUDGET_S seconds, default 360):
#   env        machine, compiler, CUDA, torch (version, C++ ABI, Gloo headers)
#   unpack     dpkg -x every .deb into /tmp/debroot (never into /)
#   configure  cmake -DDET_TRAINER_ONLY=ON against /tmp/debroot and torch
#   build      ninja -j16 det-trial
#   gpu_*      det-trial on CUDA_VISIBLE_DEVICES=0: training and validation
#              images/s (const.yaml's model and the seed's, batch 64 and 512)
#   cpu_*      det-trial on the CPU for a few batches (same code path)
#   resume_*   checkpoint + resume on CUDA vs a straight run: default kernels
#              (tolerance) and DET_DETERMINISTIC=1 (bit for bit); a CUDA
#              checkpoint resumed on the CPU and a CPU one on CUDA
#   nccl_*     data parallel through NCCL as a group of one (when built with
#              it): its metrics against a run without a group
#   peer_*     bench/trainer/pytorch_peer.py --device cuda, same models
#   report     $OUT/report.md from the steps' outputs (report.py)
# $OUT gets report.md, run.log (this script's whole output, set -x) and every
# step's stdout/stderr.
#
# Environment: OUT (default /tmp/det-gpu-out), CARRY (default .gpu-carry),
# BUDGET_S, JOBS (default 16), PYTHON (default python3 on PATH: the one with
# torch), GPU=0 to skip the CUDA steps (a dry run on a machine without one:
# that is how it was tested before it went out), KEEP_BUILD=1 to reuse
# /tmp/det-gpu-build.
set -u -o pipefail

ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$ROOT" || exit 1
CARRY=${CARRY:-$ROOT/.gpu-carry}
OUT=${OUT:-/tmp/det-gpu-out}
BUDGET_S=${BUDGET_S:-360}
JOBS=${JOBS:-16}
GPU=${GPU:-1}
DEBROOT=/tmp/debroot
BUILD=/tmp/det-gpu-build
WORK=/tmp/det-gpu-work
PY=${PYTHON:-$(command -v python3)}
LIBDIR=$DEBROOT/usr/lib/x86_64-linux-gnu
DATA=$CARRY/cifar10
START=$(date +%s)

mkdir -p "$OUT"
rm -rf "$WORK" && mkdir -p "$WORK"
exec > >(tee -a "$OUT/run.log") 2>&1
STEPS=$OUT/steps.tsv
printf 'step\trc\tseconds\tlimit_s\n' > "$STEPS"
set -x

# step NAME LIMIT_S CMD...: runs CMD with stdout in $OUT/NAME.out and stderr
# in $OUT/NAME.err, under min(LIMIT_S, what is left of the budget).
step() {
  local name=$1 limit=$2
  shift 2
  local left=$((BUDGET_S - ($(date +%s) - START) - 15))
  if ((left < 5)); then
    printf '%s\tskipped (budget spent)\t0\t0\n' "$name" >> "$STEPS"
    return 124
  fi
  ((limit > left)) && limit=$left
  local t0 rc
  t0=$(date +%s%N)
  # bash -c so that CMD may be one of the exported functions below.
  timeout -k 5 "$limit" bash -c '"$@"' "$name" "$@" \
    > "$OUT/$name.out" 2> "$OUT/$name.err"
  rc=$?
  local ms=$((($(date +%s%N) - t0) / 1000000))
  printf '%s\t%s\t%d.%03d\t%s\n' "$name" "$rc" $((ms / 1000)) $((ms % 1000)) \
    "$limit" >> "$STEPS"
  tail -n 25 "$OUT/$name.err"
  return $rc
}
skip() {  # skip NAME WHY
  printf '%s\tskipped (%s)\t0\t0\n' "$1" "$2" >> "$STEPS"
}

# --- env ------------------------------------------------------------------
env_info() {
  uname -a
  grep -m1 'model name' /proc/cpuinfo
  nproc
  free -g | head -2
  nvidia-smi || true
  g++ --version | head -1
  cmake --version | head -1
  ninja --version
  command -v nvcc && nvcc --version | tail -2
  "$PY" - <<'EOF'
import glob, os, torch
inc = os.path.join(os.path.dirname(torch.__file__), "include")
print("torch", torch.__version__, "cuda", torch.version.cuda,
      "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name(0))
print("cxx11_abi", torch._C._GLIBCXX_USE_CXX11_ABI)
print("cmake_prefix_path", torch.utils.cmake_prefix_path)
print("gloo_headers", os.path.exists(os.path.join(inc, "gloo", "algorithm.h")))
print("c10d_gloo_header", os.path.exists(os.path.join(
    inc, "torch/csrc/distributed/c10d/ProcessGroupGloo.hpp")))
print("c10d_nccl_header", os.path.exists(os.path.join(
    inc, "torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp")))
# nccl.h: pip's nvidia-nccl wheel (nvidia/nccl/include or nvidia/cu*/include).
site = os.path.dirname(os.path.dirname(torch.__file__))
found = sorted(glob.glob(os.path.join(site, "nvidia", "**", "nccl.h"),
                         recursive=True))
print("nccl_include", os.path.dirname(found[0]) if found else "")
EOF
}
export -f env_info
export PY
step env 60 env_info
cat "$OUT/env.out"
TORCH_PREFIX=$(sed -n 's/^cmake_prefix_path //p' "$OUT/env.out")
TORCH_VERSION=$(sed -n 's/^torch \([0-9.]*\).*/\1/p' "$OUT/env.out")
ABI=$(sed -n 's/^cxx11_abi //p' "$OUT/env.out")
[[ "$ABI" == False ]] && ABI=0 || ABI=1
# Data parallel needs Gloo's headers; not every libtorch ships them.
GLOO=OFF
grep -q '^gloo_headers True' "$OUT/env.out" && GLOO=ON
# Data parallel on GPUs: c10d's NCCL process group and NCCL's header.
NCCL=OFF
NCCL_INCLUDE=$(sed -n 's/^nccl_include //p' "$OUT/env.out")
if [[ "$GPU" == 1 && -n "$NCCL_INCLUDE" ]] &&
   grep -q '^c10d_nccl_header True' "$OUT/env.out"; then
  NCCL=ON
fi
# torch's own headers want C++20 from 2.12 on (our code is C++17 clean).
CXX_STD=17
if [[ -n "$TORCH_VERSION" ]] &&
   "$PY" -c "import sys; v=tuple(map(int,'$TORCH_VERSION'.split('.')[:2])); sys.exit(v < (2, 12))"; then
  CXX_STD=20
fi

# --- unpack ---------------------------------------------------------------
unpack() {
  rm -rf "$DEBROOT" && mkdir -p "$DEBROOT"
  local d
  for d in "$CARRY"/debs/*.deb; do
    if command -v dpkg-deb > /dev/null; then
      dpkg -x "$d" "$DEBROOT" || return 1
    else  # no dpkg: a .deb is an ar archive holding data.tar.*
      (cd "$WORK" && ar x "$d" && tar -xf data.tar.* -C "$DEBROOT" &&
       rm -f data.tar.* control.tar.* debian-binary) || return 1
    fi
  done
  # protoc and grpc_cpp_plugin run during the build and need Debian's
  # libprotoc/libprotobuf from $DEBROOT: wrappers set the library path for
  # them alone (not for the compiler, which must keep the system's libs).
  local b
  for b in protoc grpc_cpp_plugin; do
    mv "$DEBROOT/usr/bin/$b" "$DEBROOT/usr/bin/$b.real" || return 1
    printf '#!/bin/sh\nLD_LIBRARY_PATH=%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} exec %s "$@"\n' \
      "$LIBDIR" "$DEBROOT/usr/bin/$b.real" > "$DEBROOT/usr/bin/$b"
    chmod +x "$DEBROOT/usr/bin/$b"
  done
  "$DEBROOT/usr/bin/protoc" --version
  du -sh "$DEBROOT"
}
export -f unpack
export DEBROOT LIBDIR CARRY WORK
step unpack 60 unpack

# --- configure + build ----------------------------------------------------
# --no-as-needed: det-trial calls nothing in libtorch_cuda.so directly (CUDA
# is reached through hooks that library registers when it loads), so a
# linker that drops unreferenced libraries (Ubuntu's default) would leave a
# binary that never sees the GPU. -rpath-link: Debian's libraries need each
# other from /tmp/debroot at link time.
CUDA_ARGS=()
if [[ "$GPU" == 1 ]]; then
  NVCC=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2> /dev/null)
  [[ -n "$NVCC" ]] && CUDA_ARGS+=(-DCMAKE_CUDA_COMPILER="$NVCC"
                                  -DCUDAToolkit_ROOT="$(dirname "$(dirname "$NVCC")")")
fi
PREFIX="$DEBROOT/usr"
[[ -n "$TORCH_PREFIX" && -d "$TORCH_PREFIX/Torch" ]] && PREFIX="$PREFIX;$TORCH_PREFIX"
[[ "${KEEP_BUILD:-0}" == 1 ]] || rm -rf "$BUILD"
CONFIGURE=(cmake -S "$ROOT" -B "$BUILD" -G Ninja
  -DCMAKE_BUILD_TYPE=Release -DDET_TRAINER_ONLY=ON -DDET_BUILD_TESTS=OFF
  -DCMAKE_POLICY_VERSION_MINIMUM=3.5
  -DDET_TRAINER_GLOO="$GLOO" -DDET_TRAINER_ONEDNN=OFF
  -DDET_TRAINER_NCCL="$NCCL" -DDET_NCCL_INCLUDE_DIR="$NCCL_INCLUDE"
  -DCMAKE_CXX_STANDARD="$CXX_STD"
  -DCMAKE_PREFIX_PATH="$PREFIX" -DOPENSSL_ROOT_DIR="$DEBROOT/usr"
  -DCMAKE_PROJECT_INCLUDE="$ROOT/bench/trainer/gpu/debroot.cmake"
  -DDET_DEBROOT="$DEBROOT"
  -DCMAKE_CXX_FLAGS="-D_GLIBCXX_USE_CXX11_ABI=$ABI"
  -DCMAKE_EXE_LINKER_FLAGS="-Wl,--no-as-needed -Wl,-rpath-link,$LIBDIR"
  "${CUDA_ARGS[@]}")
if ! step configure 120 "${CONFIGURE[@]}"; then
  # torch's CMake config with CUDA is the likeliest to trip (cuDNN or the
  # CUDA architectures it cannot find for a pip install): once more without.
  rm -rf "$BUILD"
  step configure_retry 120 "${CONFIGURE[@]}" -DCAFFE2_USE_CUDNN=OFF \
    -DUSE_CUDNN=OFF -DCMAKE_CUDA_ARCHITECTURES=90 -DTORCH_CUDA_ARCH_LIST=9.0
fi
if ! step build 300 ninja -C "$BUILD" -j "$JOBS" det-trial && [[ "$NCCL" == ON ]]; then
  # NCCL's c10d header has never been compiled here before: without it
  # rather than without a binary (its error is in build.err).
  NCCL=OFF
  step configure_nonccl 60 cmake "$BUILD" -DDET_TRAINER_NCCL=OFF &&
    step build_nonccl 300 ninja -C "$BUILD" -j "$JOBS" det-trial
fi
if [[ ! -x "$BUILD/bin/det-trial" && "$GLOO" == ON ]]; then
  # The Gloo headers a wheel ships may not match its c10d: without data
  # parallel rather than without a binary.
  GLOO=OFF
  step configure_nogloo 60 cmake "$BUILD" -DDET_TRAINER_GLOO=OFF &&
    step build_nogloo 240 ninja -C "$BUILD" -j "$JOBS" det-trial
fi
BIN=$BUILD/bin/det-trial
if [[ -x "$BIN" ]]; then
  LD_LIBRARY_PATH="$LIBDIR" ldd "$BIN" | grep -E 'not found|debroot|torch|cuda' | head -30
fi

# --- runs -----------------------------------------------------------------
# Debian's runtime libraries (gRPC, protobuf, Abseil, OpenSSL...) for
# det-trial only; torch's come from its own RPATH.
export DET_NUM_THREADS=$JOBS
CONST='{"global_batch_size":64,"learning_rate":0.001,"optimizer":"adam","conv_layers":3,"n_filters1":32,"n_filters2":64,"kernel_size":3,"hidden_units":256,"dropout":0.3,"batch_norm":true}'
SEED='{"global_batch_size":64,"learning_rate":0.01,"optimizer":"sgd","momentum":0.9,"conv_layers":2,"n_filters1":32,"n_filters2":64,"kernel_size":3,"hidden_units":512,"dropout":0.5,"batch_norm":false}'
with_batch() { "$PY" -c "import json,sys; h=json.loads(sys.argv[1]); h['global_batch_size']=int(sys.argv[2]); print(json.dumps(h))" "$1" "$2"; }
trial() {  # trial CUDA_VISIBLE_DEVICES ARGS...
  local visible=$1
  shift
  env LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    CUDA_VISIBLE_DEVICES="$visible" DET_DETERMINISTIC="$DETERMINISTIC" \
    "$BIN" --data "$DATA" "$@"
}
export -f trial
export BIN DATA DET_NUM_THREADS
export DETERMINISTIC=0
# Training windows of 50 batches (the first is the warm-up); validation on
# the held-out 80% of the 5,000 training images (4,000; test_batch.bin has
# only 1,000 here), twice, the second one timed.
VAL_SPLIT='{"report_period":50,"validation_split":0.8}'
have_bin() { [[ -x "$BIN" ]]; }

if [[ "$GPU" == 1 ]] && have_bin; then
  step gpu_const_b64 60 trial 0 --hparams "$CONST" --batches 300 \
    --validate-every 150 --data-options '{"report_period":50}'
  step gpu_const_b64_val 60 trial 0 --hparams "$CONST" --batches 20 \
    --validate-every 10 --data-options "$VAL_SPLIT"
  step gpu_const_b64_val1024 60 trial 0 --hparams "$CONST" --batches 20 \
    --validate-every 10 \
    --data-options '{"report_period":50,"validation_split":0.8,"validation_batch_size":1024}'
  step gpu_seed_b64 60 trial 0 --hparams "$SEED" --batches 300 \
    --validate-every 150 --data-options '{"report_period":50}'
  step gpu_const_b512 60 trial 0 --hparams "$(with_batch "$CONST" 512)" \
    --batches 300 --validate-every 150 --data-options '{"report_period":50}'
else
  for s in gpu_const_b64 gpu_const_b64_val gpu_const_b64_val1024 gpu_seed_b64 gpu_const_b512; do
    skip $s "no GPU run or no binary"
  done
fi

if have_bin; then
  # The CPU path: a few batches, validation on the 1,000 test images, and a
  # checkpoint that the CUDA run below resumes.
  step cpu_const_b64 90 trial "" --hparams "$CONST" --batches 20 \
    --validate-every 20 --data-options '{"report_period":10}' \
    --checkpoint-dir "$WORK/ck_cpu"
fi

# Checkpoint + resume on CUDA: a straight run of 40 batches against 20, a
# checkpoint, and a resumed run to 40 (const.yaml's model: batch norm,
# dropout, Adam, augmentation). Once with default kernels, once with
# DET_DETERMINISTIC=1; report.py compares the final checkpoints' weights.
last_uuid() { sed -n 's/.*"kind":"checkpoint".*"uuid":"\([^"]*\)".*/\1/p' "$OUT/$1.out" | tail -1; }
resume_pair() {  # resume_pair TAG DETERMINISTIC(0|1)
  local tag=$1
  export DETERMINISTIC=$2
  step resume_${tag}_straight 60 trial 0 --hparams "$CONST" --batches 40 \
    --validate-every 40 --checkpoint-period 20 \
    --checkpoint-dir "$WORK/ck_${tag}_straight"
  step resume_${tag}_first 60 trial 0 --hparams "$CONST" --batches 20 \
    --validate-every 40 --checkpoint-dir "$WORK/ck_${tag}_resumed"
  local uuid
  uuid=$(last_uuid resume_${tag}_first)
  if [[ -n "$uuid" ]]; then
    step resume_${tag}_second 60 trial 0 --hparams "$CONST" --batches 40 \
      --validate-every 40 --checkpoint-dir "$WORK/ck_${tag}_resumed" \
      --restore "$uuid"
  else
    skip resume_${tag}_second "first part left no checkpoint"
  fi
  export DETERMINISTIC=0
}
if [[ "$GPU" == 1 ]] && have_bin; then
  resume_pair cuda 0
  # The run-to-run noise of default kernels: the straight run once more.
  step resume_cuda_repeat 60 trial 0 --hparams "$CONST" --batches 40 \
    --validate-every 40 --checkpoint-period 20 \
    --checkpoint-dir "$WORK/ck_cuda_repeat"
  resume_pair cuda_det 1
  # Device independence: the CUDA checkpoint at batch 20 resumed on the CPU,
  # and the CPU checkpoint at batch 20 resumed on CUDA.
  uuid=$(last_uuid resume_cuda_first)
  if [[ -n "$uuid" ]]; then
    cp -r "$WORK/ck_cuda_resumed" "$WORK/ck_cuda_to_cpu"
    step resume_cuda_to_cpu 60 trial "" --hparams "$CONST" --batches 25 \
      --validate-every 25 --checkpoint-dir "$WORK/ck_cuda_to_cpu" --restore "$uuid"
  else
    skip resume_cuda_to_cpu "no CUDA checkpoint"
  fi
  uuid=$(last_uuid cpu_const_b64 2> /dev/null)
  if [[ -n "$uuid" ]]; then
    step resume_cpu_to_cuda 60 trial 0 --hparams "$CONST" --batches 25 \
      --validate-every 25 --checkpoint-dir "$WORK/ck_cpu" --restore "$uuid"
  else
    skip resume_cpu_to_cuda "no CPU checkpoint"
  fi
elif have_bin; then
  # Without a GPU (a dry run): the same resume check on the CPU.
  resume_pair cpu_dry 0
fi

# NCCL: a group of one on the GPU (one GPU cannot hold two NCCL ranks) runs
# every collective (broadcast, gradient averaging, metric sums, stop vote) on
# CUDA tensors; with deterministic kernels its metrics must equal a run
# without a group. nccl_compare prints both lists and exits 1 if they differ.
if [[ "$GPU" == 1 && "$NCCL" == ON ]] && have_bin; then
  export DETERMINISTIC=1
  step nccl_alone 60 trial 0 --hparams "$CONST" --batches 40 \
    --validate-every 20 --data-options '{"report_period":10}'
  step nccl_group 60 env DET_RANK=0 DET_WORLD_SIZE=1 bash -c 'trial 0 "$@"' _ \
    --hparams "$CONST" --batches 40 --validate-every 20 \
    --data-options '{"report_period":10}' --rendezvous 127.0.0.1:29517
  export DETERMINISTIC=0
  step nccl_compare 20 "$PY" -c '
import json, sys
def metrics(path):
    out = []
    for line in open(path):
        m = json.loads(line).get("report", {}).get("metrics", {})
        out += [(k, m[k]) for k in sorted(m) if "per_second" not in k]
    return out
a, b = metrics(sys.argv[1]), metrics(sys.argv[2])
print(json.dumps({"alone": a, "group": b}))
sys.exit(0 if a and a == b else 1)' "$OUT/nccl_alone.out" "$OUT/nccl_group.out"
  grep -h 'rank 0/1' "$OUT/nccl_group.err"
else
  skip nccl_group "no GPU, or det-trial built without NCCL (NCCL=$NCCL)"
fi

# The PyTorch peer on the same GPU, last (the budget may run out).
PEER=bench/trainer/pytorch_peer.py
if [[ "$GPU" == 1 ]]; then
  for mode in plain_cl plain usual validate; do
    step peer_const_b64_$mode 90 "$PY" $PEER --data "$DATA" --device cuda \
      --mode $mode --threads "$JOBS" --batch 64 --warmup 30 --batches 300 \
      --hparams "$CONST"
  done
  step peer_seed_b64_plain_cl 60 "$PY" $PEER --data "$DATA" --device cuda \
    --mode plain_cl --threads "$JOBS" --batch 64 --warmup 30 --batches 300 \
    --hparams "$SEED"
  step peer_const_b512_plain_cl 60 "$PY" $PEER --data "$DATA" --device cuda \
    --mode plain_cl --threads "$JOBS" --batch 512 --warmup 10 --batches 100 \
    --hparams "$(with_batch "$CONST" 512)"
  step peer_matmul 60 "$PY" $PEER --data "$DATA" --device cuda --mode matmul
fi

# --- report ---------------------------------------------------------------
set +x
"$PY" bench/trainer/gpu/report.py --out "$OUT" --work "$WORK" \
  --budget "$BUDGET_S" --elapsed $(($(date +%s) - START)) \
  > "$OUT/report.md" 2> "$OUT/report.err"
echo "report.py exit $?"
cat "$OUT/report.md"
echo "run.sh: $(($(date +%s) - START)) s in all; outputs in $OUT"
