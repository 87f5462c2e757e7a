"""Training under torchrun on Kubernetes: what the TrainJob (``trainjob``) and PyTorchJob (``pytorch_job``)
renderers share.

Every training pod runs ``launch/entrypoint.sh train``: torchrun, whose nodes meet at the c10d rendezvous store
hosted by the job's first pod. The operators' own rank variables (the training operator's ``MASTER_ADDR`` and
``RANK``, Trainer v2's ``PET_*``) are not used, so both APIs start the very same torchrun.
"""

from __future__ import annotations

from ..config import ExperimentConfig
from . import pods
from .pods import Obj

ARGS = ["train", "--config", pods.CONFIG_FILE]


def is_elastic(cfg: ExperimentConfig) -> bool:
    return bool(cfg.launch.train.min_nodes or cfg.launch.train.max_nodes)


def torchrun_env(cfg: ExperimentConfig, name: str, rdzv_host: str) -> dict[str, str]:
    """What launch/train.sh passes to torchrun."""
    t = cfg.launch.train
    nnodes = f"{t.min_nodes}:{t.max_nodes or t.nodes}" if is_elastic(cfg) else str(t.nodes)
    return {
        "NNODES": nnodes,
        "NPROC_PER_NODE": str(t.ranks_per_node()),
        "RDZV_ENDPOINT": f"{rdzv_host}:{t.rdzv_port}",
        "RDZV_ID": name,
        "MAX_RESTARTS": str(t.max_restarts),
    }


def resources(cfg: ExperimentConfig) -> Obj:
    t = cfg.launch.train
    return pods.resources(t.cpus_per_node, t.memory_per_node, t.gpus_per_node)


def volumes(cfg: ExperimentConfig, config_map: str) -> list[Obj]:
    return pods.volumes(config_map, cfg.launch.train.shm_size, cfg.launch.train.scratch_size)
