#!/usr/bin/env bash
# The phone-source benchmark of docs/phones.md, end to end on real speech: speechocean762 (train/dev speakers)
# and librispeech-1utt are sharded; fbank + pocketsphinx phones, a neural phone classifier trained on them and
# applied corpus-wide, k-means units; then one SSL model per phone source (and one without phones), each
# embedded on the 25 unseen dev speakers and scored on dev.trials. Steps already done are skipped (shards and
# trained runs by their outputs, preprocessing by its own per-shard resumption), so a rerun finishes the rest.
#   bench/so762_phones.sh [DATA]   DATA holds so762-dev/ and librispeech-1utt/ (default: $DATA, else ../shared/data
#                                  relative to the repository root)
# SEEDS (default "0 1") are the seeds of the SSL runs. Sequential on purpose: it is sized for a 2-core machine
# (about 2 h 15 min with two seeds; docs/phones.md).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-${DATA:-../shared/data}}
export PATH="$PWD/.venv/bin:$PATH" NPROC_PER_NODE=${NPROC_PER_NODE:-2}
LOGS=runs/so762-logs
SETS=shards/so762-train,shards/so762-dev,shards/libri1
mkdir -p "$LOGS"

step() {  # name command...: stdout (the stage's JSON summary) and stderr to $LOGS/name.{json,log}
  local name=$1
  shift
  echo "[$(date +%T)] $name: $*" >&2
  "$@" >"$LOGS/$name.json" 2>"$LOGS/$name.log"
}

shard_set() {  # output input [speakers]
  [ -f "$1/index.json" ] && return
  step "shard-$(basename "$1")" sse-dist shard --input "$2" --output "$1" --max_utts_per_shard 200 ${3:+--speakers "$3"}
}

shard_set shards/so762-train "$DATA/so762-dev" "$DATA/so762-dev/train_speakers"
shard_set shards/so762-dev "$DATA/so762-dev" "$DATA/so762-dev/dev_speakers"
shard_set shards/libri1 "$DATA/librispeech-1utt"
P=(sse-dist preprocess --shards "$SETS" --num_cpus 2)
step phones-ps "${P[@]}" --phones.source pocketsphinx --phones.field ps --phones.lexicon "$DATA/so762-dev/lexicon.txt"
[ -f runs/so762-phones/model.pt ] || step train-phones launch/train.sh --config configs/so762-phones.yaml
step phones-nn "${P[@]}" --phones.source neural --phones.field nn --phones.form soft \
  --phones.model runs/so762-phones --phones.reference ps
# The units are fitted on a sample of the training sets only (the first call), then applied to the dev set too.
K=(--phones.source kmeans --phones.field km --phones.model runs/so762-units.npz)
step phones-km-fit sse-dist preprocess --shards shards/so762-train,shards/libri1 --num_cpus 2 "${K[@]}"
step phones-km "${P[@]}" "${K[@]}"

for seed in ${SEEDS:-0 1}; do
  for source in ps nn km none; do
    run=runs/so762-ssl-$source$([ "$seed" = 0 ] || echo "-s$seed")
    field=$source
    [ "$source" = none ] && field=""
    [ -f "$run/model.pt" ] || step "ssl-$source-$seed" launch/train.sh --config configs/so762-ssl.yaml \
      --phones_field "$field" --seed "$seed" --output "$run"
    [ -f "$run/dev.npz" ] || step "embed-$source-$seed" sse-dist embed --method model --checkpoint "$run" \
      --shards shards/so762-dev --output "$run/dev.npz"
  done
done
for method in random_init mfcc_stats; do
  step "embed-$method" sse-dist embed --config configs/so762-ssl.yaml --method "$method" \
    --shards shards/so762-dev --output "runs/so762-$method/dev.npz"
done
for emb in runs/so762-*/dev.npz; do
  step "score-$(basename "$(dirname "$emb")")" sse-dist score --embeddings "$emb" \
    --trials "$DATA/so762-dev/dev.trials" --output "${emb%.npz}.json"
done
python - <<'EOF'
import collections, glob, json, re
rows = collections.defaultdict(list)
for path in sorted(glob.glob("runs/so762-*/dev.json")):
    r = json.load(open(path))
    rows[re.sub(r"-s[0-9]+$", "", path.split("/")[1])].append((r["eer_percent"], r["min_dcf_0.01"]))
print(f"{'system':<20} {'EER % (per seed)':<22} {'mean':>6} {'minDCF(0.01)':>13}")
for name, runs in rows.items():
    eers = " ".join(f"{e:.2f}" for e, _ in runs)
    mean = sum(e for e, _ in runs) / len(runs)
    dcf = sum(d for _, d in runs) / len(runs)
    print(f"{name:<20} {eers:<22} {mean:>6.2f} {dcf:>13.3f}")
EOF
