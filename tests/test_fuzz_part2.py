"""The fuzz corpus, part two (issue 14): inputs that are not files, labels and trials that go missing or repeat,
damaged metadata (an index, a model file, a shard that no longer matches its index), sizes out of range, and
outputs that cannot be written. Each ends in one line naming the file before any work, or in a counted
quarantine; nothing is lost silently and nothing hangs."""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
from dataclasses import asdict

import numpy as np
import pytest
import soundfile as sf
import torch

from sse_dist import cli, storage
from sse_dist.config import ShardConfig, TrainConfig, dump_yaml
from sse_dist.models import export
from sse_dist.score.trials import TrialsError, parse_trials
from sse_dist.shard import format as fmt
from sse_dist.shard import run as shard
from sse_dist.shard.verify import require_field_entries, require_labels, verify
from sse_dist.train import checkpoint

SR = 16000


def _flac(seconds: float = 1.0) -> bytes:
    buf = io.BytesIO()
    t = np.arange(int(seconds * SR)) / SR
    sf.write(buf, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), SR, format="FLAC")
    return buf.getvalue()


@pytest.fixture
def no_hang():
    """Fail (rather than hang the suite) if the test blocks, as opening a named pipe would."""

    def expired(*_):
        raise TimeoutError("blocked for 60 s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


# --- inputs that are not regular files ------------------------------------------------------------------------


def test_a_named_pipe_in_an_input_folder_is_quarantined_unopened(tmp_path, no_hang):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.flac").write_bytes(_flac())
    os.mkfifo(corpus / "pipe.wav")
    summary = shard(ShardConfig(input=str(corpus), output=str(tmp_path / "set")))
    index = fmt.read_index(str(tmp_path / "set"))
    assert index["summary"]["input"] == 2 and index["summary"]["quarantined"] == 1
    (entry,) = index["quarantine"]
    assert entry["id"] == "pipe" and entry["reason"].startswith("not a regular file: a named pipe (FIFO)")
    assert summary["output"] == str(tmp_path / "set")


def test_a_device_listed_in_wav_scp_is_quarantined_unopened(tmp_path, no_hang):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.flac").write_bytes(_flac())
    (corpus / "wav.scp").write_text("good good.flac\nzero /dev/zero\n")
    shard(ShardConfig(input=str(corpus), output=str(tmp_path / "set")))
    (entry,) = fmt.read_index(str(tmp_path / "set"))["quarantine"]
    assert entry["reason"].startswith("not a regular file: a character device")


# --- labels that go missing -----------------------------------------------------------------------------------


def test_utterances_missing_from_utt2spk_are_counted_and_refused_for_supervised_training(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for u in ("a", "b", "c"):
        (corpus / f"{u}.flac").write_bytes(_flac())
    (corpus / "wav.scp").write_text("a a.flac\nb b.flac\nc c.flac\n")
    (corpus / "utt2spk").write_text("a s1\n")
    root = str(tmp_path / "set")
    shard(ShardConfig(input=str(corpus), output=root))
    assert fmt.read_index(root)["summary"]["unlabelled"] == {"utt2spk": 2}
    with pytest.raises(
        ValueError, match=r"supervised needs a speaker for every utterance: 2 of 3 utterances"
    ):
        require_labels([root])


def test_a_phone_field_with_no_entries_fails_once():
    summary = {"input": 22000, "processed": 0, "reasons": {"no alignment": 22000}}
    with pytest.raises(
        ValueError, match=r"field 'phones' holds no entries for the 22000 .*no alignment: 22000"
    ):
        require_field_entries("set", "phones", summary)
    require_field_entries("set", "phones", {"input": 3, "processed": 1})


def test_repeated_trial_lines_are_dropped_and_counted():
    trials = parse_trials("1 a b\n0 a c\n1 a b\n1 a b\n", "trials.txt")
    assert len(trials) == 2 and trials.duplicates == 2
    with pytest.raises(TrialsError, match=r"trials.txt:2: trial a b is labelled differently on line 1"):
        parse_trials("1 a b\n0 a b\n", "trials.txt")


# --- damaged metadata -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"format": "sse-dist/shards", "shar', "not valid JSON"),
        (b'["sse-dist/shards"]', "not an sse-dist shard index \\(format='list'\\)"),
        (
            b'{"format": "sse-dist/shards", "version": 2, "shards": {"a": 1}}',
            "malformed: 'shards' must be a list",
        ),
        (b'{"format": "sse-dist/shards", "shards": []}', "index version None, .* migrate it in place"),
        (b'{"format": "sse-dist/shards", "version": 2, "shards": ["000000"]}', "malformed"),
    ],
    ids=["truncated", "a-list", "shards-a-dict", "no-version", "shard-a-string"],
)
def test_a_malformed_index_is_one_line_naming_it(content, message, tmp_path):
    (tmp_path / "index.json").write_bytes(content)
    with pytest.raises((ValueError, fmt.ShardError), match=f"index.json: {message}") as info:
        fmt.read_index(str(tmp_path))
    assert "\n" not in str(info.value)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (_saved({"x": _RunsCode()}), "refused by the weights-only load: it would load posix.system"),
        (pickle.dumps({"format": export.EXPORT_FORMAT}), "refused by the weights-only load"),
        (b"not a model at all" * 10, "refused by the weights-only load|not a PyTorch model file"),
        (_saved([1, 2, 3]), "not an sse-dist export \\(holds a list"),
        (_saved({"weights": torch.zeros(2)}), "not an export of kind 'sse-dist/extractor' \\(format=None\\)"),
        (_saved({"format": export.EXPORT_FORMAT}), "export of kind .* without a state_dict"),
    ],
    ids=["code", "plain-pickle", "garbage", "a-list", "other-dict", "no-state-dict"],
)
def test_a_model_file_with_the_wrong_content_is_one_line_naming_it(content, message, tmp_path):
    (tmp_path / "model.pt").write_bytes(content)
    with pytest.raises(ValueError, match=f"model.pt: ({message})") as info:
        export.load_export(str(tmp_path))
    assert "\n" not in str(info.value) and "weights_only" not in str(info.value)


