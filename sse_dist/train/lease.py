"""One writer per run folder: a lease file (``<output>/lease.json``) that rank 0 takes before anything is written.

The lease names its holder (host, pid, start time, torchrun job) and carries a heartbeat that a background
thread renews every :data:`HEARTBEAT_S`. A second run on the same folder is refused with one line naming the
holder; a lease is taken over only when it is stale: its heartbeat is older than :data:`STALE_S`, its holder is
a process of this host that no longer exists (a run killed with SIGKILL leaves its lease behind), or its holder
is an earlier worker group of the same torchrun job (restarted by its elastic agent, rank 0 perhaps on another
node now). A holder that finds its lease taken over (it was suspended longer than :data:`STALE_S`) stops its own
process rather than write beside the new holder.

A new local lease is created with ``O_EXCL``. Object stores have no atomic create-if-absent here, so there (and
for a take-over) a lease is written and read back after :data:`SETTLE_S`: of two runs that write within that
window, the later write wins and the other is refused.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from .. import storage
from . import distributed

log = logging.getLogger(__name__)

LEASE = "lease.json"
HEARTBEAT_S = 10.0
"""How often the holder renews its heartbeat."""
STALE_S = 60.0
"""A lease whose heartbeat is older than this is taken over (six missed heartbeats)."""
SETTLE_S = 1.0
"""On an object store: how long a new holder waits before reading its lease back."""
JOB = "TORCHELASTIC_RUN_ID"
"""torchrun's job id (``--rdzv_id``), the same on every node and every restart of the job's worker group."""


class LeaseError(RuntimeError):
    """The run folder is held by another live run."""


def _owner(token: str) -> dict[str, Any]:
    now = time.time()
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": now,
        "heartbeat": now,
        "token": token,
        "job": os.environ.get(JOB) or None,
    }


def _read(url: str) -> dict[str, Any] | None:
    try:
        lease = json.loads(storage.read_bytes(url).decode("utf-8"))
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError):
        return {}  # a torn or foreign file: treated as stale (a holder rewrites its lease whole)
    return lease if isinstance(lease, dict) else {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_reason(lease: dict[str, Any], now: float | None = None) -> str | None:
    """Why ``lease`` may be taken over, or None while its holder is live."""
    if not lease or not isinstance(lease.get("heartbeat"), (int, float)):
        return "unreadable lease"
    age = (now or time.time()) - lease["heartbeat"]
    if age > STALE_S:
        return f"heartbeat {age:.0f} s old"
    if lease.get("host") == socket.gethostname() and not _pid_alive(int(lease.get("pid", 0))):
        return f"process {lease.get('pid')} of this host is gone"
    if lease.get("job") and lease["job"] == os.environ.get(JOB):
        # torchrun restarted the job's worker group (a node lost or joined): it stopped the old group first, and
        # the old rank 0 may have been on another host, whose lease would otherwise block the job for STALE_S.
        return f"held by an earlier worker group of this torchrun job ({lease['job']})"
    return None


def describe_holder(url: str, lease: dict[str, Any]) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(lease.get("started", 0)))
    age = time.time() - lease["heartbeat"]
    return (
        f"{url}: the run folder is in use by pid {lease.get('pid')} on host {lease.get('host')} "
        f"(started {started}, heartbeat {age:.0f} s ago); wait for that run to end or stop it "
        f"(a lease with no heartbeat for {STALE_S:.0f} s is taken over)"
    )


def _create(url: str, owner: dict[str, Any]) -> bool:
    """Write the lease; locally only if absent (False if another writer created it first)."""
    data = json.dumps(owner).encode("utf-8")
    if storage.is_remote(url):
        if storage.exists(url):
            return False
        storage.write_bytes(url, data)
        return True
    os.makedirs(os.path.dirname(os.path.abspath(url)), exist_ok=True)
    try:
        fd = os.open(url, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except BaseException:
        os.unlink(url)
        raise
    return True


class Lease:
    """A held lease; :meth:`release` (or leaving ``hold``) removes it."""

    def __init__(self, url: str, owner: dict[str, Any]):
        self.url, self.owner = url, owner
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                current = _read(self.url)
                if current is not None and current.get("token") != self.owner["token"]:
                    log.error("%s", f"{self.url}: lease taken over by pid {current.get('pid')} on "
                              f"{current.get('host')}; stopping this run")  # fmt: skip
                    os.kill(os.getpid(), signal.SIGTERM)
                    return
                self.owner["heartbeat"] = time.time()
                storage.write_bytes(self.url, json.dumps(self.owner).encode("utf-8"))
            except Exception as e:  # a store hiccup: the next beat tries again, long before STALE_S
                log.warning("%s: lease heartbeat failed (%s)", self.url, e)

    def release(self) -> None:
        self._stop.set()
        self._thread.join()
        with contextlib.suppress(FileNotFoundError):
            current = _read(self.url)
            if current is not None and current.get("token") == self.owner["token"]:
                storage.remove(self.url)


def acquire(folder: str) -> Lease:
    """Take ``folder``'s lease or raise :class:`LeaseError` naming its live holder."""
    url = storage.join(folder, LEASE)
    owner = _owner(uuid.uuid4().hex)
    if _create(url, owner):
        if not storage.is_remote(url):
            return Lease(url, owner)  # O_EXCL: nobody else created it
    else:
        current = _read(url)
        reason = stale_reason(current) if current is not None else "released meanwhile"
        if reason is None:
            raise LeaseError(describe_holder(url, current or {}))
        log.warning("%s: taking over the lease of pid %s (%s)", url, (current or {}).get("pid"), reason)
        storage.write_bytes(url, json.dumps(owner).encode("utf-8"))
    # Another run may have written the lease at the same moment: the one whose write landed last holds it.
    time.sleep(SETTLE_S)
    current = _read(url) or {}
    if current.get("token") != owner["token"]:
        raise LeaseError(describe_holder(url, current) if "heartbeat" in current else f"{url}: lease lost")
    return Lease(url, owner)


@contextlib.contextmanager
def hold(folder: str) -> Iterator[Lease]:
    lease = acquire(folder)
    try:
        yield lease
    finally:
        lease.release()


@contextlib.contextmanager
def hold_run(folder: str, world: distributed.World) -> Iterator[None]:
    """Rank 0 checks the output folder and takes its lease; every rank learns the outcome (a refused rank 0
    must not leave its peers waiting in the first collective until the timeout)."""
    lease, error = None, None
    if world.rank == 0:
        try:
            storage.check_output(folder, folder=True)
            lease = acquire(folder)
        except (LeaseError, storage.StorageError, OSError) as e:
            error = e
    if not distributed.broadcast_int(0 if error else 1, world.device):
        raise error or LeaseError(f"{folder}: rank 0 could not take the run folder's lease (see its error)")
    try:
        yield
    finally:
        if lease is not None:
            lease.release()
