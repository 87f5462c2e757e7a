"""The exported model, ``model.pt``: the extractor (for ``embed``) or the phone classifier (for the ``neural``
phone source), with what it was trained on.

A plain dict of tensors and primitives (``format``, the sizes in ``model``, ``feat_dim``, the frontend in
``data``, the ``features`` settings, ``step``, ``mode``, ``state_dict``), saved with ``torch.save`` and
loaded with ``torch.load(weights_only=True)``: torch alone reads it, and loading it runs no code.
"""

from __future__ import annotations

import io
import re
from typing import Any

import torch

from .. import storage

EXPORT_FORMAT = "sse-dist/extractor"
PHONE_EXPORT_FORMAT = "sse-dist/phone-classifier"


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
    """An exported model (``model.pt`` or a run folder holding one), loaded without unpickling code.

    A file that is not one (another pickle, garbage, a dict of something else) is one ``ValueError`` naming it;
    torch's own message would suggest loading with ``weights_only=False``, which is exactly what not to do."""
    url = export_url(url)
    data = storage.read_bytes(url)
    try:
        blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # pickle's UnpicklingError (no pickle import here), RuntimeError, EOFError
        text = str(e).strip()
        if "Weights only load failed" in text:
            found = re.search(r"unsupported GLOBAL (\S+)", text)
            what = (
                f"it would load {found.group(1)}"
                if found
                else "unreadable, or holds more than tensors and data"
            )
            raise ValueError(f"{url}: refused by the weights-only load: {what}") from None
        first = text.splitlines()[0][:120] if text else type(e).__name__
        raise ValueError(f"{url}: not a PyTorch model file ({first})") from None
    if not isinstance(blob, dict):
        raise ValueError(f"{url}: not an sse-dist export (holds a {type(blob).__name__}, not a dict)")
    if blob.get("format") != kind:
        raise ValueError(f"{url}: not an export of kind {kind!r} (format={blob.get('format')!r})")
    if not isinstance(blob.get("state_dict"), dict):
        raise ValueError(f"{url}: export of kind {kind!r} without a state_dict")
    return blob
