import numpy as np
import pytest
import torch
from model_helpers import trained_looking

from sse_dist import storage
from sse_dist.config import ConfigError, EmbedConfig, ModelConfig
from sse_dist.embed import run as embed
from sse_dist.embed.export import onnx_embedder
from sse_dist.embed.sources import utterances
from sse_dist.models.ecapa import EcapaTdnn
from sse_dist.models.export import export as export_checkpoint
from sse_dist.models.xvector import SpeakerEmbeddingModel, build_extractor

ECAPA = ModelConfig(arch="ecapa", channels=32, stats_channels=48, embed_dim=24, res2net_scale=4,
                    se_channels=8, attention_channels=16)  # fmt: skip


def test_arch_selects_the_extractor_and_the_heads_fit_it():
    assert isinstance(build_extractor(40, ECAPA), EcapaTdnn)
    assert not isinstance(build_extractor(40, ModelConfig(channels=32, stats_channels=48)), EcapaTdnn)
    model = SpeakerEmbeddingModel(ECAPA, 40, 10, num_speakers=3, reconstruct=True)
    out = model(torch.randn(4, 50, 40), torch.randn(4, 30, 40), torch.eye(10)[torch.randint(0, 10, (4, 30))],
                torch.tensor([0, 1, 2, -1]))  # fmt: skip
    assert set(out) == {"reconstruction", "cross_entropy", "accuracy"}


def test_any_length_maps_to_one_embedding_and_blocks_are_as_configured():
    model = trained_looking(ECAPA, 0)
    for frames in (1, 2, 37, 301):
        assert model(torch.randn(3, frames, 40)).shape == (3, 24)
    assert len(model.blocks) == 3
    res2 = model.blocks[0][1]
    assert res2.scale == 4 and len(res2.convs) == 3
    assert [b[1].convs[0][0].dilation[0] for b in model.blocks] == [2, 3, 4]
    assert model.aggregate[0].in_channels == 3 * 32 and model.aggregate[0].out_channels == 48


def test_attention_pooling_weights_frames_per_segment():
    """Each segment of a batch is pooled on its own: the batch does not change a segment's embedding."""
    model = trained_looking(ECAPA, 1)
    x = torch.randn(4, 80, 40)
    alone = torch.cat([model(x[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(model(x), alone, rtol=1e-4, atol=1e-5)


def test_config_refuses_channels_the_groups_cannot_split():
    with pytest.raises(ConfigError, match="channels"):
        ModelConfig(arch="ecapa", channels=30, res2net_scale=4).validate()


@pytest.mark.integration
def test_embed_runs_an_ecapa_export_and_its_onnx_graph(shard_sets, tmp_path):
    run_dir = str(tmp_path / "run")
    meta = {"model": vars(ECAPA), "feat_dim": 40, "data": {"vad": True, "cmn_window": 0}, "step": 3}
    export_checkpoint(storage.join(run_dir, "model.pt"), trained_looking(ECAPA, 3), meta | {"mode": "ssl"})
    out, onnx_path = str(tmp_path / "emb.npz"), str(tmp_path / "ecapa.onnx")
    summary = embed(EmbedConfig(method="model", checkpoint=run_dir, shards=[shard_sets["test"]], output=out,
                                onnx=onnx_path))  # fmt: skip
    assert summary["dim"] == 24 and summary["onnx"]["max_abs_diff"] < 1e-4
    run_onnx = onnx_embedder(storage.read_bytes(onnx_path))
    with np.load(out) as z:
        stage = dict(zip(z["keys"], z["embeddings"], strict=True))
    for utt in utterances([shard_sets["test"]]):
        np.testing.assert_allclose(run_onnx(utt.feats, utt.vad), stage[utt.id], rtol=1e-4, atol=1e-5)
