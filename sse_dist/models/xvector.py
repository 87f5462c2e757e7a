"""The model: an x-vector extractor, a phone-conditioned decoder and a speaker classifier.

Stafylakis et al. (2019): the extractor embeds a *source* segment; the decoder is given that embedding and the
phones of a different *target* segment of the same utterance and must reconstruct the target's filterbank
frames. The phones say what is said, so what the decoder still needs from the embedding is who says it.
The extractor is Kaldi's x-vector TDNN (Snyder et al. 2018); the classifier is its speaker softmax head.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig, from_dict
from .ecapa import EcapaTdnn
from .export import load_export
from .norm import input_norm
from .objectives import AAMHead, contrastive


class FrameLayer(nn.Sequential):
    """Kaldi's TDNN layer: a dilated 1-D convolution over time, ReLU, then batch norm."""

    def __init__(self, cin: int, cout: int, kernel: int, dilation: int = 1, padding: int = 0):
        super().__init__(
            nn.Conv1d(cin, cout, kernel, dilation=dilation, padding=padding),
            nn.ReLU(),
            nn.BatchNorm1d(cout),
        )


def tdnn_frames(feat_dim: int, cfg: ModelConfig) -> nn.Sequential:
    """Kaldi's x-vector frame layers: contexts {-2..2}, {-2,0,2}, {-3,0,3}, {0}, {0} (7 frames each side)."""
    c = cfg.channels
    return nn.Sequential(
        FrameLayer(feat_dim, c, 5),
        FrameLayer(c, c, 3, dilation=2),
        FrameLayer(c, c, 3, dilation=3),
        FrameLayer(c, c, 1),
        FrameLayer(c, cfg.stats_channels, 1),
    )


class Extractor(nn.Module):
    """The x-vector frame layers; mean+std pooling; embedding affine."""

    def __init__(self, feat_dim: int, cfg: ModelConfig):
        super().__init__()
        self.input_norm = input_norm(feat_dim, cfg)
        self.frames = tdnn_frames(feat_dim, cfg)
        self.embedding = nn.Linear(2 * cfg.stats_channels, cfg.embed_dim)

    # Frames lost at each edge to the convolutions' context.
    context = 2 + 2 + 3

    def layer_outputs(self, feats: torch.Tensor) -> list[torch.Tensor]:
        """[B, T, feat_dim] -> each frame layer's output [B, C, T - lost frames], first to last."""
        h, outs = self.input_norm(feats.transpose(1, 2)), []
        for layer in self.frames:
            h = layer(h)
            outs.append(h)
        return outs

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """[B, T, feat_dim] -> [B, embed_dim] (the pre-activation output of the first segment layer)."""
        h = self.layer_outputs(feats)[-1]
        mean = h.mean(dim=2)
        std = h.var(dim=2, unbiased=False).clamp_min(1e-5).sqrt()
        return self.embedding(torch.cat([mean, std], dim=1))


def build_extractor(feat_dim: int, cfg: ModelConfig) -> Extractor | EcapaTdnn:
    """The extractor ``cfg.arch`` names; both map [B, T, feat_dim] to [B, embed_dim] and lose ``context``
    frames at each edge."""
    return EcapaTdnn(feat_dim, cfg) if cfg.arch == "ecapa" else Extractor(feat_dim, cfg)


def load_extractor(url: str) -> tuple[Extractor | EcapaTdnn, dict[str, Any]]:
    """The trained extractor of an exported model (a run folder or its ``model.pt``), in eval mode, and the
    export's other entries (frontend, features, step, mode)."""
    blob = load_export(url)
    extractor = build_extractor(blob["feat_dim"], from_dict(ModelConfig, blob["model"]))
    extractor.load_state_dict(blob.pop("state_dict"))
    return extractor.eval(), blob


