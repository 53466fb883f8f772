#!/usr/bin/env bash
# Puts the diabetes study (442 patients; Efron et al. 2004, as Debian's
# python3-sklearn ships it) in a cache folder as JSON records, one patient
# per line, and prints that folder's path on stdout (the last line):
#   train.jsonl       patients 1-442 whose number is not a multiple of 5 (354)
#   validation.jsonl  every fifth patient (88)
# Fields: age, sex ("1"/"2" as the study codes it), bmi, bp (mean blood
# pressure), tc, ldl, hdl, tch, ltg, glu (six blood serum measurements) and
# progression (disease progression one year after baseline: the label).
# Destination: ${XDG_CACHE_HOME:-~/.cache}/det/records/diabetes. Idempotent.
set -euo pipefail

src=${DET_SKLEARN_DATA:-/usr/lib/python3/dist-packages/sklearn/datasets/data}
dest=${XDG_CACHE_HOME:-$HOME/.cache}/det/records/diabetes
if [[ -s "$dest/train.jsonl" && -s "$dest/validation.jsonl" ]]; then
  echo "$dest"; exit 0
fi
x="$src/diabetes_data_raw.csv.gz" y="$src/diabetes_target.csv.gz"
if [[ (! -f "$x" || ! -f "$y") && -z "${DET_SKLEARN_DATA:-}" ]] &&
   ! dpkg-query -W -f='${Status}' python3-sklearn 2>/dev/null | grep -q "ok installed"; then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  echo "fetch-records: installing python3-sklearn (it ships the data)" >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
    python3-sklearn >&2 || true
fi
if [[ ! -f "$x" || ! -f "$y" ]]; then
  echo "fetch-records: $x or $y missing (apt-get install python3-sklearn, or" \
       "set DET_SKLEARN_DATA to the folder holding them)" >&2
  exit 1
fi
mkdir -p "$dest"
tmp=$(mktemp -d "$dest/.tmp-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
paste -d ' ' <(zcat "$x") <(zcat "$y") | awk -v train="$tmp/train.jsonl" \
  -v validation="$tmp/validation.jsonl" '
  NF != 11 { printf "fetch-records: line %d has %d fields, expected 11\n", NR, NF > "/dev/stderr"; exit 1 }
  {
    line = sprintf("{\"age\": %s, \"sex\": \"%d\", \"bmi\": %s, \"bp\": %s, \"tc\": %s, \"ldl\": %s, \"hdl\": %s, \"tch\": %s, \"ltg\": %s, \"glu\": %s, \"progression\": %.1f}",
                   $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
    print line > (NR % 5 == 0 ? validation : train)
  }'
[[ $(wc -l < "$tmp/train.jsonl") -eq 354 && $(wc -l < "$tmp/validation.jsonl") -eq 88 ]] ||
  { echo "fetch-records: expected 354 + 88 patients" >&2; exit 1; }
mv "$tmp/train.jsonl" "$tmp/validation.jsonl" "$dest/"
echo "$dest"
