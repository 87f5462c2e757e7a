"""``sse-dist launch ... --dry-run``: manifests rendered from the experiment config, validated offline against
the built-in schemas (the operators' own CRDs: test_launch_crds.py)."""

import copy
from pathlib import Path

import pytest
import yaml
from crd_helpers import rename

from sse_dist.cli import main
from sse_dist.config import ConfigError, ExperimentConfig, load
from sse_dist.launch import pods, render, validate

REPO = Path(__file__).resolve().parents[2]
CLUSTER = str(REPO / "configs" / "cluster-4x8.yaml")
K8S = "1.31"


def _cfg(*overrides):
    return load(ExperimentConfig, [CLUSTER], list(overrides))


PYTORCHJOB = "launch.train_api=pytorchjob"


def _env(container):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_cli_dry_run_writes_valid_manifests_for_a_4x8_job(tmp_path, capsys):
    for stage in ("train", "preprocess"):
        assert main(["launch", stage, "--config", CLUSTER, "--dry-run", "--output", str(tmp_path)]) == 0
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.yaml"))
    assert written == [
        "ssl-4x8-preprocess/00-configmap.yaml",
        "ssl-4x8-preprocess/01-rayjob.yaml",
        "ssl-4x8-train/00-configmap.yaml",
        "ssl-4x8-train/01-trainjob.yaml",
    ]
    for path in tmp_path.rglob("*.yaml"):  # what was written is what was validated
        validate.validate(yaml.safe_load(path.read_text()), K8S)
    assert '"validated_against": "1.31"' in capsys.readouterr().out


def test_trainjob_runs_torchrun_on_4_nodes_x_8_gpus():
    cm, job = render.render(_cfg(), "train")
    validate.validate_all([cm, job], K8S)
    assert job["spec"]["runtimeRef"] == {
        "apiGroup": "trainer.kubeflow.org", "kind": "TrainingRuntime", "name": "sse-dist-torch",
    }  # fmt: skip
    trainer = job["spec"]["trainer"]
    assert (trainer["numNodes"], trainer["numProcPerNode"]) == (4, 8)
    assert trainer["image"] == "registry.example.com/speech/sse-dist:0.1.0"
    assert trainer["args"] == ["train", "--config", pods.CONFIG_FILE] and "command" not in trainer
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in trainer["env"]}
    assert env["NNODES"] == "4" and env["NPROC_PER_NODE"] == "8" and env["RDZV_ID"] == "ssl-4x8-train"
    # Pod 0 of replicated Job "node", under the JobSet's headless service (named like the job).
    assert env["RDZV_ENDPOINT"] == "ssl-4x8-train-node-0-0.ssl-4x8-train:29400"
    assert not any(name.startswith("PET_") for name in env)  # Trainer's own; it refuses them in trainer.env
    assert env["AWS_SECRET_ACCESS_KEY"] == {
        "secretKeyRef": {"name": "sse-dist-s3", "key": "AWS_SECRET_ACCESS_KEY"}
    }
    res = trainer["resourcesPerNode"]
    assert res["limits"]["nvidia.com/gpu"] == "8" and res["requests"] == res["limits"]
    (patch,) = job["spec"]["runtimePatches"]
    (node,) = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    assert node["name"] == "node"
    pod = node["template"]["spec"]["template"]
    # What the PodMonitor selects and copies, and which of the runtime's 8 exporter ports it keeps.
    assert pod["metadata"]["labels"] == {**pods.labels("ssl-4x8-train", "train"), pods.RANKS_LABEL: "8"}
    spec = pod["spec"]
    assert spec["serviceAccountName"] == "sse-dist" and spec["securityContext"]["runAsNonRoot"]
    (c,) = spec["containers"]
    assert c["name"] == "node" and c["securityContext"]["allowPrivilegeEscalation"] is False
    assert {m["mountPath"] for m in c["volumeMounts"]} == {pods.CONFIG_DIR, "/dev/shm", pods.SCRATCH}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "64Gi"}
    assert volumes["config"]["configMap"]["name"] == cm["metadata"]["name"]
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("launch.train.min_nodes=2", "launch.train.min_nodes: elastic training needs train_api: pytorchjob"),
        ("launch.train.backoff_limit=5", "launch.train.backoff_limit: a TrainJob's restarts are its"),
        ("launch.train.restart_policy=Never", "launch.train.restart_policy: a TrainJob's restarts are its"),
        ("launch.metrics_port=9500", "launch.metrics_port: set in the TrainingRuntime"),
        ("launch.priority_class=high", "launch.priority_class: set in the TrainingRuntime"),
        ("launch.image_pull_policy=Always", "launch.image_pull_policy: set in the TrainingRuntime"),
        ("launch.train.procs_per_node=16", "launch.train.procs_per_node: 16 ranks per node, but the"),
        ("launch.train.runtime=Not_A_Name", "launch.train.runtime: must name a TrainingRuntime"),
    ],
)
def test_what_a_trainjob_cannot_set_per_job_is_refused_naming_the_field(override, message):
    with pytest.raises(ConfigError, match=f"^{message}"):
        _cfg(override)
    if "runtime=" not in override:
        _cfg(override, PYTORCHJOB)  # the PyTorchJob sets each of these per job


