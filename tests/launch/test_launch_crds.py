"""Every manifest ``sse-dist launch`` renders, and every operator object in ``k8s/``, checked strictly against the
operators' own CRDs (../shared/crds) as well as the built-in schemas; the built-in schemas accept nothing that
those CRDs reject."""

import copy
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from crd_helpers import CRDS, FILES, errors, needs_crds, rename

from sse_dist.config import ExperimentConfig, LaunchConfig, load
from sse_dist.launch import render, trainjob, validate

pytestmark = needs_crds
REPO = Path(__file__).resolve().parents[2]
CLUSTER = str(REPO / "configs" / "cluster-4x8.yaml")
DEMO = str(REPO / "configs" / "demo.yaml")
K8S = LaunchConfig().kubernetes_version
PYTORCHJOB = "launch.train_api=pytorchjob"
# The demo preset with its data in a bucket (a cluster job refuses local paths).
IN_S3 = [
    "train.shards=[s3://demo/sets/train]",
    "train.output=s3://demo/runs/ssl",
    "preprocess.shards=[s3://demo/sets/train]",
]
ELASTIC = [PYTORCHJOB, "launch.train.min_nodes=2", "launch.train.max_nodes=6", "train.deepspeed.zero_stage=0"]
MANIFESTS = {
    "cluster-trainjob": (CLUSTER, [], "train"),
    "cluster-pytorchjob": (CLUSTER, [PYTORCHJOB], "train"),
    "cluster-pytorchjob-elastic": (CLUSTER, ELASTIC, "train"),
    "cluster-rayjob": (CLUSTER, [], "preprocess"),
    "cluster-rayjob-gpu": (CLUSTER, ["launch.preprocess.gpu_workers=2"], "preprocess"),
    "demo-trainjob": (DEMO, IN_S3, "train"),
    "demo-pytorchjob": (DEMO, [*IN_S3, PYTORCHJOB], "train"),
    "demo-rayjob": (DEMO, IN_S3, "preprocess"),
}
K8S_FILES = ["base/trainingruntime.yaml", "base/podmonitor.yaml", "base/prometheusrule.yaml"]


def rendered(case):
    config, overrides, stage = MANIFESTS[case]
    return render.render(load(ExperimentConfig, [config], overrides), stage)


def k8s_object(path):
    return yaml.safe_load((REPO / "k8s" / path).read_text())


def official(obj):
    """Errors of ``obj`` under its operator's strict CRD schema; None for core kinds (no CRD)."""
    return errors(obj) if obj["kind"] in FILES else None


def builtin_rejects(obj):
    try:
        validate.validate(obj, K8S)
    except validate.ManifestError:
        return True
    return False


@pytest.mark.parametrize("case", MANIFESTS)
def test_every_rendered_manifest_is_valid_against_the_operators_crds(case):
    objs = rendered(case)
    validate.validate_all(objs, K8S)
    cm, job = objs
    assert official(cm) is None and official(job) == []


def test_the_default_train_job_is_a_trainjob_on_trainer_v2():
    _, job = rendered("cluster-trainjob")
    assert (job["apiVersion"], job["kind"]) == ("trainer.kubeflow.org/v1alpha1", "TrainJob")


@pytest.mark.parametrize("path", K8S_FILES)
def test_every_operator_object_in_k8s_is_valid_against_the_crds(path):
    obj = k8s_object(path)
    validate.validate(obj, K8S)
    assert official(obj) == []


@pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl (for `kubectl kustomize`) is not installed"
)
@pytest.mark.parametrize("tree", ["base", "overlays/local-kind", "overlays/gpu-cluster"])
def test_every_object_kustomize_builds_is_valid_against_the_crds(tree):
    out = subprocess.run(["kubectl", "kustomize", str(REPO / "k8s" / tree)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    operated = [o for o in yaml.safe_load_all(out.stdout) if o and o["kind"] in FILES]
    assert {o["kind"] for o in operated} == {"TrainingRuntime", "PodMonitor", "PrometheusRule"}
    assert all(official(o) == [] for o in operated)


def test_sse_dist_torch_is_the_stock_torch_distributed_runtime_and_more():
    stock = yaml.safe_load((CRDS / "runtime-torch_distributed.yaml").read_text())
    assert official(stock) == []  # the strict reading accepts what Kubeflow ships
    ours = k8s_object("base/trainingruntime.yaml")
    assert ours["spec"]["mlPolicy"] == stock["spec"]["mlPolicy"]

    def shape(runtime):
        (job,) = runtime["spec"]["template"]["spec"]["replicatedJobs"]
        pod = job["template"]["spec"]["template"]["spec"]
        return job["name"], job["template"]["metadata"]["labels"], [c["name"] for c in pod["containers"]]

    assert shape(ours) == shape(stock) == (
        trainjob.REPLICATED_JOB, {"trainer.kubeflow.org/trainjob-ancestor-step": "trainer"}, [trainjob.CONTAINER]
    )  # fmt: skip
    # What sse-dist adds (k8s/base/trainingruntime.yaml says why): a restart budget for lost nodes.
    assert ours["spec"]["template"]["spec"]["failurePolicy"]["maxRestarts"] >= 1


NODE_PATCH = ["spec", "runtimePatches", 0, "trainingRuntimeSpec", "template", "spec", "replicatedJobs", 0]
RUNTIME_JOB = ["spec", "template", "spec", "replicatedJobs", 0, "template", "spec"]


@pytest.mark.parametrize(
    ("source", "path", "new"),
    [
        ("cluster-trainjob", ["spec", "trainer", "numProcPerNode"], "numProcsPerNode"),
        ("cluster-trainjob", ["spec", "runtimeRef"], "runtimeRefs"),
        ("cluster-trainjob", [*NODE_PATCH, "template", "spec", "template", "spec", "volumes"], "volume"),
        ("cluster-pytorchjob", ["spec", "runPolicy"], "runPolicies"),
        ("cluster-pytorchjob-elastic", ["spec", "elasticPolicy", "rdzvBackend"], "rdzvBackends"),
        ("cluster-rayjob", ["spec", "entrypoint"], "entryPoint"),
        ("base/trainingruntime.yaml", ["spec", "template", "spec", "failurePolicy"], "failurePolicies"),
        ("base/trainingruntime.yaml", [*RUNTIME_JOB, "template", "spec", "containers", 0, "ports"], "port"),
        ("base/podmonitor.yaml", ["spec", "podMetricsEndpoints"], "podMetricEndpoints"),
        ("base/prometheusrule.yaml", ["spec", "groups", 0, "rules", 0, "expr"], "expression"),
    ],
)
def test_a_misspelled_field_fails_both_the_builtin_schema_and_the_crd(source, path, new):
    obj = rendered(source)[1] if source in MANIFESTS else k8s_object(source)
    assert official(obj) == [] and not builtin_rejects(obj)
    bad = copy.deepcopy(obj)
    rename(path, new)(bad)
    assert any(f"'{new}' was unexpected" in e for e in official(bad)), official(bad)
    assert builtin_rejects(bad)


def _paths(node, path=()):
    """Every (path, value) below ``node`` but the top-level metadata (the API server's own rules) and the
    apiVersion and kind (which pick the schema: the server routes by them)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        here = (*path, key)
        if here in (("metadata",), ("apiVersion",), ("kind",)):
            continue
        yield here, value
        yield from _paths(value, here)


def _mutations(obj):
    """A misspelled key, a value of another type, a string outside any enum or pattern: at every field."""
    for path, value in _paths(obj):
        *parents, leaf = path
        if isinstance(leaf, str):
            yield (
                path,
                "misspelled",
                lambda o, p=parents, k=leaf: _get(o, p).__setitem__(k + "x", _get(o, p).pop(k)),
            )
        wrong = {str: 7, bool: "yes", int: "seven", float: "seven", dict: ["x"], list: {"x": 1}}[type(value)]
        yield path, "type", lambda o, p=parents, k=leaf, w=wrong: _get(o, p).__setitem__(k, w)
        if isinstance(value, str):
            yield path, "value", lambda o, p=parents, k=leaf, v=value: _get(o, p).__setitem__(k, v + "-X ")


def _get(obj, path):
    for p in path:
        obj = obj[p]
    return obj


@pytest.mark.parametrize("source", [*MANIFESTS, *K8S_FILES])
def test_the_builtin_schemas_accept_nothing_the_crds_reject(source):
    obj = rendered(source)[1] if source in MANIFESTS else k8s_object(source)
    rejected, disagreements = 0, []
    for path, how, mutate in _mutations(obj):
        bad = copy.deepcopy(obj)
        mutate(bad)
        if official(bad):
            rejected += 1
            if not builtin_rejects(bad):
                disagreements.append(f"{'.'.join(map(str, path))} ({how}): {official(bad)[0]}")
    assert rejected >= 10  # the mutations reach fields the CRD constrains
    assert disagreements == [], "\n".join(disagreements)
