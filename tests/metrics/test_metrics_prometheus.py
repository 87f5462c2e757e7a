"""A real Prometheus server on loopback scrapes a short two-rank training run, evaluates the alerting rules of
``k8s/base`` on it, and answers every query of the dashboard."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from test_metrics_monitoring import BASE, dashboard_exprs, rules

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("prometheus") is None,
        reason="the prometheus server binary is not installed (apt-get install prometheus; .ci/run does)",
    ),
]
REPO = Path(__file__).resolve().parents[2]
# What the PodMonitor's podTargetLabels put on every series in a cluster; here, static target labels.
TARGET_LABELS = {
    "namespace": "test",
    "app_kubernetes_io_instance": "test-train",
    "app_kubernetes_io_component": "train",
}
# Panels that must show data for a CPU training run (GPU memory, checkpoints, skips and preprocessing may not).
MUST_SHOW = ("steps_total", "global_step", "sse_train_loss", "samples_per_second", "frames_per_second",
             "learning_rate", "step_seconds_bucket", "data_wait_seconds_sum")  # fmt: skip


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _api(port, path, **params):
    url = f"http://127.0.0.1:{port}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.loads(r.read())
    assert body["status"] == "success", body
    return body["data"]


def _start_prometheus(tmp_path, port, targets):
    monitor = yaml.safe_load((BASE / "podmonitor.yaml").read_text())
    path = monitor["spec"]["podMetricsEndpoints"][0]["path"]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rules()["spec"]["groups"]}))
    config = {
        "global": {"scrape_interval": "500ms", "scrape_timeout": "400ms", "evaluation_interval": "500ms"},
        "rule_files": ["rules.yaml"],
        "scrape_configs": [
            {
                "job_name": "sse-dist",
                "metrics_path": path,
                "static_configs": [{"targets": [f"127.0.0.1:{p}" for p in targets], "labels": TARGET_LABELS}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}", f"--web.listen-address=127.0.0.1:{port}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"prometheus did not become ready: {proc.stderr.read()[-2000:]}")


def _train(tmp_path, shard_sets, tiny_model, metrics_port):
    cfg = {"train": {"shards": [shard_sets["train"]], "output": str(tmp_path / "run"), "steps": 100}}
    for dotted, value in {**tiny_model, "train.log_every": 5, "train.metrics.port": metrics_port}.items():
        node = cfg
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(cfg))
    # launch/train.sh runs `python`: the one running these tests.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]])
    env = {**os.environ, "PATH": path, "NPROC_PER_NODE": "2"}
    cmd = [str(REPO / "launch" / "train.sh"), "--config", str(tmp_path / "exp.yaml")]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stderr[-4000:]


def test_prometheus_scrapes_every_rank_and_answers_the_dashboard_and_rules(tmp_path, shard_sets, tiny_model):
    prom_port, metrics_port = _free_ports(2)
    prom = _start_prometheus(tmp_path, prom_port, [metrics_port, metrics_port + 1])
    try:
        start = time.time()
        _train(tmp_path, shard_sets, tiny_model, metrics_port)
        end = time.time()
        series = _api(
            prom_port, "/api/v1/query_range", query="sse_train_steps_total", start=start, end=end, step=0.5
        )
        by_rank = {s["metric"]["rank"]: [float(v) for _, v in s["values"]] for s in series["result"]}
        assert set(by_rank) == {"0", "1"}, by_rank
        for values in by_rank.values():
            assert values == sorted(values) and values[-1] > values[0], values  # the step counter rose
        assert {s["metric"]["app_kubernetes_io_instance"] for s in series["result"]} == {"test-train"}

        groups = _api(prom_port, "/api/v1/rules")["groups"]
        assert {g["name"] for g in groups} == {g["name"] for g in rules()["spec"]["groups"]}
        assert all(r["health"] == "ok" for g in groups for r in g["rules"]), groups

        # Every panel's query parses and runs; the training ones show data at a moment the run was scraped.
        stamps = [t for s in series["result"] for t, _ in s["values"]]
        middle = (min(stamps) + max(stamps)) / 2
        for expr in dashboard_exprs():
            query = expr.replace("$namespace", "test").replace("$job", "test-train")
            query = query.replace("$__rate_interval", "3s")
            result = _api(prom_port, "/api/v1/query", query=query, time=middle)["result"]
            if any(name in expr for name in MUST_SHOW):
                assert result, f"no data for {expr}"
    finally:
        prom.terminate()
        prom.wait(timeout=30)
