"""Input normalisation shared by both extractors."""

from __future__ import annotations

from torch import nn

from ..config import ModelConfig


def input_norm(feat_dim: int, cfg: ModelConfig) -> nn.Module:
    """Global feature normalisation (``cfg.input_norm``): a batch norm without affine, whose running mean and
    variance are the training data's and travel with the extractor's weights (and its ONNX graph). Otherwise
    nothing, with no parameters, so that models trained before it load as they are."""
    return nn.BatchNorm1d(feat_dim, affine=False) if cfg.input_norm else nn.Identity()
