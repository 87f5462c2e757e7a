"""Growth rehearsal: the same pipeline at 1, 10 and 100 hours, to see which costs stay flat as the corpus grows.

    python bench/growth.py --hours 1 10 100 [--work runs/growth] [--steps 200] [--stages ...] [--interrupt 0.5]

Per size: ``synth`` (``synth.hours``) -> ``shard`` (train and the held-out test speakers) -> ``preprocess``
(fbank + k-means units, one Ray job over both sets) -> a short ``train`` (one rank under torchrun, streaming
from the shard set) -> ``embed`` of the held-out set; then the time and memory to open the shard set
(``read_index`` + ``describe`` in a fresh process). Every stage runs as the command a user types; a sampler
walks its process tree every 0.2 s and keeps each process's peak RSS and CPU time, so throughput is audio hours
per core-hour of CPU actually used (robust to the other jobs on a shared machine), and memory is per process
role (driver, Ray workers, torchrun agent, rank, loader worker). Results: ``bench/results/growth.json`` (sizes
already there and not re-run are kept).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from common import RESULTS, machine

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
CLI = [PY, "-m", "sse_dist.cli"]
# DeepSpeed's JIT-built ops, cached in the environment (as tests/conftest.py does): a training start measures
# the start, not a compiler run.
os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path(sys.prefix) / "torch_extensions"))


def role(proc: psutil.Process, cmd: str, parents: dict[int, str], root: bool) -> str:
    """What a process is, from its command line (and its parent's, for forked workers sharing it)."""
    for needle, name in (
        ("gcs_server", "ray gcs"),
        ("ray::", "ray worker"),
        ("default_worker.py", "ray worker"),  # before "raylet": a worker's arguments name the raylet's socket
        ("raylet", "raylet"),
        ("dashboard", "ray dashboard"),
        ("log_monitor", "ray log monitor"),
        ("torch.distributed.run", "torchrun agent"),
        ("ray/_private", "ray helper"),
    ):
        if needle in cmd:
            return name
    if root:
        return "driver"
    if Path(cmd.split(" ")[0]).name in ("ninja", "c++", "g++", "gcc", "cc1plus", "as", "ld", "collect2"):
        # DeepSpeed's JIT build of its shared-memory op on a fresh environment: a one-off compiler, not a
        # loader worker, though the rank starts it.
        return "compiler (JIT build)"
    parent = parents.get(proc.ppid(), "")
    if parent == "torchrun agent":
        return "rank"
    if parent in ("rank", "loader worker"):
        return "loader worker"
    return "ray worker" if parent == "ray worker" else f"{parent} child"


class Sampler:
    """Peak RSS and CPU seconds of every process in a command's tree, polled."""

    def __init__(self, pid: int, interval: float = 0.2):
        self.root = psutil.Process(pid)
        self.interval = interval
        self.procs: dict[int, dict[str, Any]] = {}
        self.roles: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        try:
            tree = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for p in tree:
            try:
                with p.oneshot():
                    rss, cpu = p.memory_info().rss, p.cpu_times()
                    if p.pid not in self.roles:
                        cmd = " ".join(p.cmdline())[:160]
                        if not cmd:  # forked, not yet exec'd: its role shows at the next poll
                            continue
                        self.roles[p.pid] = role(p, cmd, self.roles, p.pid == self.root.pid)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            entry = self.procs.setdefault(
                p.pid, {"role": self.roles[p.pid], "peak_rss_mb": 0.0, "cpu_s": 0.0}
            )
            entry["peak_rss_mb"] = max(entry["peak_rss_mb"], rss / 2**20)
            entry["cpu_s"] = max(entry["cpu_s"], cpu.user + cpu.system)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._poll()
            self._stop.wait(self.interval)

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        by_role: dict[str, dict[str, float]] = {}
        for p in self.procs.values():
            r = by_role.setdefault(p["role"], {"processes": 0, "peak_rss_mb": 0.0, "cpu_s": 0.0})
            r["processes"] += 1
            r["peak_rss_mb"] = round(max(r["peak_rss_mb"], p["peak_rss_mb"]), 1)
            r["cpu_s"] = round(r["cpu_s"] + p["cpu_s"], 2)
        return by_role


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def measure(name: str, cmd: list[str], hours: float, outputs: list[Path], env: dict | None = None) -> dict:
    """Run one stage's command; its wall time, CPU, throughput, peak RSS per role, disk written, stdout JSON."""
    before = sum(folder_bytes(p) for p in outputs)
    t0, started_at = time.perf_counter(), time.time()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    sampler = Sampler(proc.pid)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    roles = sampler.stop()
    if proc.returncode:
        raise RuntimeError(f"{name}: exit {proc.returncode}\n{err[-3000:]}")
    cpu = sum(r["cpu_s"] for r in roles.values())
    print(f"  {name}: {wall:.1f} s wall, {cpu:.1f} s CPU, load {os.getloadavg()[0]:.2f}", flush=True)
    lines = out.splitlines()
    start = max((i for i, line in enumerate(lines) if line == "{"), default=None)  # the summary JSON is last
    return {
        "started_at": started_at,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "audio_hours": hours,
        "audio_hours_per_core_hour": round(hours / (cpu / 3600), 2) if cpu else None,
        "disk_written_mb": round((sum(folder_bytes(p) for p in outputs) - before) / 1e6, 1),
        "processes": roles,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "summary": json.loads("\n".join(lines[start:])) if start is not None else None,
    }


OPEN = """
import json, resource, sys, time
from sse_dist.shard import format as fmt
from sse_dist.shard.fields import describe
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter(); index = fmt.read_index(sys.argv[1]); t1 = time.perf_counter()
corpus = describe([sys.argv[1]], "units"); t2 = time.perf_counter()
print(json.dumps({"read_index_s": t1 - t0, "describe_s": t2 - t1, "shards": len(index["shards"]),
  "utterances": corpus.utterances, "speakers": len(corpus.speakers),
  "added_rss_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024}))
"""


def open_cost(root: Path) -> dict[str, Any]:
    out = subprocess.run([PY, "-c", OPEN, str(root)], cwd=ROOT, capture_output=True, text=True, check=True)
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in json.loads(out.stdout).items()}