def test_a_shard_that_no_longer_matches_its_index_is_reported(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for u in ("a", "b", "c"):
        (corpus / f"{u}.flac").write_bytes(_flac())
    root = str(tmp_path / "set")
    shard(ShardConfig(input=str(corpus), output=root, max_utts_per_shard=1))
    assert verify([root]) == {"shard_sets": 1, "shards": 3, "mismatches": 0}
    tar = tmp_path / "set" / "audio" / "000001.tar"
    data = bytearray(tar.read_bytes())
    data[600] ^= 0xFF  # same size, other content
    tar.write_bytes(bytes(data))
    (tmp_path / "set" / "audio" / "000002.tar").unlink()
    with pytest.raises(ValueError, match=r"2 of 3 shards do not match") as info:
        verify([root])
    assert "000001.tar: sha256" in str(info.value) and "000002.tar: missing" in str(info.value)
    assert cli.main(["check-shards", root]) == 1


def test_resume_with_another_model_size_names_the_field(tmp_path):
    cfg = TrainConfig()
    storage.write_bytes(str(tmp_path / "train.yaml"), dump_yaml(cfg).encode())
    checkpoint.check_model(str(tmp_path), asdict(cfg.model))
    other = asdict(cfg.model) | {"channels": cfg.model.channels * 2}
    with pytest.raises(
        ValueError, match=rf"^train.model.channels: {cfg.model.channels * 2}, but the checkpoint"
    ):
        checkpoint.check_model(str(tmp_path), other)


# --- sizes and outputs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", [["--hours", "0"], ["--nodes", "-2"], ["--gpus-per-node", "0"]])
def test_plan_sizes_are_validated(flag, capsys):
    assert cli.main(["plan", *flag]) == 1
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"sse-dist plan: error: {flag[0]}: must be > 0, got {float(flag[1]) if flag[0] == '--hours' else flag[1]}"
    )


def test_an_output_that_is_a_folder_is_refused_before_scoring(tmp_path, capsys):
    (tmp_path / "out.json").mkdir()
    np.savez(tmp_path / "emb.npz", keys=np.array(["a", "b"]), embeddings=np.ones((2, 3), np.float32))
    (tmp_path / "trials").write_text("1 a b\n")
    args = ["score", "--embeddings", str(tmp_path / "emb.npz"), "--trials", str(tmp_path / "trials")]
    assert cli.main([*args, "--output", str(tmp_path / "out.json")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"sse-dist score: error: {tmp_path / 'out.json'}: is a folder (the output is a file)"
    assert json.dumps(os.listdir(tmp_path / "out.json")) == "[]"


@pytest.mark.integration
def test_check_shards_on_an_object_store(s3_bucket, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for u in ("a", "b"):
        (corpus / f"{u}.flac").write_bytes(_flac())
    root = f"{s3_bucket}/set"
    shard(ShardConfig(input=str(corpus), output=root, max_utts_per_shard=1))
    assert verify([root])["shards"] == 2
    storage.write_bytes(fmt.shard_url(root, fmt.AUDIO, "000000"), b"replaced")
    with pytest.raises(
        ValueError, match=r"1 of 2 shards do not match.*000000.tar: 8 bytes, the index records"
    ):
        verify([root])
