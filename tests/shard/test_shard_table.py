"""The input table: labels joined in input order whatever the label files' order, duplicate keys found in id
order, and the driver's memory independent of the number of utterances."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sse_dist.config import ShardConfig
from sse_dist.shard.inputs import read_inputs


def _keyed(root) -> tuple[list, list]:
    inputs = read_inputs(ShardConfig(input=str(root), output="unused"))
    duplicates: list = []
    try:
        return list(inputs.utterances.keyed(duplicates)), duplicates
    finally:
        inputs.utterances.close()


def test_ctm_runs_of_one_utterance_are_joined_in_file_order(kaldi_dir):
    # An unsorted CTM: b's segments come in two runs with a's between them.
    ctm = "b 1 0.5 0.1 Y\na 1 0.0 0.2 X\nb 1 0.0 0.5 Z\na 1 0.2 0.1 W\n"
    root = kaldi_dir([("b", "b.flac"), ("a", "a.flac")], {"phones.ctm": ctm, "utt2spk": "a s1\nb s2\n"})
    keyed, _ = _keyed(root)
    assert [(k, u.speaker, u.ctm) for k, u in keyed] == [
        ("a", "s1", "0.0 0.2 X;0.2 0.1 W"),
        ("b", "s2", "0.5 0.1 Y;0.0 0.5 Z"),
    ]
    assert keyed[1][1].phones == [[0.0, 0.5, "Z"], [0.5, 0.1, "Y"]]


def test_duplicate_keys_in_id_order(kaldi_dir):
    # "x.1" and "x_1" share the key x_1; "x.1" sorts first and keeps it, as does the first of two same-id lines.
    entries = [("x_1", "p.flac"), ("x.1", "q.flac"), ("y", "r.flac"), ("y", "s.flac")]
    keyed, duplicates = _keyed(kaldi_dir(entries))
    assert [(k, u.id, u.path) for k, u in keyed] == [("x_1", "x.1", "q.flac"), ("y", "y", "r.flac")]
    assert [(d["id"], d["path"], d["reason"]) for d in duplicates] == [
        ("x_1", "p.flac", "duplicate key: 'x_1' is taken by utterance 'x.1'"),
        ("y", "s.flac", "duplicate key: 'y' is taken by an earlier line with the same id"),
    ]


PEAK = """
import resource, sys
from sse_dist.config import ShardConfig
from sse_dist.shard.inputs import read_inputs
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
inputs = read_inputs(ShardConfig(input=sys.argv[1], output="unused"))
n = sum(1 for _ in inputs.utterances.keyed([]))
print(n, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
"""


def _peak_mb(root, n: int, segments: int) -> float:
    """Peak memory added by reading and walking a generated data dir of ``n`` utterances (no audio read)."""
    root.mkdir()
    utts = [f"spk{i // 50:05d}-{i:07d}" for i in range(n)]
    (root / "wav.scp").write_text("".join(f"{u} {u}.flac\n" for u in utts))
    (root / "utt2spk").write_text("".join(f"{u} {u[:8]}\n" for u in utts))
    (root / "text").write_text("".join(f"{u} SOME WORDS OF A TRANSCRIPT\n" for u in utts))
    with open(root / "phones.ctm", "w") as f:
        for u in utts:
            f.writelines(f"{u} 1 {j * 0.1:.2f} 0.10 AH\n" for j in range(segments))
    out = subprocess.run([sys.executable, "-c", PEAK, str(root)], capture_output=True, text=True, check=True)
    count, mb = out.stdout.split()
    assert int(count) == n
    return float(mb)


@pytest.mark.integration
def test_memory_does_not_grow_with_the_input(tmp_path):
    small, large = _peak_mb(tmp_path / "small", 2_000, 40), _peak_mb(tmp_path / "large", 40_000, 40)
    # 20x the utterances (1.6 M CTM lines, ~50 MB of labels): held as Python objects this added ~300 MB.
    assert large - small < 25, json.dumps({"small_mb": small, "large_mb": large})
