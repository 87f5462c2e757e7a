import dataclasses
import typing

import pytest

from sse_dist.config import ConfigError, ExperimentConfig, field_docs, load


def _sections(cls):
    yield cls
    for tp in typing.get_type_hints(cls).values():
        if dataclasses.is_dataclass(tp):
            yield from _sections(tp)


def test_every_field_of_every_section_has_a_docstring():
    for cls in _sections(ExperimentConfig):
        docs = field_docs(cls)
        missing = [f.name for f in dataclasses.fields(cls) if not docs.get(f.name)]
        assert not missing, f"{cls.__name__} fields without a docstring: {missing}"


def test_defaults_are_valid():
    cfg = load(ExperimentConfig)
    assert cfg.train.mode == "ssl"
    assert cfg.preprocess.features.num_mel_bins == 40


def test_yaml_files_merge_in_order_and_overrides_win(tmp_path):
    a = tmp_path / "a.yaml"
    a.write_text("train:\n  steps: 10\n  optim:\n    lr: 0.01\n")
    b = tmp_path / "b.yaml"
    b.write_text("train:\n  optim:\n    warmup_steps: 3\n")
    cfg = load(ExperimentConfig, [str(a), str(b)], ["train.steps=20", "train.shards=x,y"])
    assert cfg.train.steps == 20
    assert cfg.train.optim.lr == 0.01 and cfg.train.optim.warmup_steps == 3
    assert cfg.train.shards == ["x", "y"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.optim.lr=-1", "train.optim.lr: must be > 0"),
        ("train.optim.lrr=1", "train.optim.lrr: unknown field 'lrr'"),
        ("train.steps=many", "train.steps: expected an integer"),
        ("train.steps=1.5", "train.steps: expected an integer"),
        ("train.mode=magic", "train.mode: must be one of"),
        ("train.deepspeed.zero_stage=3", "train.deepspeed.zero_stage:"),
        ("preprocess.phones.source=nope", "preprocess.phones.source: must be one of"),
        ("preprocess.features.low_freq=9000", "preprocess.features.low_freq:"),
        ("train.mode=semi", "train.labelled_speakers: semi mode needs"),
        ("synth.num_test_speakers=64", "synth.num_test_speakers:"),
        ("nosection.x=1", "nosection.x: unknown field 'nosection'"),
    ],
)
def test_bad_values_are_refused_naming_the_field(override, message):
    with pytest.raises(ConfigError) as err:
        load(ExperimentConfig, [], [override])
    assert str(err.value).startswith(message), str(err.value)


def test_unknown_key_in_yaml_names_the_dotted_field(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("train:\n  model:\n    chanels: 3\n")
    with pytest.raises(ConfigError, match=r"^train\.model\.chanels: unknown field"):
        load(ExperimentConfig, [str(f)])


def test_wrong_type_in_yaml(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("train:\n  data: 5\n")
    with pytest.raises(ConfigError, match=r"^train\.data: expected a mapping"):
        load(ExperimentConfig, [str(f)])


def test_unreadable_or_non_mapping_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load(ExperimentConfig, [str(tmp_path / "missing.yaml")])
    f = tmp_path / "list.yaml"
    f.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load(ExperimentConfig, [str(f)])


def test_override_without_equals_sign():
    with pytest.raises(ConfigError, match="section.field=value"):
        load(ExperimentConfig, [], ["train.steps"])
