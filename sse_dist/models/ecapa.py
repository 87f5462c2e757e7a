"""ECAPA-TDNN (Desplanques et al. 2020), the extractor wespeaker and SpeechBrain train by default.

A 1-D convolution over the frames, then SE-Res2Net blocks (a Res2Net split of the channels into ``scale``
groups, each group's dilated convolution fed the previous group's output, then squeeze-and-excitation over the
whole segment, with a residual path), multi-layer feature aggregation (every block's output concatenated and
mixed by a 1x1 convolution), attentive statistics pooling (per-channel attention weights over time, computed
with the segment's global mean and std as context) and the embedding affine.

Sizes come from the model config: ``channels`` is the block width C (512 or 1024 in the paper),
``stats_channels`` the aggregation width (1536), ``res2net_scale``, ``se_channels`` and
``attention_channels`` the rest. Every convolution is zero-padded to keep the frame count, so unlike the
x-vector TDNN no frame is lost at the edges (``context`` = 0) and any length of at least one frame embeds.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from .norm import input_norm

_DILATIONS = (2, 3, 4)


class Conv(nn.Sequential):
    """Convolution over time keeping the frame count, ReLU, batch norm (SpeechBrain's TDNNBlock)."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, dilation: int = 1):
        super().__init__(
            nn.Conv1d(cin, cout, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2),
            nn.ReLU(),
            nn.BatchNorm1d(cout),
        )


class Res2Conv(nn.Module):
    """Res2Net: the first group passes through; group i > 0 is convolved after adding group i-1's output."""

    def __init__(self, channels: int, scale: int, kernel: int, dilation: int):
        super().__init__()
        self.scale = scale
        width = channels // scale
        self.convs = nn.ModuleList(Conv(width, width, kernel, dilation) for _ in range(scale - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        groups = torch.chunk(x, self.scale, dim=1)
        out = [groups[0]]
        prev = None
        for conv, g in zip(self.convs, groups[1:]):
            prev = conv(g if prev is None else g + prev)
            out.append(prev)
        return torch.cat(out, dim=1)


class SqueezeExcite(nn.Module):
    """Channel gates from the segment's mean: the block reweights channels by global context."""

    def __init__(self, channels: int, bottleneck: int):
        super().__init__()
        self.gate = nn.Sequential(
            nn.Conv1d(channels, bottleneck, 1), nn.ReLU(), nn.Conv1d(bottleneck, channels, 1), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x.mean(dim=2, keepdim=True))


class SERes2Block(nn.Sequential):
    """1x1 conv, Res2Net dilated conv, 1x1 conv, squeeze-excitation; the residual is added in ``forward``."""

    def __init__(self, channels: int, cfg: ModelConfig, dilation: int):
        super().__init__(
            Conv(channels, channels),
            Res2Conv(channels, cfg.res2net_scale, 3, dilation),
            Conv(channels, channels),
            SqueezeExcite(channels, cfg.se_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + x


def _stats(x: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = (x * weights).sum(dim=2)
    var = (x * x * weights).sum(dim=2) - mean * mean
    return mean, var.clamp_min(1e-5).sqrt()


class AttentiveStatsPool(nn.Module):
    """Attention-weighted mean and std per channel; the attention sees each frame with the segment's
    (uniformly weighted) mean and std beside it."""

    def __init__(self, channels: int, attention: int):
        super().__init__()
        self.attention = nn.Sequential(
            Conv(3 * channels, attention), nn.Tanh(), nn.Conv1d(attention, channels, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[2]
        mean, std = _stats(x, torch.full_like(x[:, :1], 1.0) / frames)
        context = torch.cat([x, mean[:, :, None].expand_as(x), std[:, :, None].expand_as(x)], dim=1)
        weights = self.attention(context).softmax(dim=2)
        return torch.cat(_stats(x, weights), dim=1)


class EcapaTdnn(nn.Module):
    """[B, T, feat_dim] -> [B, embed_dim], the same interface as the x-vector ``Extractor``."""

    # No frame is lost at the edges (zero padding), so a single frame is the shortest input.
    context = 0

    def __init__(self, feat_dim: int, cfg: ModelConfig):
        super().__init__()
        c = cfg.channels
        self.input_norm = input_norm(feat_dim, cfg)
        self.stem = Conv(feat_dim, c, 5)
        self.blocks = nn.ModuleList(SERes2Block(c, cfg, d) for d in _DILATIONS)
        self.aggregate = Conv(len(_DILATIONS) * c, cfg.stats_channels)
        self.pool = AttentiveStatsPool(cfg.stats_channels, cfg.attention_channels)
        self.pool_norm = nn.BatchNorm1d(2 * cfg.stats_channels)
        self.embedding = nn.Linear(2 * cfg.stats_channels, cfg.embed_dim)

    def layer_outputs(self, feats: torch.Tensor) -> list[torch.Tensor]:
        """[B, T, feat_dim] -> the frame-level outputs [B, C, T] of the stem, each block and the aggregation."""
        outs = [self.stem(self.input_norm(feats.transpose(1, 2)))]
        for block in self.blocks:
            outs.append(block(outs[-1]))
        return [*outs, self.aggregate(torch.cat(outs[1:], dim=1))]

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.pool_norm(self.pool(self.layer_outputs(feats)[-1])))
