"""Readers for what ``synth`` writes, and the tiny corpus configuration the synth tests share."""

from __future__ import annotations

from pathlib import Path

TINY = dict(
    num_speakers=6, num_test_speakers=2, utts_per_speaker=3, test_utts_per_speaker=3,
    min_duration=1.0, max_duration=2.0, seed=3,
)  # fmt: skip


def read_table(path: Path) -> dict[str, list[str]]:
    """A Kaldi table (``key value...`` per line) as {key: values}; fails on a repeated key."""
    table: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        key, *values = line.split()
        assert key not in table, f"{path}: {key} repeated"
        table[key] = values
    return table


def read_ctm(path: Path) -> dict[str, list[tuple[float, float, str]]]:
    """{utt: [(start, duration, phone), ...]} in file order."""
    ctm: dict[str, list[tuple[float, float, str]]] = {}
    for line in path.read_text().splitlines():
        utt, channel, start, duration, phone = line.split()
        assert channel == "1"
        ctm.setdefault(utt, []).append((float(start), float(duration), phone))
    return ctm
