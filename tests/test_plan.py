"""The cost model's arithmetic: totals scale with the hours, and the bottleneck moves where the limits say."""

from __future__ import annotations

import dataclasses
import json

import pytest

from sse_dist.cli import main
from sse_dist.plan import Rates, Scale, fit, load_rates, plan

RATES = Rates(
    fbank_rtf=3e-4,
    audio_mb_per_hour=60.0,
    shard_core_s_per_hour=20.0,
    preprocess_core_s_per_hour=8.0,
    preprocess_fixed_core_s=10.0,
    rehearsal_hours=(1.0, 10.0, 100.0),
    loader_pairs_per_core_s=2_000.0,
    train_frames_per_core_s={"xvector-large.yaml": 2_000.0, "demo.yaml": 100_000.0},
)
SETTINGS = {
    "frames_per_pair": 500,
    "frames_per_step": 64_000,
    "steps": 1000,
    "params": 8e6,
    "flops_per_frame": 16e6,
}


def _values(result: dict) -> dict[str, float]:
    return {row.quantity: row.value for row in result["rows"]}


def test_totals_scale_linearly_with_hours():
    small = _values(plan(Scale(hours=1_000), RATES, SETTINGS))
    large = _values(plan(Scale(hours=10_000), RATES, SETTINGS))
    for quantity in (
        "audio shards (FLAC)",
        "fbank + VAD + CMN compute",
        "sharding (decode, check, FLAC, tar)",
        "GPU-hours per epoch",
        "phones: neural (soft)",
    ):
        assert large[quantity] == pytest.approx(10 * small[quantity])
    # Rates do not depend on the corpus size.
    assert large["frames/s per GPU, compute"] == small["frames/s per GPU, compute"]


def test_compute_bound_by_default_and_wall_clock_divides_by_gpus():
    result = plan(Scale(), RATES, SETTINGS)
    assert result["bottleneck"] == "GPU compute"
    values = _values(result)
    assert values["wall-clock per epoch on 4 x 8 GPUs"] == pytest.approx(
        values["GPU-hours per epoch"] * 60 / 32
    )


def test_bottleneck_switches_to_the_network_when_per_node_bandwidth_is_low():
    assert plan(Scale(node_gbps=0.5), RATES, SETTINGS)["bottleneck"] == "node network"
    # A single node all-reduces nothing over the network, so it needs less bandwidth than several.
    one, four = (plan(Scale(nodes=n, node_gbps=0.5), RATES, SETTINGS)["limits"] for n in (1, 4))
    assert one["node network"] > four["node network"]


def test_bottleneck_switches_to_the_loader_and_the_store():
    assert plan(Scale(loader_cores_per_gpu=1), RATES, SETTINGS)["bottleneck"] == "data loader"
    assert plan(Scale(nodes=64, store_gbps=10), RATES, SETTINGS)["bottleneck"] == "object store"


def test_unmeasured_config_is_a_clear_error():
    with pytest.raises(ValueError, match="no measured frames/s"):
        plan(Scale(config="configs/other.yaml"), RATES, SETTINGS)


def _stage(hours: float, cpu_s: float, mb: float = 0.0) -> dict:
    return {"audio_hours": hours, "cpu_s": cpu_s, "disk_written_mb": mb}


def _growth(sizes: dict[str, tuple[float, float, float]]) -> dict:
    """A rehearsal result: per size, the shard stage's audio hours, CPU-s and MB, and preprocess CPU-s."""
    return {
        "sizes": {
            size: {"stages": {"shard train": _stage(h, shard, mb), "preprocess": _stage(h, prep)}}
            for size, (h, shard, mb, prep) in sizes.items()
        }
    }


def _results(folder):
    files = {
        "features": {"rtf_sse_dist_fbank_vad_cmn": 3e-4},
        # Preprocess: 60 core-s fixed + 5 per hour; shard: 20 per hour; 60 MB of FLAC per hour.
        "growth": _growth(
            {
                "1": (1.0, 25.0, 60.0, 65.0),
                "10": (10.0, 200.0, 600.0, 110.0),
                "100": (100.0, 2000.0, 6000.0, 560.0),
            }
        ),
        "loader": {"micro_batch": 32, "supply": [{"workers": 1, "batches_per_s": 25.0}]},
        "train": {"model_sizes": [{"config": "configs/demo.yaml", "frames_per_s": 1e5}]},
    }
    for name, content in files.items():
        (folder / f"{name}.json").write_text(json.dumps(content))


def test_rates_come_from_the_benchmark_results(tmp_path):
    _results(tmp_path)
    rates = load_rates(tmp_path)
    assert rates.audio_mb_per_hour == 60.0 and rates.loader_pairs_per_core_s == 800.0
    # Fitted between 10 and 100 h: the 1-h run's larger share of fixed cost does not inflate the rate.
    assert rates.preprocess_core_s_per_hour == pytest.approx(
        5.0
    ) and rates.preprocess_fixed_core_s == pytest.approx(60.0)
    assert rates.shard_core_s_per_hour == pytest.approx(20.0) and rates.rehearsal_hours == (1.0, 10.0, 100.0)
    assert rates.train_frames_per_core_s == {"demo.yaml": 1e5}
    growth = json.loads((tmp_path / "growth.json").read_text())
    del growth["sizes"]["100"]["stages"]["preprocess"]
    (tmp_path / "growth.json").write_text(json.dumps(growth))
    with pytest.raises(FileNotFoundError, match="bench/growth.py"):
        load_rates(tmp_path)
    (tmp_path / "loader.json").unlink()
    with pytest.raises(FileNotFoundError, match="bench/loader.py"):
        load_rates(tmp_path)


def test_fit_separates_the_fixed_cost():
    assert fit([(1.0, 65.0), (10.0, 110.0), (100.0, 560.0)]) == pytest.approx((5.0, 60.0))
    assert fit([(10.0, 110.0)]) == pytest.approx((11.0, 0.0))  # one size: all of it per hour
    assert fit([(1.0, 30.0), (2.0, 40.0)])[1] == pytest.approx(20.0)
    assert fit([(1.0, 30.0), (2.0, 50.0)])[1] == pytest.approx(10.0)


def test_plan_subcommand(tmp_path, capsys):
    _results(tmp_path)
    assert main(["plan", "--results", str(tmp_path), "--config", "configs/demo.yaml", "--hours", "100"]) == 0
    out = capsys.readouterr().out
    assert "| GPU-hours per epoch |" in out and "assumed 1000x one CPU core" in out
    assert main(["plan", "--results", str(tmp_path), "--json"]) == 1  # xvector-large was not measured there
    assert "no measured frames/s" in capsys.readouterr().err
    fields = {f.name for f in dataclasses.fields(Scale)}
    with pytest.raises(SystemExit):
        main(["plan", "--help"])
    text = capsys.readouterr().out
    assert all(f"--{name.replace('_', '-')}" in text for name in fields) and "ASSUMED" in text
