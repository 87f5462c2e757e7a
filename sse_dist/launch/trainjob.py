"""Training as a Kubeflow Trainer v2 ``TrainJob`` (trainer.kubeflow.org/v1alpha1) on the ``sse-dist-torch``
TrainingRuntime that ``k8s/base`` installs.

Trainer turns the TrainJob into a JobSet: one replicated Job ``node`` of ``numNodes`` indexed pods, named
``<job>-node-0-<i>-<suffix>``, with a headless service ``<job>`` that gives pod i the DNS name
``<job>-node-0-<i>.<job>``. Its torch plugin fills in ``PET_*`` variables for torchrun; launch/train.sh passes
torchrun its arguments explicitly instead (the same as for a PyTorchJob), with the rendezvous on pod 0.

The TrainJob carries what differs per job: the image, command, environment, node count, ranks and resources
per node (``spec.trainer``), and, as a runtime patch, the pods' labels (the PodMonitor's), volumes (the config,
``/dev/shm``, ``/scratch``), security contexts, service account and placement. What a v1alpha1 TrainJob cannot
set per job (container ports for the exporters, a restart policy, an unmounted service-account token) is the
runtime's; see k8s/base/trainingruntime.yaml for why it is not the stock ``torch-distributed``.
"""

from __future__ import annotations

from ..config import ExperimentConfig
from . import pods
from .pods import Obj
from .train_job import ARGS, resources, torchrun_env, volumes

API_VERSION = "trainer.kubeflow.org/v1alpha1"
KIND = "TrainJob"
PLURAL = "trainjobs"
CONTAINER = "node"  # Trainer's torch plugin configures the runtime's container of this name
REPLICATED_JOB = "node"
PATCH_MANAGER = "sse-dist.io/launch"
JOBSET_API = ("jobset.x-k8s.io", "v1alpha2", "jobsets")
"""The JobSet Trainer creates for a TrainJob (same name): where restarts and child Jobs are reported."""


def first_pod_prefix(name: str) -> str:
    """Pods of node 0 (the one that hosts the rendezvous and logs for rank 0) are named with this prefix."""
    return f"{name}-{REPLICATED_JOB}-0-0-"


def _rendezvous_host(name: str) -> str:
    return f"{name}-{REPLICATED_JOB}-0-0.{name}"


def _pod_patch(cfg: ExperimentConfig, name: str, config_map: str) -> Obj:
    """The per-job part of the pod, in the fields a v1alpha1 runtime patch accepts."""
    launch = cfg.launch
    node = {
        "name": CONTAINER,
        "securityContext": pods.container_security(launch),
        "volumeMounts": pods.mounts(scratch=True),
    }
    spec = {
        "serviceAccountName": launch.service_account,
        "securityContext": pods.pod_security(launch),
        "containers": [node],
        "volumes": volumes(cfg, config_map),
        **pods.placement(launch),
    }
    template = pods.template(name, "train", spec)
    template["metadata"]["labels"][pods.RANKS_LABEL] = str(cfg.launch.train.ranks_per_node())
    return template


def _runtime_patch(cfg: ExperimentConfig, name: str, config_map: str) -> Obj:
    job = {"name": REPLICATED_JOB, "template": {"spec": {"template": _pod_patch(cfg, name, config_map)}}}
    return {
        "manager": PATCH_MANAGER,
        "trainingRuntimeSpec": {"template": {"spec": {"replicatedJobs": [job]}}},
    }


def render(cfg: ExperimentConfig, name: str, config_map: str) -> Obj:
    launch, t = cfg.launch, cfg.launch.train
    spec: Obj = {
        "runtimeRef": {"apiGroup": "trainer.kubeflow.org", "kind": "TrainingRuntime", "name": t.runtime},
        "trainer": {
            "image": launch.image,
            "args": ARGS,
            "env": pods.env(launch, torchrun_env(cfg, name, _rendezvous_host(name))),
            "numNodes": t.nodes,
            "numProcPerNode": t.ranks_per_node(),
            "resourcesPerNode": resources(cfg),
        },
        "runtimePatches": [_runtime_patch(cfg, name, config_map)],
    }
    if t.active_deadline_seconds:
        spec["activeDeadlineSeconds"] = t.active_deadline_seconds
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": launch.namespace, "labels": pods.labels(name, "train")},
        "spec": spec,
    }
