"""Kubernetes launch configuration (``launch.*``): the TrainJob (or PyTorchJob) of ``train`` and the RayJob of
``preprocess``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from .loader import require

_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RUNTIME_METRICS_RANKS = 8
"""Ranks per node whose exporter ports ``sse-dist-torch`` (``k8s/base/trainingruntime.yaml``) declares."""
# Credentials reach pods only through the S3 Secret (by reference), never as plain values in a manifest.
_SECRET_WORDS = ("SECRET", "PASSWORD", "TOKEN", "ACCESS_KEY", "CREDENTIAL")


def _require_quantity(value: str, name: str) -> None:
    require(bool(_QUANTITY.match(value)), name, f"not a Kubernetes quantity (e.g. 64Gi, 500M), got {value!r}")


@dataclass
class TrainLaunchConfig:
    nodes: int = 1
    """Pods (nodes) of the training job, one torchrun per pod (a TrainJob's ``numNodes``; a PyTorchJob's Master
    and ``nodes - 1`` Workers)."""
    gpus_per_node: int = 0
    """GPUs each pod requests (``nvidia.com/gpu``); 0 trains on CPUs."""
    procs_per_node: int = 0
    """Ranks torchrun starts per pod; 0: one per GPU (one on a CPU pod)."""
    cpus_per_node: int = 8
    """CPU cores each pod requests (and is limited to)."""
    memory_per_node: str = "64Gi"
    """Memory each pod requests (and is limited to), a Kubernetes quantity."""
    shm_size: str = "16Gi"
    """Size of the in-memory ``/dev/shm`` of each pod (data loader workers pass batches through it)."""
    scratch_size: str = "50Gi"
    """Size of each pod's local ``/scratch`` volume, where checkpoints are staged before upload."""
    min_nodes: int = 0
    """Elastic training: fewest pods the job may shrink to (torchrun ``--nnodes min:max``); 0 is a fixed-size
    job. PyTorchJob only (Trainer v2 has no elastic policy), and needs ``train.deepspeed.zero_stage: 0``:
    DeepSpeed cannot re-partition ZeRO-1/2 optimizer state for another world size."""
    max_nodes: int = 0
    """Elastic training: most pods the job may grow to (0: ``nodes``)."""
    restart_policy: Literal["OnFailure", "ExitCode", "Never"] = "OnFailure"
    """PyTorchJob: what the training operator does with a failed pod; the restarted pod resumes from the latest
    checkpoint. (A TrainJob's restarts are its TrainingRuntime's: the whole JobSet is recreated.)"""
    backoff_limit: int = 3
    """PyTorchJob: pod restarts before the whole job is marked failed. (A TrainJob: the TrainingRuntime's
    ``failurePolicy.maxRestarts``, 3 in ``k8s/base/trainingruntime.yaml``.)"""
    max_restarts: int = 3
    """Restarts of the worker group by torchrun inside a pod (after a rank died) before the pod fails."""
    rdzv_port: int = 29400
    """Port of the c10d rendezvous store, hosted by the first pod."""
    active_deadline_seconds: int = 0
    """Seconds the job may run before it is stopped (0: no limit)."""
    runtime: str = "sse-dist-torch"
    """TrainJob: the TrainingRuntime (in the job's namespace) it runs on; ``k8s/base`` installs
    ``sse-dist-torch``, Kubeflow's stock ``torch-distributed`` plus what a TrainJob cannot set per job."""

    def ranks_per_node(self) -> int:
        return self.procs_per_node or self.gpus_per_node or 1

    def validate(self) -> None:
        require(self.nodes >= 1, "nodes", "must be >= 1")
        require(
            bool(_DNS1123.match(self.runtime)), "runtime", "must name a TrainingRuntime (a DNS-1123 name)"
        )
        for name in (
            "gpus_per_node",
            "procs_per_node",
            "backoff_limit",
            "max_restarts",
            "active_deadline_seconds",
        ):
            require(getattr(self, name) >= 0, name, "must be >= 0")
        require(self.cpus_per_node >= 1, "cpus_per_node", "must be >= 1")
        for name in ("memory_per_node", "shm_size", "scratch_size"):
            _require_quantity(getattr(self, name), name)
        require(
            self.min_nodes >= 0 and self.max_nodes >= 0, "min_nodes", "min_nodes and max_nodes must be >= 0"
        )
        if self.min_nodes or self.max_nodes:
            top = self.max_nodes or self.nodes
            require(
                1 <= self.min_nodes <= self.nodes <= top,
                "min_nodes",
                "need 1 <= min_nodes <= nodes <= max_nodes",
            )
        require(1024 <= self.rdzv_port < 65536, "rdzv_port", "must be in [1024, 65535]")


