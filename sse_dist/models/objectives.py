"""Training objectives beside the paper's reconstruction: the additive-angular-margin speaker softmax and a
contrastive loss between two segments of the same utterance.

* **AAM softmax** (ArcFace; Deng et al. 2019, as wespeaker and SpeechBrain train speaker CE by default): the
  logits are ``s cos(theta_j)`` between the L2-normalised embedding and each speaker's normalised weight, with
  the target's angle widened to ``theta_y + m``. The margin grows linearly from 0 over the first
  ``margin_warmup_steps`` (a full margin on a random network stalls training). Cosine scoring then measures the
  angle the head was trained on.
* **Contrastive** (InfoNCE between segment pairs, the SimCLR / angular-prototypical family of wespeaker's SSL
  recipes): each utterance gives two disjoint segments; segment A of an utterance should be closer (in cosine,
  over a temperature) to its own segment B than to the B of every other utterance in the batch **of all ranks**,
  and symmetrically. The gather keeps the gradient, so negatives held by other ranks train this rank's extractor
  too. Other utterances of the same speaker are negatives as well: the price of using no labels.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


class AAMHead(nn.Module):
    """Additive angular margin softmax; ``margin`` is the current (scheduled) margin in radians."""

    def __init__(self, embed_dim: int, num_speakers: int, margin: float, scale: float):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_speakers, embed_dim))
        nn.init.xavier_uniform_(self.weight)
        self.final_margin, self.scale = margin, scale
        self.margin = margin

    def forward(self, embedding: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """[B, E], labels [B] (-1: unlabelled, no margin) -> logits [B, speakers]."""
        cos = F.linear(F.normalize(embedding), F.normalize(self.weight)).clamp(-1 + 1e-7, 1 - 1e-7)
        m = self.margin
        sin = (1 - cos * cos).sqrt()
        # cos(theta + m), continued as a monotonic penalty past theta = pi - m, where cos(theta + m) would turn
        # back up and reward the wrong direction (ArcFace's "easy_margin = False").
        widened = torch.where(cos > math.cos(math.pi - m), cos * math.cos(m) - sin * math.sin(m),
                              cos - math.sin(math.pi - m) * m)  # fmt: skip
        target = F.one_hot(labels.clamp_min(0), cos.shape[1]).bool() & (labels >= 0)[:, None]
        return self.scale * torch.where(target, widened, cos)


def margin_at(step: int, margin: float, warmup_steps: int) -> float:
    """The AAM margin after ``step`` optimizer steps: linear from 0 to ``margin`` over ``warmup_steps``."""
    return margin if warmup_steps == 0 else margin * min(step / warmup_steps, 1.0)


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """[B, ...] on every rank -> [world * B, ...] in rank order, differentiable (one process: ``x``)."""
    if not dist.is_available() or not dist.is_initialized() or dist.get_world_size() == 1:
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x))


def contrastive(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE: row i of ``a`` [B, E] and row i of ``b`` are one utterance's two segments; every
    other utterance's segment, on any rank, is a negative. The mean over this rank's anchors."""
    za, zb = F.normalize(a), F.normalize(b)
    all_a, all_b = gather_with_grad(za), gather_with_grad(zb)
    offset = dist.get_rank() * len(za) if all_a is not za else 0
    positives = torch.arange(len(za), device=za.device) + offset
    loss_a = F.cross_entropy(za @ all_b.T / temperature, positives)
    loss_b = F.cross_entropy(zb @ all_a.T / temperature, positives)
    return (loss_a + loss_b) / 2
