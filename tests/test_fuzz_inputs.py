"""A fuzz corpus of bad input, built here, through every stage that reads it.

Each case ends in a clear error naming the file and key, or in a counted quarantine with a reason; every
stage's counts satisfy ``input = processed + quarantined``. Cases:

- audio files given to ``shard`` (then featurised by the fbank task): corrupt, truncated, empty, silent,
  too short, NaN/inf samples, clipping, stereo, other sample rates, ids that look like paths, duplicates;
- shard tars given to ``preprocess``: truncated, non-audio members, members without an extension or with a path
  for a name, duplicate and unlisted keys, listed keys that are absent, damaged audio and metadata inside;
- per-field shards given to the training loader: a missing field entry, fields of different lengths, a pickle;
- a config with unknown keys or wrong types, a shard index whose names are paths, a trial list naming unknown
  utterances.
"""

from __future__ import annotations

import collections
import io
import json
import tarfile

import numpy as np
import pytest
import soundfile as sf
import yaml

from sse_dist import storage
from sse_dist.config import ConfigError, DataConfig, ExperimentConfig, FeatureConfig, ShardConfig, load
from sse_dist.preprocess.shard_task import fbank_shard
from sse_dist.score.embeddings import Embeddings
from sse_dist.score.trials import TrialsError, parse_trials, resolve
from sse_dist.shard import format as fmt
from sse_dist.shard import run as shard
from sse_dist.shard.fields import FBANK
from sse_dist.train.data import Skipped, open_shards, to_arrays

SR = 16000


def _signal(seconds: float, sr: int = SR, channels: int = 1, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = amplitude * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return np.repeat(x[:, None], channels, axis=1).astype(np.float32)


def _encode(x: np.ndarray, fmt_: str = "FLAC", subtype: str | None = None, sr: int = SR) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt_, subtype=subtype)
    return buf.getvalue()


def _with(x: np.ndarray, index: int, value: float) -> np.ndarray:
    x = x.copy()
    x[index] = value
    return x


_WAV = _encode(_signal(1.0), "WAV", "PCM_16")
_FLAC = _encode(_signal(1.0))