class Decoder(nn.Module):
    """Reconstructs target frames from per-frame phones and the (broadcast) source embedding."""

    def __init__(self, num_phones: int, feat_dim: int, cfg: ModelConfig):
        super().__init__()
        k = cfg.decoder_kernel
        cin = num_phones + cfg.embed_dim
        layers = []
        for _ in range(cfg.decoder_layers):
            layers.append(FrameLayer(cin, cfg.decoder_channels, k, padding=k // 2))
            cin = cfg.decoder_channels
        self.frames = nn.Sequential(*layers)
        self.out = nn.Conv1d(cin, feat_dim, 1)

    def forward(self, phones: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """phones [B, T, P] (P may be 0), embedding [B, E] -> reconstruction [B, T, feat_dim]."""
        cond = embedding[:, :, None].expand(-1, -1, phones.shape[1])
        h = self.frames(torch.cat([phones.transpose(1, 2), cond], dim=1))
        return self.out(h).transpose(1, 2)


class Classifier(nn.Module):
    """Kaldi's segment layers after the embedding: (ReLU, BN, affine) x layers, ReLU, BN, speaker softmax."""

    def __init__(self, num_speakers: int, cfg: ModelConfig):
        super().__init__()
        e = cfg.embed_dim
        layers: list[nn.Module] = []
        for _ in range(cfg.classifier_layers):
            layers += [nn.ReLU(), nn.BatchNorm1d(e), nn.Linear(e, e)]
        self.hidden = nn.Sequential(*layers, nn.ReLU(), nn.BatchNorm1d(e))
        self.out = nn.Linear(e, num_speakers)

    def forward(self, embedding: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits; ``labels`` are for margin heads (:class:`AAMHead`) and unused here."""
        return self.out(self.hidden(embedding))


class SpeakerEmbeddingModel(nn.Module):
    """Extractor plus the heads a training mode needs: the decoder (reconstruction), the classifier (CE), or both."""

    def __init__(
        self,
        cfg: ModelConfig,
        feat_dim: int,
        num_phones: int,
        num_speakers: int,
        reconstruct: bool,
        aam: tuple[float, float] | None = None,
        contrastive_temperature: float = 0.0,
    ):
        """``aam`` (margin, scale): an AAM softmax head instead of Kaldi's softmax; ``contrastive_temperature``
        > 0 adds the contrastive loss between the source and target segments."""
        super().__init__()
        # Built first so that a seed gives the same extractor whatever heads follow (the untrained baseline).
        self.extractor = build_extractor(feat_dim, cfg)
        self.decoder = Decoder(num_phones, feat_dim, cfg) if reconstruct else None
        self.classifier: Classifier | AAMHead | None = None
        if num_speakers > 0:
            self.classifier = (
                AAMHead(cfg.embed_dim, num_speakers, *aam) if aam else Classifier(num_speakers, cfg)
            )
        self.contrastive_temperature = contrastive_temperature

    def forward(
        self,
        source: torch.Tensor,
        target: torch.Tensor | None = None,
        phones: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Loss components: ``reconstruction`` (MSE of the target frames), ``contrastive`` (source against
        target segment embeddings) and ``cross_entropy`` (over samples with label >= 0; unlabelled samples carry
        -1), with ``accuracy`` for monitoring."""
        embedding = self.extractor(source)
        out: dict[str, torch.Tensor] = {}
        if self.decoder is not None and target is not None and phones is not None:
            out["reconstruction"] = F.mse_loss(self.decoder(phones, embedding), self.normalise_target(target))
        if self.contrastive_temperature > 0 and target is not None:
            out["contrastive"] = contrastive(embedding, self.extractor(target), self.contrastive_temperature)
        if self.classifier is not None and labels is not None:
            logits = self.classifier(embedding, labels)
            known = labels >= 0
            if known.any():
                out["cross_entropy"] = F.cross_entropy(logits[known], labels[known])
                out["accuracy"] = (logits.argmax(1)[known] == labels[known]).float().mean().detach()
            else:
                # No labelled sample in this batch: a zero loss that still touches every classifier weight, so
                # all ranks reduce the same gradients.
                out["cross_entropy"] = logits.sum() * 0.0
        return out

    def normalise_target(self, target: torch.Tensor) -> torch.Tensor:
        """The target in the extractor's input scale: with ``input_norm`` its running mean and variance (detached:
        the statistics are estimates, not something to fit), else as it is."""
        norm = self.extractor.input_norm
        if not isinstance(norm, nn.BatchNorm1d):
            return target
        return (target - norm.running_mean) / (norm.running_var + norm.eps).sqrt()


class PhoneClassifier(nn.Module):
    """A frame phone classifier (the ``neural`` phone source): the x-vector frame layers, then per-frame logits.

    Trained on chunks of force-aligned utterances with the same features, normalisation and frame grid as the
    speaker model, so its posteriors drop into the decoder in place of a recognizer's.
    """

    context = Extractor.context

    def __init__(self, cfg: ModelConfig, feat_dim: int, num_classes: int):
        super().__init__()
        self.frames = tdnn_frames(feat_dim, cfg)
        self.out = nn.Conv1d(cfg.stats_channels, num_classes, 1)

    def logits(self, feats: torch.Tensor) -> torch.Tensor:
        """[B, T, feat_dim] -> [B, T - 2*context, classes]: only frames with their full context."""
        return self.out(self.frames(feats.transpose(1, 2))).transpose(1, 2)

    def forward(
        self,
        source: torch.Tensor,
        target: torch.Tensor | None = None,
        phones: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``phones`` [B, T, classes] are the targets of ``source``'s frames (one-hot or posteriors)."""
        assert phones is not None
        logits = self.logits(source).flatten(0, 1)
        c = self.context
        targets = phones[:, c : phones.shape[1] - c].flatten(0, 1)
        accuracy = (logits.argmax(1) == targets.argmax(1)).float().mean().detach()
        return {"phone_cross_entropy": F.cross_entropy(logits, targets), "accuracy": accuracy}

    @torch.no_grad()
    def posteriors(self, utterances: list[torch.Tensor]) -> list[torch.Tensor]:
        """Each [T_i, feat_dim] -> [T_i, classes], in one pass without padding waste: every utterance gets its
        edges repeated ``context`` frames and they are concatenated in time. The convolutions have no padding
        of their own, so output frame t sees input frames t..t+2*context: an utterance's outputs never see its
        neighbours' frames, and batching changes nothing."""
        c = self.context
        padded = [torch.cat([u[:1].expand(c, -1), u, u[-1:].expand(c, -1)]) for u in utterances]
        starts = [0]
        for p in padded[:-1]:
            starts.append(starts[-1] + len(p))
        probs = self.logits(torch.cat(padded)[None])[0].softmax(-1)
        return [probs[s : s + len(u)] for s, u in zip(starts, utterances)]
