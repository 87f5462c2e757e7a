import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from sse_dist.config import MetricsConfig
from sse_dist.metrics import TrainMetrics


def _scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {
        s.name: s for fam in text_string_to_metric_families(text) for s in fam.samples if s.labels.get("rank")
    }


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_exporter_serves_training_metrics_on_the_configured_loopback_port():
    port = _free_port()
    m = TrainMetrics(MetricsConfig(address="127.0.0.1", port=port), rank=3, local_rank=0)
    try:
        assert m.exporter.port == port and m.exporter.address == "127.0.0.1"
        m.step(seconds=0.2, wait=0.01, samples=32, frames=8000, skipped={"too_short": 2}, global_step=41)
        m.step(seconds=0.3, wait=0.02, samples=32, frames=8000, skipped={}, global_step=42)
        m.log(
            {"reconstruction": 0.7, "cross_entropy": 2.5},
            lr=1e-3,
            samples_per_second=150.0,
            frames_per_second=3.75e4,
        )
        got = _scrape(port)
        assert got["sse_train_steps_total"].value == 2
        assert got["sse_train_samples_total"].value == 64
        assert got["sse_train_frames_total"].value == 16000
        assert got["sse_train_skipped_samples_total"].labels["reason"] == "too_short"
        assert got["sse_train_learning_rate"].value == 1e-3
        assert got["sse_train_step_seconds_count"].value == 2
        assert abs(got["sse_train_data_wait_seconds_sum"].value - 0.03) < 1e-9
        assert got["sse_train_steps_total"].labels["rank"] == "3"
        assert got["sse_train_global_step"].value == 42  # a resumed run's step, not this process's count
        assert got["sse_train_frames_per_second"].value == 3.75e4
        assert "sse_train_gpu_memory_bytes" not in got  # no GPU here: no series, only the family's metadata
    finally:
        m.close()


def test_port_zero_disables_the_exporter():
    m = TrainMetrics(MetricsConfig(port=0), rank=0, local_rank=0)
    assert m.exporter is None
    m.step(0.1, 0.0, 1, 1, {}, 1)
    m.close()
