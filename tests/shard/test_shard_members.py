"""The fast member readers agree with the general ones (tarfile + WebDataset grouping, np.load) and refuse
damaged input instead of stopping early."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
import webdataset as wds

from sse_dist.shard import format as fmt
from sse_dist.shard import members


def _tar(entries: list[tuple[str, bytes]], fmt_: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt_) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        tar.addfile(tarfile.TarInfo("dir/"))  # a directory member: skipped by both readers
    return buf.getvalue()


def _webdataset(data: bytes) -> list[dict]:
    files = ({**m, "__url__": "x"} for m in wds.tariterators.tar_file_iterator(io.BytesIO(data)))
    return [{k: v for k, v in s.items() if k != "__url__"} for s in wds.tariterators.group_by_keys(files)]


ENTRIES = [
    ("a.fbank.npy", b"1" * 700),
    ("a.JSON", b"{}"),
    ("__meta__", b"skipped"),
    ("noext", b"skipped"),
    ("b.vad.npy", b""),
    ("k" * 150 + ".json", b"long name"),  # PAX path header (GNU long name in the GNU format)
    ("sub/" * 30 + "c.txt", b"ustar prefix"),
    ("d\u00e9.txt", b"non-ascii name"),
]


@pytest.mark.parametrize("tar_format", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_tar_samples_match_webdataset(tar_format):
    entries = ENTRIES if tar_format != tarfile.USTAR_FORMAT else ENTRIES[:5] + ENTRIES[6:7]
    data = _tar(entries, tar_format)
    got = list(members.group_samples(members.tar_members(io.BytesIO(data))))
    assert got == _webdataset(data)
    assert got[0] == {"__key__": "a", "fbank.npy": b"1" * 700, "json": b"{}"}


def test_tar_written_by_tar_writer():
    buf = io.BytesIO()
    with fmt.tar_writer(buf) as w:
        for i in range(3):
            w.write({"__key__": f"u{i}", "fbank.npy": fmt.npy_bytes(np.eye(3) * i), "json": b"{}"})
    data = buf.getvalue()
    assert list(members.group_samples(members.tar_members(io.BytesIO(data)))) == _webdataset(data)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: d[:100], "truncated header"),
        (lambda d: d[: 512 + 300], "unexpected end of data"),
        (lambda d: d[:1536] + b"\x01" + d[1537:], "bad checksum"),
        (lambda d: b"", "empty file"),
    ],
)
def test_damaged_tars_raise(damage, message):
    data = _tar([("a.x", b"1" * 600), ("b.x", b"2"), ("c.x", b"3")], tarfile.USTAR_FORMAT)
    with pytest.raises(tarfile.ReadError, match=message):
        list(members.tar_members(io.BytesIO(damage(data))))


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.float16).reshape(3, 4),
        np.arange(5, dtype=">i4"),
        np.zeros((0, 40), np.float32),
        np.array(3.5),
        np.array([True, False]),
        np.arange(6, dtype=np.uint8).reshape(1, 2, 3),
    ],
)
def test_npy_view_matches_np_load(array):
    buf = io.BytesIO()
    np.save(buf, array)
    data = buf.getvalue()
    view = members.npy_view(data)
    assert view is not None and not view.flags.writeable
    np.testing.assert_array_equal(view, np.load(io.BytesIO(data)))
    assert view.dtype == array.dtype and view.shape == array.shape


def test_npy_view_leaves_the_unusual_to_np_load():
    fortran = io.BytesIO()
    np.save(fortran, np.asfortranarray(np.eye(3)[:, :2]))
    assert members.npy_view(fortran.getvalue()) is None
    assert members.npy_view(fmt.npy_bytes(np.arange(4))[:-1]) is None  # truncated data
    assert members.npy_view(b"not npy") is None
    objects = io.BytesIO()
    np.save(objects, np.array([{}], dtype=object), allow_pickle=True)
    assert members.npy_view(objects.getvalue()) is None
    with pytest.raises(fmt.ShardError, match="not a plain .npy"):
        fmt.load_npy(objects.getvalue(), "key")
