"""A real Prometheus server on loopback scrapes a short two-rank training run, evaluates the alerting rules of
``k8s/base`` on it, and answers every query of the dashboard."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from multinode_helpers import free_ports
from prometheus_helpers import api, needs_prometheus, rules, start_prometheus, stop
from test_metrics_monitoring import dashboard_exprs

pytestmark = [pytest.mark.integration, needs_prometheus]
REPO = Path(__file__).resolve().parents[2]
# Panels that must show data for a CPU training run (GPU memory, checkpoints, skips and preprocessing may not).
MUST_SHOW = ("steps_total", "global_step", "sse_train_loss", "samples_per_second", "frames_per_second",
             "learning_rate", "step_seconds_bucket", "data_wait_seconds_sum")  # fmt: skip


def _train(tmp_path, shard_sets, tiny_model, metrics_port):
    cfg = {"train": {"shards": [shard_sets["train"]], "output": str(tmp_path / "run"), "steps": 100}}
    for dotted, value in {
        **tiny_model,
        "train.log_every": 5,
        "train.metrics.port": metrics_port,
        "train.metrics.final_scrape_s": 1.5,  # three scrapes after the last step
    }.items():
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
    prom_port, metrics_port = free_ports(2)
    prom = start_prometheus(tmp_path, prom_port, [metrics_port, metrics_port + 1])
    try:
        start = time.time()
        _train(tmp_path, shard_sets, tiny_model, metrics_port)
        end = time.time()
        series = api(
            prom_port, "/api/v1/query_range", query="sse_train_steps_total", start=start, end=end, step=0.5
        )
        by_rank = {s["metric"]["rank"]: [float(v) for _, v in s["values"]] for s in series["result"]}
        assert set(by_rank) == {"0", "1"}, by_rank
        for values in by_rank.values():
            assert values == sorted(values) and values[0] < values[-1] == 100, (
                values
            )  # the counter rose to the end
        assert {s["metric"]["app_kubernetes_io_instance"] for s in series["result"]} == {"test-train"}

        groups = api(prom_port, "/api/v1/rules")["groups"]
        assert {g["name"] for g in groups} == {g["name"] for g in rules()["spec"]["groups"]}
        assert all(r["health"] == "ok" for g in groups for r in g["rules"]), groups

        # Every panel's query parses and runs; the training ones show data at a moment the run was scraped.
        stamps = [t for s in series["result"] for t, _ in s["values"]]
        middle = (min(stamps) + max(stamps)) / 2
        for expr in dashboard_exprs():
            query = expr.replace("$namespace", "test").replace("$job", "test-train")
            query = query.replace("$__rate_interval", "3s")
            result = api(prom_port, "/api/v1/query", query=query, time=middle)["result"]
            if any(name in expr for name in MUST_SHOW):
                assert result, f"no data for {expr}"
    finally:
        stop(prom)
