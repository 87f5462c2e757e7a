#!/usr/bin/env bash
# `sse-dist train` under torchrun: one node (rendezvous on loopback) or many (c10d rendezvous, as in a PyTorchJob).
# Arguments are passed to `sse-dist train`. Environment:
#   NPROC_PER_NODE  ranks per node (default: GPUs on the node, or 1 on a CPU node)
#   NNODES          nodes (default 1); with NNODES > 1 set RDZV_ENDPOINT=host:port of the rendezvous
#   RDZV_ID         job id shared by the nodes, unique among live jobs: a run folder's lease passes between
#                   worker groups of one job id (default: sse-dist-<endpoint>); MAX_RESTARTS (default 0)
#   RDZV_CONF       torchrun --rdzv_conf, e.g. last_call_timeout=5 (how long a shrunk rendezvous waits for more)
# Elastic (NNODES=min:max) or with MAX_RESTARTS > 0, torchrun restarts the worker group with the same arguments
# after a rank or node is lost, or a node joins: training then always resumes from the run's latest checkpoint
# (as in the pods), or a restarted group would train from step 0 over the run.
set -euo pipefail
if [ -z "${NPROC_PER_NODE:-}" ]; then
  NPROC_PER_NODE=$(python -c 'import torch; print(torch.cuda.device_count() or 1)')
fi
NNODES=${NNODES:-1}
# `exec` keeps this pid for the agent: each rank checks it is still its parent (train/distributed.py).
export SSE_AGENT_PID=$$
if [ "$NNODES" = 1 ] && [ -z "${RDZV_ENDPOINT:-}" ]; then
  # One node: the rendezvous store, the ranks' store and gloo on loopback only (--standalone would listen on
  # every interface). Port 0: the agent picks a free one.
  export GLOO_SOCKET_IFNAME=${GLOO_SOCKET_IFNAME:-lo}
  exec python -m torch.distributed.run --nnodes 1 --nproc_per_node "$NPROC_PER_NODE" \
    --rdzv_backend c10d --rdzv_endpoint 127.0.0.1:0 --rdzv_id "sse-dist-$$" --local_addr 127.0.0.1 \
    -m sse_dist.cli train "$@"
fi
: "${RDZV_ENDPOINT:?set RDZV_ENDPOINT=host:port for a multi-node run}"
MAX_RESTARTS=${MAX_RESTARTS:-0}
resume=()
if [[ "$NNODES" == *:* ]] || [ "$MAX_RESTARTS" != 0 ]; then
  resume=(--resume)
fi
exec python -m torch.distributed.run --nnodes "$NNODES" --nproc_per_node "$NPROC_PER_NODE" \
  --rdzv_backend c10d --rdzv_endpoint "$RDZV_ENDPOINT" --rdzv_id "${RDZV_ID:-sse-dist-${RDZV_ENDPOINT//[^a-zA-Z0-9]/-}}" \
  ${RDZV_CONF:+--rdzv_conf "$RDZV_CONF"} --max_restarts "$MAX_RESTARTS" -m sse_dist.cli train "$@" "${resume[@]}"
