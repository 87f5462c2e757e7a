"""Two torchrun agents (two "nodes", one rank each) meeting at a c10d rendezvous on loopback, started exactly as
``launch/train.sh`` starts each pod of the rendered elastic PyTorchJob (``NNODES=1:2``, ``MAX_RESTARTS``),
every rank serving its metrics to a real Prometheus. They train and checkpoint as one job; then one agent is
SIGKILLed with its rank (a lost node). The survivor re-rendezvouses alone and resumes from the latest checkpoint
with the step count, the LR schedule and the global batch kept. Last, promtool unit-tests the alerting rules of
``k8s/base`` on the series Prometheus scraped: the rank-down alert names the killed node's exporter, and no
alert fires before the kill."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import psutil
import pytest
import torch
import yaml
from config_helpers import write_config
from deepspeed.runtime.lr_schedules import WarmupCosineLR
from multinode_helpers import BIN, Node, free_ports
from prometheus_helpers import api, needs_prometheus, rules, start_prometheus, stop

from sse_dist.config import ExperimentConfig, TrainConfig, load
from sse_dist.launch import render
from sse_dist.train import ds_config

pytestmark = [pytest.mark.integration, needs_prometheus]
REPO = Path(__file__).resolve().parents[1]
# Enough steps that the survivor, once back, trains alone for longer than the rank-down alert's 5 minutes of
# replayed scrapes (20 of 0.25 s, plus margin) even on an idle machine (240 steps gave 24 scrapes on one).
STEPS, MICRO_BATCH = 600, 8
SCRAPE_S, REPLAY_S = 0.25, 15
"""Prometheus here scrapes every 0.25 s; promtool replays each scrape as one of the PodMonitor's 15 s intervals,
so the rules' minutes span the seconds this test runs (the rank-down alert's 5 minutes: 5 s)."""


def _pod_env() -> dict[str, str]:
    """torchrun's settings in the pods of an elastic PyTorchJob of 1 to 2 nodes x 1 rank, as rendered."""
    overrides = ["launch.train_api=pytorchjob", "launch.train.nodes=2", "launch.train.min_nodes=1"]
    overrides += ["launch.train.max_nodes=2", "launch.train.procs_per_node=1", "launch.train.max_restarts=2"]
    cfg = load(
        ExperimentConfig,
        [str(REPO / "configs" / "cluster-4x8.yaml")],
        [*overrides, "train.deepspeed.zero_stage=0"],
    )
    _, job = render.render(cfg, "train")
    assert job["spec"]["elasticPolicy"]["maxRestarts"] == 2
    pod = job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    env = {
        e["name"]: e["value"] for e in pod["env"] if e["name"] in ("NNODES", "NPROC_PER_NODE", "MAX_RESTARTS")
    }
    assert env == {"NNODES": "1:2", "NPROC_PER_NODE": "1", "MAX_RESTARTS": "2"}
    return env


def _agents(tmp_path: Path, config: str, rdzv_port: int, metrics_ports: list[int]) -> list[Node]:
    """One ``launch/train.sh`` per node with the rendered pods' torchrun settings, both pointed at the same
    rendezvous endpoint and job id; each node's rank exports on its own port (on a cluster, each pod has its own
    address). The pods always resume (``train.resume: true``); train.sh adds ``--resume`` to an elastic job."""
    env = {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **_pod_env()}
    env |= {"RDZV_ENDPOINT": f"127.0.0.1:{rdzv_port}", "RDZV_ID": uuid.uuid4().hex[:12]}
    # A shrunk rendezvous waits this long for a node to come back before it starts the survivors.
    env["RDZV_CONF"] = "last_call_timeout=2"
    cmd = [str(REPO / "launch" / "train.sh"), "--config", config]
    return [
        Node([*cmd, "--set", f"train.metrics.port={port}"], tmp_path / f"agent{i}.log", env)
        for i, port in enumerate(metrics_ports)
    ]


