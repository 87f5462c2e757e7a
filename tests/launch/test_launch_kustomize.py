"""``k8s/``: the kustomize base and overlays build, every object they produce is valid, and they agree with the
pods ``sse-dist launch`` renders (labels, port names, service account, namespace)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from sse_dist.config import LaunchConfig
from sse_dist.launch import pods, validate

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
    assert keep["action"] == "keep" and keep["sourceLabels"] == ["__meta_kubernetes_pod_container_port_name"]
    rank_ports = [p["name"] for p in pods.metrics_ports(9400, 16)]
    assert all(re.fullmatch(keep["regex"], name) for name in rank_ports)
    for other in ("pytorchjob-port", "rdzv", "gcs-server", "dashboard", "client", "metrics"):
        assert not re.fullmatch(keep["regex"], other)
    dashboard = objs[("ConfigMap", "sse-dist-dashboard")]
    assert (
        dashboard["metadata"]["labels"] == {"grafana_dashboard": "1"} and "sse-dist.json" in dashboard["data"]
    )
