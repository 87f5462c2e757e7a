"""Process-group set-up for torchrun, the deepspeed launcher, a Kubernetes PyTorchJob, or a plain process."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass
from datetime import timedelta

import deepspeed
import torch
import torch.distributed as dist

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1
AGENT_PID = "SSE_AGENT_PID"
"""Set by ``launch/train.sh`` to the pid of the torchrun agent it becomes (``exec`` keeps the pid)."""


@dataclass
class World:
    rank: int
    size: int
    local_rank: int
    device: torch.device


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent() -> None:
    """Make the kernel SIGKILL this rank when its launcher (the torchrun agent) dies.

    A SIGKILLed agent (an OOM kill, a scheduler's) cannot stop its ranks; without this they are re-parented to
    init and keep training, checkpointing and exporting beside the next run. The signal is armed only for a
    parent that is still alive, so a parent that died before the call is caught by comparing parents after
    it: with the agent's pid from the launcher (``SSE_AGENT_PID``) when known, else the parent seen before."""
    if not sys.platform.startswith("linux"):
        return
    expected = int(os.environ.get(AGENT_PID) or os.getppid())
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed (errno %d): ranks will outlive a killed launcher",
                    ctypes.get_errno())  # fmt: skip
        return
    if os.getppid() != expected:
        log.error("the launcher (pid %d) is gone: exiting", expected)
        os._exit(1)


def init(backend: str, timeout_s: float = 600.0) -> World:
    """Join (or, without a launcher, create) the process group; NCCL on GPUs, gloo on CPUs.

    ``timeout_s`` bounds every collective: a rank whose peer died (on another node, where no torchrun agent
    sees it) fails after that long instead of waiting for ever."""
    if os.environ.get(AGENT_PID) or os.environ.get("TORCHELASTIC_RUN_ID"):
        die_with_parent()  # started by a torchrun agent
    if "RANK" not in os.environ:
        # No launcher: a one-process group, so the same code path runs everywhere.
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
    cuda = torch.cuda.is_available()
    if not cuda:
        # The deepspeed launcher's LOCAL_SIZE turns on a shared-memory allreduce that leaves a 66 MB
        # /dev/shm buffer per rank behind after every run; gloo alone is fine at this scale.
        os.environ.pop("LOCAL_SIZE", None)
    if backend == "auto":
        backend = "nccl" if cuda else "gloo"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        torch.cuda.set_device(local_rank)
    deepspeed.init_distributed(dist_backend=backend, timeout=timedelta(seconds=timeout_s))
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    return World(dist.get_rank(), dist.get_world_size(), local_rank, device)


def mean_across_ranks(values: dict[str, float], device: torch.device) -> dict[str, float]:
    if not values:
        return {}
    t = torch.tensor(list(values.values()), dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(values, (t / dist.get_world_size()).tolist()))


def sum_across_ranks(values: list[float], device: torch.device) -> list[float]:
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def broadcast_int(value: int, device: torch.device) -> int:
    """Rank 0's ``value`` on every rank (a decision only rank 0 makes, such as which checkpoint to load)."""
    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.broadcast(t, src=0)
    return int(t.item())


def barrier() -> None:
    deepspeed.comm.barrier()


def shutdown() -> None:
    # Without the barrier, ~1 run in 20 aborted at exit ("terminate called without an active exception").
    barrier()
    dist.destroy_process_group()
