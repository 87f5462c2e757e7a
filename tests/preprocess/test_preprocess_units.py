"""k-means acoustic units: deterministic for a seed, and they find the clusters that are there; the frames they
cluster come from log-mels or from a trained extractor's frame layer."""

import dataclasses
import io
import shutil

import numpy as np
import pytest
import torch
from model_helpers import trained_looking

from sse_dist import storage
from sse_dist.config import FeatureConfig, ModelConfig, PhoneConfig, PreprocessConfig
from sse_dist.models.export import export
from sse_dist.preprocess import run as preprocess
from sse_dist.preprocess.phone_task import phone_fingerprint
from sse_dist.preprocess.phones import make_source, source_class
from sse_dist.preprocess.phones.base import Utterance
from sse_dist.preprocess.phones.kmeans import fit, load_units, unit_features
from sse_dist.shard import format as fmt


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


def _exported(tmp_path, model: ModelConfig, cmn_window: int = 0) -> tuple[str, torch.nn.Module]:
    """A model.pt of an extractor with trained-looking batch norm, as ``train`` exports it."""
    extractor = trained_looking(model, seed=2)
    url = str(tmp_path / "run" / "model.pt")
    meta = {"model": vars(model), "feat_dim": 40, "data": {"vad": True, "cmn_window": cmn_window}, "step": 1,
            "mode": "ssl", "features": dataclasses.asdict(FeatureConfig())}  # fmt: skip
    export(url, extractor, meta)
    return url, extractor


TDNN = ModelConfig(channels=16, stats_channels=24, embed_dim=8)


@pytest.mark.parametrize("layer, lost", [(1, 2), (3, 7), (5, 7)])
def test_model_units_cluster_the_named_frame_layer_one_vector_per_input_frame(tmp_path, layer, lost):
    url, extractor = _exported(tmp_path, TDNN, cmn_window=-1)  # the utterance mean kept, as raw.yaml trains
    featurize = unit_features(PhoneConfig(source="kmeans", unit_model=url, unit_layer=layer), FeatureConfig())
    log_mel = np.random.default_rng(0).normal(3.0, 2.0, size=(50, 40)).astype(np.float32)
    frames = featurize(log_mel)
    assert frames.shape == (50, extractor.layer_outputs(torch.zeros(1, 15, 40))[layer - 1].shape[1])
    # Away from the edges (the frames the layer's context reaches without padding) it is the layer's output
    # on the features as given to the model: here not mean-normalised.
    with torch.no_grad():
        inner = extractor.layer_outputs(torch.from_numpy(log_mel)[None])[layer - 1][0].T
    torch.testing.assert_close(frames[lost : 50 - lost], inner)


def test_ecapa_units_use_every_frame_as_it_is(tmp_path):
    model = ModelConfig(arch="ecapa", channels=16, stats_channels=24, embed_dim=8, attention_channels=8)
    url, extractor = _exported(tmp_path, model)
    featurize = unit_features(PhoneConfig(source="kmeans", unit_model=url, unit_layer=5), FeatureConfig())
    log_mel = np.random.default_rng(0).normal(size=(30, 40)).astype(np.float32)
    with torch.no_grad():
        whole = extractor.layer_outputs(torch.from_numpy(log_mel - log_mel.mean(0))[None])[4][0].T
    torch.testing.assert_close(featurize(log_mel), whole)


def test_a_missing_layer_or_other_features_are_one_line(tmp_path):
    url, _ = _exported(tmp_path, TDNN)
    with pytest.raises(ValueError, match="unit_layer: 6, but .* has 5 frame layers"):
        unit_features(PhoneConfig(source="kmeans", unit_model=url, unit_layer=6), FeatureConfig())
    with pytest.raises(ValueError, match="unit_model: .* was trained on other features"):
        unit_features(PhoneConfig(source="kmeans", unit_model=url), FeatureConfig(num_mel_bins=80))


def test_units_fitted_on_other_features_are_refused(tmp_path):
    url, _ = _exported(tmp_path, TDNN)
    log_mel_units = tmp_path / "units.npz"
    buf = io.BytesIO()
    np.savez(buf, centroids=np.zeros((4, 40), np.float32))  # a units file from before unit_model
    log_mel_units.write_bytes(buf.getvalue())
    load_units(PhoneConfig(source="kmeans", model=str(log_mel_units), units=4))
    with pytest.raises(ValueError, match="fitted on other features than the frames of"):
        load_units(PhoneConfig(source="kmeans", model=str(log_mel_units), units=4, unit_model=url))


@pytest.mark.integration
def test_preprocess_labels_a_shard_set_with_units_of_a_trained_model(shard_sets, trained_run, tmp_path):
    """HuBERT's second iteration on a local Ray cluster: units fitted on the trained run's frame features,
    every utterance labelled, and the model part of the field's identity."""
    root = str(tmp_path / "set")
    shutil.copytree(shard_sets["train"], root)
    cfg = PreprocessConfig(shards=[root], num_cpus=2)
    cfg.phones = PhoneConfig(source="kmeans", field="hu", model=str(tmp_path / "hu.npz"), units=8,
                             sample_frames=2000, unit_model=str(trained_run), unit_layer=3)  # fmt: skip
    result = preprocess(cfg)
    utterances = result["totals"]["input"]
    assert result["totals"]["phones"]["outcomes"] == {"clustered": utterances, "failed": 0}
    centroids = load_units(cfg.phones)["centroids"]
    assert centroids.shape == (8, 32)  # the tiny model's channels at frame layer 3
    name = fmt.read_index(root)["shards"][0]["name"]
    sample = next(fmt.iter_joined(root, name, ["fbank", "hu"]))
    labels = fmt.load_npy(sample["hu.npy"], "test")
    assert len(labels) == len(fmt.load_npy(sample["fbank.npy"], "test")) and labels.max() < 8
    assert len(np.unique(labels)) > 1
    # The model is part of what the labels depend on: another model.pt would relabel the field.
    identity = source_class("kmeans").identity(cfg.phones)
    assert identity["unit_model_sha256"] == storage.sha256(str(trained_run / "model.pt"))
    again = preprocess(cfg)["totals"]["shards"]["hu"]
    assert again == {"processed": 0, "skipped": len(fmt.read_index(root)["shards"])}


def test_fields_labelled_before_model_units_existed_stay_done():
    phones, features = PhoneConfig(source="kmeans", field="km", model="u.npz"), FeatureConfig()
    # Computed by the code before unit_model / unit_layer were settings: the km fields made then are not redone.
    assert phone_fingerprint(phones, features, {"units_sha256": "x"}) == "c7c1e044d6afdcf1"
    with_model = dataclasses.replace(phones, unit_model="run")
    assert phone_fingerprint(with_model, features, {}) != phone_fingerprint(phones, features, {})
