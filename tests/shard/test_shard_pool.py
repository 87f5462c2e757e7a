"""The reader pool: results in input order, and never far ahead of the writer (bounded memory)."""

from __future__ import annotations

import random
import threading
import time

from sse_dist.shard.pipeline import _ordered_map


def test_ordered_and_bounded():
    started = []
    lock = threading.Lock()

    def slow_square(i: int) -> int:
        with lock:
            started.append(i)
        time.sleep(random.random() / 500)
        return i * i

    consumed = 0
    for i, result in enumerate(_ordered_map(slow_square, range(200), workers=3)):
        assert result == i * i
        consumed += 1
        with lock:
            assert len(started) <= consumed + 4 * 3  # submitted work is bounded by the window
    assert consumed == 200
