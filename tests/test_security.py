"""Security rules, checked: nothing unpickles untrusted bytes, and listeners bind where they are told to
(loopback by default). Checkpoints (tests/train/test_train_checkpoint.py), shard contents
(tests/test_fuzz_inputs.py) and credentials (tests/test_pipeline_s3.py) are tested with their stages."""

from __future__ import annotations

import ast
import socket
from pathlib import Path

import psutil
import pytest

from sse_dist.config import MetricsConfig
from sse_dist.metrics import PreprocessMetrics, TrainMetrics

PACKAGE = Path(__file__).resolve().parents[1] / "sse_dist"


def _calls(attr: str):
    """(file:line, call) of every ``<something>.<attr>(...)`` call in the package."""
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == attr:
                yield f"{path.relative_to(PACKAGE.parent)}:{node.lineno}", node


def _keyword(call: ast.Call, name: str):
    return next(
        (k.value.value for k in call.keywords if k.arg == name and isinstance(k.value, ast.Constant)), None
    )


def _owner(call: ast.Call) -> str:
    return ast.unparse(call.func.value)


def test_every_torch_load_is_weights_only():
    loads = [(where, c) for where, c in _calls("load") if _owner(c) == "torch"]
    assert loads, "no torch.load found: the scan is broken"
    assert [where for where, c in loads if _keyword(c, "weights_only") is not True] == []


def test_every_numpy_load_refuses_pickles():
    loads = [(where, c) for where, c in _calls("load") if _owner(c) in ("np", "numpy")]
    assert len(loads) >= 3
    assert [where for where, c in loads if _keyword(c, "allow_pickle") is not False] == []


def test_no_pickle_and_no_webdataset_decoders():
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        imported = {
            a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names
        }
        modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not {"pickle", "cloudpickle", "dill", "joblib"} & (imported | modules), path
    # WebDataset's decoders (``.decode()``, ``autodecode``) unpickle ``.pyd``/``.pickle`` members; shards are
    # decoded by sse_dist.shard.format only, and DeepSpeed loads through the weights-only checkpoint engine.
    assert [w for w, c in _calls("decode") if _owner(c).startswith("wds")] == []
    assert [w for w, c in _calls("WebDataset")] == []
    # DeepSpeed loads checkpoints only where checkpoint.secure() swapped in the weights-only engine.
    assert {w.split(":")[0] for w, _ in _calls("load_checkpoint")} == {"sse_dist/train/checkpoint.py"}


def _listening(port: int) -> set[str]:
    return {
        c.laddr.ip
        for c in psutil.Process().net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _outside_address() -> str | None:
    """An address of this machine other than loopback (how another host would reach it), if there is one."""
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return a.address
    return None


@pytest.mark.parametrize("kind", ["train", "preprocess"])
def test_metrics_listen_on_loopback_by_default(kind):
    port = _free_port()
    cfg = MetricsConfig(port=port)
    assert cfg.address == "127.0.0.1"
    m = TrainMetrics(cfg, rank=0, local_rank=0) if kind == "train" else PreprocessMetrics(cfg, shards=1)
    try:
        assert _listening(port) == {"127.0.0.1"}
        outside = _outside_address()
        if outside:
            with pytest.raises(OSError), socket.create_connection((outside, port), timeout=2):
                pass
    finally:
        m.close()


def test_metrics_listen_where_configured():
    port = _free_port()
    m = TrainMetrics(MetricsConfig(address="0.0.0.0", port=port), rank=0, local_rank=0)  # as in a pod
    try:
        assert _listening(port) == {"0.0.0.0"}
    finally:
        m.close()
