import errno
import os
import stat

import pytest
from botocore.exceptions import EndpointConnectionError

from sse_dist import storage


class Boom(RuntimeError):
    pass


def test_local_atomic_write_publishes_only_on_success(tmp_path):
    url = str(tmp_path / "sub" / "out.bin")
    with pytest.raises(Boom), storage.atomic_write(url) as f:
        f.write(b"partial")
        raise Boom
    assert not os.path.exists(url)
    assert os.listdir(tmp_path / "sub") == []  # no temporary file left behind
    storage.write_bytes(url, b"whole")
    assert storage.read_bytes(url) == b"whole"
    mode = stat.S_IMODE(os.stat(url).st_mode)
    assert mode == 0o666 & ~_umask()


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m


def test_json_round_trip_and_listing(tmp_path):
    root = str(tmp_path)
    storage.write_json(storage.join(root, "a", "x.json"), {"k": [1, 2]})
    assert storage.read_json(storage.join(root, "a", "x.json")) == {"k": [1, 2]}
    assert storage.listdir(storage.join(root, "a")) == ["x.json"]
    assert storage.listdir(storage.join(root, "missing")) == []
    assert storage.exists(storage.join(root, "a", "x.json"))
    storage.remove(storage.join(root, "a"), recursive=True)
    assert not storage.exists(storage.join(root, "a"))


@pytest.mark.integration
def test_s3_atomic_write_never_leaves_a_partial_object(s3_bucket):
    url = f"{s3_bucket}/set/out.bin"
    big = os.urandom(6 * 2**20)  # larger than s3fs's 5 MiB block: a multipart upload is under way
    with pytest.raises(Boom), storage.atomic_write(url) as f:
        f.write(big)
        f.flush()
        raise Boom
    assert not storage.exists(url)
    storage.write_bytes(url, big)
    assert storage.read_bytes(url) == big
    assert storage.listdir(f"{s3_bucket}/set") == ["out.bin"]
    assert storage.join(s3_bucket, "a", "b") == f"{s3_bucket}/a/b"


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (OSError(errno.EBUSY, "SlowDown"), True),
        (OSError(errno.EIO, "InternalError"), True),
        (TimeoutError("RequestTimeout"), True),
        (ConnectionResetError(), True),
        (EndpointConnectionError(endpoint_url="http://s3"), True),
        (FileNotFoundError("no such key"), False),
        (PermissionError("AccessDenied"), False),
        (OSError(errno.EINVAL, "InvalidArgument"), False),
        (ValueError("bad"), False),
    ],
)
def test_transient_errors_are_told_from_permanent_ones(error, transient):
    assert storage.is_transient(error) is transient


def _our_retries(caplog):
    return [r for r in caplog.records if r.name == "sse_dist.storage" and "retry" in r.getMessage()]


@pytest.mark.integration
def test_throttling_that_outlasts_s3fs_own_retries_is_retried_here(s3_bucket, flaky_s3, caplog):
    # s3fs retries a throttled call a few times itself (5 in s3fs 2026.9); more failures than that reach us.
    url = f"{s3_bucket}/set/index.json"
    flaky_s3.method, flaky_s3.failures = "PUT", 7
    storage.write_json(url, {"k": 1})
    flaky_s3.method, flaky_s3.failures = "GET", 7
    assert storage.read_json(url) == {"k": 1}
    assert flaky_s3.failures == 0
    assert len(_our_retries(caplog)) == 2  # one for the write, one for the read


@pytest.mark.integration
def test_retries_are_bounded_and_permanent_errors_are_not_retried(s3_bucket, flaky_s3, monkeypatch, caplog):
    url = f"{s3_bucket}/set/index.json"
    storage.write_bytes(url, b"{}")
    monkeypatch.setenv("SSE_STORAGE_RETRIES", "2")
    flaky_s3.method, flaky_s3.failures = "GET", 1000
    with pytest.raises(OSError) as err:
        storage.read_bytes(url)
    assert err.value.errno == errno.EBUSY and len(_our_retries(caplog)) == 1
    flaky_s3.failures = 0
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(f"{s3_bucket}/set/missing.json")
    assert len(_our_retries(caplog)) == 1  # a missing key is an answer, not a hiccup: not retried
