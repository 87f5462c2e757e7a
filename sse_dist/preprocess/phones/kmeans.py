"""Phone-free acoustic units: k-means clusters of feature frames (HuBERT's first-iteration pseudo-labels), or
of a trained extractor's frame-level features (``phones.unit_model``: its later iterations).

No recognizer, lexicon or language is assumed. The units are fitted once on a sample of speech frames that Ray
tasks draw from the fbank shards (each shard gives its share, in proportion to its frames), written to
``preprocess.phones.model`` (an ``.npz`` of plain arrays) and then applied to every frame of the corpus by the
phone stage's actors. Log-mel frames are mean-normalised per utterance first, as the model's input is.
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ... import storage
from ...config import FeatureConfig, PhoneConfig, PreprocessConfig
from ...frontend import apply_cmn
from ...models.export import export_url
from ...models.xvector import load_extractor
from ...shard import format as fmt
from ...shard.fields import CLUSTERED, FBANK
from .base import Labels, PhoneSource, Utterance, check_features

log = logging.getLogger(__name__)
_ITERATIONS = 50


def normalised(log_mel: np.ndarray, window: int = 0) -> torch.Tensor:
    return apply_cmn(torch.from_numpy(np.asarray(log_mel, dtype=np.float32)), window)


# Per process, as the neural source's model: Ray reuses its workers, and each would otherwise read the model
# again for every shard it samples.
_load_extractor = functools.lru_cache(maxsize=4)(load_extractor)


def unit_features(phones: PhoneConfig, features: FeatureConfig) -> Callable[[np.ndarray], torch.Tensor]:
    """What the units cluster, ``[T, D]`` for an utterance's raw log-mel ``[T, feat_dim]``: the mean-normalised
    log-mel, or with ``phones.unit_model`` that extractor's frame-level output ``phones.unit_layer`` on the
    features as it was trained on them, edge frames repeated so that every input frame has one."""
    if not phones.unit_model:
        return normalised
    extractor, blob = _load_extractor(phones.unit_model)
    check_features("preprocess.phones.unit_model", phones.unit_model, blob.get("features", {}), features)
    layers = len(extractor.layer_outputs(torch.zeros(1, 2 * extractor.context + 1, blob["feat_dim"])))
    if phones.unit_layer > layers:
        raise ValueError(
            f"preprocess.phones.unit_layer: {phones.unit_layer}, but {phones.unit_model} has {layers} frame layers"
        )
    cmn_window, context = int(blob["data"]["cmn_window"]), extractor.context

    @torch.no_grad()
    def frames(log_mel: np.ndarray) -> torch.Tensor:
        x = normalised(log_mel, cmn_window)
        padded = x[torch.arange(-context, len(x) + context).clamp(0, len(x) - 1)]
        h = extractor.layer_outputs(padded[None])[phones.unit_layer - 1][0]
        trim = (h.shape[1] - len(x)) // 2  # frames of the padding this layer's context has not consumed
        return h[:, trim : trim + len(x)].T

    return frames


def sample_shard(
    root: str, name: str, count: int, seed: int, index: int, phones: PhoneConfig, features: FeatureConfig
) -> np.ndarray:
    """``count`` speech frames (float16 [count, D]) drawn uniformly from one fbank shard."""
    featurize = unit_features(phones, features)
    frames = []
    for s in fmt.iter_tar(fmt.shard_url(root, FBANK, name)):
        where = f"{root} shard {name} key {s['__key__']}"
        try:
            vad = torch.from_numpy(fmt.load_npy(s["vad.npy"], where).astype(bool))
            frames.append(featurize(fmt.load_npy(s["fbank.npy"], where))[vad].half())
        except (fmt.ShardError, KeyError, IndexError) as e:
            # Not sampled; labelling the corpus later counts this utterance as failed, with the reason.
            log.warning("k-means sample: skipping %s: %s", where, e)
    pool = torch.cat(frames) if frames else torch.zeros(0, 0, dtype=torch.half)
    rng = np.random.default_rng([seed, index])
    return pool[rng.choice(len(pool), size=min(count, len(pool)), replace=False)].numpy()


def fit(frames: np.ndarray, units: int, seed: int, iterations: int = _ITERATIONS) -> np.ndarray:
    """k-means++ initialisation, then Lloyd iterations; the same frames and seed give the same centroids."""
    x = torch.from_numpy(np.asarray(frames, dtype=np.float32))
    if len(x) < units:
        raise ValueError(f"k-means: {len(x)} frames sampled, fewer than the {units} units asked for")
    gen = torch.Generator().manual_seed(seed)
    centroids = x[torch.randint(len(x), (1,), generator=gen)]
    nearest = torch.cdist(x, centroids).squeeze(1).pow(2)
    for _ in range(1, units):
        pick = torch.multinomial(nearest / nearest.sum(), 1, generator=gen)
        centroids = torch.cat([centroids, x[pick]])
        nearest = torch.minimum(nearest, (x - x[pick]).pow(2).sum(1))
    for _ in range(iterations):
        assign = torch.cdist(x, centroids).argmin(1)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=units).float()[:, None]
        # An emptied cluster keeps its centroid.
        moved = torch.where(counts > 0, sums / counts.clamp_min(1), centroids)
        if torch.equal(moved, centroids):
            break
        centroids = moved
    return centroids.numpy()


def _gather(cfg: PreprocessConfig) -> np.ndarray:
    import ray

    shards = [
        (root, s["name"], storage.read_json(fmt.done_url(root, FBANK, s["name"]))["frames"])
        for root in cfg.shards
        for s in fmt.read_index(root)["shards"]
    ]
    total = sum(frames for _, _, frames in shards)
    task = ray.remote(num_cpus=1, max_retries=3)(sample_shard)
    share = [round(cfg.phones.sample_frames * frames / total) for _, _, frames in shards]
    refs = [
        task.remote(root, name, n, cfg.phones.seed, i, cfg.phones, cfg.features)
        for i, ((root, name, _), n) in enumerate(zip(shards, share))
    ]
    return np.concatenate([ray.get(r) for r in refs])


class KMeansSource(PhoneSource):
    reads = (FBANK,)

    def __init__(self, phones: PhoneConfig, features: FeatureConfig):
        super().__init__(phones, features)
        self.centroids = torch.from_numpy(load_units(phones)["centroids"])
        self.featurize = unit_features(phones, features)

    @classmethod
    def num_classes(cls, phones: PhoneConfig) -> int:
        return phones.units

    @classmethod
    def prepare(cls, cfg: PreprocessConfig, connect: Callable[[], None]) -> None:
        unit_features(cfg.phones, cfg.features)  # in the driver: a wrong model or layer is one line
        if storage.exists(cfg.phones.model):
            load_units(cfg.phones)  # refuses a file that does not match the settings
            return
        import ray

        connect()
        frames = _gather(cfg)
        log.info("k-means: fitting %d units on %d sampled speech frames", cfg.phones.units, len(frames))
        fitted = ray.get(ray.remote(num_cpus=1)(fit).remote(frames, cfg.phones.units, cfg.phones.seed))
        buf = io.BytesIO()
        np.savez(
            buf,
            centroids=fitted.astype(np.float32),
            sampled_frames=np.int64(len(frames)),
            unit_model_sha256=np.str_(_model_sha256(cfg.phones)),
        )
        storage.write_bytes(cfg.phones.model, buf.getvalue())

    @classmethod
    def identity(cls, phones: PhoneConfig) -> dict[str, Any]:
        model = {"unit_model_sha256": _model_sha256(phones)} if phones.unit_model else {}
        return {"units_sha256": storage.sha256(phones.model), **model}

    def label(self, utt: Utterance) -> Labels:
        units = torch.cdist(self.featurize(utt.log_mel), self.centroids).argmin(1)
        return Labels(units.numpy().astype(np.uint8), CLUSTERED)


def load_units(phones: PhoneConfig) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(storage.read_bytes(phones.model)), allow_pickle=False) as z:
        units = {k: z[k] for k in z.files}
    if "centroids" not in units or len(units["centroids"]) != phones.units:
        raise ValueError(
            f"preprocess.phones.model: {phones.model} holds no {phones.units} k-means units "
            "(delete it to fit new ones, or set preprocess.phones.units to match)"
        )
    fitted_on = str(units.get("unit_model_sha256", ""))  # files from before unit_model: log-mel units
    if fitted_on != _model_sha256(phones):
        what = f"the frames of {phones.unit_model}" if phones.unit_model else "log-mel frames"
        raise ValueError(
            f"preprocess.phones.model: {phones.model} holds units fitted on other features than {what} "
            "(delete it to fit new ones, or give it another name)"
        )
    return units


def _model_sha256(phones: PhoneConfig) -> str:
    """The checksum of the model whose features the units cluster, "" for log-mel units."""
    return storage.sha256(export_url(phones.unit_model)) if phones.unit_model else ""
