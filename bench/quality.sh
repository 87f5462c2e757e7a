#!/usr/bin/env bash
# The paper's experiments on real speech (docs/experiments.md, "speechocean762: the paper's experiments"):
# models trained on the 100 speechocean762 training speakers (+ librispeech-1utt as unlabelled reconstruction
# data where the mode reconstructs), each embedded on the 25 unseen dev speakers and scored on dev.trials with
# cosine, cosine + AS-norm (a label-free cohort: the 1,600 so762-train utterances, each on its own) and
# PLDA (trained on the so762 training speakers' embeddings and labels, for every row). Prints the table.
#   bench/quality.sh [ROW...]       default: the rows of the docs' table; rows already done are skipped
# Rows: mfcc, ssl, ssl-steps-N (SSL with N steps), supervised, multitask-L (recon_weight L), semi-N (N% labelled),
# contrastive-N (the contrastive objective alone, N steps), sslcon-N (reconstruction + contrastive, N steps),
# ecapa-ssl-N (SSL with ECAPA-TDNN, N steps), semi-N-from-ROW (semi-N started from
# the extractor and decoder of row ROW, fresh heads and optimizer: pretrain, then fine-tune). Any row name ending in
# -sS trains with seed S (seed 0 without), e.g. ssl-steps-2000-s1; any trained row starting raw- keeps each
# utterance's mean in the features (configs/raw.yaml), e.g. raw-ssl-steps-2000, raw-semi-25-from-raw-ssl-steps-2000;
# ft- fine-tunes at a tenth of the learning rate (configs/finetune.yaml), e.g. raw-ft-semi-25-from-raw-ssl-steps-2000;
# aam- trains the speaker head with additive angular margin softmax (configs/aam.yaml), e.g. aam-supervised;
# km128- and hu- give the decoder another unit inventory than km (64 k-means units of log-mel frames): 128 units
# of log-mel frames, or 64 units of frame layer 3 of the raw-ssl-steps-3000 model (HuBERT's second iteration),
# fitted here on the training sets when missing, e.g. raw-hu-ssl-steps-2000.
# Needs the shards and k-means field of bench/so762_phones.sh (shards/so762-{train,dev}, shards/libri1); the
# SSL row is that script's runs/so762-ssl-km (trained here if missing). DATA: $DATA, default ../shared/data
# (relative to the repository root).
# Sequential on purpose: 8.5-11 minutes per 800-step training with two ranks on the shared 2-core machine, plus
# 1-5 minutes of embedding per row (about 100 minutes in all when the SSL run is already there).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
export PATH="$PWD/.venv/bin:$PATH" NPROC_PER_NODE=${NPROC_PER_NODE:-2}
# BACKENDS=cosine: embed the dev set only and score with cosine (the targets' backend), skipping the train-set
# embeddings that AS-norm and PLDA need (1-5 minutes a row on the shared machine).
BACKENDS=${BACKENDS:-all}
OUT=runs/quality
TRIALS=$DATA/so762-dev/dev.trials
BASE=(--config configs/so762-ssl.yaml)
MT=(--config configs/so762-ssl.yaml --config configs/so762-multitask.yaml)
mkdir -p "$OUT/logs"

step() {  # name command...: stdout (the stage's JSON summary) and stderr to $OUT/logs/name.{json,log}
  local name=$1
  shift
  echo "[$(date +%T)] $name: $*" >&2
  "$@" >"$OUT/logs/$name.json" 2>"$OUT/logs/$name.log"
}

# The semi-supervised rows' labelled speakers: the first N of a seeded shuffle of train_speakers (committed).
labelled_lists() {
  [ -f configs/so762-labelled-50.txt ] && return
  cp "$DATA/so762-dev/train_speakers" configs/so762-labelled-100.txt
  python - <<'EOF'
import random
speakers = open("configs/so762-labelled-100.txt").read().split()
random.Random(0).shuffle(speakers)
for n in (25, 50):
    open(f"configs/so762-labelled-{n}.txt", "w").write("\n".join(sorted(speakers[:n])) + "\n")
EOF
}

evaluate() {  # row embed-args...: embeddings of dev and train; then each backend
  local row=$1 dir=$OUT/$1
  shift
  mkdir -p "$dir"
  local parts=(dev)
  [ "$BACKENDS" = cosine ] || parts+=(train)
  for part in "${parts[@]}"; do
    [ -f "$dir/$part.npz" ] || step "embed-$row-$part" sse-dist embed "${BASE[@]}" "$@" \
      --shards "shards/so762-$part" --output "$dir/$part.npz"
  done
  local s=(sse-dist score --embeddings "$dir/dev.npz" --trials "$TRIALS")
  [ -f "$dir/cosine.json" ] || step "score-$row-cosine" "${s[@]}" --output "$dir/cosine.json"
  [ "$BACKENDS" = cosine ] && return
  [ -f "$dir/asnorm.json" ] || step "score-$row-asnorm" "${s[@]}" --output "$dir/asnorm.json" \
    --score_norm asnorm --cohort_embeddings "$dir/train.npz" --cohort_speaker_means false
  [ -f "$dir/plda.json" ] || step "score-$row-plda" "${s[@]}" --output "$dir/plda.json" \
    --backend plda --train_embeddings "$dir/train.npz"
}

