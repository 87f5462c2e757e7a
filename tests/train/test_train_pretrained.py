import dataclasses

import pytest
import torch

from sse_dist import storage
from sse_dist.config import ModelConfig
from sse_dist.models.export import export
from sse_dist.models.xvector import SpeakerEmbeddingModel
from sse_dist.train.pretrained import initialise

CFG = ModelConfig(channels=32, stats_channels=48, embed_dim=16, decoder_channels=24, decoder_layers=2)


def _model(cfg=CFG, num_phones=10, num_speakers=0, seed=0, **kw):
    torch.manual_seed(seed)
    return SpeakerEmbeddingModel(cfg, 40, num_phones, num_speakers, reconstruct=num_phones > 0, **kw)


def _source_run(tmp_path, model):
    """A run folder as training leaves it: model.pt (the extractor) and the latest DeepSpeed model states."""
    run = str(tmp_path / "src")
    export(storage.join(run, "model.pt"), model.extractor, {"step": 40, "mode": "ssl"})
    states = tmp_path / "src" / "checkpoints" / "step00000040" / "mp_rank_00_model_states.pt"
    states.parent.mkdir(parents=True)
    torch.save({"module": model.state_dict(), "ds_version": "0.0", "param_shapes": [{"x": torch.Size([2])}]},
               states)  # fmt: skip
    (tmp_path / "src" / "checkpoints" / "latest").write_text("step00000040")
    return run


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(
        torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_extractor_and_decoder_loaded_heads_fresh(tmp_path):
    source = _model(seed=1)
    run = _source_run(tmp_path, source)
    fresh = _model(num_speakers=5, seed=2)
    model = _model(num_speakers=5, seed=2)
    origin = initialise(model, run)
    assert origin == {"source": run, "step": 40, "mode": "ssl", "loaded": ["extractor", "decoder"]}
    assert _same(model.extractor, source.extractor) and _same(model.decoder, source.decoder)
    assert _same(model.classifier, fresh.classifier) and not _same(model.extractor, fresh.extractor)


def test_model_pt_alone_gives_the_extractor_and_a_fresh_decoder(tmp_path):
    source = _model(seed=1)
    run = _source_run(tmp_path, source)
    model = _model(seed=2)
    decoder = [p.clone() for p in model.decoder.parameters()]
    assert initialise(model, run + "/model.pt")["loaded"] == ["extractor"]
    assert _same(model.extractor, source.extractor)
    assert all(torch.equal(a, b) for a, b in zip(decoder, model.decoder.parameters()))


def test_decoder_of_another_shape_is_left_fresh(tmp_path, caplog):
    run = _source_run(tmp_path, _model(num_phones=10, seed=1))
    model = _model(num_phones=12, seed=2)
    assert initialise(model, run)["loaded"] == ["extractor"]
    assert "decoder.frames.0.0.weight has shape [24, 26, 3] there, [24, 28, 3] here" in caplog.text


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (
            dataclasses.replace(CFG, channels=64),
            r"layer extractor\.frames\.0\.0\.weight has shape \[32, 40, 5\]",
        ),
        (
            dataclasses.replace(CFG, arch="ecapa", res2net_scale=4),
            r"layer extractor\.stem\.0\.weight is missing",
        ),
    ],
)
def test_an_extractor_that_does_not_fit_is_refused_naming_the_layer(tmp_path, cfg, message):
    run = _source_run(tmp_path, _model(seed=1))
    with pytest.raises(ValueError, match=r"train\.init_from: .*" + message):
        initialise(_model(cfg, seed=2), run)
