"""``sse-dist verify``: two files' score and the decision at the threshold stored with the model."""

import json
import shutil

import pytest

from sse_dist.cli import main

pytestmark = pytest.mark.integration


def test_verify_prints_a_decision_line_or_json(trained_run, corpus, capsys):
    scores = [line.split() for line in (trained_run.parent / "test.scores").read_text().splitlines()]
    scp = dict(line.split() for line in (corpus / "test" / "wav.scp").read_text().splitlines())
    threshold = json.loads((trained_run / "calibration.json").read_text())["threshold"]
    for enroll, test, score, _ in (scores[0], max(scores, key=lambda t: float(t[2]))):
        files = [str(corpus / "test" / scp[u]) for u in (enroll, test)]
        assert main(["verify", "--checkpoint", str(trained_run), *files, "--json"]) == 0
        out, err = capsys.readouterr()
        result = json.loads(out)
        assert result["score"] == pytest.approx(float(score), abs=1e-7) and result["threshold"] == threshold
        assert result["same_speaker"] == (float(score) > threshold)
        assert f"model {trained_run}: ssl (reconstruction), 6 steps" in err
        assert main(["verify", "--checkpoint", str(trained_run), *files]) == 0
        line = capsys.readouterr().out.strip()
        verdict = "same speaker" if result["same_speaker"] else "different speakers"
        assert line.startswith(f"{verdict}: score {result['score']:.4f}") and "dev EER" in line


def test_an_uncalibrated_run_gives_the_score_and_no_decision(trained_run, corpus, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("calibration.json", "checkpoints"))
    files = sorted(str(p) for p in (corpus / "test" / "audio").rglob("*.flac"))[:2]
    assert main(["verify", "--checkpoint", str(run), *files]) == 0
    assert "no decision: " in capsys.readouterr().out
    assert main(["verify", "--checkpoint", str(run), files[0], str(tmp_path / "missing.wav")]) == 1
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith("missing.wav: missing file: " + str(tmp_path / "missing.wav"))
    )
