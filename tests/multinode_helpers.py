"""Several cluster nodes on one machine, started as a cluster's nodes are: Ray nodes by ``ray start`` (each with
its own raylet, object store and resources) and torchrun agents by ``launch/train.sh``. Each node is a process
group of its own, so a test can kill one node, and tear-down ends only what the test started."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

BIN = Path(sys.executable).parent


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports (held open together while picked, so none is handed out twice)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


class Node:
    """A command started in its own session (process group), its output in ``log``."""

    def __init__(self, cmd: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None):
        self.log = log
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                cwd=cwd, start_new_session=True,
            )  # fmt: skip

    def tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def lookup(self, needle: str) -> psutil.Process | None:
        """The node's process whose command line contains ``needle``, if one runs now."""
        for p in self.tree():
            try:
                if needle in " ".join(p.cmdline()):
                    return p
            except psutil.NoSuchProcess:
                continue
        return None

    def find(self, needle: str, timeout: float = 60) -> psutil.Process:
        """The node's process whose command line contains ``needle`` (waiting for it to start)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := self.lookup(needle):
                return found
            time.sleep(0.2)
        raise AssertionError(f"no {needle!r} process under {self.proc.args}: {self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def stop(self) -> None:
        """SIGKILL the node's whole tree: its session's group and any descendant that left it."""
        procs = self.tree()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        self.proc.wait(timeout=30)


def ray_auth() -> dict[str, str]:
    """A cluster's token authentication (Ray's default for ``ray start``): nodes and drivers share the token,
    so the test's cluster accepts only its own clients, and never reads or writes ``~/.ray``."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}


def ray_node(tmp: Path, name: str, ip: str, head_port: int, num_cpus: int, auth: dict[str, str]) -> Node:
    """``ray start --block`` of a head (GCS on ``head_port``; ``ip`` 127.0.0.1) or a worker node joining it,
    every port its own (two nodes on one machine must not share any) and a small object store. Each node has
    its own loopback address (127.0.0.0/8 is all loopback), so a driver started with the head's address
    attaches to the head's raylet, as on a cluster, not to whichever node shares its address."""
    head = ip == "127.0.0.1"
    flags = (
        "--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port", "--metrics-export-port", "--runtime-env-agent-port",
    )  # fmt: skip
    ports = [x for flag, port in zip(flags, free_ports(len(flags)), strict=True) for x in (flag, str(port))]
    cmd = [str(BIN / "ray"), "start", "--block", "--num-cpus", str(num_cpus), "--disable-usage-stats"]
    cmd += ["--object-store-memory", str(80 * 2**20), "--node-ip-address", ip, *ports]
    if head:
        cmd += ["--head", "--port", str(head_port), "--include-dashboard", "false", "--temp-dir", str(tmp)]
    else:
        cmd += ["--address", f"127.0.0.1:{head_port}"]
    # A lost node is noticed in ~3 s rather than Ray's default ~15 s.
    env = {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3", **auth}
    return Node(cmd, tmp.parent / f"{name}.log", env)
