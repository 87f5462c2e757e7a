"""The run-folder lease on its own: refused while held, taken over only when stale, released on exit."""

import json
import socket
import subprocess
import sys
import time

import pytest

from sse_dist import storage
from sse_dist.train import lease


def _holder(folder, **fields):
    now = time.time()
    owner = {"host": "elsewhere", "pid": 4242, "started": now, "heartbeat": now, "token": "theirs", **fields}
    (folder / lease.LEASE).write_text(json.dumps(owner))
    return owner


def test_a_held_folder_is_refused_naming_the_holder(tmp_path):
    with lease.hold(str(tmp_path)) as held:
        with pytest.raises(lease.LeaseError) as info:
            lease.acquire(str(tmp_path))
        message = str(info.value)
        assert "\n" not in message
        assert f"in use by pid {held.owner['pid']} on host {socket.gethostname()}" in message
        assert json.loads((tmp_path / lease.LEASE).read_text())["token"] == held.owner["token"]
    assert not (tmp_path / lease.LEASE).exists()


def test_a_live_holder_on_another_host_is_respected(tmp_path):
    _holder(tmp_path)
    with pytest.raises(lease.LeaseError, match="in use by pid 4242 on host elsewhere"):
        lease.acquire(str(tmp_path))


@pytest.mark.parametrize(
    "fields",
    [{"heartbeat": time.time() - lease.STALE_S - 5}, {"host": socket.gethostname(), "pid": 2**22 + 17}],
    ids=["old-heartbeat", "holder-process-gone"],
)
def test_a_stale_lease_is_taken_over(fields, tmp_path):
    _holder(tmp_path, **fields)
    with lease.hold(str(tmp_path)) as held:
        assert json.loads((tmp_path / lease.LEASE).read_text())["token"] == held.owner["token"]


def test_an_earlier_worker_group_of_the_same_torchrun_job_is_taken_over(tmp_path, monkeypatch):
    """An elastic restart can move rank 0 to another node: the job's own lease does not block it for STALE_S."""
    monkeypatch.setenv(lease.JOB, "job-a")
    _holder(tmp_path, job="job-b")
    with pytest.raises(lease.LeaseError, match="in use by pid 4242 on host elsewhere"):
        lease.acquire(str(tmp_path))
    _holder(tmp_path, job="job-a")
    with lease.hold(str(tmp_path)) as held:
        assert json.loads((tmp_path / lease.LEASE).read_text()) == {**held.owner, "job": "job-a"}


def test_a_torn_lease_is_taken_over(tmp_path):
    (tmp_path / lease.LEASE).write_text('{"host": "x", "pi')
    with lease.hold(str(tmp_path)):
        pass


def test_a_killed_holder_is_detected_on_this_host(tmp_path):
    code = (
        "import sys, time; from sse_dist.train import lease\n"
        "lease.acquire(sys.argv[1]); print('ok', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:  # DeepSpeed's import prints to stdout first
            if line.strip() == "ok":
                break
        else:
            raise AssertionError("the holder ended before it took the lease")
        with pytest.raises(lease.LeaseError, match=f"pid {proc.pid}"):
            lease.acquire(str(tmp_path))
    finally:
        proc.kill()
        proc.wait()
    with lease.hold(str(tmp_path)):
        pass


@pytest.mark.integration
def test_object_store_lease(s3_bucket, monkeypatch):
    monkeypatch.setattr(lease, "SETTLE_S", 0.1)
    run = f"{s3_bucket}/run"
    with lease.hold(run), pytest.raises(lease.LeaseError, match="in use by pid"):
        lease.acquire(run)
    assert not storage.exists(f"{run}/{lease.LEASE}")


def test_the_heartbeat_advances_and_a_holder_that_lost_its_lease_stops(tmp_path):
    code = (
        "import sys, time; from sse_dist.train import lease\n"
        "lease.HEARTBEAT_S = 0.2\n"
        "lease.acquire(sys.argv[1]); print('ok', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if line.strip() == "ok":
                break
        first = json.loads((tmp_path / lease.LEASE).read_text())["heartbeat"]
        time.sleep(1.0)
        assert json.loads((tmp_path / lease.LEASE).read_text())["heartbeat"] > first
        _holder(tmp_path)  # another run took the lease over (as after a long suspension)
        assert proc.wait(timeout=10) == -15  # SIGTERM: it stops rather than write beside the new holder
    finally:
        proc.kill()
        proc.wait()
