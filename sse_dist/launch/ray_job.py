"""Preprocessing as a KubeRay ``RayJob``: a Ray cluster (head + CPU workers, + GPU workers when asked) that
runs ``sse-dist preprocess`` as its entrypoint and is deleted after the job.

The driver runs on the head, which offers no CPUs to Ray (``num-cpus: 0``) so that shard tasks land on the
workers; it joins the cluster through the ``RAY_ADDRESS`` Ray sets for a job's driver and serves the
preprocessing metrics. Token authentication (KubeRay >= 1.5.1) guards the dashboard and its Jobs API, which
run arbitrary code.
"""

from __future__ import annotations

from importlib.metadata import version

from ..config import ExperimentConfig
from . import pods
from .pods import Obj

API_VERSION = "ray.io/v1"
KIND = "RayJob"
PLURAL = "rayjobs"
HEAD_PORTS = [
    {"name": "gcs-server", "containerPort": 6379},
    {"name": "dashboard", "containerPort": 8265},
    {"name": "client", "containerPort": 10001},
]


def entrypoint() -> str:
    return f"sse-dist preprocess --config {pods.CONFIG_FILE}"


def _ray_pod(cfg: ExperimentConfig, name: str, component: str, res: Obj, ports: list[Obj], cm: str) -> Obj:
    launch = cfg.launch
    ray = pods.container(
        launch,
        f"ray-{component}",
        env=pods.env(launch),
        ports=ports,
        resources=res,
        volumeMounts=pods.mounts(),
    )
    # Ray's object store lives in /dev/shm: let it have up to the pod's memory.
    vols = pods.volumes(cm, res["limits"]["memory"])
    return pods.template(name, f"preprocess-{component}", pods.pod_spec(launch, [ray], vols))


def _worker_group(cfg: ExperimentConfig, name: str, group: str, replicas: int, res: Obj, cm: str) -> Obj:
    return {
        "groupName": group,
        "replicas": replicas,
        "minReplicas": replicas,
        "maxReplicas": replicas,
        "rayStartParams": {},
        "template": _ray_pod(cfg, name, group, res, [], cm),
    }


def _submitter(cfg: ExperimentConfig, name: str) -> Obj:
    """The pod that runs ``ray job submit`` (KubeRay fills in the command): only here to make it non-root."""
    submit = pods.container(cfg.launch, "submitter", resources=pods.resources(1, "1Gi"))
    spec = pods.pod_spec(cfg.launch, [submit], [], restartPolicy="Never")
    return pods.template(name, "preprocess-submitter", spec)


def render(cfg: ExperimentConfig, name: str, config_map: str) -> Obj:
    r, launch = cfg.launch.preprocess, cfg.launch
    head_ports = [*HEAD_PORTS, *pods.metrics_ports(launch.metrics_port, 1)]
    groups = []
    if r.workers:
        res = pods.resources(r.worker_cpus, r.worker_memory)
        groups.append(_worker_group(cfg, name, "cpu", r.workers, res, config_map))
    if r.gpu_workers:
        res = pods.resources(r.gpu_worker_cpus, r.gpu_worker_memory, r.gpus_per_worker)
        groups.append(_worker_group(cfg, name, "gpu", r.gpu_workers, res, config_map))
    head = {
        "rayStartParams": {"num-cpus": "0"},
        "template": _ray_pod(
            cfg, name, "head", pods.resources(r.head_cpus, r.head_memory), head_ports, config_map
        ),
    }
    spec: Obj = {
        "entrypoint": entrypoint(),
        "shutdownAfterJobFinishes": True,
        "ttlSecondsAfterFinished": r.ttl_seconds_after_finished,
        "backoffLimit": r.backoff_limit,
        "submitterPodTemplate": _submitter(cfg, name),
        "rayClusterSpec": {
            "rayVersion": version("ray"),
            "enableInTreeAutoscaling": False,
            "authOptions": {"mode": "token"},
            "headGroupSpec": head,
            "workerGroupSpecs": groups,
        },
    }
    if r.active_deadline_seconds:
        spec["activeDeadlineSeconds"] = r.active_deadline_seconds
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": launch.namespace, "labels": pods.labels(name, "preprocess")},
        "spec": spec,
    }
