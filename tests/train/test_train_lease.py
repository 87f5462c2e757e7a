"""One writer per run folder, and ranks that die with their launcher: a real two-rank torchrun run.

The run is started, a second run on its folder is refused and leaves it untouched, the run's listening sockets
are checked (loopback only), its torchrun agent is SIGKILLed (its ranks must die with it), and a ``--resume``
takes the dead run's lease over and continues from its latest checkpoint.
"""

import contextlib
import json
import os
import signal
import socket
import time

import psutil
import pytest
from train_helpers import config, launch

pytestmark = pytest.mark.integration


def _wait_for(predicate, what, proc, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, f"training ended before {what}"
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {timeout} s")


def _ranks(agent):
    return [c for c in agent.children(recursive=True) if "sse_dist.cli" in " ".join(c.cmdline())]


def _listening(pids):
    """(pid, address, port) of every TCP socket these processes listen on."""
    out = []
    for pid in pids:
        for c in psutil.Process(pid).net_connections(kind="inet"):
            if c.status == psutil.CONN_LISTEN:
                out.append((pid, c.laddr.ip, c.laddr.port))
    return out


def _kill(procs):
    """A failed assertion must not leave the run training (and writing) behind."""
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()


def test_one_writer_per_run_folder_and_ranks_die_with_their_agent(tmp_path, shard_sets, tiny_model, request):
    cfg = config(tmp_path, shard_sets, tiny_model, **{"train.mode": "ssl", "train.checkpoint_every": 4})
    run = tmp_path / "run"
    latest = run / "checkpoints" / "latest"
    with open(tmp_path / "first.log", "w") as log:
        first = launch(cfg, "--steps", "100000", stdout=log, stderr=log)
        started = [psutil.Process(first.pid)]
        request.addfinalizer(lambda: _kill(started))
        _wait_for(lambda: latest.exists(), "first checkpoint", first)
        agent = psutil.Process(first.pid)
        ranks = _ranks(agent)
        started += ranks
        assert len(ranks) == 2
        holder = json.loads((run / "lease.json").read_text())
        assert holder["host"] == socket.gethostname() and holder["pid"] in [r.pid for r in ranks]

        # The ranks (gloo pairs) listen on loopback only. The agent's TCPStores (the rendezvous and the ranks'
        # store) bind every interface: torch offers no bind address for them (docs/robustness.md).
        listening = _listening([agent.pid, *(r.pid for r in ranks)])
        rank_ips = {ip for pid, ip, _ in listening if pid != agent.pid}
        assert rank_ips == {"127.0.0.1"}, listening
        agent_ports = [(ip, port) for pid, ip, port in listening if pid == agent.pid]
        assert 1 <= len(agent_ports) <= 2, listening

        # A second run on the live folder is refused in one line naming the holder, and writes nothing.
        # The live first run keeps writing: its history, and atomic writes' temporary files (``.tmp-*``).
        before = {
            p: p.stat().st_mtime_ns
            for p in run.iterdir()
            if p.name not in ("lease.json", "history.jsonl") and not p.name.startswith(".tmp-")
        }
        second = launch(cfg, "--steps", "8")
        _, err = second.communicate(timeout=300)
        assert second.returncode != 0
        refusal = [line for line in err.splitlines() if "sse-dist train: error:" in line]
        # Rank 0 names the holder; the other ranks say rank 0 could not take it (their lines come in any order).
        named = f"in use by pid {holder['pid']} on host {holder['host']}"
        assert refusal and any(named in line for line in refusal), err[-3000:]
        # The agent adds its own report of the failed ranks (a ChildFailedError traceback); the ranks none.
        assert err.count("Traceback") == 1 and "ChildFailedError" in err, err[-3000:]
        assert first.poll() is None
        assert json.loads((run / "lease.json").read_text())["token"] == holder["token"]
        for p, mtime in before.items():
            if p.name not in ("checkpoints", "loss.png"):
                assert p.stat().st_mtime_ns == mtime, f"{p} changed by the refused run"

        # SIGKILL the agent: its ranks die with it (parent-death signal), promptly.
        os.kill(agent.pid, signal.SIGKILL)
        killed = time.time()
        first.wait(timeout=30)
        gone, alive = psutil.wait_procs(ranks, timeout=20)
        assert not alive, f"ranks {[p.pid for p in alive]} outlived their agent"
        assert time.time() - killed < 20

    # The dead run's lease is left behind; a resume takes it over (its holder is gone) and continues.
    assert (run / "lease.json").exists()
    step = int(latest.read_text().strip()[4:])
    resumed = launch(cfg, "--steps", str(step + 2), "--resume")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-4000:]
    assert "taking over the lease" in err and f"at step {step}" in err
    assert json.loads((run / "summary.json").read_text())["steps"] == step + 2
    assert not (run / "lease.json").exists()
