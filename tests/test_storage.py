import os
import stat

import pytest

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
