"""One way to read and write local paths and object-store URLs (``s3://`` through s3fs).

Credentials and endpoints come from the environment (``FSSPEC_S3_ENDPOINT_URL``, ``FSSPEC_S3_KEY``, ...,
or the usual AWS variables), never from configs. Writes are all-or-nothing: locally a temporary file renamed
into place, on an object store an upload that is discarded (never committed) when the writer fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import tempfile
from collections.abc import Iterator
from typing import IO, Any

import fsspec
from fsspec.core import url_to_fs


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files 0600; published outputs get the mode a plain open() would have given them.
_FILE_MODE = 0o666 & ~_umask()


def is_remote(url: str) -> bool:
    return "://" in url and not url.startswith("file://")


def join(root: str, *parts: str) -> str:
    if is_remote(root):
        return posixpath.join(root, *parts)
    return os.path.join(root, *parts)


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    return url_to_fs(url)


def exists(url: str) -> bool:
    fs, path = filesystem(url)
    return fs.exists(path)


def makedirs(url: str) -> None:
    if not is_remote(url):
        os.makedirs(url, exist_ok=True)


def listdir(url: str) -> list[str]:
    """Base names in a folder (empty if it does not exist)."""
    fs, path = filesystem(url)
    if not fs.exists(path):
        return []
    return sorted(posixpath.basename(p.rstrip("/")) for p in fs.ls(path, detail=False))


def remove(url: str, recursive: bool = False) -> None:
    fs, path = filesystem(url)
    if fs.exists(path):
        fs.rm(path, recursive=recursive)


def open_read(url: str) -> IO[bytes]:
    fs, path = filesystem(url)
    return fs.open(path, "rb")


def read_bytes(url: str) -> bytes:
    with open_read(url) as f:
        return f.read()


def read_json(url: str) -> Any:
    return json.loads(read_bytes(url).decode("utf-8"))


def size(url: str) -> int:
    fs, path = filesystem(url)
    return int(fs.size(path))


def sha256(url: str) -> str:
    """Hex digest of a file's content, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open_read(url) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_write(url: str) -> Iterator[IO[bytes]]:
    """A binary file that appears at ``url`` only if the ``with`` block finishes without an exception."""
    if not is_remote(url):
        folder = os.path.dirname(os.path.abspath(url))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix="-" + os.path.basename(url))
        try:
            with os.fdopen(fd, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, _FILE_MODE)
            os.replace(tmp, url)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return
    fs, path = filesystem(url)
    f = fs.open(path, "wb")
    try:
        yield f
    except BaseException:
        # fsspec's close() would commit the partial object; discard drops the buffer and aborts a multipart
        # upload, after which close() has nothing left to commit.
        f.discard()
        with contextlib.suppress(Exception):
            f.close()
        raise
    f.close()


def write_bytes(url: str, data: bytes) -> None:
    with atomic_write(url) as f:
        f.write(data)


def write_json(url: str, obj: Any) -> None:
    write_bytes(url, (json.dumps(obj, indent=1, sort_keys=False) + "\n").encode("utf-8"))
