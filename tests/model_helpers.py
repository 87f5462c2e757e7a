"""Extractors as a test needs them: of either architecture, with batch-norm statistics that are not the
identity, as after training."""

import torch

from sse_dist.config import ModelConfig
from sse_dist.models.xvector import build_extractor


def trained_looking(model: ModelConfig, seed: int, feat_dim: int = 40) -> torch.nn.Module:
    torch.manual_seed(seed)
    extractor = build_extractor(feat_dim, model).train()
    with torch.no_grad():
        for _ in range(3):
            extractor(torch.randn(8, 60, feat_dim) * 3 + 1)
    return extractor.eval()