def _store_host(agents: list[Node], port: int) -> int:
    """Which agent hosts the rendezvous store (the first to bind its port). Losing that node ends a c10d job
    (docs/robustness.md), so the test kills the other one."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for i, agent in enumerate(agents):
            with_port = [
                c for c in psutil.Process(agent.proc.pid).net_connections("tcp") if c.laddr.port == port
            ]
            if any(c.status == psutil.CONN_LISTEN for c in with_port):
                return i
        time.sleep(0.2)
    raise AssertionError("no agent listens on the rendezvous port: " + agents[0].tail())


def _wait_for(path: Path, agents: list[Node], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"no {path} after {timeout} s: " + agents[0].tail()
        assert all(a.proc.poll() is None for a in agents), "an agent ended: " + agents[0].tail()
        time.sleep(0.1)


def _expected_lr(cfg: TrainConfig, step: int) -> float:
    """The LR after ``step`` optimizer steps of an uninterrupted run, from DeepSpeed's own scheduler."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.optim.lr)
    sched = WarmupCosineLR(opt, **ds_config.scheduler(cfg)["params"])
    for _ in range(step):
        opt.step()
        sched.step()
    return sched.get_last_lr()[0]


def _scraped(prom_port: int, start: float, end: float) -> list[dict]:
    """What the rules read, as Prometheus scraped it: one value per scrape (None where there was none)."""
    query = '{__name__=~"up|sse_train_steps_total|sse_train_loss"}'
    data = api(prom_port, "/api/v1/query_range", query=query, start=start, end=end, step=SCRAPE_S)
    n = round((end - start) / SCRAPE_S) + 1
    series = []
    for s in data["result"]:
        values: list[str | None] = [None] * n
        for t, v in s["values"]:
            values[round((float(t) - start) / SCRAPE_S)] = v
        series.append({"metric": s["metric"], "values": values})
    return series


def _input_series(series: list[dict]) -> list[dict]:
    def name(metric: dict) -> str:
        labels = ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
        return f"{metric['__name__']}{{{labels}}}"

    return [{"series": name(s["metric"]), "values": " ".join(v or "_" for v in s["values"])} for s in series]