trained() {  # row run train-args...: train the run unless its model exists, then evaluate it
  local row=$1 run=$2
  shift 2
  [ -f "$run/model.pt" ] || step "train-$row" launch/train.sh "$@" --output "$run"
  evaluate "$row" --method model --checkpoint "$run"
  [ -f "$OUT/$row/summary.json" ] || cp "$run/summary.json" "$OUT/$row/summary.json"  # training time
}

units_field() {  # field: the so762 training speakers' and librispeech-1utt's units in that field, unless done
  local field=$1 extra=()
  [ -f "shards/so762-train/$field/summary.json" ] && [ -f "shards/libri1/$field/summary.json" ] && return
  case $field in
    km128) extra=(--phones.units 128) ;;
    hu) run_row raw-ssl-steps-3000 && extra=(--phones.unit_model "$OUT/raw-ssl-steps-3000" --phones.unit_layer 3) ;;
  esac
  step "units-$field" sse-dist preprocess --shards shards/so762-train,shards/libri1 --num_cpus 2 \
    --phones.source kmeans --phones.field "$field" --phones.model "runs/so762-units-$field.npz" "${extra[@]}"
}

run_row() {  # a row name, optionally raw-ROW (keep utterance means) and/or ROW-sN (seed N; seed 0 without)
  local name=$1 seed=0
  if [[ $name =~ -s([0-9]+)$ ]]; then
    seed=${BASH_REMATCH[1]}
  fi
  local SEED=(--seed "$seed")  # local: units_field may train another row first
  local row=${name%-s[0-9]*}
  # Prefixes add overlays after the row's own (their settings win): raw- configs/raw.yaml, ft- configs/finetune.yaml,
  # aam- configs/aam.yaml, km128-/hu- the decoder's units.
  local prefix
  while [[ $row =~ ^(raw|ft|aam|km128|hu)- ]]; do
    prefix=${BASH_REMATCH[1]}
    case $prefix in
      raw) SEED+=(--config configs/raw.yaml) ;;
      ft) SEED+=(--config configs/finetune.yaml) ;;
      aam) SEED+=(--config configs/aam.yaml) ;;
      km128 | hu) units_field "$prefix" && SEED+=(--phones_field "$prefix") ;;
    esac
    row=${row#*-}
  done
  local run=$OUT/$name
  case $row in
    mfcc) evaluate mfcc --method mfcc_stats ;;
    ssl) trained ssl runs/so762-ssl-km "${BASE[@]}" --phones_field km ;;
    ssl-steps-*) trained "$name" "$run" "${BASE[@]}" --phones_field km --steps "$(steps "$row")" "${SEED[@]}" ;;
    contrastive-*) trained "$name" "$run" "${BASE[@]}" --config configs/so762-contrastive.yaml \
      --steps "$(steps "$row")" "${SEED[@]}" ;;
    sslcon-*) trained "$name" "$run" "${BASE[@]}" --config configs/so762-ssl-contrastive.yaml \
      --steps "$(steps "$row")" "${SEED[@]}" ;;
    ecapa-ssl-*) trained "$name" "$run" "${BASE[@]}" --phones_field km --steps "$(steps "$row")" \
      --config configs/so762-ecapa.yaml "${SEED[@]}" ;;
    semi-*-from-*) # semi-N-from-ROW: the semi-N recipe started from runs/quality/ROW's extractor and decoder
      local n=${row#semi-} && n=${n%%-from-*}
      trained "$name" "$run" "${MT[@]}" --mode semi --labelled_speakers "configs/so762-labelled-$n.txt" \
        --init_from "$OUT/${row#semi-*-from-}" "${SEED[@]}" ;;
    supervised) trained "$name" "$run" "${BASE[@]}" --config configs/so762-supervised.yaml "${SEED[@]}" ;;
    multitask-*) trained "$name" "$run" "${MT[@]}" --recon_weight "$(steps "$row")" "${SEED[@]}" ;;
    semi-*) trained "$name" "$run" "${MT[@]}" --mode semi --labelled_speakers \
      "configs/so762-labelled-$(steps "$row").txt" "${SEED[@]}" ;;
    *) echo "unknown row $name" >&2 && return 1 ;;
  esac
}

steps() {  # the N of a row name ...-N
  echo "${1##*-}"
}

labelled_lists
for row in "${@:-mfcc ssl supervised multitask-1 semi-50 semi-25 ssl-steps-1200 multitask-3}"; do
  for r in $row; do run_row "$r"; done
done
python - "$OUT" <<'EOF'
import json, os, sys
out = sys.argv[1]
print(f"{'row':<14} {'cosine':>14} {'cos+AS-norm':>14} {'PLDA':>14} {'train s':>8}")
for row in sorted(os.listdir(out)):
    cells = []
    for backend in ("cosine", "asnorm", "plda"):
        path = f"{out}/{row}/{backend}.json"
        r = json.load(open(path)) if os.path.exists(path) else None
        cells.append(f"{r['eer_percent']:.2f} ({r['min_dcf_0.01']:.3f})" if r else "-")
    summary = f"{out}/{row}/summary.json"
    secs = f"{json.load(open(summary))['seconds']:.0f}" if os.path.exists(summary) else "-"
    if row != "logs":
        print(f"{row:<14} {cells[0]:>14} {cells[1]:>14} {cells[2]:>14} {secs:>8}")
EOF
