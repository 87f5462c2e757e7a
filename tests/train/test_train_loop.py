import pytest

from sse_dist.config import TrainConfig
from sse_dist.train.data import Corpus
from sse_dist.train.loop import speaker_index


def corpus(speakers: list[str]) -> Corpus:
    return Corpus([], speakers, 40, 64, 0, 0.0, {})


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