STAGES = ("synth", "shard", "preprocess", "train", "embed")


def _fbank_done(roots: list[Path]) -> int:
    """Shards whose features are done (their done-manifest is written last)."""
    return sum(len(list((r / "fbank").glob("[0-9]" * 6 + ".json"))) for r in roots)


def interrupted(cmd: list[str], roots: list[Path], at: float) -> dict[str, Any]:
    """Start ``cmd`` (preprocess) and kill its whole process tree (driver, Ray's processes, workers: as a lost
    node would) once a fraction ``at`` of the shards have their features; what was done, and what was left
    half-written (the shards in flight)."""
    shards = sum(len(json.loads((r / "index.json").read_text())["shards"]) for r in roots)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sampler = Sampler(proc.pid)
    while proc.poll() is None and _fbank_done(roots) < at * shards:
        time.sleep(0.5)
    tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    for p in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(tree, timeout=30)
    roles = sampler.stop()
    in_flight = {f.name.rsplit("-", 1)[-1] for r in roots for f in (r / "fbank").glob(".tmp-*")}
    print(f"  preprocess killed after {time.perf_counter() - t0:.0f} s", flush=True)
    return {
        "wall_s": round(time.perf_counter() - t0, 2),
        "cpu_s": round(sum(r["cpu_s"] for r in roles.values()), 2),
        "processes": roles,
        "shards": shards,
        "fbank_done_at_kill": _fbank_done(roots),
        "half_written_at_kill": sorted(in_flight),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def start_cost(stage: dict[str, Any]) -> dict[str, Any]:
    """From the launch to the end of the first step: wall seconds, and CPU seconds (the rank's by then, plus
    the torchrun agent's, which does nothing else but start and wait)."""
    first = (stage["summary"] or {}).get("first_step") or {}
    if not first:
        return {}
    agent = stage["processes"].get("torchrun agent", {}).get("cpu_s", 0.0)
    return {
        "before_first_step_s": round(first["at"] - stage["started_at"], 2),
        "before_first_step_cpu_s": round(first["cpu_s"] + agent, 2),
    }


def resumed(killed: dict[str, Any], rerun: dict[str, Any]) -> dict[str, Any]:
    """The rerun after the kill: the done shards it redid (none, if resuming works) and the half-written ones
    it restarted; the stage's CPU and throughput count both runs (what an interrupted job really costs)."""
    counts = rerun["summary"]["totals"]["shards"]["fbank"]
    cpu = killed["cpu_s"] + rerun["cpu_s"]
    return {
        "resume": {
            "fbank_done_at_kill": killed["fbank_done_at_kill"],
            "fbank_skipped_on_rerun": counts["skipped"],
            "done_shards_redone": killed["fbank_done_at_kill"] - counts["skipped"],
            "half_written_at_kill": len(killed["half_written_at_kill"]),
        },
        "rerun_cpu_s": rerun["cpu_s"],
        "cpu_s": round(cpu, 2),
        "audio_hours_per_core_hour": round(rerun["audio_hours"] / (cpu / 3600), 2),
    }


def rehearse(
    hours: float, work: Path, steps: int, stages: dict[str, Any], only: list[str], interrupt: float = 0.0
) -> dict[str, Any]:
    """The stages in ``only`` at one size, each recorded in ``stages`` as it finishes (a long run saves what it
    has); a stage not in ``only`` keeps what ``stages`` already holds, so a corpus made once is reused."""
    w = work / f"{hours:g}h"
    corpus, train, test, run = w / "corpus", w / "train", w / "test", w / "run"
    print(f"{hours:g} h -> {w}: {' '.join(only)}", flush=True)
    if "synth" in only:
        stages["synth"] = measure(
            "synth",
            [*CLI, "synth", "--set", f"synth.output={corpus}", "--set", f"synth.hours={hours}"],
            hours,
            [w],
        )
    synth = stages["synth"]["summary"]
    h_train, h_test = synth["hours"]["train"], synth["hours"]["test"]
    for split, out, h in (("train", train, h_train), ("test", test, h_test)) if "shard" in only else ():
        stages[f"shard {split}"] = measure(
            f"shard {split}",
            [*CLI, "shard", "--set", f"shard.input={corpus / split}", "--set", f"shard.output={out}"],
            h,
            [out],
        )
    prep = ["--set", f"preprocess.shards=[{train},{test}]", "--set", "preprocess.phones.source=kmeans"]
    prep += ["--set", "preprocess.phones.field=units", "--set", "preprocess.num_cpus=2"]
    prep += ["--set", f"preprocess.phones.model={w / 'units.npz'}"]
    if "preprocess" in only:
        cmd = [*CLI, "preprocess", *prep]
        if interrupt:
            stages["preprocess interrupted"] = interrupted(cmd, [train, test], interrupt)
        stages["preprocess"] = measure("preprocess", cmd, h_train + h_test, [train, test])
        if interrupt:
            stages["preprocess"] |= resumed(stages["preprocess interrupted"], stages["preprocess"])
        stages["open"] = open_cost(train)
    settings = [
        "--config", "configs/demo.yaml", "--set", f"train.shards=[{train}]", "--set", f"train.output={run}",
        "--set", f"train.steps={steps}", "--set", f"train.checkpoint_every={steps}", "--set",
        "train.phones_field=units",
    ]  # fmt: skip
    torchrun = [PY, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1"]
    if "train" in only:
        cmd = [*torchrun, "-m", "sse_dist.cli", "train", *settings]
        stages["train"] = measure("train", cmd, h_train, [run])
        stages["train"] |= start_cost(stages["train"])
    emb = [*settings, "--set", f"embed.shards=[{test}]", "--set", f"embed.output={w / 'test.npz'}"]
    emb += ["--set", f"embed.checkpoint={run}"]
    if "embed" in only:
        stages["embed"] = measure("embed", [*CLI, "embed", *emb], h_test, [w / "test.npz"])
    return {"hours": hours, "train_hours": h_train, "test_hours": h_test, "stages": stages}


def table(result: dict[str, Any]) -> str:
    """The results as the docs' growth table: one row per size and stage."""
    rows = [
        "| size | stage | wall s | CPU s | audio h / core-h | peak RSS by process role, MB | disk MB | load |"
    ]
    rows.append("|---|---|---:|---:|---:|---|---:|---|")
    for size, d in result["sizes"].items():
        for name, st in d["stages"].items():
            if name in ("open", "preprocess interrupted"):
                continue
            rss = ", ".join(
                f"{role} {p['peak_rss_mb']:.0f}" + (f" (x{p['processes']})" if p["processes"] > 1 else "")
                for role, p in sorted(st["processes"].items(), key=lambda kv: -kv[1]["peak_rss_mb"])
                if p["peak_rss_mb"] >= 100
            )
            extra = (
                f" (first step {st['before_first_step_s']:.0f} s"
                + (f", {st['before_first_step_cpu_s']:.0f} CPU-s" if "before_first_step_cpu_s" in st else "")
                + " after launch)"
                if "before_first_step_s" in st
                else ""
            )
            rows.append(
                f"| {size} h | {name}{extra} | {st['wall_s']:.0f} | {st['cpu_s']:.0f} | "
                f"{st['audio_hours_per_core_hour'] or 0:.1f} | {rss} | {st['disk_written_mb']:.0f} | "
                f"{st['loadavg'][0]:.1f} |"
            )
    return "\n".join(rows)


class _Saved(dict):
    """The stages measured so far, written out each time one is added."""

    def __init__(self, save: Any):
        super().__init__()
        self.save = save

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.save()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hours", type=float, nargs="+", default=[1, 10])
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "growth")
    p.add_argument("--steps", type=int, default=200, help="training steps per size")
    p.add_argument(
        "--output", type=Path, default=RESULTS / "growth.json", help="results file (sizes are added)"
    )
    p.add_argument(
        "--stages",
        nargs="+",
        choices=STAGES,
        default=list(STAGES),
        help="stages to run (the others keep their recorded results; later stages need synth's corpus on disk)",
    )
    p.add_argument(
        "--interrupt",
        type=float,
        default=0.0,
        help="kill preprocess once this fraction of the shards have features, then rerun it (0: no kill)",
    )
    p.add_argument("--table", action="store_true", help="print the results file as a markdown table and stop")
    args = p.parse_args()
    path = args.output
    if args.table:
        print(table(json.loads(path.read_text())))
        return
    result = json.loads(path.read_text()) if path.exists() else {"sizes": {}}
    result["steps"] = args.steps
    RESULTS.mkdir(exist_ok=True)
    for hours in args.hours:
        stages = _Saved(lambda: path.write_text(json.dumps(result, indent=1) + "\n"))
        dict.update(stages, result["sizes"].get(f"{hours:g}", {}).get("stages", {}))
        result["sizes"][f"{hours:g}"] = {"machine": machine(), "stages": stages}
        run = rehearse(hours, args.work.resolve(), args.steps, stages, args.stages, args.interrupt)
        result["sizes"][f"{hours:g}"] |= run
        stages.save()
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