def _promtool(tmp_path: Path, series: list[dict], tests: list[dict]) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rules()["spec"]["groups"]}))
    spec = {"rule_files": ["rules.yaml"], "evaluation_interval": f"{REPLAY_S}s", "tests": [
        {"interval": f"{REPLAY_S}s", "input_series": _input_series(series), "alert_rule_test": tests}
    ]}  # fmt: skip
    (tmp_path / "scraped_test.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    out = subprocess.run(
        [shutil.which("promtool") or "promtool", "test", "rules", "scraped_test.yaml"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def test_elastic_agents_lose_a_node_resume_alone_and_the_alert_names_it(tmp_path, shard_sets, tiny_model):
    run = tmp_path / "run"
    base = {"train": {"shards": [shard_sets["train"]], "output": str(run), "steps": STEPS, "log_every": 2}}
    # ZeRO-0: DeepSpeed cannot re-partition ZeRO-1/2 optimizer state for the shrunk world (refused in one line).
    overrides = {**tiny_model, "train.checkpoint_every": 4, "train.deepspeed.zero_stage": 0}
    overrides |= {"train.deepspeed.micro_batch": MICRO_BATCH, "train.optim.warmup_steps": 8}
    config = write_config(tmp_path / "exp.yaml", overrides, base)
    prom_port, rdzv_port, *metrics_ports = free_ports(4)
    prom = start_prometheus(tmp_path, prom_port, metrics_ports, SCRAPE_S)
    start = time.time()
    agents = _agents(tmp_path, config, rdzv_port, metrics_ports)
    try:
        survivor = _store_host(agents, rdzv_port)
        lost = 1 - survivor
        _wait_for(run / "checkpoints" / "latest", agents)
        time.sleep(1)  # a few scrapes of both ranks training
        killed = time.time()
        agents[lost].stop()
        assert agents[survivor].proc.wait(timeout=400) == 0, agents[survivor].tail()
        end = time.time()
        series = _scraped(prom_port, start, end)
    finally:
        for agent in agents:
            agent.stop()
        stop(prom)

    log = agents[survivor].log.read_text()
    resumed = [int(s) for s in re.findall(r"resumed from .* at step (\d+)", log)]
    assert len(resumed) == 1 and 4 <= resumed[0] < STEPS, log[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 1 and summary["steps"] == STEPS
    assert summary["steps_this_run"] == STEPS - resumed[0]
    # The global batch is kept: the survivor accumulates the lost rank's share of every step.
    ds = json.loads((run / "ds_config.json").read_text())
    assert ds["train_batch_size"] == MICRO_BATCH * 2 and ds["gradient_accumulation_steps"] == 2
    assert summary["samples"] == summary["steps_this_run"] * MICRO_BATCH * 2
    # One history row per logged step, the rows after the checkpoint redone once, and the LR on DeepSpeed's
    # schedule at every step, before and after the kill.
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in history] == list(range(2, STEPS + 1, 2))
    cfg = TrainConfig(steps=STEPS)
    cfg.optim.warmup_steps = 8
    for row in history:
        assert row["lr"] == pytest.approx(_expected_lr(cfg, row["step"]), rel=1e-6), row

    # Prometheus saw both nodes' ranks, told apart by their labels.
    steps = [s for s in series if s["metric"]["__name__"] == "sse_train_steps_total"]
    ranks = {(s["metric"]["instance"], s["metric"]["rank"]) for s in steps}
    instances = [f"127.0.0.1:{p}" for p in metrics_ports]
    assert {i for i, _ in ranks} == set(instances) and {r for _, r in ranks} >= {"0", "1"}, ranks
    up = {s["metric"]["instance"]: s["values"] for s in series if s["metric"]["__name__"] == "up"}
    kill = round((killed - start) / SCRAPE_S)
    # Down at every scrape after the kill; the range's last step may fall just past Prometheus' last evaluation
    # (float step arithmetic), so a missing last value is not a gap.
    after = up[instances[lost]][kill + 2 :]
    assert up[instances[lost]][kill - 1] == "1" and set(after[:-1]) == {"0"} and after[-1] in ("0", None), (
        after
    )
    # The alert is evaluated at the survivor's last scrape: it was back and training alone by then, for longer
    # than the alert's 5 minutes (20 replayed scrapes).
    last = max(i for i, v in enumerate(up[instances[survivor]]) if v == "1")
    restarting = up[instances[survivor]].index("0", kill)  # its worker group stopped, then restarted
    back = up[instances[survivor]].index("1", restarting)
    assert last - back > 30, f"the survivor trained alone for {last - back} scrapes only: raise STEPS"
    lost_up = next(s["metric"] for s in series if s["metric"] == {**s["metric"], "__name__": "up",
                                                                    "instance": instances[lost]})  # fmt: skip
    expected = {
        "exp_labels": {k: v for k, v in lost_up.items() if k != "__name__"} | {"severity": "warning"},
        "exp_annotations": {
            "summary": f"Training test-train: the rank exporter {instances[lost]} is down while other ranks run",
            "description": "A node or pod of the job is gone: an elastic job continues on fewer nodes from its last "
            "checkpoint, a fixed-size one waits for it. See `sse-dist launch logs train` and the pod's events.",
        },
    }
    _promtool(tmp_path, series, [
        {"eval_time": f"{(kill - 1) * REPLAY_S}s", "alertname": name, "exp_alerts": []}
        for name in ("SseTrainingRankDown", "SseTrainingStalled", "SseTrainingLossNotFinite")
    ] + [
        {"eval_time": f"{last * REPLAY_S}s", "alertname": "SseTrainingRankDown", "exp_alerts": [expected]}
    ])  # fmt: skip
