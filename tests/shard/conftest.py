"""Fixtures of the shard tests: audio and Kaldi data dir makers."""

from __future__ import annotations

from pathlib import Path

import pytest
from shard_helpers import SR, audio_bytes, tone


@pytest.fixture
def write_audio():
    """``write_audio(path, seconds, fmt="FLAC", ...)``: write a tone, return its bytes."""

    def write(path: Path, seconds: float = 0.6, fmt: str = "FLAC", seed: int = 0, **kw) -> bytes:
        subtype = kw.pop("subtype", None)
        data = audio_bytes(tone(seconds, seed=seed, **kw), fmt, subtype, kw.get("sr", SR))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return data

    return write


@pytest.fixture
def kaldi_dir(tmp_path, write_audio):
    """``kaldi_dir(entries, labels={"utt2spk": text, ...})``: a data dir whose wav.scp lists ``entries`` =
    [(utt, path)]; with ``fill``, a FLAC tone is written for each path that does not exist yet."""

    def make(entries: list[tuple[str, str]], labels: dict[str, str] | None = None, fill: bool = True) -> Path:
        root = tmp_path / "corpus"
        root.mkdir(exist_ok=True)
        for seed, (_, rel) in enumerate(entries):
            path = root / rel  # an absolute rel stays absolute
            if fill and rel and not path.exists():
                write_audio(path, seed=seed)
        (root / "wav.scp").write_text("".join(f"{utt} {rel}".rstrip() + "\n" for utt, rel in entries))
        for fname, text in (labels or {}).items():
            (root / fname).write_text(text)
        return root

    return make