@dataclass
class RayLaunchConfig:
    head_cpus: int = 2
    """CPU cores of the Ray head pod, where the ``sse-dist preprocess`` driver runs (no shard tasks run there)."""
    head_memory: str = "8Gi"
    """Memory of the Ray head pod."""
    workers: int = 2
    """Pods of the CPU worker group; each runs one shard task per core."""
    worker_cpus: int = 8
    """CPU cores of each CPU worker pod."""
    worker_memory: str = "32Gi"
    """Memory of each CPU worker pod."""
    gpu_workers: int = 0
    """Pods of the GPU worker group (0: none); give them to a phone source that runs a neural classifier."""
    gpus_per_worker: int = 1
    """GPUs of each GPU worker pod."""
    gpu_worker_cpus: int = 8
    """CPU cores of each GPU worker pod."""
    gpu_worker_memory: str = "32Gi"
    """Memory of each GPU worker pod."""
    backoff_limit: int = 2
    """Retries of the whole Ray job on a fresh cluster; safe, since finished shards are skipped."""
    active_deadline_seconds: int = 0
    """Seconds the job may run before KubeRay stops it (0: no limit)."""
    ttl_seconds_after_finished: int = 300
    """Seconds the Ray cluster stays up after the job finished (for its logs), then it is deleted."""

    def validate(self) -> None:
        require(self.head_cpus >= 1, "head_cpus", "must be >= 1")
        require(self.workers >= 0 and self.gpu_workers >= 0, "workers", "worker counts must be >= 0")
        require(self.workers + self.gpu_workers >= 1, "workers", "need at least one CPU or GPU worker pod")
        require(self.gpus_per_worker >= 1, "gpus_per_worker", "must be >= 1")
        require(min(self.worker_cpus, self.gpu_worker_cpus) >= 1, "worker_cpus", "worker pods need >= 1 CPU")
        for name in ("head_memory", "worker_memory", "gpu_worker_memory"):
            _require_quantity(getattr(self, name), name)
        for name in ("backoff_limit", "active_deadline_seconds", "ttl_seconds_after_finished"):
            require(getattr(self, name) >= 0, name, "must be >= 0")


