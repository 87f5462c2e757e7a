"""k-means acoustic units: deterministic for a seed, and they find the clusters that are there."""

import io

import numpy as np
import pytest

from sse_dist.config import FeatureConfig, PhoneConfig
from sse_dist.preprocess.phones import make_source
from sse_dist.preprocess.phones.base import Utterance
from sse_dist.preprocess.phones.kmeans import fit


def _blobs(seed=0, per=300):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, size=(4, 8))
    frames = np.concatenate([c + rng.normal(0, 0.5, size=(per, 8)) for c in centres])
    return frames.astype(np.float32), np.repeat(np.arange(4), per)


def test_units_are_stable_for_a_fixed_seed_and_differ_for_another():
    frames = np.random.default_rng(1).normal(size=(2000, 6)).astype(np.float32)
    a, b = fit(frames, 16, seed=3), fit(frames, 16, seed=3)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, fit(frames, 16, seed=4))


def test_units_recover_separated_clusters():
    frames, truth = _blobs()
    centroids = fit(frames, 4, seed=0)
    assign = ((frames[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
    # Each true cluster maps to one unit and no unit is shared.
    mapping = {t: set(assign[truth == t]) for t in range(4)}
    assert all(len(m) == 1 for m in mapping.values()) and len(set.union(*mapping.values())) == 4


def test_source_labels_frames_by_the_nearest_unit(tmp_path):
    frames, truth = _blobs()
    units = tmp_path / "units.npz"
    centroids = fit(frames, 4, seed=0)
    buf = io.BytesIO()
    np.savez(buf, centroids=centroids)
    units.write_bytes(buf.getvalue())
    source = make_source(
        PhoneConfig(source="kmeans", model=str(units), units=4), FeatureConfig(num_mel_bins=8)
    )
    # The source mean-normalises each utterance first, as the model's input is.
    utt = frames[::7] + 5.0
    result = source.label(Utterance("k", {}, utt, np.ones(len(utt), bool), {}))
    expected = ((utt - utt.mean(0) - centroids[:, None]) ** 2).sum(-1).argmin(0)
    assert result.how == "clustered" and result.values.dtype == np.uint8
    np.testing.assert_array_equal(result.values, expected)
    with pytest.raises(ValueError, match="holds no 5 k-means units"):
        make_source(PhoneConfig(source="kmeans", model=str(units), units=5), FeatureConfig(num_mel_bins=8))
