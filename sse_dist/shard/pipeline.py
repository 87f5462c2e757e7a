"""The ``shard`` stage: inputs -> checked audio (a thread pool) -> tar shards -> quarantine list -> index.

The index is written last: a shard set without ``index.json`` is unfinished, and a rerun into the same output
replaces it. A finished one is never overwritten.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, TypeVar

from tqdm import tqdm

from .. import storage
from ..config import ShardConfig, require_set, validate
from . import format as fmt
from .audio import Audio, BadAudio, load
from .inputs import Inputs, Utterance, read_inputs
from .writer import ShardWriter, sample_json

log = logging.getLogger(__name__)

QUARANTINE = "quarantine.jsonl"
_SHARD_FILE = re.compile(r"^\d{6}\.(tar|json)$")  # a shard and its manifest
T = TypeVar("T")
R = TypeVar("R")


def run(cfg: ShardConfig) -> dict[str, Any]:
    """Shard ``cfg.input`` into ``cfg.output`` (see ``shards/README.md``); returns the index's summary."""
    validate(cfg, "shard.")
    require_set(cfg, "shard", "input", "output")
    inputs = read_inputs(cfg)
    try:
        return _shard(cfg, inputs)
    finally:
        inputs.utterances.close()


def _shard(cfg: ShardConfig, inputs: Inputs) -> dict[str, Any]:
    _check_output(cfg.output)
    quarantine = list(inputs.quarantine)
    keyed = inputs.utterances.keyed(quarantine)  # duplicate keys join the quarantine as they are reached
    with ShardWriter(cfg.output, cfg.max_utts_per_shard, cfg.max_shard_mb) as writer:
        for (key, utt), result in _checked(keyed, len(inputs.utterances), cfg):
            if isinstance(result, Audio):
                writer.add(key, result, sample_json(utt, result, inputs.source))
            else:
                quarantine.append({"id": utt.id, "path": utt.path, "reason": result})
    quarantine.sort(key=lambda q: (q["id"], q["path"]))
    _write_quarantine(cfg.output, quarantine)
    _remove_stale(cfg.output, {s["name"] for s in writer.shards})
    index = _index(inputs, writer.shards, writer.speakers, quarantine)
    storage.write_json(storage.join(cfg.output, fmt.INDEX), index)
    log.info(_summary_line(cfg.output, index))
    return {
        "output": cfg.output,
        "source": index["source"],
        "shards": len(writer.shards),
        "summary": index["summary"],
    }


def _check_output(root: str) -> None:
    """Refuse an output that holds a finished shard set, or anything but the audio of an unfinished one."""
    if storage.exists(storage.join(root, fmt.INDEX)):
        raise ValueError(
            f"{root}: already a shard set (it has {fmt.INDEX}); shard never overwrites one: choose a new "
            f"output, or delete {root} (its per-field shards too) and run again"
        )
    other = [name for name in storage.listdir(root) if name != fmt.AUDIO]
    if other:
        raise ValueError(
            f"{root}: not empty ({', '.join(other[:5])}) and not an unfinished shard set; choose a new or "
            "empty output folder"
        )


def _checked(
    keyed: Iterable[tuple[str, Utterance]], total: int, cfg: ShardConfig
) -> Iterator[tuple[tuple[str, Utterance], Any]]:
    """Each ``(key, utterance)`` with its :class:`Audio` or quarantine reason, in order, with progress."""

    def check(item: tuple[str, Utterance]) -> tuple[tuple[str, Utterance], Audio | str]:
        try:
            return item, load(item[1].url, cfg.min_duration, cfg.max_duration)
        except BadAudio as e:
            return item, str(e)

    with tqdm(total=total, desc="shard", unit="utt", file=sys.stderr, mininterval=1.0) as bar:
        for result in _ordered_map(check, keyed, cfg.workers):
            bar.update()
            yield result


def _ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``map(fn, items)`` on a thread pool, in order, with at most a few results per worker held in memory
    (``Executor.map`` would read ahead through the whole corpus if the writer is slower than the readers)."""
    pending: deque[Future[R]] = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="shard-read") as pool:
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= 4 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def _write_quarantine(root: str, quarantine: list[dict[str, str]]) -> None:
    url = storage.join(root, fmt.AUDIO, QUARANTINE)
    if quarantine:
        lines = "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in quarantine)
        storage.write_bytes(url, lines.encode("utf-8"))
    else:
        storage.remove(url)  # left by an unfinished earlier run


def _remove_stale(root: str, names: set[str]) -> None:
    """Delete shards an unfinished earlier run wrote beyond this run's last one (they look like ours)."""
    folder = storage.join(root, fmt.AUDIO)
    for entry in storage.listdir(folder):
        if _SHARD_FILE.match(entry) and entry.split(".")[0] not in names:
            log.warning("%s: removing %s, left by an unfinished earlier run", folder, entry)
            storage.remove(storage.join(folder, entry))


def _index(
    inputs: Inputs, shards: list[dict[str, Any]], speakers: set[str], quarantine: list[dict[str, str]]
) -> dict[str, Any]:
    sharded = sum(s["utterances"] for s in shards)
    if inputs.count != sharded + len(quarantine):
        raise RuntimeError(
            f"lost utterances: {inputs.count} in, {sharded} sharded, {len(quarantine)} quarantined"
        )
    summary = {
        "input": inputs.count,
        "sharded": sharded,
        "quarantined": len(quarantine),
        "hours": round(sum(s["seconds"] for s in shards) / 3600, 4),
        "excluded": inputs.excluded,
        "reasons": dict(Counter(q["reason"].partition(":")[0] for q in quarantine).most_common()),
        "unmatched_labels": inputs.unmatched,
        "unlabelled": inputs.unlabelled,
    }
    return {
        "format": fmt.FORMAT,
        "version": fmt.VERSION,
        "source": inputs.source,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "fields": [fmt.AUDIO],
        "shards": shards,
        "speakers": sorted(speakers),
        "summary": summary,
        "quarantine": quarantine,
    }


def _summary_line(root: str, index: dict[str, Any]) -> str:
    s = index["summary"]
    line = (
        f"shard {index['source']}: {s['sharded']} of {s['input']} utterances ({s['hours']:.2f} h) "
        f"in {len(index['shards'])} shard(s) at {root}; quarantined {s['quarantined']}"
    )
    if s["reasons"]:
        line += " (" + ", ".join(f"{reason}: {n}" for reason, n in s["reasons"].items()) + ")"
    if s["unlabelled"]:
        line += "; without a label: " + ", ".join(
            f"{n} (no {name} line)" for name, n in s["unlabelled"].items()
        )
    if s["excluded"]:
        line += f"; {s['excluded']} left out (speaker not listed)"
    return line
