import io

import numpy as np
import pytest
import torch

from sse_dist import storage
from sse_dist.config import EmbedConfig, ModelConfig, TrainConfig
from sse_dist.embed import run as embed
from sse_dist.embed.extract import utterances
from sse_dist.frontend import apply_cmn
from sse_dist.models.export import export
from sse_dist.shard import format as fmt
from sse_dist.shard.fields import describe
from sse_dist.train.loop import build_model

pytestmark = pytest.mark.integration
MODEL = ModelConfig(channels=32, stats_channels=48, embed_dim=24, decoder_channels=32, decoder_layers=2)


def _load(path):
    with np.load(io.BytesIO(storage.read_bytes(path)), allow_pickle=False) as z:
        return list(z["keys"]), z["embeddings"]


def _speakers(path):
    with np.load(io.BytesIO(storage.read_bytes(path)), allow_pickle=False) as z:
        return list(z["speakers"])


def _ids(root):
    index = fmt.read_index(root)
    keys = [k for s in index["shards"] for k in s["keys"]]
    return keys  # the synthetic ids are already valid keys


def test_every_utterance_is_embedded_once_by_each_method(shard_sets, tmp_path):
    test = shard_sets["test"]
    train = TrainConfig(model=MODEL, seed=3)
    dims = {}
    for method in ("random_init", "mfcc_stats"):
        out = str(tmp_path / f"{method}.npz")
        summary = embed(EmbedConfig(method=method, shards=[test], output=out, num_ceps=13), train)
        keys, embs = _load(out)
        assert keys == _ids(test) and summary["utterances"] == summary["indexed"] == len(keys)
        assert np.isfinite(embs).all()
        # The synthetic corpus names utterances <speaker>-<index>; its utt2spk travelled through the shards.
        assert _speakers(out) == [k.split("-")[0] for k in keys] and summary["labelled"] == len(keys)
        dims[method] = embs.shape[1]
    assert dims == {"random_init": 24, "mfcc_stats": 26}


def test_exported_model_gives_the_same_embeddings_as_the_module(shard_sets, tmp_path):
    train = TrainConfig(model=MODEL, seed=5)
    corpus = describe([shard_sets["train"]], "")
    extractor = build_model(train, corpus, num_speakers=0).extractor.eval()
    run_dir = str(tmp_path / "run")
    meta = {
        "model": vars(MODEL),
        "feat_dim": 40,
        "data": {"vad": True, "cmn_window": 0},
        "step": 1,
        "mode": "ssl",
    }
    export(storage.join(run_dir, "model.pt"), extractor, meta)
    out = str(tmp_path / "model.npz")
    embed(EmbedConfig(method="model", checkpoint=run_dir, shards=[shard_sets["test"]], output=out))
    keys, embs = _load(out)
    first = next(utterances([shard_sets["test"]]))
    with torch.no_grad():
        direct = extractor(apply_cmn(torch.from_numpy(first.feats[first.vad]), 0)[None])[0].numpy()
    assert keys[0] == first.id
    np.testing.assert_allclose(embs[0], direct, rtol=1e-4, atol=1e-5)
    # The untrained baseline is this very initialisation.
    rand = str(tmp_path / "rand.npz")
    embed(EmbedConfig(method="random_init", shards=[shard_sets["test"]], output=rand), train)
    np.testing.assert_allclose(_load(rand)[1], embs, rtol=1e-4, atol=1e-5)


def test_model_method_needs_a_checkpoint(shard_sets, tmp_path):
    with pytest.raises(ValueError, match="embed.checkpoint"):
        embed(EmbedConfig(method="model", shards=[shard_sets["test"]], output=str(tmp_path / "x.npz")))
    with pytest.raises(FileNotFoundError):
        embed(
            EmbedConfig(method="model", checkpoint=str(tmp_path), shards=[shard_sets["test"]], output="x.npz")
        )
