import subprocess
import sys

import pytest

from sse_dist.cli import STAGES, main


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_stage_has_a_useful_help(stage, capsys):
    with pytest.raises(SystemExit) as done:
        main([stage, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert STAGES[stage].split(" ")[0] in text
    assert "--config" in text and "--set" in text
    assert "[default:" in text  # every field flag carries its documentation and default


def test_invalid_value_is_refused_at_start_naming_the_field(capsys):
    assert main(["train", "--optim.lr", "-3"]) == 2
    err = capsys.readouterr().err
    assert "invalid configuration: train.optim.lr: must be > 0" in err
    assert main(["score", "--set", "train.deepspeed.zero_stage=7"]) == 2
    assert "train.deepspeed.zero_stage" in capsys.readouterr().err


def test_stage_errors_are_one_clear_line(tmp_path, capsys):
    assert main(["preprocess", "--shards", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert "sse-dist preprocess: error:" in err and "no shard index" in err and "Traceback" not in err


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "sse_dist.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "demo" in out.stdout
