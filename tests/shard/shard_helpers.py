"""Audio makers shared by the shard tests (a plain module: importing from conftest is fragile)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from sse_dist.config import ShardConfig
from sse_dist.shard import format as fmt
from sse_dist.shard import run

SR = 16000


def tone(seconds: float, sr: int = SR, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A float32 [frames, channels] signal that differs per seed (so decodes can be told apart)."""
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    x = 0.3 * np.sin(2 * np.pi * (200 + 50 * seed) * t) + 0.01 * rng.standard_normal(t.size)
    return np.repeat(x[:, None], channels, axis=1).astype(np.float32)


def audio_bytes(x: np.ndarray, fmt: str = "FLAC", subtype: str | None = None, sr: int = SR) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def shard_set(input_dir: Path | str, output: Path | str, **cfg: Any) -> dict[str, Any]:
    """Run ``shard`` and return the index it wrote, each shard's entry joined with its manifest, after checking
    that the run returned its summary."""
    result = run(ShardConfig(input=str(input_dir), output=str(output), **cfg))
    index = fmt.read_index(str(output)) | {"shards": list(fmt.iter_shards(str(output)))}
    shards, summary = len(index["shards"]), index["summary"]
    assert result == {"output": str(output), "source": index["source"], "shards": shards, "summary": summary}
    return index