def test_pytorchjob_runs_torchrun_on_4_nodes_x_8_gpus():
    cm, job = render.render(_cfg(PYTORCHJOB), "train")
    validate.validate_all([cm, job], K8S)
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert (replicas["Master"]["replicas"], replicas["Worker"]["replicas"]) == (1, 3)
    pod = replicas["Worker"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["name"] == "pytorch" and c["args"] == ["train", "--config", pods.CONFIG_FILE]
    env = _env(c)
    assert env["NNODES"] == "4" and env["NPROC_PER_NODE"] == "8"
    assert env["RDZV_ENDPOINT"] == "ssl-4x8-train-master-0:29400" and env["RDZV_ID"] == "ssl-4x8-train"
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "8" and c["resources"]["requests"]["cpu"] == "64"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert [ports[f"sse-metrics-{r}"] for r in range(8)] == list(range(9400, 9408))
    assert (
        pod["securityContext"]["runAsNonRoot"] and c["securityContext"]["allowPrivilegeEscalation"] is False
    )
    assert {"medium": "Memory", "sizeLimit": "64Gi"} in [v.get("emptyDir") for v in pod["volumes"]]
    assert job["spec"]["runPolicy"]["backoffLimit"] == 3 and "elasticPolicy" not in job["spec"]


def _in_pod(cm, folder):
    """The config a pod loads from the ConfigMap, through the same loader as the local commands."""
    path = folder / f"{cm['metadata']['name']}.yaml"
    path.write_text(cm["data"]["experiment.yaml"])
    return load(ExperimentConfig, [str(path)])


def test_pods_run_the_same_config_resolved_for_the_cluster(tmp_path):
    cfg = _cfg()
    cm, _ = render.render(cfg, "train")
    in_pod = _in_pod(cm, tmp_path)
    assert in_pod.train.resume and in_pod.train.checkpoint_staging == f"{pods.SCRATCH}/checkpoints"
    assert (in_pod.train.metrics.address, in_pod.train.metrics.port) == ("0.0.0.0", 9400)
    # The exporter outlives the run by one PodMonitor interval, so the last steps are scraped.
    monitor = yaml.safe_load((REPO / "k8s/base/podmonitor.yaml").read_text())
    interval = monitor["spec"]["podMetricsEndpoints"][0]["interval"]
    assert in_pod.train.metrics.final_scrape_s == pods.SCRAPE_INTERVAL_S == float(interval.rstrip("s"))
    assert in_pod.train.steps == cfg.train.steps == 200000
    assert in_pod.train.optim == cfg.train.optim and in_pod.train.model == cfg.train.model
    cm, job = render.render(cfg, "preprocess")
    in_pod = _in_pod(cm, tmp_path)
    assert in_pod.preprocess.shards == cfg.preprocess.shards and in_pod.preprocess.ray_address == ""
    # The RayJob's entrypoint is the local command, reading that config.
    assert job["spec"]["entrypoint"] == f"sse-dist preprocess --config {pods.CONFIG_FILE}"


def test_rayjob_has_cpu_workers_and_a_gpu_group_only_when_asked():
    _, job = render.render(_cfg(), "preprocess")
    spec = job["spec"]["rayClusterSpec"]
    assert [g["groupName"] for g in spec["workerGroupSpecs"]] == ["cpu"]
    assert spec["headGroupSpec"]["rayStartParams"] == {"num-cpus": "0"}  # shard tasks run on the workers
    assert spec["authOptions"] == {"mode": "token"}
    _, job = render.render(_cfg("launch.preprocess.gpu_workers=2"), "preprocess")
    validate.validate(job, K8S)
    gpu = job["spec"]["rayClusterSpec"]["workerGroupSpecs"][1]
    assert gpu["groupName"] == "gpu" and gpu["replicas"] == 2
    assert gpu["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_credentials_are_referenced_never_inlined():
    for stage, overrides in (("train", []), ("train", [PYTORCHJOB]), ("preprocess", [])):
        text = yaml.safe_dump(render.render(_cfg(*overrides), stage))
        assert "secretKeyRef" in text and "name: sse-dist-s3" in text
    with pytest.raises(ConfigError, match="launch.env: AWS_SECRET_ACCESS_KEY looks like a credential"):
        _cfg("launch.env=[AWS_SECRET_ACCESS_KEY=abc]")


def test_elastic_job_needs_zero_stage_0_and_renders_worker_only_with_min_max():
    elastic = ("launch.train.min_nodes=2", "launch.train.max_nodes=6", PYTORCHJOB)
    with pytest.raises(ConfigError, match="launch.train.min_nodes: elastic training needs .*zero_stage=0"):
        render.render(_cfg(*elastic), "train")
    cfg = _cfg(*elastic, "train.deepspeed.zero_stage=0")
    _, job = render.render(cfg, "train")
    validate.validate(job, K8S)
    assert list(job["spec"]["pytorchReplicaSpecs"]) == ["Worker"]
    assert job["spec"]["elasticPolicy"] | {} == {
        "minReplicas": 2, "maxReplicas": 6, "rdzvBackend": "c10d", "rdzvPort": 29400, "maxRestarts": 3,
    }  # fmt: skip
    env = _env(job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0])
    assert env["NNODES"] == "2:6" and env["RDZV_ENDPOINT"] == "ssl-4x8-train-worker-0:29400"


@pytest.mark.parametrize(
    ("field", "value"),
    [("train.output", "runs/x"), ("train.shards", "shards/train"), ("preprocess.shards", "/data/sets")],
)
def test_local_paths_are_refused_naming_the_field(field, value):
    stage = field.split(".")[0]
    with pytest.raises(ConfigError, match=f"^{field}: '{value}' is a local path"):
        render.render(_cfg(f"{field}={value}"), stage)


def _set(path, value):
    def mutate(obj):
        *parents, leaf = path
        for p in parents:
            obj = obj[p]
        obj[leaf] = value

    return mutate


MASTER = ["spec", "pytorchReplicaSpecs", "Master"]
TRAINER = ["spec", "trainer"]
POD_PATCH = ["spec", "runtimePatches", 0, "trainingRuntimeSpec", "template", "spec", "replicatedJobs", 0]
POD_PATCH += ["template", "spec", "template", "spec"]
HEAD = ["spec", "rayClusterSpec", "headGroupSpec"]
CONTAINER = ["template", "spec", "containers", 0]


@pytest.mark.parametrize(
    ("stage", "index", "mutate", "message"),
    [
        ("train", 1, rename([*TRAINER, "numProcPerNode"], "nprocPerNode"), "'nprocPerNode' was unexpected"),
        ("train", 1, _set([*TRAINER, "numNodes"], "4"), "'4' is not of type 'integer'"),
        ("train", 1, _set([*TRAINER, "numProcPerNode"], 0), "0 is less than the minimum of 1"),
        ("train", 1, rename([*POD_PATCH, "volumes"], "volume"), "'volume' was unexpected"),
        ("train", 1, _set([*POD_PATCH, "priorityClassName"], "high"), "'priorityClassName' was unexpected"),
        ("train", 1, _set([*POD_PATCH, "containers", 0, "ports"], []), "'ports' was unexpected"),
        ("train", 1, _set([*TRAINER, "env", 0, "name"], "PET_NNODES"), "should not be valid"),
        ("train", 1, _set(["spec", "runtimeRef", "kind"], "Runtime"), "'Runtime' is not one of"),
        ("pytorchjob", 1, _set([*MASTER, "replicas"], "1"), "'1' is not of type 'integer'"),
        ("pytorchjob", 1, _set([*MASTER, "replicas"], 2), "1 was expected"),
        ("pytorchjob", 1, _set([*MASTER, "restartPolicy"], "Sometimes"), "'Sometimes' is not one of"),
        (
            "pytorchjob",
            1,
            rename([*MASTER, *CONTAINER, "volumeMounts"], "volumeMount"),
            "'volumeMount' was unexpected",
        ),
        (
            "pytorchjob",
            1,
            _set([*MASTER, *CONTAINER, "ports", 0, "containerPort"], "9400"),
            "not of type 'integer'",
        ),
        ("pytorchjob", 1, _set([*MASTER, *CONTAINER, "name"], "trainer"), "does not contain items matching"),
        ("preprocess", 1, _set([*HEAD, "rayStartParams", "num-cpus"], 0), "0 is not of type 'string'"),
        ("preprocess", 1, rename(["spec", "entrypoint"], "entryPoint"), "'entryPoint' was unexpected"),
        (
            "preprocess",
            1,
            _set([*HEAD, *CONTAINER, "resources", "limits"], ["cpu"]),
            "is not of type 'object'",
        ),
        ("preprocess", 1, _set(["metadata", "name"], "x" * 48), "is too long"),
        ("train", 0, rename(["data"], "date"), "'date' was unexpected"),
        ("train", 0, _set(["data", "experiment.yaml"], 3), "3 is not of type 'string'"),
    ],
)
def test_a_misspelled_field_or_a_wrong_type_fails_validation(stage, index, mutate, message):
    objs = render.render(_cfg(PYTORCHJOB), "train") if stage == "pytorchjob" else render.render(_cfg(), stage)
    validate.validate(objs[index], K8S)
    bad = copy.deepcopy(objs[index])
    mutate(bad)
    with pytest.raises(validate.ManifestError) as err:
        validate.validate(bad, K8S)
    assert message in str(err.value), str(err.value)