@dataclass
class LaunchConfig:
    name: str = "sse-dist"
    """Prefix of the Kubernetes objects: ``<name>-train`` (TrainJob or PyTorchJob), ``<name>-preprocess``
    (RayJob), each with a ``-config`` ConfigMap holding the resolved experiment config."""
    namespace: str = "sse-dist"
    """Namespace the jobs run in (``k8s/`` creates it, with the service account and the monitoring objects)."""
    image: str = "sse-dist:0.1.0"
    """Container image built from the repository's Dockerfile (pushed to a registry the cluster pulls from)."""
    image_pull_policy: Literal["IfNotPresent", "Always", "Never"] = "IfNotPresent"
    """When the kubelet pulls the image."""
    image_pull_secret: str = ""
    """Secret with the registry credentials, if the registry needs them."""
    service_account: str = "sse-dist"
    """Service account of the job pods (``k8s/base`` creates it; it has no API permissions)."""
    s3_secret: str = "sse-dist-s3"
    """Secret with keys ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY``, passed to the pods by reference;
    empty: pods get no keys (IAM roles for service accounts, workload identity)."""
    s3_endpoint: str = ""
    """S3 endpoint URL for a store other than AWS (MinIO, Ceph, ...), set as ``FSSPEC_S3_ENDPOINT_URL``."""
    env: list[str] = field(default_factory=list)
    """Extra ``NAME=value`` variables of every container (e.g. ``NCCL_SOCKET_IFNAME=eth0``); never credentials."""
    node_selector: list[str] = field(default_factory=list)
    """``key=value`` node labels the pods must run on (e.g. ``nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3``)."""
    tolerations: list[str] = field(default_factory=list)
    """Taints the pods tolerate, as ``key=value:Effect`` or ``key:Effect`` (e.g. ``nvidia.com/gpu:NoSchedule``)."""
    priority_class: str = ""
    """PriorityClass of the pods (empty: the cluster default)."""
    run_as_user: int = 1000
    """Non-root user (and group) id the containers run as; the Dockerfile's ``UID`` build argument."""
    metrics_port: int = 9400
    """Port of the Prometheus exporters in the pods: the training ranks use it + local rank, the Ray driver it."""
    train_api: Literal["trainjob", "pytorchjob"] = "trainjob"
    """Kubernetes API of the training job: ``trainjob``, a Kubeflow Trainer v2 ``TrainJob``
    (trainer.kubeflow.org/v1alpha1, what a cluster set up today runs), or ``pytorchjob``, a training operator
    v1 ``PyTorchJob`` (kubeflow.org/v1, for clusters still on that operator; it also offers elastic training)."""
    kubernetes_version: str = "1.31"
    """Kubernetes API version the rendered manifests are validated against."""
    output: str = "runs/k8s"
    """Folder ``--dry-run`` writes the manifests to (one subfolder per job)."""
    train: TrainLaunchConfig = field(default_factory=TrainLaunchConfig)
    """The training job (TrainJob or PyTorchJob)."""
    preprocess: RayLaunchConfig = field(default_factory=RayLaunchConfig)
    """The preprocessing RayJob."""

    def validate(self) -> None:
        for name in ("name", "namespace"):
            require(
                bool(_DNS1035.match(getattr(self, name))), name, "must be a DNS-1035 label (a-z, 0-9, '-')"
            )
        # KubeRay refuses RayJob names over 47 characters; "-preprocess" is the longest suffix.
        require(len(self.name) <= 36, "name", "must have at most 36 characters")
        require(bool(self.image), "image", "must name a container image")
        require(self.run_as_user > 0, "run_as_user", "must be a non-root uid (> 0)")
        require(1024 <= self.metrics_port < 65000, "metrics_port", "must be in [1024, 65000)")
        require(bool(re.match(r"^1\.\d+$", self.kubernetes_version)), "kubernetes_version", "like 1.30")
        for item in self.env:
            key, sep, _ = item.partition("=")
            require(bool(sep and _ENV_NAME.match(key)), "env", f"{item!r} is not NAME=value")
            require(not any(w in key.upper() for w in _SECRET_WORDS), "env", f"{key} looks like a credential")
        for item in self.node_selector:
            require("=" in item, "node_selector", f"{item!r} is not key=value")
        for item in self.tolerations:
            require(
                bool(re.match(r"^[^=:]+(=[^:]*)?:(NoSchedule|PreferNoSchedule|NoExecute)$", item)),
                "tolerations",
                f"{item!r} is not key[=value]:NoSchedule|PreferNoSchedule|NoExecute",
            )
        if self.train_api == "trainjob":
            self._check_trainjob()

    def _check_trainjob(self) -> None:
        """Refuse what a TrainJob cannot set per job: Trainer v2 (v1alpha1) patches a runtime's volumes, labels,
        security contexts, placement and env only; ports, image pull policy, priority and the restart policy
        stay the TrainingRuntime's, and it has no elastic policy."""
        t, default, default_train = self.train, LaunchConfig(), TrainLaunchConfig()
        require(
            not (t.min_nodes or t.max_nodes),
            "train.min_nodes",
            "elastic training needs train_api: pytorchjob (Kubeflow Trainer v2 has no elastic policy)",
        )
        for name in ("restart_policy", "backoff_limit"):
            require(
                getattr(t, name) == getattr(default_train, name),
                f"train.{name}",
                "a TrainJob's restarts are its TrainingRuntime's failurePolicy (k8s/base/trainingruntime.yaml); "
                "this field is for train_api: pytorchjob",
            )
        for name in ("metrics_port", "image_pull_policy", "priority_class"):
            require(
                getattr(self, name) == getattr(default, name),
                name,
                "set in the TrainingRuntime for a TrainJob (k8s/base/trainingruntime.yaml), not per job",
            )
        ranks = t.ranks_per_node()
        require(
            ranks <= RUNTIME_METRICS_RANKS,
            "train.procs_per_node",
            f"{ranks} ranks per node, but the TrainingRuntime declares exporter ports for "
            f"{RUNTIME_METRICS_RANKS} (k8s/base/trainingruntime.yaml)",
        )
