"""``sse_dist.load``: the README's example runs as written, and the API embeds and scores as the stages do."""

import io
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import sse_dist
from sse_dist import storage

pytestmark = pytest.mark.integration
README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    section = README.read_text().split("### Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL)[1]


def test_the_readme_example_runs_as_written(trained_run, corpus, tmp_path, monkeypatch, capsys):
    code = readme_example()
    assert len([line for line in code.splitlines() if line and not line.startswith("import")]) == 5
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "ssl").symlink_to(trained_run)
    first, second = sorted((corpus / "test" / "audio").rglob("*.flac"))[:2]
    for name, src in (("a.wav", first), ("b.wav", second)):
        sf.write(tmp_path / name, *sf.read(src, dtype="float32"))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), {})
    printed = capsys.readouterr().out.split()
    assert printed[0] == "Model(runs/ssl:" and printed[-1] in ("True", "False")
    assert -1 <= float(printed[-2]) <= 1


def embeddings(path) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(storage.read_bytes(str(path))), allow_pickle=False) as z:
        return dict(zip(z["keys"], z["embeddings"], strict=True))


def test_embed_and_score_agree_with_the_embed_and_score_stages(trained_run, corpus):
    model = sse_dist.load(str(trained_run))
    stage = embeddings(trained_run.parent / "test.npz")
    scp = dict(line.split() for line in (corpus / "test" / "wav.scp").read_text().splitlines())
    trials = [line.split() for line in (trained_run.parent / "test.scores").read_text().splitlines()][:12]
    for enroll, test, score, _ in trials:
        a, b = (model.embed(*sf.read(corpus / "test" / scp[u], dtype="float32")) for u in (enroll, test))
        np.testing.assert_array_equal(a, stage[enroll])
        np.testing.assert_array_equal(b, stage[test])
        assert model.score(a, b) == pytest.approx(float(score), abs=1e-7)
        assert model.same_speaker(model.score(a, b)) == (float(score) > model.threshold)
    # A file is read as the shard stage reads it; stereo and another sample rate are mixed down and resampled.
    path = corpus / "test" / scp[trials[0][0]]
    np.testing.assert_array_equal(model.embed_file(str(path)), stage[trials[0][0]])
    wave, rate = sf.read(path, dtype="float32")
    stereo = model.embed(np.stack([wave, wave], axis=1), rate)
    np.testing.assert_allclose(stereo, stage[trials[0][0]], rtol=1e-5, atol=1e-6)
    resampled = model.embed(wave[::2], rate // 2)  # 8 kHz in: resampled to the model's 16 kHz
    assert resampled.shape == stereo.shape and np.isfinite(resampled).all()
    with pytest.raises(ValueError, match="no speech frames"):
        model.embed(np.zeros(rate), rate)
