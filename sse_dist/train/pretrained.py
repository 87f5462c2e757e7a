"""``train.init_from``: start a run from another run's extractor (and decoder), with fresh heads and optimizer.

The pretrain-then-fine-tune workflow: self-supervised training on everything, then a short supervised or
multitask run on the labelled part. The extractor comes from the source's ``model.pt``; a run folder's latest
DeepSpeed checkpoint also gives its decoder, taken where every decoder tensor has this run's shape (a source
trained with another phone inventory, or none, leaves the decoder fresh). An extractor that does not fit is
refused, naming the first layer that differs: silently training from a half-loaded extractor would waste the
run. Everything is loaded with ``weights_only=True``.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import torch
from torch import nn

from .. import storage
from ..models.export import load_export
from . import checkpoint

log = logging.getLogger(__name__)

_MODEL_STATES = "mp_rank_00_model_states.pt"


def _checkpoint_module(run: str) -> dict[str, torch.Tensor]:
    """The whole module state of a run folder's latest checkpoint; empty when it has none."""
    latest = storage.join(run, "checkpoints", checkpoint.LATEST)
    if run.endswith(".pt") or not storage.exists(latest):
        return {}
    name = storage.read_bytes(latest).decode().strip()
    blob = storage.read_bytes(storage.join(run, "checkpoints", name, _MODEL_STATES))
    with torch.serialization.safe_globals(checkpoint.SAFE_GLOBALS):
        return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)["module"]


def _mismatch(prefix: str, own: dict[str, torch.Tensor], src: dict[str, torch.Tensor]) -> str:
    """Why ``src`` cannot be loaded into the ``prefix`` part of ``own`` ("" when it can)."""
    mine = {k: v for k, v in own.items() if k.startswith(prefix)}
    theirs = {k: v for k, v in src.items() if k.startswith(prefix)}
    for k, v in mine.items():
        if k not in theirs:
            return f"layer {k} is missing there"
        if theirs[k].shape != v.shape:
            return f"layer {k} has shape {list(theirs[k].shape)} there, {list(v.shape)} here"
    extra = sorted(set(theirs) - set(mine))
    return f"layer {extra[0]} exists there, not here" if extra else ""


def initialise(model: nn.Module, source: str) -> dict[str, Any]:
    """Load ``source``'s extractor (and decoder where it fits) into ``model``; what was loaded, for the run's
    summary and export."""
    blob = load_export(source)
    src = {f"extractor.{k}": v for k, v in blob["state_dict"].items()}
    own = model.state_dict()
    why = _mismatch("extractor.", own, src)
    if why:
        raise ValueError(f"train.init_from: {source}: the extractor does not fit this model: {why}")
    loaded = ["extractor"]
    if getattr(model, "decoder", None) is not None:
        module = _checkpoint_module(source)
        why = _mismatch("decoder.", own, module) if module else "no checkpoint with a decoder"
        if why:
            log.warning("train.init_from: decoder left fresh (%s)", why)
        else:
            src |= {k: v for k, v in module.items() if k.startswith("decoder.")}
            loaded.append("decoder")
    model.load_state_dict({**own, **src})
    log.info("initialised %s from %s (step %d, mode %s)", " and ".join(loaded), source, blob["step"],
             blob["mode"])  # fmt: skip
    return {"source": source, "step": blob["step"], "mode": blob["mode"], "loaded": loaded}
