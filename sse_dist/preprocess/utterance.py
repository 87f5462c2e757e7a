"""One utterance through the preprocessing chain: audio bytes -> waveform -> log-mel + VAD; the stored members."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

import numpy as np
import soundfile as sf
import torch

from ..config import FeatureConfig, PhoneConfig
from ..frontend import energy_vad, fbank, resample
from ..shard import format as fmt

if TYPE_CHECKING:
    from .phones.base import Labels


class AudioError(ValueError):
    """This utterance's audio cannot be used (the reason is quarantined in the shard summary)."""


def waveform(sample: dict[str, Any], target_rate: int) -> np.ndarray:
    """Mono float32 at ``target_rate`` from a sample's audio member."""
    ext = next((e for e in fmt.AUDIO_EXTENSIONS if e in sample), None)
    if ext is None:
        raise AudioError(f"no audio member (.{' / .'.join(fmt.AUDIO_EXTENSIONS)})")
    try:
        wave, rate = sf.read(io.BytesIO(sample[ext]), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise AudioError(f"undecodable audio: {e}") from None
    if wave.size == 0:
        raise AudioError("empty audio")
    if not np.isfinite(wave).all():
        raise AudioError("audio holds NaN or infinite samples")
    # Channels are averaged: speaker identity is the same on every channel of a recording.
    return resample(wave.mean(axis=1), rate, target_rate)


def featurize(sample: dict[str, Any], cfg: FeatureConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw log-mel [T, D] (mean normalisation is applied when segments are cut) and the VAD mask [T]."""
    log_mel, log_energy = fbank(waveform(sample, cfg.sample_rate), cfg)
    if log_mel.shape[0] == 0:
        raise AudioError("shorter than one analysis window")
    vad = energy_vad(log_energy, cfg)
    if not vad.any():
        raise AudioError("no speech frames (energy VAD)")
    return log_mel, vad


def fbank_member(key: str, meta: dict[str, Any], log_mel: torch.Tensor, vad: torch.Tensor) -> dict[str, Any]:
    keep = {k: meta.get(k) for k in ("id", "speaker", "duration", "source")}
    info = {**keep, "frames": int(log_mel.shape[0]), "speech_frames": int(vad.sum())}
    return {
        "__key__": key,
        "fbank.npy": fmt.npy_bytes(log_mel.numpy().astype(np.float16)),
        "vad.npy": fmt.npy_bytes(vad.numpy().astype(np.uint8)),
        "json": json.dumps(info).encode("utf-8"),
    }


def phone_member(key: str, labels: Labels, cfg: PhoneConfig, num_classes: int) -> dict[str, Any]:
    """Hard labels as uint8 indices; soft ones (or hard ones asked for as soft) as float16 posteriors; beside
    them, how the utterance got them."""
    values = labels.values
    if cfg.form == "hard":
        array = (values if values.ndim == 1 else values.argmax(axis=1)).astype(np.uint8)
    else:
        array = (np.eye(num_classes, dtype=np.float16)[values] if values.ndim == 1 else values).astype(
            np.float16
        )
    info = {"how": labels.how, **({"note": labels.note} if labels.note else {})}
    return {
        "__key__": key,
        f"{cfg.field}.npy": fmt.npy_bytes(array),
        f"{cfg.field}.json": json.dumps(info).encode("utf-8"),
    }
