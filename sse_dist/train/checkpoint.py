"""Checkpoints: DeepSpeed's, for resuming (the exported ``model.pt`` is :mod:`sse_dist.models.export`).

A checkpoint is published by its ``latest`` file, written last: an interrupted save is never the one a resume
loads. DeepSpeed's own ``latest`` is written by rank 0 as soon as *its* part is saved (other ranks may still be
writing) and in place (a crash mid-write leaves a torn pointer), so we save with ``save_latest=False``, wait
for every rank, and rank 0 publishes ``latest`` with an atomic write. DeepSpeed writes to local paths only: for
a run whose output is on an object store, every node saves into a node-local staging folder, its local rank 0
uploads what the node wrote, and once every node has uploaded, rank 0 publishes ``latest`` on the store. A
resume downloads the checkpoint ``latest`` names into each node's staging folder and loads it from there.

Checkpoints are loaded with ``torch.load(weights_only=True)`` (:class:`SafeCheckpointEngine`): DeepSpeed's
engine would unpickle arbitrary objects.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

import torch
import yaml
from deepspeed.runtime.checkpoint_engine import TorchCheckpointEngine
from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
from deepspeed.runtime.zero.config import ZeroStageEnum
from deepspeed.utils.tensor_fragment import fragment_address

from .. import storage
from . import distributed

log = logging.getLogger(__name__)

LATEST = "latest"
_TAG = re.compile(r"^step(\d{8})$")
# One file per data-parallel rank in a ZeRO-1/2 checkpoint (DeepSpeed's names; ``bf16_`` with bf16).
_PARTITION = re.compile(r"^(?:bf16_)?zero_pp_rank_(\d+)_mp_rank_\d+_optim_states\.pt$")


# The only non-tensor classes DeepSpeed puts in a ZeRO optimizer checkpoint (found with
# torch.serialization.get_unsafe_globals_in_checkpoint): plain data holders, rebuilt without running their code.
SAFE_GLOBALS = [ZeroStageEnum, LossScaler, DynamicLossScaler, fragment_address]


class SafeCheckpointEngine(TorchCheckpointEngine):
    """DeepSpeed's torch.save/torch.load engine, loading with ``weights_only=True``: a checkpoint file cannot
    run code, and one holding any class beyond :data:`SAFE_GLOBALS` is refused."""

    def load(self, path: str, map_location: Any = None) -> Any:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location=map_location, weights_only=True)


def secure(engine: Any) -> None:
    """Make ``engine`` load its checkpoints with :class:`SafeCheckpointEngine`."""
    if type(engine.checkpoint_engine) is not TorchCheckpointEngine:
        raise RuntimeError(
            f"unexpected DeepSpeed checkpoint engine {type(engine.checkpoint_engine).__name__}"
        )
    engine.checkpoint_engine = SafeCheckpointEngine(engine._config)


def tag(step: int) -> str:
    return f"step{step:08d}"


@dataclass
class Store:
    """Where a run's checkpoints live (``url``) and where DeepSpeed reads and writes them (``local``)."""

    url: str
    local: str
    world: distributed.World

    @classmethod
    def for_run(cls, output: str, staging: str, world: distributed.World) -> Store:
        url = storage.join(output, "checkpoints")
        if not storage.is_remote(url):
            return cls(url, url, world)
        # Every local rank must pick the same folder without talking to the others: derive it from the URL.
        digest = hashlib.sha256(url.encode()).hexdigest()[:12]
        local = os.path.join(staging or os.path.join(tempfile.gettempdir(), "sse-dist-checkpoints"), digest)
        return cls(url, local, world)

    @property
    def remote(self) -> bool:
        return self.local != self.url


def _steps(names: list[str]) -> list[int]:
    return sorted(int(m.group(1)) for n in names if (m := _TAG.match(n)))


def _stale(names: list[str], step: int, keep: int) -> list[int]:
    """Checkpoints to delete after saving ``step``: all but the ``keep`` newest up to it, and any newer one
    (the partial save of a run that died after it, which would otherwise crowd out the complete ones)."""
    steps = _steps(names)
    older = [s for s in steps if s <= step]
    return older[:-keep] + [s for s in steps if s > step]


def _prune_local(folder: str, step: int, keep: int) -> None:
    for old in _stale(os.listdir(folder), step, keep):
        shutil.rmtree(os.path.join(folder, tag(old)), ignore_errors=True)


def _upload_node_part(store: Store, name: str) -> None:
    """Everything this node wrote for checkpoint ``name`` (its ranks' ZeRO partitions, rank 0's model states)."""
    folder = os.path.join(store.local, name)
    for root, _, files in os.walk(folder):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), folder)
            storage.upload(storage.join(store.url, name, *rel.split(os.sep)), os.path.join(root, f))


