"""Checkpoints (DeepSpeed's, for resuming) and the exported model (``model.pt``: the extractor, for embedding,
or the phone classifier, for the ``neural`` phone source).

DeepSpeed publishes a checkpoint by writing its ``latest`` file after every rank saved its part, so an
interrupted save is never the one a resume loads. The export is a plain dict of tensors and primitives
that loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
from typing import Any

import torch

from .. import storage

log = logging.getLogger(__name__)

EXPORT_FORMAT = "sse-dist/extractor"
PHONE_EXPORT_FORMAT = "sse-dist/phone-classifier"
_TAG = re.compile(r"^step(\d{8})$")


def tag(step: int) -> str:
    return f"step{step:08d}"


def save(engine: Any, folder: str, step: int, keep: int, rank: int) -> None:
    """Called on every rank (DeepSpeed gathers ZeRO partitions collectively)."""
    engine.save_checkpoint(folder, tag=tag(step), client_state={"step": step})
    if rank == 0:
        steps = sorted(int(m.group(1)) for d in os.listdir(folder) if (m := _TAG.match(d)))
        for old in steps[:-keep]:
            shutil.rmtree(os.path.join(folder, tag(old)), ignore_errors=True)


def resume(engine: Any, folder: str) -> int:
    """The step to continue from: that of the latest complete checkpoint, or 0 if there is none."""
    if not os.path.exists(os.path.join(folder, "latest")):
        log.info("no checkpoint in %s: starting from step 0", folder)
        return 0
    path, client = engine.load_checkpoint(folder)
    if path is None:
        raise RuntimeError(f"{folder}: the latest checkpoint could not be loaded")
    log.info("resumed from %s at step %d", path, client["step"])
    return int(client["step"])


def export(url: str, module: torch.nn.Module, meta: dict[str, Any], kind: str = EXPORT_FORMAT) -> None:
    state = {
        k: v.detach().cpu().float() if v.is_floating_point() else v.detach().cpu()
        for k, v in module.state_dict().items()
    }
    buf = io.BytesIO()
    torch.save({"format": kind, **meta, "state_dict": state}, buf)
    storage.write_bytes(url, buf.getvalue())


def export_url(url: str) -> str:
    """``model.pt`` itself, or the one in a run folder."""
    return url if url.endswith(".pt") else storage.join(url, "model.pt")


def load_export(url: str, kind: str = EXPORT_FORMAT) -> dict[str, Any]:
    """An exported model (``model.pt`` or a run folder holding one), loaded without unpickling code."""
    url = export_url(url)
    blob = torch.load(io.BytesIO(storage.read_bytes(url)), map_location="cpu", weights_only=True)
    if blob.get("format") != kind:
        raise ValueError(f"{url}: not an export of kind {kind!r} (format={blob.get('format')!r})")
    return blob
