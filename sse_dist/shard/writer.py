"""Numbered WebDataset tar shards of audio, each written atomically with its manifest beside it (keys,
durations, speakers, sample rates) and described for the index by its counts alone.

Shards are byte-for-byte reproducible (fixed member order, owner and mtime), so a rerun on the same input
gives the same sha256s.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from typing import IO, Any

from .. import storage
from . import format as fmt
from .audio import Audio
from .inputs import Utterance

log = logging.getLogger(__name__)

_MB = 1_000_000


def sample_json(utt: Utterance, audio: Audio, source: str) -> dict[str, Any]:
    meta = {
        "id": utt.id,
        "duration": audio.duration,
        "sample_rate": audio.sample_rate,
        "channels": audio.channels,
        "speaker": utt.speaker,
        "text": utt.text,
        "source": source,
        "path": utt.path,
    }
    phones = utt.phones
    if phones is not None:
        meta["phones"] = phones
    return meta


class _Hashing:
    """Write-through file wrapper that counts and hashes what the tar writer emits."""

    def __init__(self, f: IO[bytes]):
        self.f = f
        self.size = 0
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.f.write(data)


class ShardWriter:
    """Writes samples to ``<root>/audio/000000.tar``, ``000001.tar``, ...; a shard is closed (committed) once
    it holds ``max_utts`` samples or ``max_mb`` MB of audio, and then its manifest ``000000.json``. As a
    context manager: on an exception the open shard is discarded, never committed half-written. Only the open
    shard's lists are held: ``shards`` has counts, ``speakers`` the distinct speakers."""

    def __init__(self, root: str, max_utts: int, max_mb: float):
        self.root = root
        self.max_utts = max_utts
        self.max_bytes = max_mb * _MB
        self.shards: list[dict[str, Any]] = []
        self.speakers: set[str] = set()
        self._stack: contextlib.ExitStack | None = None

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            if exc_info[0] is None:
                self._finish(stack)
            else:
                stack.__exit__(*exc_info)

    def add(self, key: str, audio: Audio, meta: dict[str, Any]) -> None:
        if self._stack is None:
            self._open()
        member = json.dumps(meta, ensure_ascii=False).encode("utf-8")
        self._tar.write({"__key__": key, audio.ext: audio.data, "json": member})
        lists = self._manifest
        lists["keys"].append(key)
        lists["durations"].append(audio.duration)
        lists["speakers"].append(meta["speaker"])
        lists["sample_rates"].append(audio.sample_rate)
        if meta["speaker"] is not None:
            self.speakers.add(meta["speaker"])
        self.shards[-1]["seconds"] += audio.duration
        self._audio_bytes += len(audio.data)
        if len(lists["keys"]) >= self.max_utts or self._audio_bytes >= self.max_bytes:
            stack, self._stack = self._stack, None
            self._finish(stack)

    def _open(self) -> None:
        name = fmt.shard_name(len(self.shards))
        self._stack = contextlib.ExitStack()
        self._file = _Hashing(
            self._stack.enter_context(storage.atomic_write(self._url(name), sole_writer=True))
        )
        self._tar = self._stack.enter_context(fmt.tar_writer(self._file))
        self._audio_bytes = 0
        self._manifest: dict[str, list[Any]] = {k: [] for k in fmt.MANIFEST_LISTS}
        self.shards.append({"name": name, "utterances": 0, "bytes": 0, "sha256": "", "seconds": 0.0})

    def _finish(self, stack: contextlib.ExitStack) -> None:
        stack.close()  # the tar's end blocks go through the hash, then the file is committed
        entry = self.shards[-1]
        entry.update(
            utterances=len(self._manifest["keys"]),
            bytes=self._file.size,
            sha256=self._file.sha256.hexdigest(),
        )
        entry["seconds"] = round(entry["seconds"], 6)  # drop the float noise of the running sum
        storage.write_json(
            fmt.manifest_url(self.root, entry["name"]), {"shard": entry["name"], **self._manifest}
        )
        log.debug(
            "shard %s: %d utterances, %.1f MB",
            self._url(entry["name"]),
            entry["utterances"],
            entry["bytes"] / _MB,
        )

    def _url(self, name: str) -> str:
        return fmt.shard_url(self.root, fmt.AUDIO, name)
