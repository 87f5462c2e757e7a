"""The dashboard and the alerting rules in ``k8s/base`` use exactly the metrics the code exports, and the rules
fire when they should (promtool's rule unit tests)."""

import json
import re
import shutil
import subprocess

import pytest
import yaml
from prometheus_helpers import BASE, rules

from sse_dist.config import MetricsConfig
from sse_dist.launch import validate
from sse_dist.metrics import PreprocessMetrics, TrainMetrics

SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
NAME = re.compile(r"\b(sse_[a-z0-9_]+)\b")


def exported() -> dict[str, set[str]]:
    """Series names per metric family, from the registries the training ranks and the Ray driver serve."""
    registries = [
        TrainMetrics(MetricsConfig(), 0, 0).registry,
        PreprocessMetrics(MetricsConfig(), 0).registry,
    ]
    return {
        fam.name: {fam.name + s for s in SUFFIXES[fam.type]} for reg in registries for fam in reg.collect()
    }


def dashboard_exprs() -> list[str]:
    dash = json.loads((BASE / "dashboards" / "sse-dist.json").read_text())
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def test_every_name_follows_prometheus_conventions():
    for family, series in exported().items():
        assert family.startswith("sse_"), family
        assert not family.endswith("_total"), family  # the client adds _total to counters
        if any(s.endswith("_bucket") for s in series):
            assert family.endswith("_seconds"), f"{family}: histograms here measure time, in seconds"


def test_dashboard_shows_every_exported_metric_and_nothing_else():
    families = exported()
    known = set().union(*families.values())
    used = {n for e in dashboard_exprs() for n in NAME.findall(e)}
    assert used <= known, f"not exported: {sorted(used - known)}"
    unseen = [f for f, series in families.items() if not series & used]
    assert not unseen, f"exported but not on the dashboard: {unseen}"


def test_alerts_use_exported_metrics_and_the_rule_object_is_valid():
    validate.validate(rules(), "1.30")
    known = set().union(*exported().values())
    used = {n for g in rules()["spec"]["groups"] for r in g["rules"] for n in NAME.findall(r["expr"])}
    assert used and used <= known, sorted(used - known)


PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool (Debian package prometheus) is not installed"
)
JOB = 'namespace="ns", app_kubernetes_io_instance="run-train"'
PRE = 'namespace="ns", app_kubernetes_io_instance="run-preprocess"'
TRAIN = 'app_kubernetes_io_component="train", job="sse-dist"'


def _alert(name, t, labels=None, annotations=None):
    exp = [{"exp_labels": labels, "exp_annotations": annotations}] if labels else []
    return {"eval_time": t, "alertname": name, "exp_alerts": exp}


def _unit_tests():
    nan = " ".join(["NaN"] * 10)
    stalled = {"severity": "warning", "namespace": "ns", "app_kubernetes_io_instance": "run-train"}
    loss = {
        "namespace": "ns",
        "app_kubernetes_io_instance": "run-train",
        "rank": "0",
        "component": "reconstruction",
    }
    failing = {"severity": "warning", "namespace": "ns", "app_kubernetes_io_instance": "run-preprocess"}
    down = {**stalled, "app_kubernetes_io_component": "train", "job": "sse-dist"}
    return [
        {
            "interval": "1m",
            "input_series": [
                # 20 minutes of steps, then none.
                {"series": f'sse_train_steps_total{{{JOB}, rank="0"}}', "values": "0+10x20 200x30"},
                {
                    "series": f'sse_train_loss{{{JOB}, rank="0", component="reconstruction"}}',
                    "values": f"0.5x9 {nan}",
                },
                # 10 % of the utterances fail: 8 % quarantined, 2 % without phones.
                {"series": f"sse_preprocess_input_utterances_total{{{PRE}}}", "values": "0+100x40"},
                {"series": f"sse_preprocess_utterances_quarantined_total{{{PRE}}}", "values": "0+8x40"},
                {"series": f"sse_preprocess_phones_failed_total{{{PRE}}}", "values": "0+2x40"},
            ],
            "alert_rule_test": [
                _alert("SseTrainingStalled", "15m"),
                _alert(
                    "SseTrainingStalled",
                    "45m",
                    stalled,
                    {
                        "summary": "Training run-train has taken no step for 15 minutes",
                        "description": "Check `sse-dist launch logs train` and the data-wait panel of the sse-dist "
                        "dashboard.",
                    },
                ),
                _alert("SseTrainingLossNotFinite", "5m"),
                _alert(
                    "SseTrainingLossNotFinite",
                    "15m",
                    {"severity": "critical", **loss},
                    {
                        "summary": "Training run-train: reconstruction loss is not finite",
                        "description": "Rank 0 reports a NaN or infinite loss; the run will not recover by itself.",
                    },
                ),
                _alert(
                    "SsePreprocessFailureRatioHigh",
                    "30m",
                    failing,
                    {
                        "summary": "Preprocessing run-preprocess fails on 10% of utterances",
                        "description": "The reasons are in <shard set>/<field>/summary.json and the per-shard "
                        "manifests.",
                    },
                ),
            ],
        },
        {
            # Two rank exporters of one job: both up; then one lost while the other runs on (one failed scrape
            # of the survivor at 20m); then both down (the job ended): the alert clears.
            "interval": "1m",
            "input_series": [
                {"series": f'up{{{JOB}, {TRAIN}, instance="a:9"}}', "values": "1x9 0x20 0x10"},
                {"series": f'up{{{JOB}, {TRAIN}, instance="b:9"}}', "values": "1x9 1x10 0 1x9 0x10"},
            ],
            "alert_rule_test": [
                _alert("SseTrainingRankDown", "13m"),
                _alert(
                    "SseTrainingRankDown",
                    "25m",
                    {**down, "instance": "a:9"},
                    {
                        "summary": "Training run-train: the rank exporter a:9 is down while other ranks run",
                        "description": "A node or pod of the job is gone: an elastic job continues on fewer "
                        "nodes from its last checkpoint, a fixed-size one waits for it. See `sse-dist launch logs "
                        "train` and the pod's events.",
                    },
                ),
                _alert("SseTrainingRankDown", "38m"),
            ],
        },
        {
            "interval": "1m",
            "input_series": [
                {"series": f"sse_preprocess_input_utterances_total{{{PRE}}}", "values": "0+100x40"},
                {"series": f"sse_preprocess_utterances_quarantined_total{{{PRE}}}", "values": "0+1x40"},
                {"series": f"sse_preprocess_phones_failed_total{{{PRE}}}", "values": "0+1x40"},
            ],
            "alert_rule_test": [_alert("SsePreprocessFailureRatioHigh", "30m")],  # 2 %: below the threshold
        },
    ]


@needs_promtool
def test_promtool_checks_and_unit_tests_the_alerting_rules(tmp_path):
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rules()["spec"]["groups"]}))
    check = subprocess.run(
        [PROMTOOL, "check", "rules", "rules.yaml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    spec = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": _unit_tests()}
    (tmp_path / "rules_test.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    test = subprocess.run(
        [PROMTOOL, "test", "rules", "rules_test.yaml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert test.returncode == 0, test.stdout + test.stderr
