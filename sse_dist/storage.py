"""One way to read and write local paths and object-store URLs (``s3://`` through s3fs).

Credentials and endpoints come from the environment (``FSSPEC_S3_ENDPOINT_URL``, ``FSSPEC_S3_KEY``, ...,
or the usual AWS variables), never from configs. Writes are all-or-nothing: locally a temporary file renamed
into place, on an object store an upload that is discarded (never committed) when the writer fails.

Whole-object operations on an object store (exists, list, read, write, upload, download, remove) are retried
with exponential backoff when the store answers with a transient error (throttling, 5xx, a dropped
connection) that s3fs and botocore did not absorb themselves; ``SSE_STORAGE_RETRIES`` sets the attempts.
Streams (``open_read``, ``atomic_write``) rely on s3fs's own per-request retries.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import logging
import os
import posixpath
import random
import stat
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from typing import IO, Any, TypeVar

import fsspec
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import HTTPClientError
from fsspec.core import url_to_fs

log = logging.getLogger(__name__)
T = TypeVar("T")
BACKOFF_S = 0.5
"""First retry delay; each further one doubles, up to ``BACKOFF_MAX_S``, with +-50 % jitter."""
BACKOFF_MAX_S = 20.0
# s3fs turns S3 error codes into OSError numbers: SlowDown/503 -> EBUSY, 500 -> EREMOTEIO, unknown codes -> EIO.
_TRANSIENT_ERRNOS = {
    errno.EBUSY,
    errno.EIO,
    getattr(errno, "EREMOTEIO", errno.EIO),
    errno.EAGAIN,
    errno.ETIMEDOUT,
}
# Errors that mean the output cannot be written at all: reported as one line naming the path, never retried.
_SPACE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}
_PROBE_BYTES = 64 << 10
_PERMANENT = (FileNotFoundError, PermissionError, FileExistsError, IsADirectoryError, NotADirectoryError)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files 0600; published outputs get the mode a plain open() would have given them.
_FILE_MODE = 0o666 & ~_umask()


class StorageError(RuntimeError):
    """A path that cannot be read or written; the message is one line naming the path and the cause."""


def _bare_key(error: OSError) -> bool:
    """s3fs's FileNotFoundError for a missing key: its only argument is the key."""
    return (
        isinstance(error, FileNotFoundError)
        and error.strerror is None
        and len(error.args) == 1
        and " " not in str(error.args[0])
    )


def cause(error: OSError) -> str:
    """An OSError's cause in words, one line: ``no space left on device``."""
    if _bare_key(error):
        return "not found"
    text = (error.strerror or str(error) or type(error).__name__).splitlines()[0]
    return text[0].lower() + text[1:] if text[:2] != text[:2].upper() else text


def explain(error: OSError, url: str = "") -> str:
    """One line for an OSError: ``<path>: <cause>``, never a traceback."""
    path = error.filename or url
    if not path and _bare_key(error):
        path = str(error.args[0])
    return f"{path}: {cause(error)}" if path else cause(error)


def _probe(folder: str) -> None:
    """Write (and fsync) a small file in ``folder`` and remove it: a full disk, a read-only mount or a missing
    permission shows here, before the work, rather than at the first output after it."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=_TMP + "probe-")
    try:
        os.write(fd, bytes(_PROBE_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)
        os.unlink(tmp)


def _check_local(url: str, folder: bool) -> None:
    path = os.path.abspath(url)
    if folder and os.path.exists(path) and not os.path.isdir(path):
        raise StorageError(f"{url}: exists and is not a folder (the output is a folder)")
    if not folder and os.path.isdir(path):
        raise StorageError(f"{url}: is a folder (the output is a file)")
    target = path if folder else os.path.dirname(path)
    above = target
    while not os.path.exists(above):
        above = os.path.dirname(above)
    if not os.path.isdir(above):
        raise StorageError(f"{url}: cannot be created: {above} is a file, not a folder")
    try:
        _probe(above)  # the folder the output (or its first missing parent) will be created in
    except OSError as e:
        raise StorageError(f"{url}: cannot write: {cause(e)}") from None


def _check_remote(url: str, folder: bool) -> None:
    fs, path = _fresh(url)
    if folder and fs.isfile(path):
        raise StorageError(f"{url}: exists and is an object, not a folder (the output is a folder)")
    if not folder and fs.isdir(path):
        raise StorageError(f"{url}: is a folder (objects below it; the output is a file)")
    probe = join(url if folder else posixpath.dirname(url), f"{_TMP}probe-{uuid.uuid4().hex}")
    try:
        write_bytes(probe, b"")
        remove(probe)
    except OSError as e:
        raise StorageError(f"{url}: cannot write: {cause(e)}") from None


def check_output(url: str, folder: bool) -> None:
    """Refuse, before any work, an output that could not be written: a file where a folder is expected (or the
    reverse), a parent that is a file, no write permission, a read-only or full disk. Creates nothing."""
    if not url:
        raise StorageError("output: not set")
    (_check_remote if is_remote(url) else _check_local)(url, folder)


def regular_file_problem(url: str) -> str | None:
    """Why a local input cannot be read as a file without opening it, or None: opening a named pipe blocks for
    ever, a device never ends, a socket cannot be opened."""
    if is_remote(url):
        return None
    try:
        mode = os.stat(url).st_mode
    except OSError:
        return None  # the read says what is wrong
    kinds = {
        stat.S_ISDIR: "a folder",
        stat.S_ISFIFO: "a named pipe (FIFO)",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISSOCK: "a socket",
    }
    for test, kind in kinds.items():
        if test(mode):
            return f"not a regular file: {kind}"
    return None


def is_transient(error: BaseException) -> bool:
    """An object-store error worth retrying (never a missing key, a denied request or a local error)."""
    if isinstance(error, _PERMANENT):
        return False
    if isinstance(error, (ConnectionError, TimeoutError, BotoConnectionError, HTTPClientError)):
        return True
    return isinstance(error, OSError) and error.errno in _TRANSIENT_ERRNOS


def retrying(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn(url, ...)`` retried with backoff on transient errors when ``url`` is remote."""

    @functools.wraps(fn)
    def call(url: str, *args: Any, **kwargs: Any) -> T:
        attempts = int(os.environ.get("SSE_STORAGE_RETRIES", "5")) if is_remote(url) else 1
        for attempt in range(1, attempts + 1):
            try:
                return fn(url, *args, **kwargs)
            except Exception as e:
                if attempt == attempts or not is_transient(e):
                    raise
                delay = min(BACKOFF_S * 2 ** (attempt - 1), BACKOFF_MAX_S) * random.uniform(0.5, 1.5)
                log.warning(
                    "%s: %s (%s); retry %d/%d in %.1f s", fn.__name__, url, e, attempt, attempts - 1, delay
                )
                time.sleep(delay)
        raise AssertionError("unreachable")

    return call