def save(engine: Any, store: Store, step: int, keep: int) -> None:
    """Called on every rank (DeepSpeed gathers ZeRO partitions collectively)."""
    name = tag(step)
    engine.save_checkpoint(store.local, tag=name, client_state={"step": step}, save_latest=False)
    world = store.world
    if store.remote and world.local_rank == 0:
        _upload_node_part(store, name)
    distributed.barrier()  # every rank's part is saved (and uploaded) before the pointer names it
    if world.rank == 0:
        storage.write_bytes(storage.join(store.url, LATEST), name.encode())  # atomic: whole or absent
        if store.remote:
            for old in _stale(storage.listdir(store.url), step, keep):
                storage.remove(storage.join(store.url, tag(old)), recursive=True)
    if world.local_rank == 0 and (store.remote or world.rank == 0):
        _prune_local(store.local, step, keep)


def _latest(store: Store) -> str | None:
    url = storage.join(store.url, LATEST)
    try:
        name = storage.read_bytes(url).decode("utf-8", "replace").strip()
    except FileNotFoundError:
        return None
    if not _TAG.match(name):
        raise ValueError(f"{url}: names {name[:40]!r}, not a checkpoint (stepNNNNNNNN)")
    return name


def _download(store: Store, name: str) -> None:
    files = storage.files_below(storage.join(store.url, name))
    if not files:
        raise RuntimeError(f"{store.url}/{LATEST} names {name}, but the store holds no files for it")
    for rel in files:
        local = os.path.join(store.local, name, *rel.split("/"))
        storage.download(storage.join(store.url, name, rel), local)
    log.info("downloaded checkpoint %s (%d files) to %s", name, len(files), store.local)


def check_model(run: str, model: dict[str, Any]) -> None:
    """Refuse to resume a run whose checkpoint was trained with another model size, naming the field: DeepSpeed
    would fail with a page of tensor shape mismatches. The run's ``train.yaml`` is the config it was saved with
    (written at every start, after this check)."""
    url = storage.join(run, "train.yaml")
    if not storage.exists(url):
        return
    saved = (yaml.safe_load(storage.read_bytes(url)) or {}).get("model") or {}
    for field, value in model.items():
        if field in saved and saved[field] != value:
            raise ValueError(
                f"train.model.{field}: {value!r}, but the checkpoint in {run} was trained with {saved[field]!r} "
                "(resume with the same model, or train into a new output)"
            )


def check_partitions(store: Store, name: str) -> None:
    """Refuse in one line a ZeRO-1/2 checkpoint saved by another number of ranks (an elastic job that shrank or
    grew): DeepSpeed does not re-partition ZeRO optimizer state and would fail deep in its loader. A ZeRO-0
    checkpoint (no partition files) loads on any number of ranks."""
    saved = {m.group(1) for f in storage.listdir(storage.join(store.url, name)) if (m := _PARTITION.match(f))}
    if saved and len(saved) != store.world.size:
        raise ValueError(
            f"deepspeed.zero_stage: {store.url}/{name} holds the ZeRO optimizer partitions of {len(saved)} ranks "
            f"and DeepSpeed cannot re-partition them for {store.world.size}: resume on {len(saved)} ranks, or "
            "train a job whose size may change with zero_stage 0"
        )


def _decide(store: Store, run: str, model: dict[str, Any] | None) -> int:
    """Rank 0: the step to resume from (-1: no checkpoint)."""
    name = _latest(store)
    if name is None:
        return -1
    if model is not None:
        check_model(run, model)
    check_partitions(store, name)
    return int(name[len("step") :])


def resume(engine: Any, store: Store, run: str = "", model: dict[str, Any] | None = None) -> int:
    """The step to continue from: that of the latest complete checkpoint, or 0 if there is none.

    Rank 0 reads ``latest`` and every rank loads the checkpoint it names: ranks that each read the pointer could
    load different checkpoints (a save landing in between) and hang in DeepSpeed's tag check."""
    world, error = store.world, None
    decided = -1
    if world.rank == 0:
        try:
            decided = _decide(store, run, model)
        except (ValueError, RuntimeError, OSError) as e:
            error, decided = e, -2
    decided = distributed.broadcast_int(decided, world.device)
    if error is not None:
        raise error
    if decided == -2:
        raise RuntimeError("rank 0 could not resume (see its error)")
    if decided == -1:
        log.info("no checkpoint in %s: starting from step 0", store.url)
        return 0
    name = tag(decided)
    if store.remote:
        if world.local_rank == 0:
            _download(store, name)
        distributed.barrier()
    path, client = engine.load_checkpoint(store.local, tag=name)
    if path is None:
        raise RuntimeError(f"{store.url}: checkpoint {name} could not be loaded")
    log.info("resumed from %s at step %d", path, client["step"])
    return int(client["step"])
