#!/usr/bin/env bash
# Core-seconds per hour of audio of each stage of `sse-dist preprocess`, side by side: every field of one shard
# set is recomputed (`--overwrite`), the sources interleaved, REPS times; prints each run and the median.
#   [DATA=dir] bench/phone_speed.sh [SET] [REPS]   (SET default shards/so762-dev, REPS 3; the fields ps, nn, km
#       must exist, as made by bench/so762_phones.sh, whose settings are repeated here; DATA holds so762-dev/,
#       default ../shared/data relative to the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
SET=${1:-shards/so762-dev}
REPS=${2:-3}
DATA=${DATA:-../shared/data}
export PATH="$PWD/.venv/bin:$PATH"
P=(sse-dist preprocess --shards "$SET" --num_cpus 2)
declare -A ARGS=(
  [fbank]="--phones.source="
  [ps]="--phones.source pocketsphinx --phones.field ps --phones.lexicon $DATA/so762-dev/lexicon.txt"
  [nn]="--phones.source neural --phones.field nn --phones.form soft --phones.model runs/so762-phones --phones.reference ps"
  [km]="--phones.source kmeans --phones.field km --phones.model runs/so762-units.npz"
)
for rep in $(seq "$REPS"); do
  for field in fbank ps nn km; do
    # shellcheck disable=SC2086 # ARGS values are word lists
    "${P[@]}" ${ARGS[$field]} --overwrite "$field" >/dev/null 2>&1
    python -c "import json; print('$field', json.load(open('$SET/$field/summary.json'))['core_seconds_per_audio_hour'])"
  done
done | python -c "
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in sys.stdin:
    field, value = line.split()
    runs[field].append(float(value))
print(f\"{'field':<6} {'core-s per audio hour (each run)':<36} {'median':>7}\")
for field, values in runs.items():
    print(f\"{field:<6} {' '.join(f'{v:.1f}' for v in values):<36} {statistics.median(values):>7.1f}\")
"
