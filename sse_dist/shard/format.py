"""The shard set: naming, keys, the index, and safe iteration over WebDataset tar shards.

A shard set is a folder (local or ``s3://``)::

    <root>/index.json            shards (counts, seconds, sha256), speakers; ``shard``'s summary, quarantine
    <root>/audio/000000.tar      <key>.flac (or .wav) + <key>.json
    <root>/audio/000000.json     the shard's manifest: its keys, durations, speakers and sample rates
    <root>/<field>/000000.tar    per-field shards written by ``preprocess``, keyed like the audio shard
    <root>/<field>/000000.json   written after its tar: the shard is finished (counts, quarantine, sha256)

Members are decoded by extension with numpy (``allow_pickle=False``) and json only: nothing in a shard can run
code. See ``shards/README.md`` for the full format.
"""

from __future__ import annotations

import io
import json
import logging
import posixpath
import re
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import webdataset as wds

from .. import storage
from . import members

log = logging.getLogger(__name__)

FORMAT = "sse-dist/shards"
# Version 2 keeps per-utterance lists in per-shard manifests, so the index stays small at any corpus size
# (version 1 listed every key in index.json: ~0.5 GB and many GB of memory at 10 million utterances).
VERSION = 2
MANIFEST_LISTS = ("keys", "durations", "speakers", "sample_rates")
AUDIO = "audio"
INDEX = "index.json"
AUDIO_EXTENSIONS = ("flac", "wav")
# WebDataset splits a member name into key and extension at the first dot: keys carry no dots (nor slashes).
_KEY_RE = re.compile(r"^[A-Za-z0-9_\-]+$")
_NAME_RE = re.compile(r"^\d{6,}$")


class ShardError(RuntimeError):
    """A shard that cannot be read as sse-dist shards; the message names the shard and, if known, the key."""


def is_valid_key(key: str) -> bool:
    return bool(_KEY_RE.match(key)) and len(key) <= 200


def key_for(utt_id: str) -> str:
    """A WebDataset-safe key for an utterance id (dots and other characters become ``_``)."""
    return re.sub(r"[^A-Za-z0-9_\-]", "_", utt_id)[:200]


def shard_name(index: int) -> str:
    return f"{index:06d}"


def shard_url(root: str, field: str, name: str) -> str:
    return storage.join(root, field, f"{name}.tar")


def done_url(root: str, field: str, name: str) -> str:
    return storage.join(root, field, f"{name}.json")


def manifest_url(root: str, name: str) -> str:
    return done_url(root, AUDIO, name)


def read_raw_index(root: str) -> dict[str, Any]:
    """``index.json`` of any version, its format checked (the migration reads old ones through this)."""
    url = storage.join(root, INDEX)
    try:
        index = storage.read_json(url)
    except FileNotFoundError:
        raise ShardError(f"{url}: no shard index (run `sse-dist shard` to create the shard set)") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        found = index.get("format") if isinstance(index, dict) else type(index).__name__
        raise ShardError(f"{url}: not an sse-dist shard index (format={found!r})")
    return index


def read_index(root: str) -> dict[str, Any]:
    """The shard set's index: shards with counts, speakers, summary. Per-utterance lists are in the shards'
    manifests (:func:`read_manifest`)."""
    index = read_raw_index(root)
    url = storage.join(root, INDEX)
    if index.get("version") != VERSION:
        raise ShardError(
            f"{url}: index version {index.get('version')!r}, this sse-dist reads version {VERSION}; "
            f"migrate it in place with `python -m sse_dist.shard.migrate {root}`"
        )
    shards = index.get("shards")
    if not isinstance(shards, list) or not all(isinstance(s, dict) for s in shards):
        raise ShardError(f"{url}: malformed: 'shards' must be a list of objects")
    for shard in shards:
        # Names become paths: none may point outside the shard set.
        if not _NAME_RE.match(str(shard.get("name"))):
            raise ShardError(f"{url}: bad shard name {shard.get('name')!r} (six or more digits)")
    return index


