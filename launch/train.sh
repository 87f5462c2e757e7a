#!/usr/bin/env bash
# `sse-dist train` under torchrun: one node (standalone) or many (c10d rendezvous, as in a PyTorchJob).
# Arguments are passed to `sse-dist train`. Environment:
#   NPROC_PER_NODE  ranks per node (default: GPUs on the node, or 1 on a CPU node)
#   NNODES          nodes (default 1); with NNODES > 1 set RDZV_ENDPOINT=host:port of the rendezvous
#   RDZV_ID         job id shared by the nodes (default sse-dist); MAX_RESTARTS (default 0)
set -euo pipefail
if [ -z "${NPROC_PER_NODE:-}" ]; then
  NPROC_PER_NODE=$(python -c 'import torch; print(torch.cuda.device_count() or 1)')
fi
NNODES=${NNODES:-1}
if [ "$NNODES" = 1 ] && [ -z "${RDZV_ENDPOINT:-}" ]; then
  exec python -m torch.distributed.run --standalone --nproc_per_node "$NPROC_PER_NODE" -m sse_dist.cli train "$@"
fi
: "${RDZV_ENDPOINT:?set RDZV_ENDPOINT=host:port for a multi-node run}"
exec python -m torch.distributed.run --nnodes "$NNODES" --nproc_per_node "$NPROC_PER_NODE" \
  --rdzv_backend c10d --rdzv_endpoint "$RDZV_ENDPOINT" --rdzv_id "${RDZV_ID:-sse-dist}" \
  --max_restarts "${MAX_RESTARTS:-0}" -m sse_dist.cli train "$@"
