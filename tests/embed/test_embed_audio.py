"""``embed --audio``: audio files through the run's own frontend in-process, the same embeddings as the shard
route (shard -> preprocess -> embed) on the same audio."""

import io
import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from sse_dist import storage
from sse_dist.cli import main
from sse_dist.config import EmbedConfig
from sse_dist.embed import run as embed

pytestmark = pytest.mark.integration


def _load(path):
    with np.load(io.BytesIO(storage.read_bytes(str(path))), allow_pickle=False) as z:
        return {name: z[name] for name in z.files}


def test_a_kaldi_dir_gives_the_shard_route_embeddings_bit_for_bit(trained_run, corpus, tmp_path, capsys):
    out = tmp_path / "audio.npz"
    argv = ["embed", "--checkpoint", str(trained_run), "--audio", str(corpus / "test"), "--output", str(out)]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    shard_route = _load(trained_run.parent / "test.npz")  # the trained_run fixture's shard route
    got = _load(out)
    assert list(got["keys"]) == list(shard_route["keys"])
    assert list(got["speakers"]) == list(shard_route["speakers"])
    np.testing.assert_array_equal(got["embeddings"], shard_route["embeddings"])
    n = len(shard_route["keys"])
    assert summary["input"] == summary["utterances"] == n and summary["quarantined"] == 0
    # The summary names the model: mode, steps, data, and the dev EER the score stage recorded.
    assert (
        summary["model"].startswith(f"{trained_run}: ssl (reconstruction), 6 steps")
        and "dev EER" in summary["model"]
    )


def test_a_folder_and_a_single_file_quarantine_what_they_cannot_use(trained_run, corpus, tmp_path):
    folder = tmp_path / "recordings"
    shutil.copytree(corpus / "test" / "audio", folder)
    files = sorted(folder.rglob("*.flac"))
    (folder / "notes.txt").write_text("not audio: skipped, not quarantined")
    (folder / "broken.wav").write_bytes(b"RIFF....WAVEfmt junk")
    sf.write(folder / "silence.wav", np.zeros(16000, dtype=np.float32), 16000)
    out = str(tmp_path / "folder.npz")
    summary = embed(EmbedConfig(method="model", checkpoint=str(trained_run), audio=str(folder), output=out))
    assert summary["input"] == len(files) + 2 and summary["utterances"] == len(files)
    assert summary["quarantined"] == 2 and summary["labelled"] == 0
    quarantine = [
        json.loads(line) for line in (tmp_path / "folder.quarantine.jsonl").read_text().splitlines()
    ]
    reasons = {q["id"]: q["reason"] for q in quarantine}
    assert (
        reasons["broken"].startswith("unreadable audio")
        and reasons["silence"] == "no speech frames (energy VAD)"
    )
    # Ids are the files' paths below the folder without extension, as `sse-dist shard` names them.
    got = _load(out)
    expected = sorted(str(f.relative_to(folder).with_suffix("")) for f in files)
    assert list(got["keys"]) == expected

    # One file alone: its stem is its id, and its embedding is the one it got in the folder.
    single = str(tmp_path / "one.npz")
    summary = embed(
        EmbedConfig(method="model", checkpoint=str(trained_run), audio=str(files[0]), output=single)
    )
    assert summary["utterances"] == summary["input"] == 1
    one = _load(single)
    assert list(one["keys"]) == [files[0].stem]
    first = expected.index(str(files[0].relative_to(folder).with_suffix("")))
    np.testing.assert_array_equal(one["embeddings"][0], got["embeddings"][first])


def test_audio_input_needs_a_trained_model_and_only_one_input(trained_run, shard_sets, corpus, tmp_path):
    out = str(tmp_path / "x.npz")
    with pytest.raises(ValueError, match="embed.audio: needs method=model"):
        embed(EmbedConfig(method="mfcc_stats", audio=str(corpus / "test"), output=out))
    with pytest.raises(ValueError, match="embed.audio: give shards or audio, not both"):
        embed(EmbedConfig(checkpoint=str(trained_run), audio=str(corpus / "test"), shards=[shard_sets["test"]],
                          output=out))  # fmt: skip
    with pytest.raises(FileNotFoundError, match="does not exist"):
        embed(EmbedConfig(checkpoint=str(trained_run), audio=str(tmp_path / "nowhere"), output=out))
