"""Training as a Kubeflow training operator v1 ``PyTorchJob`` (kubeflow.org/v1), for clusters still on that
operator: one Master and ``nodes - 1`` Workers (Workers only for an elastic job), each running torchrun.

The operator creates the pods and a headless service per pod; torchrun's rendezvous is on the first pod
(``<job>-master-0``, or ``<job>-worker-0`` for an elastic job).
"""

from __future__ import annotations

from ..config import ExperimentConfig
from . import pods
from .pods import Obj
from .train_job import ARGS, is_elastic, resources, torchrun_env, volumes

API_VERSION = "kubeflow.org/v1"
KIND = "PyTorchJob"
PLURAL = "pytorchjobs"
CONTAINER = "pytorch"  # the operator requires a container of this name


def first_pod(name: str, elastic: bool) -> str:
    """The pod that hosts the rendezvous and logs for rank 0 (an elastic job has Workers only)."""
    return f"{name}-worker-0" if elastic else f"{name}-master-0"


def _pod_template(cfg: ExperimentConfig, name: str, config_map: str) -> Obj:
    launch, t = cfg.launch, cfg.launch.train
    ports = [
        {"name": "pytorchjob-port", "containerPort": 23456},
        {"name": "rdzv", "containerPort": t.rdzv_port},
        *pods.metrics_ports(launch.metrics_port, t.ranks_per_node()),
    ]
    trainer = pods.container(
        launch,
        CONTAINER,
        args=ARGS,
        env=pods.env(launch, torchrun_env(cfg, name, first_pod(name, is_elastic(cfg)))),
        ports=ports,
        resources=resources(cfg),
        volumeMounts=pods.mounts(scratch=True),
    )
    spec = pods.pod_spec(launch, [trainer], volumes(cfg, config_map))
    return pods.template(name, "train", spec)


def render(cfg: ExperimentConfig, name: str, config_map: str) -> Obj:
    t = cfg.launch.train
    template = _pod_template(cfg, name, config_map)

    def replicas(n: int) -> Obj:
        return {"replicas": n, "restartPolicy": t.restart_policy, "template": template}

    spec: Obj = {
        "nprocPerNode": str(t.ranks_per_node()),
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
