"""Audio in, embeddings out, without a shard set: ``sse-dist embed --audio``, ``verify`` and ``sse_dist.load``.

Files are found by the shard stage's reader (a Kaldi data dir or a folder of audio; here also one file), keyed
and de-duplicated as ``shard`` keys them, checked and kept (FLAC, WAV) or re-encoded as ``shard`` stores them,
then featurised by preprocessing's own code with the feature settings the run recorded, and the log-mel is
rounded to float16 as the fbank shards hold it. Every step is the shard route's own code, so the embeddings
equal those of ``shard`` -> ``preprocess`` -> ``embed`` on the same audio (``tests/embed/test_embed_audio.py``).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from .. import storage
from ..config import FeatureConfig, ShardConfig, from_dict
from ..preprocess.utterance import AudioError, analyse, featurize, mono
from ..shard.audio import BadAudio, load
from ..shard.inputs import Inputs, UtteranceTable, read_inputs
from ..shard.inputs import Utterance as Entry
from .sources import Source, Utterance


def recorded_features(run: str, features: dict[str, Any]) -> FeatureConfig:
    """The feature settings a model was trained with (recorded in its ``model.pt``)."""
    if not features:
        raise ValueError(
            f"{run}: its model.pt records no feature settings (exported by an older version): embed "
            "preprocessed shards (embed.shards) instead"
        )
    return from_dict(FeatureConfig, features)


def find(path: str, shard: ShardConfig) -> Inputs:
    """The utterances of a Kaldi data dir, a folder of audio, or a single audio file (its name's stem is its id)."""
    fs, local = storage.filesystem(path)
    if fs.isfile(local):
        name = posixpath.basename(path)
        return Inputs(name, UtteranceTable.of([Entry(posixpath.splitext(name)[0], name, path)]))
    return read_inputs(replace(shard, input=path))


def stored(log_mel: torch.Tensor, vad: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Features as the fbank shards hold them (float16 log-mel), so that both routes embed the same numbers."""
    return log_mel.numpy().astype(np.float16).astype(np.float32), vad.numpy().astype(bool)


def file_features(url: str, shard: ShardConfig, features: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Log-mel and VAD of one audio file as the shard route computes them; BadAudio or AudioError says why not."""
    audio = load(url, shard.min_duration, shard.max_duration)
    return stored(*featurize({audio.ext: audio.data}, features))


def waveform_features(wave: Any, sample_rate: int, features: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Log-mel and VAD of float audio in [-1, 1], [samples] or [samples, channels] (as soundfile reads it)."""
    return stored(
        *analyse(mono(np.asarray(wave, dtype=np.float32), sample_rate, features.sample_rate), features)
    )


def audio_source(path: str, shard: ShardConfig, features: FeatureConfig) -> Source:
    """The utterances of ``path``; the ones that cannot be used are quarantined with the reason."""
    inputs = find(path, shard)
    quarantine = list(inputs.quarantine)
    utterances = _featurised(inputs.utterances.keyed(quarantine), shard, features, quarantine)
    return Source(utterances, inputs.count, {"input": inputs.count}, quarantine)


def _featurised(
    keyed: Iterable[tuple[str, Entry]],
    shard: ShardConfig,
    features: FeatureConfig,
    quarantine: list[dict[str, str]],
) -> Iterator[Utterance]:
    for _, entry in keyed:
        try:
            feats, vad = file_features(entry.url, shard, features)
        except (BadAudio, AudioError) as e:
            quarantine.append({"id": entry.id, "path": entry.path, "reason": str(e)})
            continue
        yield Utterance(entry.id, entry.speaker or "", feats, vad)
