import numpy as np
import pytest
import torch

from sse_dist.config import DataConfig
from sse_dist.shard.fields import describe
from sse_dist.shard.format import ShardError
from sse_dist.train.data import Segment, Skipped, Utterance, _pick, batch_pairs, build_loader, cut_pairs


def _utts(lengths, dim=4):
    for i, n in enumerate(lengths):
        # Frame t of utterance i holds the value t, so a segment's frames reveal where it was cut.
        feats = torch.arange(n, dtype=torch.float32)[:, None].repeat(1, dim)
        yield Utterance(feats, feats[:, :2].clone(), i)


def test_pick_is_uniform_over_the_union_of_ranges():
    rng = np.random.default_rng(0)
    draws = [_pick(rng, [(0, 1), (10, 11)]) for _ in range(4000)]
    values, counts = np.unique(draws, return_counts=True)
    assert values.tolist() == [0, 1, 10, 11]
    assert counts.min() > 900


def test_source_and_target_are_disjoint_segments_of_the_same_utterance():
    cfg = DataConfig(source_frames=20, target_frames=10)
    pairs = list(cut_pairs(_utts([30, 31, 45, 200] * 50), cfg, seed=0))
    assert len(pairs) == 200
    before = after = 0
    for p in pairs:
        src, tgt = p.source[:, 0], p.target[:, 0]
        assert len(src) == 20 and len(tgt) == 10
        assert torch.equal(src, torch.arange(src[0], src[0] + 20, dtype=torch.float32))  # contiguous
        assert torch.equal(p.phones[:, 0], tgt)  # the target's own phones, not the source's
        assert tgt[-1] < src[0] or tgt[0] > src[-1]
        before += int(tgt[-1] < src[0])
        after += int(tgt[0] > src[-1])
    assert before > 20 and after > 20  # the target may come from either side


def test_short_utterances_are_counted_not_dropped_silently():
    cfg = DataConfig(source_frames=20, target_frames=10)
    src = list(cut_pairs(_utts([29, 30, 10]), cfg, seed=0))
    assert [s.reason if isinstance(s, Skipped) else None for s in src] == ["too_short", None, "too_short"]
    batches = list(batch_pairs(iter(src + [Skipped("missing_field")] + src), size=2, num_phones=0))
    assert len(batches) == 1
    assert batches[0].skipped == {"too_short": 3, "missing_field": 1}
    assert batches[0].source.shape == (2, 20, 4) and batches[0].labels.tolist() == [1, 1]


def test_a_shard_set_with_nothing_usable_fails_instead_of_spinning():
    endless = (Skipped("too_short") for _ in range(10**6))
    with pytest.raises(ShardError, match="too short"):
        next(batch_pairs(endless, size=2, num_phones=0))


def test_hard_phones_are_one_hot_encoded_in_the_batch():
    pairs = [Segment(torch.zeros(3, 2), torch.tensor([k, 4]), 0, torch.zeros(2, 2)) for k in (0, 1)]
    (batch,) = batch_pairs(iter(pairs), size=2, num_phones=5)
    assert batch.phones.shape == (2, 2, 5) and batch.phones.dtype == torch.float32
    assert batch.phones.argmax(-1).tolist() == [[0, 4], [1, 4]]
    assert batch.phones.sum().item() == 4


@pytest.mark.integration
def test_the_loader_repeats_its_order_for_a_seed(shard_sets):
    """The shuffle buffer draws from the run's seed (webdataset's default seeds from the clock): a rerun reads
    the same segments in the same order."""
    corpus = describe([shard_sets["train"]], "phones")
    cfg = DataConfig(source_frames=60, target_frames=40, num_workers=0, shuffle_buffer=8)

    def sources(seed: int) -> list[torch.Tensor]:
        loader = build_loader(corpus, cfg, "phones", micro_batch=2, num_batches=6, spk2idx={}, seed=seed)
        return [batch.source for batch in loader]

    first = sources(5)
    assert all(torch.equal(a, b) for a, b in zip(first, sources(5), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, sources(6), strict=True))