def is_remote(url: str) -> bool:
    return "://" in url and not url.startswith("file://")


def join(root: str, *parts: str) -> str:
    if is_remote(root):
        return posixpath.join(root, *parts)
    return os.path.join(root, *parts)


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    return url_to_fs(url)


def _fresh(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """Like :func:`filesystem`, without s3fs's cached listings: other processes (ranks, nodes, Ray tasks) write
    to the same store, and a stale listing would hide their objects."""
    fs, path = url_to_fs(url)
    fs.invalidate_cache(path)
    return fs, path


@retrying
def exists(url: str) -> bool:
    fs, path = _fresh(url)
    return fs.exists(path)


def makedirs(url: str) -> None:
    if not is_remote(url):
        os.makedirs(url, exist_ok=True)


@retrying
def listdir(url: str) -> list[str]:
    """Base names in a folder (empty if it does not exist)."""
    fs, path = _fresh(url)
    if not fs.exists(path):
        return []
    return sorted(posixpath.basename(p.rstrip("/")) for p in fs.ls(path, detail=False))


@retrying
def remove(url: str, recursive: bool = False) -> None:
    fs, path = filesystem(url)
    if fs.exists(path):
        fs.rm(path, recursive=recursive)


@retrying
def files_below(url: str) -> list[str]:
    """Paths, relative to ``url``, of every file below it (empty if there is none)."""
    fs, path = _fresh(url)
    root = path.rstrip("/")
    return sorted(posixpath.relpath(p, root) for p in fs.find(root))


@retrying
def upload(url: str, local: str) -> None:
    """Copy a local file to ``url``; on an object store the object appears only once wholly uploaded."""
    fs, path = filesystem(url)
    fs.put_file(local, path)


@retrying
def download(url: str, local: str) -> None:
    fs, path = filesystem(url)
    os.makedirs(os.path.dirname(os.path.abspath(local)), exist_ok=True)
    fs.get_file(path, local)


def open_read(url: str) -> IO[bytes]:
    fs, path = filesystem(url)
    return fs.open(path, "rb")


@retrying
def read_bytes(url: str) -> bytes:
    with open_read(url) as f:
        return f.read()


def read_json(url: str) -> Any:
    try:
        return json.loads(read_bytes(url).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{url}: not valid JSON ({e})") from None


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


_TMP = ".tmp-"


def _remove_partials(folder: str, name: str) -> None:
    """Delete the temporary files of earlier writers of ``name`` (a killed process cannot clean up after itself)."""
    for entry in os.listdir(folder):
        if entry.startswith(_TMP) and entry.endswith("-" + name):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(folder, entry))


@contextlib.contextmanager
def atomic_write(url: str, sole_writer: bool = False) -> Iterator[IO[bytes]]:
    """A binary file that appears at ``url`` only if the ``with`` block finishes without an exception.

    ``sole_writer``: no other live process writes ``url`` (a retried shard task), so leftovers of a killed
    earlier attempt can be removed first. On an object store there are none: an upload a killed process never
    completed is invisible (a bucket lifecycle rule aborts incomplete multipart uploads)."""
    if not is_remote(url):
        folder = os.path.dirname(os.path.abspath(url))
        os.makedirs(folder, exist_ok=True)
        if sole_writer:
            _remove_partials(folder, os.path.basename(url))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=_TMP, suffix="-" + os.path.basename(url))
        try:
            with os.fdopen(fd, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, _FILE_MODE)
            os.replace(tmp, url)
        except BaseException as e:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            if isinstance(e, OSError) and e.errno in _SPACE_ERRNOS:
                raise StorageError(f"{url}: not written: {cause(e)}") from None
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


@retrying
def write_bytes(url: str, data: bytes) -> None:
    with atomic_write(url) as f:
        f.write(data)


def write_json(url: str, obj: Any) -> None:
    write_bytes(url, (json.dumps(obj, indent=1, sort_keys=False) + "\n").encode("utf-8"))
