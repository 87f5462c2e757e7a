"""Training as a Kubeflow ``PyTorchJob``: every pod runs ``launch/entrypoint.sh train`` (torchrun, c10d).

The training operator creates the pods and a headless service per pod; torchrun in each pod meets the others
at the c10d rendezvous store hosted by the first pod (``<job>-master-0``, or ``<job>-worker-0`` for an elastic
job, which has workers only), so the operator's ``MASTER_ADDR``/``RANK`` variables are not used.
"""

from __future__ import annotations

from ..config import ExperimentConfig
from . import pods
from .pods import Obj

API_VERSION = "kubeflow.org/v1"
KIND = "PyTorchJob"
PLURAL = "pytorchjobs"
CONTAINER = "pytorch"  # the operator requires a container of this name


def ranks_per_node(cfg: ExperimentConfig) -> int:
    t = cfg.launch.train
    return t.procs_per_node or t.gpus_per_node or 1


def is_elastic(cfg: ExperimentConfig) -> bool:
    return bool(cfg.launch.train.min_nodes or cfg.launch.train.max_nodes)


def rendezvous_pod(cfg: ExperimentConfig, name: str) -> str:
    return f"{name}-worker-0" if is_elastic(cfg) else f"{name}-master-0"


def _torchrun_env(cfg: ExperimentConfig, name: str) -> dict[str, str]:
    """What launch/train.sh passes to torchrun."""
    t = cfg.launch.train
    nnodes = f"{t.min_nodes}:{t.max_nodes or t.nodes}" if is_elastic(cfg) else str(t.nodes)
    return {
        "NNODES": nnodes,
        "NPROC_PER_NODE": str(ranks_per_node(cfg)),
        "RDZV_ENDPOINT": f"{rendezvous_pod(cfg, name)}:{t.rdzv_port}",
        "RDZV_ID": name,
        "MAX_RESTARTS": str(t.max_restarts),
    }


def _pod_template(cfg: ExperimentConfig, name: str, config_map: str) -> Obj:
    launch, t = cfg.launch, cfg.launch.train
    ports = [
        {"name": "pytorchjob-port", "containerPort": 23456},
        {"name": "rdzv", "containerPort": t.rdzv_port},
        *pods.metrics_ports(launch.metrics_port, ranks_per_node(cfg)),
    ]
    trainer = pods.container(
        launch,
        CONTAINER,
        args=["train", "--config", pods.CONFIG_FILE],
        env=pods.env(launch, _torchrun_env(cfg, name)),
        ports=ports,
        resources=pods.resources(t.cpus_per_node, t.memory_per_node, t.gpus_per_node),
        volumeMounts=pods.mounts(scratch=True),
    )
    vols = pods.volumes(config_map, t.shm_size, t.scratch_size)
    return pods.template(name, "train", pods.pod_spec(launch, [trainer], vols))


def render(cfg: ExperimentConfig, name: str, config_map: str) -> Obj:
    t = cfg.launch.train
    template = _pod_template(cfg, name, config_map)

    def replicas(n: int) -> Obj:
        return {"replicas": n, "restartPolicy": t.restart_policy, "template": template}

    spec: Obj = {
        "nprocPerNode": str(ranks_per_node(cfg)),
        "runPolicy": {"cleanPodPolicy": "Running", "backoffLimit": t.backoff_limit},
    }
    if t.active_deadline_seconds:
        spec["runPolicy"]["activeDeadlineSeconds"] = t.active_deadline_seconds
    if is_elastic(cfg):
        spec["elasticPolicy"] = {
            "minReplicas": t.min_nodes,
            "maxReplicas": t.max_nodes or t.nodes,
            "rdzvBackend": "c10d",
            "rdzvPort": t.rdzv_port,
            "maxRestarts": t.max_restarts,
        }
        spec["pytorchReplicaSpecs"] = {"Worker": replicas(t.nodes)}
    else:
        spec["pytorchReplicaSpecs"] = {"Master": replicas(1)}
        if t.nodes > 1:
            spec["pytorchReplicaSpecs"]["Worker"] = replicas(t.nodes - 1)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": cfg.launch.namespace, "labels": pods.labels(name, "train")},
        "spec": spec,
    }
