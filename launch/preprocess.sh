#!/usr/bin/env bash
# `sse-dist preprocess` as a Ray job. With RAY_ADDRESS (a cluster's dashboard, http://head:8265) the job is
# submitted there and its logs followed; without it the command runs here on a local Ray cluster.
# Arguments are passed to `sse-dist preprocess`.
set -euo pipefail
if [ -n "${RAY_ADDRESS:-}" ] && [[ "$RAY_ADDRESS" == http* ]]; then
  exec ray job submit --address "$RAY_ADDRESS" -- sse-dist preprocess "$@"
fi
exec sse-dist preprocess "$@"
