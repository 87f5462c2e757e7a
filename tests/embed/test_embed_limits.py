"""Resource limits: a 1-hour utterance is embedded chunk by chunk, never in one forward pass."""

import numpy as np
import torch

from sse_dist.config import ModelConfig
from sse_dist.embed.export import EmbeddingGraph
from sse_dist.embed.extract import extractor_embedder
from sse_dist.models.xvector import Extractor


class _Recorder(torch.nn.Module):
    """The extractor, noting the frames of every forward pass."""

    def __init__(self, extractor):
        super().__init__()
        self.extractor, self.frames = extractor, []

    def forward(self, x):
        self.frames.append(x.shape[1])
        return self.extractor(x)


def test_one_hour_utterance_is_embedded_in_bounded_chunks():
    torch.manual_seed(0)
    extractor = Extractor(40, ModelConfig(channels=16, stats_channels=24, embed_dim=8)).eval()
    graph = EmbeddingGraph(extractor, vad=False, cmn_window=0)
    graph.extractor = recorder = _Recorder(extractor)
    feats = np.random.default_rng(0).normal(5.0, 2.0, (360_000, 40)).astype(np.float32)  # 1 h at 10 ms
    emb = extractor_embedder(graph, max_frames=10_000)(feats, np.ones(len(feats), bool))
    assert np.isfinite(emb).all() and emb.shape == (8,)
    assert max(recorder.frames) == 10_000 and sum(recorder.frames) == 360_000
