import socket
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from sse_dist.config import MetricsConfig
from sse_dist.metrics import PreprocessMetrics


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_driver_exports_utterances_done_failed_and_seconds_per_shard():
    port = _free_port()
    m = PreprocessMetrics(MetricsConfig(address="127.0.0.1", port=port), shards=3)
    try:
        m.shard({"input": 4, "processed": 3, "quarantined": [{"key": "u1", "reason": "bad"}], "seconds": 2.0})
        # A phone field's shard counts its failures, not its utterances again.
        m.shard({"input": 5, "processed": 5, "quarantined": [], "seconds": 3.0})
        m.shard(
            {
                "input": 5,
                "processed": 5,
                "quarantined": [],
                "failed": [{"key": "a"}, {"key": "b"}],
                "seconds": 1.0,
            }
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
        got = {s.name: s.value for fam in text_string_to_metric_families(text) for s in fam.samples}
    finally:
        m.close()
    assert got["sse_preprocess_input_utterances_total"] == 9
    assert got["sse_preprocess_utterances_processed_total"] == 8
    assert got["sse_preprocess_utterances_quarantined_total"] == 1
    assert got["sse_preprocess_phones_failed_total"] == 2
    assert got["sse_preprocess_shards_total"] == 3 and got["sse_preprocess_shards_remaining"] == 0
    assert got["sse_preprocess_shard_seconds_count"] == 3 and got["sse_preprocess_shard_seconds_sum"] == 6.0
