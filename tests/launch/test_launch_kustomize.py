"""``k8s/``: the kustomize base and overlays build, every object they produce is valid, and they agree with the
pods ``sse-dist launch`` renders (labels, port names, service account, namespace)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from sse_dist.config import LaunchConfig
from sse_dist.config.launch import RUNTIME_METRICS_RANKS, TrainLaunchConfig
from sse_dist.launch import pods, trainjob, validate

K8S = Path(__file__).resolve().parents[2] / "k8s"
TREES = ["base", "overlays/local-kind", "overlays/gpu-cluster"]
pytestmark = pytest.mark.skipif(
    shutil.which("kubectl") is None,
    reason="kubectl (for `kubectl kustomize`, which needs no cluster) is not installed",
)


def build(tree):
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S / tree)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.mark.parametrize("tree", TREES)
def test_every_object_of_every_tree_is_valid(tree):
    objs = build(tree)
    validate.validate_all(objs, LaunchConfig().kubernetes_version)
    kinds = {o["kind"] for o in objs}
    assert {"Namespace", "ServiceAccount", "Role", "RoleBinding", "PodMonitor", "PrometheusRule"} <= kinds
    assert "TrainingRuntime" in kinds
    namespaces = {o["metadata"].get("namespace") for o in objs if o["kind"] != "Namespace"}
    (namespace,) = [o["metadata"]["name"] for o in objs if o["kind"] == "Namespace"]
    assert namespaces == {
        namespace
    }  # everything lands in the tree's namespace, the RoleBinding's subject too
    binding = next(o for o in objs if o["kind"] == "RoleBinding")
    assert binding["subjects"][0]["namespace"] == namespace


def test_base_matches_what_the_launcher_renders():
    objs = {(o["kind"], o["metadata"]["name"]): o for o in build("base")}
    defaults = LaunchConfig()
    assert ("Namespace", defaults.namespace) in objs
    assert objs[("ServiceAccount", defaults.service_account)]["automountServiceAccountToken"] is False
    monitor = objs[("PodMonitor", "sse-dist")]["spec"]
    assert monitor["selector"]["matchLabels"] == {"app.kubernetes.io/part-of": pods.PART_OF}
    assert set(monitor["podTargetLabels"]) <= set(pods.labels("job", "train"))
    (keep,) = monitor["podMetricsEndpoints"][0]["relabelings"]
    ranks_label = "__meta_kubernetes_pod_label_" + re.sub("[^a-zA-Z0-9_]", "_", pods.RANKS_LABEL)
    assert keep["action"] == "keep"
    assert keep["sourceLabels"] == [ranks_label, "__meta_kubernetes_pod_container_port_name"]

    def kept(label, port):  # Prometheus joins the source labels with ';' and anchors the regex
        return re.fullmatch(keep["regex"], f"{label};{port}") is not None

    rank_ports = [p["name"] for p in pods.metrics_ports(9400, 16)]
    assert all(kept("", name) for name in rank_ports)  # PyTorchJob and Ray pods: every declared exporter port
    declared = [p["name"] for p in pods.metrics_ports(9400, RUNTIME_METRICS_RANKS)]  # a TrainJob's pod
    for ranks in range(1, RUNTIME_METRICS_RANKS + 1):
        assert [kept(str(ranks), name) for name in declared] == [r < ranks for r in range(len(declared))]
    for other in ("pytorchjob-port", "rdzv", "gcs-server", "dashboard", "client", "metrics"):
        assert not kept("", other) and not kept("8", other)
    dashboard = objs[("ConfigMap", "sse-dist-dashboard")]
    assert (
        dashboard["metadata"]["labels"] == {"grafana_dashboard": "1"} and "sse-dist.json" in dashboard["data"]
    )


def test_the_trainingruntime_holds_what_the_launcher_leaves_to_it():
    """What a TrainJob cannot set per job is the runtime's; the launcher refuses other values of those fields,
    so the runtime must hold exactly their defaults."""
    objs = {(o["kind"], o["metadata"]["name"]): o for o in build("base")}
    defaults, train = LaunchConfig(), TrainLaunchConfig()
    runtime = objs[("TrainingRuntime", train.runtime)]
    jobset = runtime["spec"]["template"]["spec"]
    assert jobset["failurePolicy"]["maxRestarts"] == train.backoff_limit
    (node,) = jobset["replicatedJobs"]
    assert node["name"] == trainjob.REPLICATED_JOB and node["template"]["spec"]["backoffLimit"] == 0
    pod = node["template"]["spec"]["template"]
    assert pod["metadata"]["labels"]["app.kubernetes.io/part-of"] == pods.PART_OF  # the PodMonitor's selector
    spec = pod["spec"]
    assert (
        spec["automountServiceAccountToken"] is False
        and spec["serviceAccountName"] == defaults.service_account
    )
    assert spec["securityContext"] == pods.pod_security(defaults) and "priorityClassName" not in spec
    (c,) = spec["containers"]
    assert c["name"] == trainjob.CONTAINER and c["imagePullPolicy"] == defaults.image_pull_policy
    assert c["ports"] == pods.metrics_ports(defaults.metrics_port, RUNTIME_METRICS_RANKS)
    assert c["securityContext"] == pods.container_security(defaults)
    rules = {(r["apiGroups"][0], r["resources"][0]) for r in objs[("Role", "sse-dist-launcher")]["rules"]}
    assert {("trainer.kubeflow.org", "trainjobs"), ("jobset.x-k8s.io", "jobsets")} <= rules
