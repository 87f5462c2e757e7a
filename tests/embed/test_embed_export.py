import json
from dataclasses import replace

import numpy as np
import onnx
import pytest
from model_helpers import trained_looking

from sse_dist import storage
from sse_dist.config import EmbedConfig, ModelConfig
from sse_dist.embed import run as embed
from sse_dist.embed.export import EmbeddingGraph, onnx_embedder, to_onnx
from sse_dist.embed.extract import extractor_embedder
from sse_dist.embed.sources import utterances
from sse_dist.models.export import export as export_checkpoint

MODEL = ModelConfig(channels=32, stats_channels=48, embed_dim=24)


ECAPA = ModelConfig(arch="ecapa", channels=32, stats_channels=48, embed_dim=24, res2net_scale=4,
                    se_channels=8, attention_channels=16)  # fmt: skip
RAW = {"input_norm": True}  # with cmn_window -1: no mean normalisation, a learned global one


@pytest.mark.parametrize(
    ("model", "vad", "cmn_window"),
    [(MODEL, True, 50), (MODEL, False, 0), (replace(MODEL, **RAW), True, -1), (ECAPA, True, 0),
     (replace(ECAPA, **RAW), False, -1)],
    ids=["tdnn-sliding", "tdnn-novad", "tdnn-raw", "ecapa", "ecapa-raw"],
)  # fmt: skip
def test_onnx_graph_equals_the_stage_embedder_on_any_length_and_mask(model, vad, cmn_window):
    graph = EmbeddingGraph(trained_looking(model, 0), vad, cmn_window)
    in_framework = extractor_embedder(graph, max_frames=10000)
    onnx_graph = onnx_embedder(to_onnx(graph, 40, {}))
    rng = np.random.default_rng(0)
    # One frame; shorter than the TDNN's context, shorter and longer than the CMN window; no voiced frame at all.
    for frames, voiced in [(1, 1.0), (3, 0.5), (14, 1.0), (40, 0.7), (200, 0.3), (120, 0.0)]:
        feats = rng.normal(5.0, 2.0, (frames, 40)).astype(np.float32)
        mask = rng.random(frames) < voiced
        expected = in_framework(feats, mask if mask.any() else np.ones_like(mask))
        np.testing.assert_allclose(onnx_graph(feats, mask), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.integration
def test_embed_exports_an_onnx_graph_that_reproduces_its_embeddings(shard_sets, tmp_path):
    run_dir = str(tmp_path / "run")
    meta = {"model": vars(MODEL), "feat_dim": 40, "data": {"vad": True, "cmn_window": 300}, "step": 7}
    export_checkpoint(storage.join(run_dir, "model.pt"), trained_looking(MODEL, 1), meta | {"mode": "ssl"})
    out, onnx_path = str(tmp_path / "emb.npz"), str(tmp_path / "extractor.onnx")
    summary = embed(EmbedConfig(method="model", checkpoint=run_dir, shards=[shard_sets["test"]], output=out,
                                onnx=onnx_path))  # fmt: skip
    assert summary["onnx"]["checked_utterances"] == min(8, summary["utterances"])
    assert summary["onnx"]["max_abs_diff"] < 1e-4

    # A user's view: ONNX Runtime on raw features and VAD, nothing of sse-dist's model code.
    model = onnx.load(onnx_path)
    info = json.loads({p.key: p.value for p in model.metadata_props}["sse_dist"])
    assert info["frontend"] == {"vad": True, "cmn_window": 300} and info["step"] == 7
    assert [i.name for i in model.graph.input] == ["fbank", "vad"]
    run_onnx = onnx_embedder(storage.read_bytes(onnx_path))
    with np.load(out) as z:
        stage = dict(zip(z["keys"], z["embeddings"], strict=True))
    for utt in utterances([shard_sets["test"]]):
        np.testing.assert_allclose(run_onnx(utt.feats, utt.vad), stage[utt.id], rtol=1e-4, atol=1e-5)


def test_mfcc_stats_cannot_be_exported(tmp_path):
    with pytest.raises(ValueError, match="mfcc_stats has no network"):
        embed(EmbedConfig(method="mfcc_stats", shards=["x"], output="e.npz", onnx="m.onnx"))
