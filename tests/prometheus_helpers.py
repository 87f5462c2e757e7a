"""A real Prometheus server (Debian's ``prometheus``) on loopback, scraping sse-dist exporters with the alerting
rules of ``k8s/base`` loaded, and its HTTP API."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

BASE = Path(__file__).resolve().parents[1] / "k8s" / "base"
needs_prometheus = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="the prometheus server binary is not installed (apt-get install prometheus; .ci/run does)",
)
# What the PodMonitor's podTargetLabels put on every series in a cluster; here, static target labels.
TARGET_LABELS = {
    "namespace": "test",
    "app_kubernetes_io_instance": "test-train",
    "app_kubernetes_io_component": "train",
}


def rules() -> dict:
    return yaml.safe_load((BASE / "prometheusrule.yaml").read_text())


def api(port: int, path: str, **params) -> dict:
    url = f"http://127.0.0.1:{port}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.loads(r.read())
    assert body["status"] == "success", body
    return body["data"]


def start_prometheus(
    tmp_path: Path, port: int, targets: list[int], scrape_s: float = 0.5
) -> subprocess.Popen:
    """Scrape ``targets`` (loopback ports) every ``scrape_s`` at the PodMonitor's path, with the PrometheusRule's
    rules."""
    monitor = yaml.safe_load((BASE / "podmonitor.yaml").read_text())
    path = monitor["spec"]["podMetricsEndpoints"][0]["path"]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rules()["spec"]["groups"]}))
    config = {
        "global": {
            "scrape_interval": f"{scrape_s * 1000:.0f}ms",
            "scrape_timeout": f"{scrape_s * 800:.0f}ms",
            "evaluation_interval": f"{scrape_s * 1000:.0f}ms",
        },
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


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=30)