# case -> (file name, bytes, shard's quarantine reason or None, then frames featurised or the fbank reason)
AUDIO_CASES = {
    "corrupt-flac": ("a.flac", b"fLaC" + bytes(range(256)) * 8, "unreadable audio", None),
    "corrupt-wav": ("a.wav", b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(200), "unreadable audio", None),
    "text-named-wav": ("a.wav", b"this is not audio\n" * 50, "unreadable audio", None),
    "truncated-wav": ("a.wav", _WAV[: len(_WAV) // 2], "truncated", None),
    "truncated-flac": ("a.flac", _FLAC[: len(_FLAC) // 2], "unreadable audio", None),
    "empty-file": ("a.wav", b"", "empty file", None),
    "zero-length": ("a.wav", _encode(_signal(0.0), "WAV"), "empty audio", None),
    "tenth-second": ("a.flac", _encode(_signal(0.1)), "too short", None),
    "nan": (
        "a.wav",
        _encode(_with(_signal(1.0), 500, np.nan), "WAV", "FLOAT"),
        "NaN or infinite samples",
        None,
    ),
    "inf": (
        "a.wav",
        _encode(_with(_signal(1.0), 500, np.inf), "WAV", "FLOAT"),
        "NaN or infinite samples",
        None,
    ),
    "clipping-float": ("a.wav", _encode(_signal(1.0, amplitude=4.0), "WAV", "FLOAT"), None, 98),
    "clipping-pcm": ("a.flac", _encode(np.clip(_signal(1.0, amplitude=4.0), -1, 1)), None, 98),
    "stereo": ("a.flac", _encode(_signal(1.0, channels=2)), None, 98),
    "rate-8k": ("a.flac", _encode(_signal(1.0, sr=8000), sr=8000), None, 98),
    "rate-44k1": ("a.wav", _encode(_signal(1.0, sr=44100), "WAV", sr=44100), None, 98),
    "silence": ("a.flac", _encode(np.zeros((SR, 1), np.float32)), None, "no speech frames"),
}


def _featurise(root: str) -> tuple[dict, dict]:
    """The fbank task on every shard of a set (called directly: the Ray job adds scheduling, not checks)."""
    totals, reasons = collections.Counter(), {}
    for s in fmt.read_index(root)["shards"]:
        done = fbank_shard(root, s["name"], s["keys"], FeatureConfig())
        totals.update({k: done[k] for k in ("input", "processed")})
        totals["quarantined"] += len(done["quarantined"])
        reasons |= {q["key"]: q["reason"] for q in done["quarantined"]}
    return totals, reasons


@pytest.mark.parametrize("case", AUDIO_CASES)
def test_bad_audio_file(case, tmp_path):
    name, data, shard_reason, outcome = AUDIO_CASES[case]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.flac").write_bytes(_FLAC)
    (corpus / name).write_bytes(data)
    (corpus / "wav.scp").write_text(f"good good.flac\n{case} {name}\n")
    root = str(tmp_path / "set")
    shard(ShardConfig(input=str(corpus), output=root))
    summary = fmt.read_index(root)["summary"]
    assert summary["input"] == 2 == summary["sharded"] + summary["quarantined"]
    if shard_reason:
        lines = (tmp_path / "set" / "audio" / "quarantine.jsonl").read_text().splitlines()
        quarantine = [json.loads(line) for line in lines]
        assert [(q["id"], q["path"]) for q in quarantine] == [(case, name)]
        assert quarantine[0]["reason"].startswith(shard_reason), quarantine[0]["reason"]
        return
    totals, reasons = _featurise(root)
    assert totals["input"] == 2 == totals["processed"] + totals["quarantined"]
    if isinstance(outcome, str):
        assert reasons[fmt.key_for(case)].startswith(outcome)
        return
    feats = {s["__key__"]: s for s in fmt.iter_tar(fmt.shard_url(root, FBANK, "000000"))}
    frames = json.loads(feats[fmt.key_for(case)]["json"])["frames"]
    assert (
        frames == outcome
    )  # 1 s at 10 ms: every rate and channel count is resampled and mixed to 16 kHz mono


def test_ids_that_look_like_paths_stay_inside_the_output(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.flac").write_bytes(_FLAC)
    (corpus / "wav.scp").write_text("../../escape a.flac\n/etc/passwd a.flac\nsub/dir a.flac\n")
    root = tmp_path / "out" / "set"
    shard(ShardConfig(input=str(corpus), output=str(root)))
    keys = [k for s in fmt.read_index(str(root))["shards"] for k in s["keys"]]
    assert sorted(keys) == ["______escape", "_etc_passwd", "sub_dir"]
    with tarfile.open(root / "audio" / "000000.tar") as tar:
        members = tar.getnames()
    assert all("/" not in m and not m.startswith(".") for m in members), members
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["set"]


# --- shard tars given to preprocess ---------------------------------------------------------------------------


def _rewrite(url: str, members: list[tuple[str, bytes]], cut: int | None = None) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    storage.write_bytes(url, raw[:cut] if cut else raw)


def _good_members(root: str) -> list[tuple[str, bytes]]:
    out = []
    for s in fmt.iter_tar(fmt.shard_url(root, fmt.AUDIO, "000000")):
        out += [(f"{s['__key__']}.{ext}", s[ext]) for ext in ("flac", "json")]
    return out


def _replace(members, name, new):
    return [(n, new) if n == name else (n, d) for n, d in members]


def _rename(members, name, new_name, new=None):
    """The member renamed in place (a member out of place would start a second sample of its key)."""
    return [(new_name, d if new is None else new) if n == name else (n, d) for n, d in members]


def _drop(members, name):
    return [(n, d) for n, d in members if n != name]


def _insert(members, member):
    """``member`` after u0's members, before u1's."""
    return members[:2] + [member] + members[2:]


_NAN_WAV = _encode(_with(_signal(1.0), 9, np.nan), "WAV", "FLOAT")
_TINY = _encode(_signal(0.01))
_ALL = ("u0", "u1", "u2")
# case -> (rewrite of the good members, {key: reason} quarantined, reasons of unexpected members)
# A damaged member also loses the sample before it (complete, but handed on only when the next key starts):
# it is quarantined too, with the shard's error. Path-like names fail after grouping, so u0 survives them.
TAR_CASES = {
    "truncated-tar": (None, {"u1": "unreadable shard", "u2": "unreadable shard"}, []),
    "non-audio-member": (lambda m: _rename(m, "u1.flac", "u1.txt"), {"u1": "no audio member"}, []),
    "unlisted-key": (lambda m: m + [("readme.txt", b"hello")], {}, ["key not in the index"]),
    "no-extension": (lambda m: _insert(m, ("README", b"hello")), dict.fromkeys(_ALL, "unreadable shard"), []),
    "parent-path": (lambda m: _insert(m, ("../../evil.flac", _FLAC)), dict.fromkeys(_ALL[1:], "unreadable shard"), []),
    "absolute-path": (lambda m: _insert(m, ("/tmp/evil.flac", _FLAC)), dict.fromkeys(_ALL[1:], "unreadable shard"), []),
    "duplicate-key": (lambda m: m + m[2:4], {}, ["duplicate key in shard"]),
    "listed-key-absent": (lambda m: _drop(_drop(m, "u1.flac"), "u1.json"), {"u1": "not in the audio shard"}, []),
    "corrupt-audio": (lambda m: _replace(m, "u1.flac", b"fLaC" + bytes(300)), {"u1": "undecodable audio"}, []),
    "tiny-audio": (lambda m: _replace(m, "u1.flac", _TINY), {"u1": "shorter than one analysis window"}, []),
    "nan-audio": (lambda m: _rename(m, "u1.flac", "u1.wav", _NAN_WAV), {"u1": "audio holds NaN"}, []),
    "bad-json": (lambda m: _replace(m, "u1.json", b"\xff\xfe"), {"u1": "000000/u1: bad JSON"}, []),
}  # fmt: skip
_NAMED = {"no-extension": "member 'README' has no extension", "parent-path": "bad key '../../evil'",
          "absolute-path": "bad key '/tmp/evil'"}  # fmt: skip


@pytest.mark.parametrize("case", TAR_CASES)
def test_bad_shard_tar(case, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(3):
        (corpus / f"u{i}.flac").write_bytes(_FLAC)
    (corpus / "wav.scp").write_text("".join(f"u{i} u{i}.flac\n" for i in range(3)))
    root = str(tmp_path / "set")
    shard(ShardConfig(input=str(corpus), output=root))
    url = fmt.shard_url(root, fmt.AUDIO, "000000")
    rewrite, quarantined, unexpected = TAR_CASES[case]
    members = _good_members(root)
    if rewrite is None:
        _rewrite(url, members)
        with tarfile.open(url) as tar:
            cut = tar.getmember("u2.flac").offset_data + 100  # inside u2's audio
        _rewrite(url, members, cut=cut)
    else:
        _rewrite(url, rewrite(members))

    done = fbank_shard(root, "000000", list(_ALL), FeatureConfig())
    assert done["input"] == 3 == done["processed"] + len(done["quarantined"])
    got = {q["key"]: q["reason"] for q in done["quarantined"]}
    assert sorted(got) == sorted(quarantined)
    for key, reason in quarantined.items():
        assert reason in got[key], got[key]
        if reason == "unreadable shard":
            assert "000000.tar" in got[key]  # names the shard
    if case in _NAMED:
        assert _NAMED[case] in got["u1"], got["u1"]
    assert [u["reason"] for u in done["unexpected"]] == unexpected
    assert not list(tmp_path.parent.glob("evil*")) and not (tmp_path / "evil.flac").exists()
    written = [s["__key__"] for s in fmt.iter_tar(fmt.shard_url(root, FBANK, "000000"))]
    assert sorted(written) == sorted(set(_ALL) - set(quarantined))


# --- per-field shards given to the training loader ------------------------------------------------------------


def _field_set(tmp_path, feats_frames: int, phone_frames: int, phones_keys=("u0", "u1"), pickle=False) -> str:
    root = tmp_path / "fields"
    fb = []
    for key in ("u0", "u1"):
        fb.append((f"{key}.fbank.npy", fmt.npy_bytes(np.zeros((feats_frames, 4), np.float16))))
        fb += [(f"{key}.vad.npy", fmt.npy_bytes(np.ones(feats_frames, np.uint8))), (f"{key}.json", b"{}")]
    if pickle:
        buf = io.BytesIO()
        np.save(buf, np.array([{"x": 1}], dtype=object), allow_pickle=True)
        fb[0] = ("u0.fbank.npy", buf.getvalue())
    _rewrite(str(root / "fbank" / "000000.tar"), fb)
    ph = [(f"{k}.phones.npy", fmt.npy_bytes(np.zeros(phone_frames, np.uint8))) for k in phones_keys]
    _rewrite(str(root / "phones" / "000000.tar"), ph)
    return str(root / "fbank" / "000000.tar")


def _loaded(url: str) -> list:
    return list(to_arrays(open_shards([{"url": url}], ["fbank", "phones"]), DataConfig(), "phones", {}))


@pytest.mark.parametrize(
    ("frames", "keys", "skipped"),
    [
        ((50, 50), ("u0", "u1"), []),
        ((50, 50), ("u0",), ["missing_field"]),
        ((50, 49), ("u0", "u1"), ["misaligned_fields", "misaligned_fields"]),
    ],
    ids=["aligned", "missing-field-entry", "mismatched-lengths"],
)
def test_training_loader_counts_unusable_field_entries(frames, keys, skipped, tmp_path):
    out = _loaded(_field_set(tmp_path, *frames, phones_keys=keys))
    assert len(out) == 2  # every utterance comes out: used, or counted as skipped with its reason
    assert [s.reason for s in out if isinstance(s, Skipped)] == skipped


def test_training_loader_refuses_a_pickled_array(tmp_path):
    url = _field_set(tmp_path, 50, 50, pickle=True)
    with pytest.raises(fmt.ShardError, match="shard 000000 key u0: not a plain .npy array"):
        _loaded(url)


# --- configs, indexes, trial lists ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"train": {"stepz": 3}}, "train.stepz"),
        ({"train": {"optim": {"lr": "fast"}}}, "train.optim.lr"),
        ({"train": {"steps": [1, 2]}}, "train.steps"),
        ({"shard": {"max_duration": -1}}, "shard.min_duration"),
        ({"bogus": {}}, "bogus"),
        (["not", "a", "mapping"], "mapping"),
    ],
)
def test_bad_config_is_refused_naming_the_field(config, message, tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load(ExperimentConfig, [str(path)])


@pytest.mark.parametrize(
    ("shard_entry", "message"),
    [
        ({"name": "../../etc", "keys": ["u0"]}, "bad shard name '../../etc'"),
        ({"name": "/abs/path", "keys": ["u0"]}, "bad shard name '/abs/path'"),
        ({"name": "000000", "keys": ["../x"]}, "shard 000000: bad key '../x'"),
    ],
)
def test_index_whose_names_are_paths_is_refused(shard_entry, message, tmp_path):
    storage.write_json(str(tmp_path / "index.json"), {"format": fmt.FORMAT, "shards": [shard_entry]})
    with pytest.raises(fmt.ShardError, match=f"index.json: {message}"):
        fmt.read_index(str(tmp_path))


def test_trial_list_naming_unknown_utterances_is_refused():
    trials = parse_trials("1 a b\n0 a ghost\n1 b phantom\n", "trials.txt")
    emb = Embeddings(np.array(["a", "b"]), np.ones((2, 3), np.float32), "emb.npz")
    with pytest.raises(
        TrialsError, match=r"trials.txt: 2 utterances \(2 of 3 trials\).*emb.npz: ghost, phantom"
    ):
        resolve(trials, emb)
