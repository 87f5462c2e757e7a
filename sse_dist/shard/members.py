"""Fast decoding of shard members: a streaming tar reader and a ``.npy`` reader without copies.

The training loader reads every sample of every shard it draws, and profiling it (``bench/loader.py``) showed
the general-purpose readers costing more than everything else together: ``tarfile`` builds a ``TarInfo`` per
member (55% of the loader's time) and ``np.load`` parses each array header with ``ast.literal_eval`` (22%).
These readers give the same results on the shards ``tar_writer`` and ``np.save`` write (ustar/PAX tars;
plain little- or big-endian arrays) and leave anything unusual to the general code or refuse it. They decode
bytes only: nothing here can run code.
"""

from __future__ import annotations

import math
import re
import struct
import tarfile
from collections.abc import Iterator
from typing import IO, Any

import numpy as np

BLOCK = 512
_EMPTY_BLOCK = bytes(BLOCK)
_REGULAR = (b"0", b"\0", b"7")  # as tarfile.REGULAR_TYPES, less GNU sparse files (never written here)
_PAX, _PAX_GLOBAL, _GNU_LONGNAME = b"x", b"g", b"L"
_USTAR = b"ustar\x0000"
# WebDataset's rules, so a tar groups exactly as its tar_file_iterator + group_by_keys would group it:
# "__*__" members are metadata, and a member's key is its name up to the first dot of the basename.
_META = re.compile(r"__[^/]*__($|/)")
_KEY_EXT = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")
# The header np.save writes: a dict literal in this exact order and spelling.
_NPY_HEADER = re.compile(
    rb"\{'descr': '([<>|=]?[a-zA-Z]\d*)', 'fortran_order': False, 'shape': \(((?:\d+, ?)*\d*)\), \} *\n"
)


def _read(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    while len(data) < size:  # a network stream may return less than asked before its end
        more = stream.read(size - len(data))
        if not more:
            raise tarfile.ReadError("unexpected end of data")
        data += more
    return data


def _number(field: bytes) -> int:
    """A header number: NUL/space-terminated octal, or base-256 when the top bit is set (sizes over 8 GiB)."""
    if field[0] & 0x80:
        return int.from_bytes(field[1:], "big")
    try:
        return int(field.split(b"\0", 1)[0].strip() or b"0", 8)
    except ValueError:
        raise tarfile.ReadError("invalid header: bad number field") from None


def _checked(header: bytes) -> bytes:
    """The header, if its checksum (unsigned, or the signed form some old tars wrote) matches."""
    stored = _number(header[148:156])
    unsigned = 256 + sum(header) - sum(header[148:156])
    if stored != unsigned and stored != 256 + sum(struct.unpack_from("148b8x356b", header)):
        raise tarfile.ReadError("invalid header: bad checksum")
    return header


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax_records(data: bytes) -> dict[str, str]:
    """``<length> <key>=<value>\\n`` records of a PAX extended header."""
    out, pos = {}, 0
    while pos < len(data) and data[pos] != 0:
        length = int(data[pos : data.index(b" ", pos)])
        key, _, value = data[data.index(b" ", pos) + 1 : pos + length - 1].partition(b"=")
        out[key.decode("utf-8")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


def tar_members(stream: IO[bytes]) -> Iterator[tuple[str, bytes]]:
    """``(name, contents)`` of every regular file in a tar stream, in stored order.

    Unlike ``tarfile``'s stream mode, which ends silently at a damaged header after the first member, a
    damaged or truncated header anywhere raises ``tarfile.ReadError``: the samples after it would be lost.
    """
    pax: dict[str, str] = {}
    longname = None
    first = True
    while True:
        header = stream.read(BLOCK)
        if not header and not first:
            return  # end of stream without the end-of-archive blocks: tarfile accepts it too
        if len(header) < BLOCK:
            raise tarfile.ReadError("empty file" if not header else "truncated header")
        if header == _EMPTY_BLOCK:
            return
        first = False
        kind = _checked(header)[156:157]
        size = int(pax["size"]) if "size" in pax else _number(header[124:136])
        data = _read(stream, size)
        _read(stream, -size % BLOCK)
        if kind == _PAX:
            pax = _pax_records(data)
            continue
        if kind == _GNU_LONGNAME:
            longname = _text(data)
            continue
        if kind in _REGULAR:
            name = pax.get("path") or longname or _text(header[:100])
            if not (pax.get("path") or longname) and header[257:265] == _USTAR and header[345] != 0:
                name = _text(header[345:500]) + "/" + name
            if not name.endswith("/"):
                yield name, data
        if kind != _PAX_GLOBAL:
            pax, longname = {}, None


def group_samples(members: Iterator[tuple[str, bytes]]) -> Iterator[dict[str, Any]]:
    """Consecutive members with the same key as one ``{"__key__": key, "<ext>": bytes, ...}`` sample."""
    sample: dict[str, Any] | None = None
    for name, data in members:
        match = None if _META.match(name) else _KEY_EXT.match(name)
        if match is None:
            continue
        key, ext = match.group(1), match.group(2).lower()
        if sample is None or key != sample["__key__"]:
            if sample is not None:
                yield sample
            sample = {"__key__": key}
        if ext in sample:
            raise ValueError(f"{name}: duplicate file name in tar file")
        sample[ext] = data
    if sample is not None:
        yield sample


def npy_view(data: bytes) -> np.ndarray | None:
    """The array in ``.npy`` bytes as a read-only view of them, or None where they are not a plain C-order
    array of a fixed-size non-object type with exactly its data (the caller then uses ``np.load``, which
    decodes or refuses the rest)."""
    if data[:6] != b"\x93NUMPY" or data[6:7] not in (b"\x01", b"\x02", b"\x03"):
        return None
    start = 10 if data[6] == 1 else 12
    length = int.from_bytes(data[8:start], "little")
    match = _NPY_HEADER.fullmatch(data, start, start + length)
    if match is None:
        return None
    dtype = np.dtype(match.group(1).decode("ascii"))
    shape = tuple(int(n) for n in match.group(2).split(b",") if n.strip())
    count = math.prod(shape)
    if dtype.hasobject or dtype.itemsize == 0 or len(data) - start - length != count * dtype.itemsize:
        return None
    return np.ndarray(shape, dtype, buffer=data, offset=start + length)
