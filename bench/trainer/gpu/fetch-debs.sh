#!/bin/bash
# Run HERE (Debian 12, apt with network): fills the git-ignored .gpu-carry/
# with what bench/trainer/gpu/run.sh needs on the GPU machine, which has
# CMake, ninja, g++, nvcc and pip's torch but no network, no apt and none of
# det-trial's other build dependencies:
#   .gpu-carry/debs/*.deb   gRPC++, protobuf (+ protoc, grpc_cpp_plugin),
#                           Abseil, yaml-cpp, CLI11, OpenSSL, zlib headers and
#                           their runtime libraries (unpacked there with
#                           dpkg -x into /tmp/debroot, never into /)
#   .gpu-carry/cifar10/     the six CIFAR-10 binary files, each cut to its
#                           first RECORDS records (a valid file for our reader)
#   .gpu-carry/MANIFEST     package versions, file sizes and SHA-256 sums
# Usage: bench/trainer/gpu/fetch-debs.sh [OUT_DIR]
#   env: DET_DATA_DIR (default ~/.cache/det/cifar-10-batches-bin), RECORDS
#   (default 1000)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
OUT=${1:-$ROOT/.gpu-carry}
DATA=${DET_DATA_DIR:-$HOME/.cache/det/cifar-10-batches-bin}
RECORDS=${RECORDS:-1000}
RECORD_BYTES=3073  # 1 label byte + 3x32x32 pixels

# What det-trial's build finds with find_package (top-level CMakeLists.txt
# with DET_TRAINER_ONLY) and what gRPC's CMake config pulls in (re2, c-ares,
# zlib, OpenSSL).
WANT="libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
      libabsl-dev libyaml-cpp-dev libcli11-dev libssl-dev zlib1g-dev"
# The base system and toolchain the GPU machine has of its own (glibc,
# libstdc++, the C library headers and what they drag in: TI-RPC, Kerberos,
# pkgconf). Taking Debian's copies would shadow newer ones there: g++ 13 run
# against Debian 12's libstdc++ would not even start.
SKIP=" gcc-12-base libc6 libc6-dev libc-dev-bin libcrypt-dev libcrypt1
       libgcc-s1 libstdc++6 linux-libc-dev libnsl-dev libnsl2 libtirpc-common
       libtirpc-dev libtirpc3 rpcsvc-proto libcom-err2 libgssapi-krb5-2
       libk5crypto3 libkeyutils1 libkrb5-3 libkrb5support0 pkgconf pkgconf-bin
       libpkgconf3 zlib1g "

# shellcheck disable=SC2086
all=$(apt-cache depends --recurse --no-recommends --no-suggests \
        --no-conflicts --no-breaks --no-replaces --no-enhances $WANT |
      grep -v '^ ' | grep -v '^<' | sort -u)
take=()
skipped=()
for p in $all; do
  if tr -s ' \n' '\n\n' <<<"$SKIP" | grep -qxF -- "$p"; then
    skipped+=("$p")
  else
    take+=("$p")
  fi
done
echo "fetch-debs: ${#take[@]} packages to take, ${#skipped[@]} left to the GPU machine: ${skipped[*]}" >&2

rm -rf "$OUT/debs" "$OUT/cifar10"
mkdir -p "$OUT/debs" "$OUT/cifar10"
(cd "$OUT/debs" && apt-get download "${take[@]}")

for f in data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin \
         data_batch_5.bin test_batch.bin; do
  src="$DATA/$f"
  [[ -f "$src" ]] || { echo "fetch-debs: $src is missing (set DET_DATA_DIR)" >&2; exit 1; }
  head -c $((RECORDS * RECORD_BYTES)) "$src" > "$OUT/cifar10/$f"
  size=$(stat -c %s "$OUT/cifar10/$f")
  if (( size != RECORDS * RECORD_BYTES )); then
    echo "fetch-debs: $src has fewer than $RECORDS records" >&2
    exit 1
  fi
done

{
  echo "# made by bench/trainer/gpu/fetch-debs.sh on $(date -u +%FT%TZ)"
  echo "# CIFAR-10: first $RECORDS records of each file from $DATA"
  for d in "$OUT"/debs/*.deb; do
    dpkg-deb -f "$d" Package Version | paste -sd' '
  done
  (cd "$OUT" && find debs cifar10 -type f -printf '%s %p\n' | sort -k2 &&
   find debs cifar10 -type f -print0 | sort -z | xargs -0 sha256sum)
} > "$OUT/MANIFEST"
du -sb "$OUT"/debs "$OUT"/cifar10 | sed 's/^/fetch-debs: bytes /' >&2
echo "fetch-debs: total $(du -sb "$OUT" | cut -f1) bytes in $OUT" >&2
