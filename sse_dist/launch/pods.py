"""Pieces every sse-dist pod shares: labels, environment, volumes, security context, resources, placement.

Credentials reach a container only as ``secretKeyRef`` references to the S3 Secret; the manifests themselves
never hold a key.
"""

from __future__ import annotations

from typing import Any

from ..config import LaunchConfig

CONFIG_DIR = "/etc/sse-dist"
CONFIG_FILE = f"{CONFIG_DIR}/experiment.yaml"
SCRATCH = "/scratch"
PART_OF = "sse-dist"
METRICS_PORT_NAME = "sse-metrics-{}"
"""Container port of the exporter of local rank r; the PodMonitor keeps ports named like this."""
SCRAPE_INTERVAL_S = 15.0
"""The PodMonitor's scrape interval: a pod's exporter stays up this long after its stage ends, so a stage's
final counters are scraped however it ends between two scrapes."""
RANKS_LABEL = "sse-dist.io/ranks-per-node"
"""Pod label of a pod that declares more exporter ports than it runs ranks (a TrainJob's, whose runtime declares
8): the PodMonitor keeps the ports of ranks below it."""
S3_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
Obj = dict[str, Any]


def labels(job: str, component: str) -> dict[str, str]:
    """The labels the PodMonitor selects on (``part-of``) and copies onto every series (instance, component)."""
    return {
        "app.kubernetes.io/name": "sse-dist",
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/instance": job,
        "app.kubernetes.io/component": component,
    }


def env(cfg: LaunchConfig, extra: dict[str, str] | None = None) -> list[Obj]:
    out: list[Obj] = []
    if cfg.s3_secret:
        out += [
            {"name": k, "valueFrom": {"secretKeyRef": {"name": cfg.s3_secret, "key": k}}} for k in S3_KEYS
        ]
    if cfg.s3_endpoint:
        out.append({"name": "FSSPEC_S3_ENDPOINT_URL", "value": cfg.s3_endpoint})
    pairs = [item.split("=", 1) for item in cfg.env] + list((extra or {}).items())
    return out + [{"name": k, "value": v} for k, v in pairs]


def metrics_ports(base: int, ranks: int) -> list[Obj]:
    return [{"name": METRICS_PORT_NAME.format(r), "containerPort": base + r} for r in range(ranks)]


def resources(cpus: int, memory: str, gpus: int = 0) -> Obj:
    amount: dict[str, Any] = {"cpu": str(cpus), "memory": memory}
    if gpus:
        amount["nvidia.com/gpu"] = str(gpus)
    # Requests equal limits: training pods get the Guaranteed QoS class and are the last to be evicted.
    return {"requests": dict(amount), "limits": dict(amount)}


def volumes(config_map: str, shm: str, scratch: str | None = None) -> list[Obj]:
    out = [
        {"name": "config", "configMap": {"name": config_map}},
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": shm}},
    ]
    if scratch:
        out.append({"name": "scratch", "emptyDir": {"sizeLimit": scratch}})
    return out


def mounts(scratch: bool = False) -> list[Obj]:
    out = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "dshm", "mountPath": "/dev/shm"},
    ]
    if scratch:
        out.append({"name": "scratch", "mountPath": SCRATCH})
    return out


def container_security(cfg: LaunchConfig) -> Obj:
    return {
        "runAsNonRoot": True,
        "runAsUser": cfg.run_as_user,
        "runAsGroup": cfg.run_as_user,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container(cfg: LaunchConfig, name: str, **fields: Any) -> Obj:
    """A container of the sse-dist image; ``fields`` adds args, env, ports, resources, volumeMounts."""
    return {
        "name": name,
        "image": cfg.image,
        "imagePullPolicy": cfg.image_pull_policy,
        **fields,
        "securityContext": container_security(cfg),
    }


def _toleration(item: str) -> Obj:
    spec, effect = item.rsplit(":", 1)
    key, sep, value = spec.partition("=")
    if sep:
        return {"key": key, "operator": "Equal", "value": value, "effect": effect}
    return {"key": key, "operator": "Exists", "effect": effect}


def pod_security(cfg: LaunchConfig) -> Obj:
    return {
        "runAsNonRoot": True,
        "runAsUser": cfg.run_as_user,
        "runAsGroup": cfg.run_as_user,
        "fsGroup": cfg.run_as_user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def placement(cfg: LaunchConfig) -> Obj:
    """Node selector, tolerations, priority and pull secret: the pod spec fields set only when configured."""
    spec: Obj = {}
    if cfg.node_selector:
        spec["nodeSelector"] = dict(item.split("=", 1) for item in cfg.node_selector)
    if cfg.tolerations:
        spec["tolerations"] = [_toleration(t) for t in cfg.tolerations]
    if cfg.priority_class:
        spec["priorityClassName"] = cfg.priority_class
    if cfg.image_pull_secret:
        spec["imagePullSecrets"] = [{"name": cfg.image_pull_secret}]
    return spec


def pod_spec(cfg: LaunchConfig, containers: list[Obj], vols: list[Obj], **fields: Any) -> Obj:
    return {
        "serviceAccountName": cfg.service_account,
        # The job pods never call the Kubernetes API: no token is mounted.
        "automountServiceAccountToken": False,
        "securityContext": pod_security(cfg),
        "containers": containers,
        **({"volumes": vols} if vols else {}),
        **fields,
        **placement(cfg),
    }


def template(job: str, component: str, spec: Obj) -> Obj:
    return {"metadata": {"labels": labels(job, component)}, "spec": spec}
