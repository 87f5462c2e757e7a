from sse_dist.train import history


def test_every_reported_component_is_plotted_in_the_order_first_logged(tmp_path):
    rest = {"lr": 1e-3, "samples_per_second": 5.0}
    rows = [
        {"step": 2, "reconstruction": 0.9, "cross_entropy": 0.0, **rest},
        {"step": 4, "reconstruction": 0.8, "cross_entropy": 2.0, "accuracy": 0.5, **rest},
        {"step": 6, "aam_softmax": 3.0, **rest},
    ]
    assert history.plotted(rows) == ["reconstruction", "cross_entropy", "accuracy", "aam_softmax"]
    history.write(str(tmp_path / "history.jsonl"), rows)
    assert history.read(str(tmp_path / "history.jsonl")) == rows
    history.plot(str(tmp_path / "loss.png"), rows, "test")
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
