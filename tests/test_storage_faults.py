"""S3 faults injected by a loopback proxy in front of a real S3 server (moto): throttling, dropped connections
and timeouts on reads, writes and listings are retried; a write that finally fails publishes nothing."""

import os

import pytest
from s3_helpers import use_s3_endpoint

from sse_dist import storage
from sse_dist.shard import format as fmt

pytestmark = pytest.mark.integration

DATA = b"x" * 1000


def _write(base, tmp_path):
    storage.write_bytes(f"{base}/new.bin", DATA)
    return storage.read_bytes(f"{base}/new.bin") == DATA


def _upload(base, tmp_path):
    (tmp_path / "up.bin").write_bytes(DATA)
    storage.upload(f"{base}/up.bin", str(tmp_path / "up.bin"))
    return storage.read_bytes(f"{base}/up.bin") == DATA


def _download(base, tmp_path):
    storage.download(f"{base}/d/a.bin", str(tmp_path / "a.bin"))
    return (tmp_path / "a.bin").read_bytes() == DATA


# (operation, HTTP method it uses, query that tells its requests apart, check)
OPERATIONS = {
    "write": ("PUT", "", _write),
    "upload": ("PUT", "", _upload),
    "read": ("GET", "", lambda base, _: storage.read_bytes(f"{base}/d/a.bin") == DATA),
    "download": ("GET", "", _download),
    "listdir": ("GET", "list-type", lambda base, _: storage.listdir(f"{base}/d") == ["a.bin", "b.bin"]),
    "files_below": ("GET", "list-type", lambda base, _: storage.files_below(base) == ["d/a.bin", "d/b.bin"]),
    "exists": ("HEAD", "", lambda base, _: storage.exists(f"{base}/d/a.bin")),
}
# 503 and dropped connections: more than s3fs's own 5 retries absorb, so our backoff layer is exercised too
# (s3fs does not retry a HEAD itself: our 5 attempts outlast 4 failures).
CASES = [(op, fault, 4 if op == "exists" else 7) for op in OPERATIONS for fault in ("503", "drop")]
CASES += [(op, "delay", 2) for op in ("write", "read", "listdir")]


@pytest.mark.parametrize(("op", "fault", "failures"), CASES)
def test_transient_faults_are_retried(s3_bucket, flaky_s3, monkeypatch, tmp_path, op, fault, failures):
    base = f"{s3_bucket}/set"
    for name in ("a.bin", "b.bin"):
        storage.write_bytes(f"{base}/d/{name}", DATA)
    if fault == "delay":  # a read timeout of 1 s (set the way a deployment would) against a 3 s stall
        monkeypatch.setenv("FSSPEC_S3_CONFIG_KWARGS", '{"read_timeout": 1, "connect_timeout": 1}')
        use_s3_endpoint(monkeypatch, f"http://127.0.0.1:{flaky_s3.server_port}")
    method, query, check = OPERATIONS[op]
    flaky_s3.method, flaky_s3.query, flaky_s3.fault, flaky_s3.failures = method, query, fault, failures
    assert check(base, tmp_path)
    assert flaky_s3.injected == failures


@pytest.mark.parametrize("size", [1000, 6 * 2**20])  # one PUT; a multipart upload (> s3fs's 5 MiB block)
def test_a_write_that_finally_fails_leaves_no_object(s3_bucket, flaky_s3, monkeypatch, size):
    monkeypatch.setenv("SSE_STORAGE_RETRIES", "2")
    url = f"{s3_bucket}/set/out.bin"
    flaky_s3.method, flaky_s3.fault, flaky_s3.failures = "PUT", "503", 10**6
    with pytest.raises(OSError):
        storage.write_bytes(url, os.urandom(size))
    flaky_s3.failures = 0
    assert not storage.exists(url)
    assert storage.listdir(f"{s3_bucket}/set") == []


def test_a_shard_read_through_throttling_is_whole_or_a_clear_error(s3_bucket, flaky_s3):
    url = fmt.shard_url(f"{s3_bucket}/set", fmt.AUDIO, "000000")
    with storage.atomic_write(url) as f:
        w = fmt.tar_writer(f)
        for i in range(3):
            w.write({"__key__": f"u{i}", "json": b"{}"})
        w.close()
    flaky_s3.method, flaky_s3.fault, flaky_s3.failures = "GET", "503", 3  # s3fs's per-request retries absorb
    assert [s["__key__"] for s in fmt.iter_tar(url)] == ["u0", "u1", "u2"]
    flaky_s3.failures = 10**6
    with pytest.raises(fmt.ShardError, match="000000.tar"):
        list(fmt.iter_tar(url))
