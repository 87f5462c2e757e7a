#!/usr/bin/env bash
# Container entrypoint: `train` runs under torchrun (launch/train.sh), `preprocess` as a Ray job
# (launch/preprocess.sh), anything else is an `sse-dist` subcommand.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
case "${1:-}" in
  train) shift; exec "$here/train.sh" "$@" ;;
  preprocess) shift; exec "$here/preprocess.sh" "$@" ;;
  *) exec sse-dist "$@" ;;
esac
