"""``sse-dist launch``: render a stage's Kubernetes job from the experiment config, then write, create or follow it.

    sse-dist launch preprocess|train --config FILE [--dry-run | --apply [--server-dry-run]] [--LAUNCH_FIELD VALUE]
    sse-dist launch status|logs preprocess|train --config FILE [--follow]

Every manifest is validated offline before it is written or sent. ``--dry-run`` (the default) writes them under
``launch.output``; ``--apply`` creates them in the current kubeconfig context; ``--apply --server-dry-run`` has
that cluster's API server check them (its CRDs, its admission webhooks) without creating anything.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import yaml

from ..config import ExperimentConfig

JOBS = ("preprocess", "train")
ACTIONS = (*JOBS, "status", "logs")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.usage = (
        "sse-dist launch {preprocess,train} [--dry-run | --apply [--server-dry-run]] [--config FILE ...] "
        "[--FIELD VALUE ...]\n"
        "       sse-dist launch {status,logs} {preprocess,train} [--follow] [--config FILE ...]"
    )
    p.add_argument("action", choices=ACTIONS, help="render a stage's job, or follow one (status, logs)")
    p.add_argument(
        "job", nargs="?", choices=JOBS, metavar="JOB", help="the job to follow: preprocess or train"
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="write the manifests (the default)")
    mode.add_argument("--apply", action="store_true", help="create the job in the current kubeconfig context")
    p.add_argument(
        "--server-dry-run",
        action="store_true",
        help="with --apply: the API server validates and admits the objects (dryRun=All) and creates nothing",
    )
    p.add_argument("--follow", action="store_true", help="logs: keep streaming")


class _Dumper(yaml.SafeDumper):
    """Plain manifests: no anchors for the pod template the replicas share, multi-line strings as blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(obj: dict[str, Any]) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False)


def write(objs: list[dict[str, Any]], folder: str) -> list[str]:
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i, obj in enumerate(objs):
        path = os.path.join(folder, f"{i:02d}-{obj['kind'].lower()}.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(to_yaml(obj))
        paths.append(path)
    return paths


def _follow(args: argparse.Namespace, cfg: ExperimentConfig) -> dict[str, Any]:
    from . import cluster, render
    from .train_job import is_elastic

    if args.job is None:
        raise ValueError(f"launch {args.action}: name the job (preprocess or train)")
    name = render.job_name(cfg, args.job)
    kind = render.job_module(cfg, args.job).KIND
    api = cluster.connect()
    if args.action == "status":
        return cluster.status(api, kind, cfg.launch.namespace, name)
    return cluster.logs(api, kind, cfg.launch.namespace, name, args.follow, is_elastic(cfg))


def run(args: argparse.Namespace, cfg: ExperimentConfig) -> dict[str, Any]:
    if args.action not in JOBS:
        return _follow(args, cfg)
    from . import render, validate

    if args.server_dry_run and not args.apply:
        raise ValueError("launch: --server-dry-run goes with --apply (it sends the objects to the cluster)")
    objs = render.render(cfg, args.action)
    version = validate.validate_all(objs, cfg.launch.kubernetes_version)
    if args.apply:
        from . import cluster

        sent = cluster.apply(cluster.connect(), objs, dry_run=args.server_dry_run)
        key = "accepted_by_server_dry_run" if args.server_dry_run else "created"
        return {key: sent, "validated_against": version}
    folder = os.path.join(cfg.launch.output, render.job_name(cfg, args.action))
    return {"written": write(objs, folder), "validated_against": version}
