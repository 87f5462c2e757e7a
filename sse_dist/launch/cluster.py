"""Creating and following the jobs through the Kubernetes API (the official Python client, current kubeconfig).

``apply`` creates the ConfigMap, then the job, then makes the job the ConfigMap's owner so that deleting the
job deletes its config too; with ``dry_run`` the API server checks both (schemas of the CRDs the cluster really
has, admission webhooks) and persists nothing. ``status`` summarises the job (for a TrainJob also its JobSet)
and its pods; ``logs`` prints the log of the pod that speaks for the job (the first training pod, or the
RayJob's submitter, which relays the driver's log).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import MaxRetryError

from . import pytorch_job, ray_job, render, trainjob

KINDS = {module.KIND: module for module in render.JOB_MODULES}
T = TypeVar("T")


def connect() -> client.ApiClient:
    """A client for the current kubeconfig context (or the pod's service account inside a cluster)."""
    try:
        # KUBECONFIG read now: the client reads it once, when it is imported.
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
    except config.ConfigException:
        try:
            config.load_incluster_config()
        except config.ConfigException:
            raise RuntimeError(
                "no Kubernetes cluster configured: no kubeconfig (KUBECONFIG, ~/.kube/config) and not in a pod"
            ) from None
    return client.ApiClient()


def _refusal(e: ApiException) -> str:
    """The API server's own message (for a refused object: every invalid field) on one line."""
    try:
        message = json.loads(e.body)["message"]
    except (TypeError, ValueError, KeyError):
        message = e.reason
    return f"the API server answered {e.status}: {' '.join(str(message).split())}"


def _api_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """One line instead of a client trace when the API server does not answer or refuses a request."""

    @functools.wraps(fn)
    def call(api: client.ApiClient, *args: Any, **kwargs: Any) -> T:
        try:
            return fn(api, *args, **kwargs)
        except MaxRetryError as e:
            raise RuntimeError(
                f"no Kubernetes API server reachable at {api.configuration.host} "
                f"({type(e.reason).__name__}); check the kubeconfig's current context"
            ) from None
        except ApiException as e:
            raise RuntimeError(_refusal(e)) from None

    return call


def _custom(api: client.ApiClient, kind: str) -> tuple[client.CustomObjectsApi, str, str, str]:
    module = KINDS[kind]
    group, version = module.API_VERSION.split("/")
    return client.CustomObjectsApi(api), group, version, module.PLURAL


def _create_config_map(core: client.CoreV1Api, obj: dict[str, Any], opts: dict[str, str]) -> None:
    meta = obj["metadata"]
    try:
        core.create_namespaced_config_map(meta["namespace"], obj, **opts)
    except ApiException as e:
        if e.status != 409:
            raise
        # Left over from an earlier run of the same job name: its job is gone (else the job create fails below).
        core.replace_namespaced_config_map(meta["name"], meta["namespace"], obj, **opts)


def _create_job(api: client.ApiClient, job: dict[str, Any], opts: dict[str, str]) -> dict[str, Any]:
    custom, group, version, plural = _custom(api, job["kind"])
    ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
    try:
        return custom.create_namespaced_custom_object(group, version, ns, plural, job, **opts)
    except ApiException as e:
        if e.status == 409:
            raise RuntimeError(
                f"{job['kind']} {ns}/{name} already exists: follow it with `sse-dist launch status`, or delete it "
                f"(kubectl -n {ns} delete {plural} {name}) or set another launch.name"
            ) from None
        if e.status == 404:
            raise RuntimeError(
                f"the cluster does not serve {job['apiVersion']} {plural}: install its operator (see "
                "docs/kubernetes.md), or for training choose the other launch.train_api"
            ) from None
        raise


@_api_errors
def apply(api: client.ApiClient, objs: list[dict[str, Any]], dry_run: bool = False) -> list[str]:
    """Create ``[config_map, job]``; an existing job of the same name is an error, never replaced.

    ``dry_run``: the server validates and admits both as if creating them (``dryRun=All``) and keeps nothing.
    """
    cm, job = objs
    opts = {"dry_run": "All"} if dry_run else {}
    core = client.CoreV1Api(api)
    _create_config_map(core, cm, opts)
    created = _create_job(api, job, opts)
    ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
    if dry_run:
        return [f"ConfigMap {ns}/{cm['metadata']['name']}", f"{job['kind']} {ns}/{name}"]
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


def _conditions(status: dict[str, Any]) -> dict[str, Any]:
    conditions = status.get("conditions") or []
    current = [c["type"] for c in conditions if c.get("status", "True") == "True"]
    return {
        "state": current[-1] if current else "Pending",
        "conditions": [{k: c.get(k) for k in ("type", "reason", "message")} for c in conditions],
    }


def _jobset(api: client.ApiClient, ns: str, name: str) -> dict[str, Any] | None:
    """The JobSet of a TrainJob: its restarts (a failed node restarts them all) and child Jobs."""
    group, version, plural = trainjob.JOBSET_API
    try:
        found = client.CustomObjectsApi(api).get_namespaced_custom_object(group, version, ns, plural, name)
    except ApiException as e:
        if e.status == 404:  # not created yet (or the TrainJob is suspended)
            return None
        raise
    status = found.get("status") or {}
    return {
        **_conditions(status),
        "restarts": status.get("restarts", 0),
        "replicatedJobs": status.get("replicatedJobsStatus", []),
    }


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
    if kind == trainjob.KIND:
        state, jobs = _conditions(status), status.get("jobsStatus", [])
        # A TrainJob's conditions are Suspended, Complete and Failed only: running shows in its child Jobs.
        if state["state"] == "Pending" and any(j.get("active") for j in jobs):
            state["state"] = "Running"
        return {**state, "jobs": jobs}
    return {**_conditions(status), "replicas": status.get("replicaStatuses", {})}


@_api_errors
def status(api: client.ApiClient, kind: str, ns: str, name: str) -> dict[str, Any]:
    custom, group, version, plural = _custom(api, kind)
    job = custom.get_namespaced_custom_object(group, version, ns, plural, name)
    state = _job_state(kind, job)
    if kind == trainjob.KIND:
        state["jobset"] = _jobset(api, ns, name)
    found = _pods(client.CoreV1Api(api), ns, name)
    return {
        "job": f"{kind} {ns}/{name}",
        **state,
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
    if kind == trainjob.KIND:
        # After a JobSet restart the newest pod of node 0 is the live one.
        first = [p for p in found if p.metadata.name.startswith(trainjob.first_pod_prefix(name))]
        if not first:
            raise RuntimeError(f"TrainJob {name}: no pod of node 0 yet (the JobSet is still starting)")
        return max(first, key=lambda p: p.metadata.creation_timestamp).metadata.name, trainjob.CONTAINER
    if kind == pytorch_job.KIND:
        return pytorch_job.first_pod(name, elastic), pytorch_job.CONTAINER
    submitters = [
        p for p in found if p.metadata.labels.get("app.kubernetes.io/component") == "preprocess-submitter"
    ]
    if not submitters:
        raise RuntimeError(f"RayJob {name}: no submitter pod yet (the Ray cluster is still starting)")
    return submitters[-1].metadata.name, "submitter"


@_api_errors
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
