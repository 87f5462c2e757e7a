import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from multinode_helpers import free_port

from sse_dist.config import ModelConfig
from sse_dist.models.objectives import AAMHead, contrastive, margin_at
from sse_dist.models.xvector import SpeakerEmbeddingModel

CFG = ModelConfig(channels=32, stats_channels=48, embed_dim=16, decoder_channels=24, decoder_layers=2)


def test_aam_logits_equal_a_hand_computed_case():
    head = AAMHead(2, 2, margin=0.5, scale=10.0)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 0.5]]))  # normalised: the unit axes
    emb = torch.tensor([[3.0, 4.0], [3.0, 4.0], [-1.0, 0.01]])  # cos to the speakers: 0.6, 0.8 (x2); ~-1, ~0
    logits = head(emb, torch.tensor([0, -1, 0]))
    # Target 0 at angle acos(0.6): cos(theta + m) = 0.6 cos m - 0.8 sin m; the other class is untouched.
    torch.testing.assert_close(
        logits[0], torch.tensor([10 * (0.6 * math.cos(0.5) - 0.8 * math.sin(0.5)), 8.0])
    )
    torch.testing.assert_close(logits[1], torch.tensor([6.0, 8.0]))  # unlabelled: no margin
    # Past theta = pi - m the penalty continues linearly (cos - m sin(pi - m)) instead of turning back up.
    c = -1.0 / math.hypot(1.0, 0.01)
    assert logits[2, 0].item() == pytest.approx(10 * (c - math.sin(math.pi - 0.5) * 0.5), abs=1e-4)
    head.margin = 0.0
    torch.testing.assert_close(head(emb[:1], torch.tensor([0])), torch.tensor([[6.0, 8.0]]))


def test_margin_warms_up_linearly():
    assert [margin_at(s, 0.2, 100) for s in (0, 50, 100, 500)] == [0.0, 0.1, 0.2, 0.2]
    assert margin_at(0, 0.2, 0) == 0.2


def test_model_with_aam_head_trains_on_labelled_samples_only():
    torch.manual_seed(0)
    model = SpeakerEmbeddingModel(CFG, 40, 0, num_speakers=3, reconstruct=False, aam=(0.2, 30.0))
    src = torch.randn(4, 60, 40)
    out = model(src, labels=torch.tensor([0, 1, -1, 2]))
    assert set(out) == {"cross_entropy", "accuracy"}
    out["cross_entropy"].backward()
    assert model.classifier.weight.grad.abs().sum() > 0


def test_contrastive_loss_on_known_positives():
    tau = 0.1
    a = torch.eye(4, 8)
    # Each anchor's positive is itself (cos 1), every negative orthogonal (cos 0): log(1 + 3 exp(-1/tau)).
    assert contrastive(a, a.clone(), tau).item() == pytest.approx(
        math.log(1 + 3 * math.exp(-1 / tau)), rel=1e-3
    )
    # Positives swapped for negatives: each anchor's positive is orthogonal and one negative identical.
    assert contrastive(a, a.roll(1, dims=0), tau).item() == pytest.approx(math.log(math.exp(1 / tau) + 3))
    # A gradient step pulls each pair together.
    torch.manual_seed(0)
    x, y = torch.randn(6, 8, requires_grad=True), torch.randn(6, 8, requires_grad=True)
    before = torch.cosine_similarity(x, y).mean()
    contrastive(x, y, tau).backward()
    with torch.no_grad():
        after = torch.cosine_similarity(x - 0.5 * x.grad, y - 0.5 * y.grad).mean()
    assert after > before


def _rank(rank: int, port: int, a: torch.Tensor, b: torch.Tensor, out: dict) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    half = len(a) // 2
    mine = a[rank * half : (rank + 1) * half].clone().requires_grad_()
    loss = contrastive(mine, b[rank * half : (rank + 1) * half], 0.2)
    loss.backward()
    out[rank] = (loss.detach(), mine.grad)
    dist.destroy_process_group()


def test_contrastive_negatives_come_from_every_rank_with_their_gradient():
    torch.manual_seed(1)
    a, b = torch.randn(8, 6), torch.randn(8, 6)
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_rank, args=(free_port(), a, b, out), nprocs=2)
        out = dict(out)
    full_a = a.clone().requires_grad_()
    full = contrastive(full_a, b, 0.2)
    full.backward()
    # Each rank's loss is over its anchors against all 8 utterances: their mean is the one-process loss.
    assert ((out[0][0] + out[1][0]) / 2).item() == pytest.approx(full.item(), rel=1e-5)
    # Gradients reach a rank's embeddings from the other rank's loss too (the sum of both ranks' losses).
    torch.testing.assert_close(torch.cat([out[0][1], out[1][1]]), 2 * full_a.grad, rtol=1e-4, atol=1e-6)


def test_contrastive_term_embeds_both_segments():
    torch.manual_seed(0)
    model = SpeakerEmbeddingModel(CFG, 40, 40, num_speakers=0, reconstruct=True, contrastive_temperature=0.1)
    phones = torch.eye(40)[torch.randint(0, 40, (4, 30))]
    out = model(torch.randn(4, 60, 40), torch.randn(4, 30, 40), phones)
    assert set(out) == {"reconstruction", "contrastive"}
    alone = SpeakerEmbeddingModel(CFG, 40, 0, num_speakers=0, reconstruct=False, contrastive_temperature=0.1)
    assert set(alone(torch.randn(4, 60, 40), torch.randn(4, 30, 40), torch.zeros(4, 30, 0))) == {
        "contrastive"
    }
