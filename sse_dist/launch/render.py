"""The Kubernetes objects of one stage, rendered from the experiment config the local commands use.

The pods get that same config, resolved, in a ConfigMap: what differs on a cluster (exporters on the pod
network, checkpoint staging on the pod's scratch volume, resuming after a pod restart, the Ray cluster from
``RAY_ADDRESS``) is set here, in code, rather than copied by hand between YAML files.
"""

from __future__ import annotations

from dataclasses import replace
from types import ModuleType

from .. import storage
from ..config import ConfigError, ExperimentConfig, MetricsConfig, dump_yaml
from . import pods, pytorch_job, ray_job, train_job, trainjob
from .pods import Obj

STAGES = ("preprocess", "train")
TRAIN_APIS = {"trainjob": trainjob, "pytorchjob": pytorch_job}
JOB_MODULES = (ray_job, *TRAIN_APIS.values())


def job_module(cfg: ExperimentConfig, stage: str) -> ModuleType:
    """The renderer of ``stage``'s job: the RayJob, or the training job of ``launch.train_api``."""
    if stage not in STAGES:
        raise ValueError(f"launch: no Kubernetes job for stage {stage!r} (one of {list(STAGES)})")
    return ray_job if stage == "preprocess" else TRAIN_APIS[cfg.launch.train_api]


def job_name(cfg: ExperimentConfig, stage: str) -> str:
    return f"{cfg.launch.name}-{stage}"


def _require_remote(field: str, urls: list[str]) -> None:
    if not urls:
        raise ConfigError(f"{field}: empty; a cluster job needs its data on object storage (s3://...)")
    for url in urls:
        if not storage.is_remote(url):
            raise ConfigError(
                f"{field}: {url!r} is a local path; pods reach data only through object storage"
            )


def _check(cfg: ExperimentConfig, stage: str) -> None:
    if stage == "preprocess":
        _require_remote("preprocess.shards", cfg.preprocess.shards)
        return
    t = cfg.train
    _require_remote("train.shards", t.shards)
    _require_remote("train.output", [t.output])
    if t.labelled_speakers:
        _require_remote("train.labelled_speakers", [t.labelled_speakers])
    if train_job.is_elastic(cfg) and t.deepspeed.zero_stage != 0:
        raise ConfigError(
            "launch.train.min_nodes: elastic training needs train.deepspeed.zero_stage=0 (DeepSpeed cannot "
            f"resume ZeRO-{t.deepspeed.zero_stage} optimizer partitions with another number of ranks)"
        )


def cluster_config(cfg: ExperimentConfig, stage: str) -> ExperimentConfig:
    """The experiment config as the pods of ``stage`` run it."""
    _check(cfg, stage)
    exporter = MetricsConfig(
        address="0.0.0.0", port=cfg.launch.metrics_port, final_scrape_s=pods.SCRAPE_INTERVAL_S
    )
    if stage == "preprocess":
        pre = replace(cfg.preprocess, ray_address="", num_cpus=0, metrics=exporter)
        return replace(cfg, preprocess=pre)
    # A restarted pod continues from the latest checkpoint instead of starting over.
    train = replace(
        cfg.train, resume=True, checkpoint_staging=f"{pods.SCRATCH}/checkpoints", metrics=exporter
    )
    return replace(cfg, train=train)


def config_map(cfg: ExperimentConfig, stage: str, name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"{name}-config",
            "namespace": cfg.launch.namespace,
            "labels": pods.labels(name, stage),
        },
        "data": {"experiment.yaml": dump_yaml(cluster_config(cfg, stage))},
    }


def render(cfg: ExperimentConfig, stage: str) -> list[Obj]:
    """The ConfigMap holding the resolved config, then the job that mounts it."""
    module = job_module(cfg, stage)
    name = job_name(cfg, stage)
    cm = config_map(cfg, stage, name)
    return [cm, module.render(cfg, name, cm["metadata"]["name"])]