def read_manifest(root: str, name: str) -> dict[str, Any]:
    """One shard's manifest: ``keys``, ``durations``, ``speakers``, ``sample_rates``, in tar order."""
    url = manifest_url(root, name)
    try:
        manifest = storage.read_json(url)
    except FileNotFoundError:
        raise ShardError(f"{url}: no manifest for shard {name}") from None
    lists = [manifest.get(k) for k in MANIFEST_LISTS]
    if not all(isinstance(v, list) for v in lists) or len({len(v) for v in lists}) != 1:
        raise ShardError(f"{url}: a manifest has the lists {', '.join(MANIFEST_LISTS)}, of one length")
    # Keys become member names: none may point outside the shard set.
    bad = [k for k in manifest["keys"] if not is_valid_key(str(k))]
    if bad:
        raise ShardError(f"{url}: bad key {bad[0]!r} (letters, digits, '_' and '-')")
    return manifest


def iter_shards(root: str) -> Iterator[dict[str, Any]]:
    """Every shard's index entry joined with its manifest (keys, durations, ...), in index order, one at a
    time: what version 1 of the index held whole."""
    for shard in read_index(root)["shards"]:
        yield shard | read_manifest(root, shard["name"])


def load_npy(data: bytes, where: str) -> np.ndarray:
    """The array in ``.npy`` bytes; a plain array comes back as a read-only view of them (no copy)."""
    array = members.npy_view(data)
    if array is not None:
        return array
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ShardError(f"{where}: not a plain .npy array ({e})") from None


def load_json(data: bytes, where: str) -> dict[str, Any]:
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ShardError(f"{where}: bad JSON ({e})") from None
    if not isinstance(obj, dict):
        raise ShardError(f"{where}: JSON must be an object")
    return obj


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def tar_writer(stream: Any) -> wds.TarWriter:
    """A writer of byte members only (no encoder, so nothing is ever pickled) with fixed metadata, so the same
    samples give the same tar (and sha256) on every run. PAX format for names over USTAR's 100 characters (keys
    may have 200); an integer mtime, since a float one costs every member an extra PAX header to parse."""
    return wds.TarWriter(stream, encoder=False, user="sse", group="sse", mtime=0, format="PAX_FORMAT")


def _checked_members(url: str, found: Iterator[tuple[str, bytes]]) -> Iterator[tuple[str, bytes]]:
    """Grouping by key skips a member whose name has no extension, silently: refuse it instead."""
    for name, data in found:
        if "." not in posixpath.basename(name):
            raise ShardError(f"{url}: member {name!r} has no extension (members are <key>.<field>)")
        yield name, data


def iter_tar(url: str) -> Iterator[dict[str, Any]]:
    """Samples of one tar shard as ``{"__key__": key, "<ext>": bytes, ...}``, in stored order.

    A truncated or corrupt tar raises :class:`ShardError` naming the shard and the last good key.
    """
    last = None
    try:
        with storage.open_read(url) as stream:
            for sample in members.group_samples(_checked_members(url, members.tar_members(stream))):
                key = sample["__key__"]
                if not is_valid_key(key):
                    raise ShardError(f"{url}: bad key {key!r} (keys are letters, digits, '_' and '-')")
                last = key
                yield sample
    except ShardError:
        raise
    except FileNotFoundError:
        raise ShardError(f"{url}: shard does not exist") from None
    except Exception as e:  # tarfile.ReadError, EOFError, ValueError: all mean a damaged shard
        after = f" after key {last!r}" if last else ""
        raise ShardError(f"{url}: unreadable tar{after}: {type(e).__name__}: {e}") from None


def iter_joined(root: str, name: str, fields: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Samples of shard ``name`` with the members of every field merged by key.

    The first field is streamed; the others (small: labels, phones) are read whole. A key missing from a
    later field is logged and yielded with ``__missing__`` naming the fields it lacks.
    """
    first, *rest = list(fields)
    side: dict[str, dict[str, dict[str, Any]]] = {}
    for field in rest:
        side[field] = {s["__key__"]: s for s in iter_tar(shard_url(root, field, name))}
    for sample in iter_tar(shard_url(root, first, name)):
        key = sample["__key__"]
        missing = []
        for field, samples in side.items():
            other = samples.get(key)
            if other is None:
                missing.append(field)
                continue
            sample.update((k, v) for k, v in other.items() if k not in sample)
        if missing:
            log.warning("%s shard %s key %s: missing field(s) %s", root, name, key, ", ".join(missing))
            sample["__missing__"] = missing
        sample["__shard__"] = name
        yield sample
