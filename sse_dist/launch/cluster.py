"""Creating and following the jobs through the Kubernetes API (the official Python client, current kubeconfig).

``apply`` creates the ConfigMap, then the job, then makes the job the ConfigMap's owner so that deleting the
job deletes its config too. ``status`` summarises the job and its pods; ``logs`` prints the log of the pod
that speaks for the job (the first training pod, or the RayJob's submitter, which relays the driver's log).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from . import ray_job, train_job

KINDS = {train_job.KIND: train_job, ray_job.KIND: ray_job}


def connect() -> client.ApiClient:
    """A client for the current kubeconfig context (or the pod's service account inside a cluster)."""
    try:
        # KUBECONFIG read now: the client reads it once, when it is imported.
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
    except config.ConfigException:
        config.load_incluster_config()
    return client.ApiClient()


def _custom(api: client.ApiClient, kind: str) -> tuple[client.CustomObjectsApi, str, str, str]:
    module = KINDS[kind]
    group, version = module.API_VERSION.split("/")
    return client.CustomObjectsApi(api), group, version, module.PLURAL


def _create_config_map(core: client.CoreV1Api, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    try:
        core.create_namespaced_config_map(meta["namespace"], obj)
    except ApiException as e:
        if e.status != 409:
            raise
        # Left over from an earlier run of the same job name: its job is gone (else the job create fails below).
        core.replace_namespaced_config_map(meta["name"], meta["namespace"], obj)


def apply(api: client.ApiClient, objs: list[dict[str, Any]]) -> list[str]:
    """Create ``[config_map, job]``; an existing job of the same name is an error, never replaced."""
    cm, job = objs
    core = client.CoreV1Api(api)
    _create_config_map(core, cm)
    custom, group, version, plural = _custom(api, job["kind"])
    ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
    try:
        created = custom.create_namespaced_custom_object(group, version, ns, plural, job)
    except ApiException as e:
        if e.status == 409:
            raise RuntimeError(
                f"{job['kind']} {ns}/{name} already exists: follow it with `sse-dist launch status`, or delete it "
                f"(kubectl -n {ns} delete {plural} {name}) or set another launch.name"
            ) from None
        raise
    owner = {
        "apiVersion": job["apiVersion"],
        "kind": job["kind"],
        "name": name,
        "uid": created["metadata"]["uid"],
    }
    core.patch_namespaced_config_map(cm["metadata"]["name"], ns, {"metadata": {"ownerReferences": [owner]}})
    return [f"ConfigMap {ns}/{cm['metadata']['name']}", f"{job['kind']} {ns}/{name}"]


def _pods(core: client.CoreV1Api, ns: str, name: str) -> list[Any]:
    selector = f"app.kubernetes.io/instance={name}"
    return sorted(core.list_namespaced_pod(ns, label_selector=selector).items, key=lambda p: p.metadata.name)


def _job_state(kind: str, job: dict[str, Any]) -> dict[str, Any]:
    status = job.get("status") or {}
    if kind == ray_job.KIND:
        keys = (
            "jobDeploymentStatus",
            "jobStatus",
            "rayClusterName",
            "reason",
            "message",
            "startTime",
            "endTime",
        )
        return {k: status[k] for k in keys if k in status}
    conditions = status.get("conditions") or []
    return {
        "state": conditions[-1]["type"] if conditions else "Pending",
        "conditions": [{k: c.get(k) for k in ("type", "reason", "message")} for c in conditions],
        "replicas": status.get("replicaStatuses", {}),
    }


def status(api: client.ApiClient, kind: str, ns: str, name: str) -> dict[str, Any]:
    custom, group, version, plural = _custom(api, kind)
    job = custom.get_namespaced_custom_object(group, version, ns, plural, name)
    found = _pods(client.CoreV1Api(api), ns, name)
    return {
        "job": f"{kind} {ns}/{name}",
        **_job_state(kind, job),
        "pods": [
            {
                "name": p.metadata.name,
                "phase": p.status.phase,
                "restarts": sum(c.restart_count for c in p.status.container_statuses or []),
            }
            for p in found
        ],
    }


def _log_source(kind: str, name: str, found: list[Any], elastic: bool) -> tuple[str, str]:
    """(pod, container) whose log speaks for the job."""
    if kind == train_job.KIND:
        pod = f"{name}-worker-0" if elastic else f"{name}-master-0"
        return pod, train_job.CONTAINER
    submitters = [
        p for p in found if p.metadata.labels.get("app.kubernetes.io/component") == "preprocess-submitter"
    ]
    if not submitters:
        raise RuntimeError(f"RayJob {name}: no submitter pod yet (the Ray cluster is still starting)")
    return submitters[-1].metadata.name, "submitter"


def logs(
    api: client.ApiClient, kind: str, ns: str, name: str, follow: bool, elastic: bool = False
) -> dict[str, Any]:
    core = client.CoreV1Api(api)
    pod, container = _log_source(kind, name, _pods(core, ns, name), elastic)
    stream = core.read_namespaced_pod_log(pod, ns, container=container, follow=follow, _preload_content=False)
    lines = 0
    for line in stream.stream():
        sys.stdout.write(line.decode("utf-8", "replace"))
        lines += line.count(b"\n")
    sys.stdout.flush()
    return {"pod": pod, "container": container, "lines": lines}
