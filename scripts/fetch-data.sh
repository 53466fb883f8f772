#!/usr/bin/env bash
# Puts CIFAR-10 (official binary layout) in a cache folder and prints that
# folder's path on stdout (the last line). Sources, in order:
#   1. the archive (.tar.gz/.tar.xz) or folder given as $1;
#   2. ../shared/data/cifar-10-batches-bin.tar.xz beside the repository;
#   3. the official download, checked against its published MD5.
# Destination: $DET_DATA_DIR, else ${XDG_CACHE_HOME:-~/.cache}/det/cifar-10-batches-bin.
# Idempotent: an already complete cache is reused.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
dest=${DET_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/det/cifar-10-batches-bin}
files=(data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin
       data_batch_5.bin test_batch.bin)
readonly record=3073 per_file=10000

complete() {
  local f
  for f in "${files[@]}"; do
    [[ -f "$1/$f" ]] || return 1
    [[ $(stat -c %s "$1/$f") -eq $((record * per_file)) ]] || return 1
  done
}

if complete "$dest"; then echo "$dest"; exit 0; fi

src=${1:-}
if [[ -z "$src" && -f "$here/../shared/data/cifar-10-batches-bin.tar.xz" ]]; then
  src="$here/../shared/data/cifar-10-batches-bin.tar.xz"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [[ -z "$src" ]]; then
  url=https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz
  md5=c32a1d4ab5d03f1284b67883e8d87530
  echo "fetch-data: downloading $url" >&2
  curl -fL --retry 3 -o "$tmp/cifar.tar.gz" "$url" ||
    { echo "fetch-data: download failed; pass a local archive or folder as \$1" >&2; exit 1; }
  echo "$md5  $tmp/cifar.tar.gz" | md5sum -c - >&2 ||
    { echo "fetch-data: checksum mismatch for $url" >&2; exit 1; }
  src="$tmp/cifar.tar.gz"
fi

mkdir -p "$tmp/x"
if [[ -d "$src" ]]; then
  cp -r "$src"/. "$tmp/x/"
elif [[ -f "$src" ]]; then
  echo "fetch-data: unpacking $src" >&2
  tar -xf "$src" -C "$tmp/x"
else
  echo "fetch-data: no such archive or folder: $src" >&2; exit 1
fi
found=$(dirname "$(find "$tmp/x" -name data_batch_1.bin -print -quit)")
if [[ -z "$found" || "$found" == "." ]] || ! complete "$found"; then
  echo "fetch-data: $src does not hold the six CIFAR-10 binary files (${files[*]}) of $((record * per_file)) bytes each" >&2
  exit 1
fi
mkdir -p "$(dirname "$dest")"
rm -rf "$dest.partial"
mv "$found" "$dest.partial"
rm -rf "$dest"
mv "$dest.partial" "$dest"
echo "$dest"
