"""Training modes as data: the registry covers every mode, and each task's model gives the terms it sums."""

import typing

import pytest
import torch

from sse_dist.config import ModelConfig, TrainConfig
from sse_dist.shard.fields import Corpus
from sse_dist.train.tasks import TASKS, speaker_index

TINY = ModelConfig(channels=16, stats_channels=24, embed_dim=8, decoder_channels=16, decoder_layers=1)


def corpus(speakers: list[str], num_phones: int = 64) -> Corpus:
    return Corpus([], speakers, 40, num_phones, 0, 0.0, {})


def test_every_mode_the_config_accepts_has_a_task():
    assert set(TASKS) == set(typing.get_args(typing.get_type_hints(TrainConfig)["mode"]))


def test_loss_weights_follow_the_mode_and_recon_weight():
    cfg = TrainConfig(mode="multitask", recon_weight=0.25)
    assert TASKS["multitask"].weights(cfg) == {"cross_entropy": 1.0, "reconstruction": 0.25}
    assert TASKS["semi"].weights(cfg) == {"cross_entropy": 1.0, "reconstruction": 0.25}
    assert TASKS["ssl"].weights(cfg) == {"reconstruction": 1.0}
    assert TASKS["supervised"].weights(cfg) == {"cross_entropy": 1.0}
    assert TASKS["phones"].weights(cfg) == {"phone_cross_entropy": 1.0}


def test_only_modes_that_reconstruct_or_classify_phones_read_the_phone_field():
    cfg = TrainConfig(phones_field="ph")
    assert {m: TASKS[m].phones_field(cfg) for m in TASKS} == {
        "ssl": "ph", "supervised": "", "multitask": "ph", "semi": "ph", "phones": "ph",
    }  # fmt: skip
    assert TASKS["ssl"].frames_per_sample(cfg.data) == cfg.data.source_frames + cfg.data.target_frames
    assert TASKS["phones"].frames_per_sample(cfg.data) == cfg.data.source_frames


@pytest.mark.parametrize("mode", sorted(TASKS))
def test_each_task_builds_a_model_whose_outputs_hold_its_loss_terms(mode):
    cfg = TrainConfig(mode=mode, model=TINY)
    task = TASKS[mode]
    num_speakers = 3 if task.speaker_labels else 0
    model = task.model(cfg, corpus(["a", "b", "c"], num_phones=5), num_speakers)
    b, frames = 4, 30
    phones = torch.nn.functional.one_hot(torch.randint(5, (b, frames)), 5).float()
    parts = model(torch.randn(b, frames, 40), torch.randn(b, frames, 40), phones, torch.tensor([0, 1, 2, -1]))
    assert set(task.weights(cfg)) <= set(parts)
    loss = sum(w * parts[k] for k, w in task.weights(cfg).items())
    loss.backward()  # one scalar through every head the task trains


def test_the_seed_fixes_the_initialisation():
    cfg = TrainConfig(mode="ssl", model=TINY, seed=3)
    a, b = (TASKS["ssl"].model(cfg, corpus([]), 0) for _ in range(2))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("mode", ["supervised", "multitask", "semi"])
def test_labelled_speakers_keeps_every_other_label_out(tmp_path, mode):
    listed = tmp_path / "labelled"
    listed.write_text("b\nc\n")
    cfg = TrainConfig(mode=mode, labelled_speakers=str(listed))
    assert speaker_index(cfg, corpus(["a", "b", "c", "d"])) == {"b": 0, "c": 1}


def test_without_a_list_every_speaker_is_a_class():
    cfg = TrainConfig(mode="multitask")
    assert speaker_index(cfg, corpus(["a", "b"])) == {"a": 0, "b": 1}
    assert speaker_index(TrainConfig(mode="ssl"), corpus(["a", "b"])) == {}
    assert speaker_index(TrainConfig(mode="phones"), corpus(["a", "b"])) == {}
