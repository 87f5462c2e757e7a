import dataclasses

import pytest
import torch
import torch.nn.functional as F

from sse_dist.config import ModelConfig
from sse_dist.models.xvector import Extractor, PhoneClassifier, SpeakerEmbeddingModel

CFG = ModelConfig(channels=32, stats_channels=48, embed_dim=16, decoder_channels=24, decoder_layers=2)


def test_extractor_maps_any_length_to_one_embedding():
    ext = Extractor(40, CFG).eval()
    for frames in (2 * Extractor.context + 1, 100, 333):
        assert ext(torch.randn(3, frames, 40)).shape == (3, 16)
    with pytest.raises(RuntimeError):
        ext(torch.randn(1, 2 * Extractor.context, 40))  # shorter than the receptive field


def test_losses_by_heads():
    torch.manual_seed(0)
    src, tgt = torch.randn(4, 60, 40), torch.randn(4, 30, 40)
    phones = torch.eye(40)[torch.randint(0, 40, (4, 30))]
    labels = torch.tensor([0, 1, -1, 2])
    both = SpeakerEmbeddingModel(CFG, 40, 40, num_speakers=3, reconstruct=True)
    out = both(src, tgt, phones, labels)
    assert set(out) == {"reconstruction", "cross_entropy", "accuracy"}
    recon_only = SpeakerEmbeddingModel(CFG, 40, 40, num_speakers=0, reconstruct=True)
    assert set(recon_only(src, tgt, phones, labels)) == {"reconstruction"}
    ce_only = SpeakerEmbeddingModel(CFG, 40, 0, num_speakers=3, reconstruct=False)
    assert set(ce_only(src, tgt, phones, labels)) == {"cross_entropy", "accuracy"}


def test_unlabelled_samples_do_not_contribute_to_cross_entropy():
    torch.manual_seed(0)
    model = SpeakerEmbeddingModel(CFG, 40, 0, num_speakers=3, reconstruct=False).eval()
    src = torch.randn(4, 60, 40)
    ce_all = model(src, labels=torch.tensor([0, 1, 2, 0]))["cross_entropy"]
    ce_partial = model(src, labels=torch.tensor([0, 1, -1, -1]))["cross_entropy"]
    ce_first_two = model(src[:2], labels=torch.tensor([0, 1]))["cross_entropy"]
    assert torch.allclose(ce_partial, ce_first_two, atol=1e-6)
    assert not torch.allclose(ce_partial, ce_all)
    none = model.train()(src, labels=torch.full((4,), -1))
    assert none["cross_entropy"].item() == 0.0 and "accuracy" not in none
    # Still a graph over the classifier, so every rank reduces the same gradients.
    none["cross_entropy"].backward()
    assert model.classifier.out.weight.grad is not None


def test_decoder_uses_the_phones_and_the_embedding():
    torch.manual_seed(0)
    model = SpeakerEmbeddingModel(CFG, 40, 40, num_speakers=0, reconstruct=True).eval()
    emb = torch.randn(2, 16)
    phones = torch.eye(40)[torch.randint(0, 40, (2, 30))]
    base = model.decoder(phones, emb)
    assert base.shape == (2, 30, 40)
    assert not torch.allclose(base, model.decoder(phones, emb + 1))
    assert not torch.allclose(base, model.decoder(phones.roll(1, dims=1), emb))


def test_input_norm_learns_the_global_statistics_and_puts_the_target_on_its_scale():
    torch.manual_seed(0)
    model = SpeakerEmbeddingModel(dataclasses.replace(CFG, input_norm=True), 40, 5, 0, reconstruct=True)
    offset = torch.linspace(5, 15, 40)  # raw log-mels: far from zero mean, as without mean normalisation
    for _ in range(100):
        model.extractor(torch.randn(8, 30, 40) * 3 + offset)
    norm = model.extractor.input_norm
    assert torch.allclose(norm.running_mean, offset, atol=0.3)  # an average over the last ~10 batches
    assert torch.allclose(norm.running_var, torch.full((40,), 9.0), rtol=0.2)

    model.eval()
    src, tgt = torch.randn(2, 60, 40) * 3 + offset, torch.randn(2, 20, 40) * 3 + offset
    phones = torch.eye(5)[torch.randint(0, 5, (2, 20))]
    expected_target = (tgt - norm.running_mean) / (norm.running_var + norm.eps).sqrt()
    assert abs(expected_target.mean().item()) < 0.1 and 0.9 < expected_target.std().item() < 1.1
    expected = F.mse_loss(model.decoder(phones, model.extractor(src)), expected_target)
    assert torch.allclose(model(src, tgt, phones)["reconstruction"], expected)
    # The utterance's mean reaches the embedding (mean normalisation would have removed it).
    assert not torch.allclose(model.extractor(src), model.extractor(src + 2.0), atol=1e-3)


def test_without_input_norm_the_extractor_has_no_extra_state():
    # Models trained before input_norm existed load into the default extractor as they are.
    assert not any("input_norm" in k for k in Extractor(40, CFG).state_dict())


def test_seed_gives_the_same_extractor_whatever_the_heads():
    torch.manual_seed(7)
    a = SpeakerEmbeddingModel(CFG, 40, 40, num_speakers=0, reconstruct=True)
    torch.manual_seed(7)
    b = SpeakerEmbeddingModel(CFG, 40, 0, num_speakers=5, reconstruct=False)
    for (ka, va), (kb, vb) in zip(a.extractor.state_dict().items(), b.extractor.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_phone_classifier_batches_utterances_without_changing_their_posteriors():
    torch.manual_seed(0)
    model = PhoneClassifier(ModelConfig(channels=16, stats_channels=24), feat_dim=8, num_classes=5).eval()
    utts = [torch.randn(n, 8) for n in (1, 9, 40)]
    together = model.posteriors(utts)
    for utt, post in zip(utts, together):
        alone = model.posteriors([utt])[0]
        assert post.shape == (len(utt), 5)
        torch.testing.assert_close(post, alone)
        torch.testing.assert_close(post.sum(-1), torch.ones(len(utt)))
    # Edges are padded by repeating the end frames.
    c = PhoneClassifier.context
    padded = torch.cat([utts[2][:1].expand(c, -1), utts[2], utts[2][-1:].expand(c, -1)])
    torch.testing.assert_close(together[2], model.logits(padded[None])[0].softmax(-1))


def test_phone_classifier_loss_uses_the_labels_of_the_frames_it_classifies():
    model = PhoneClassifier(ModelConfig(channels=16, stats_channels=24), feat_dim=8, num_classes=5)
    feats = torch.randn(4, 30, 8)
    labels = torch.nn.functional.one_hot(torch.randint(5, (4, 30)), 5).float()
    out = model(feats, phones=labels)
    c = PhoneClassifier.context
    logits = model.logits(feats)
    expected = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels[:, c:-c].argmax(-1).flatten())
    torch.testing.assert_close(out["phone_cross_entropy"], expected)
