"""The tiny synthetic corpus shared by the synth tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from synth_helpers import TINY

from sse_dist.config import SynthConfig
from sse_dist.synth import run


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> tuple[Path, SynthConfig, dict]:
    """The tiny corpus, synthesised in this process (workers=1): its folder, config and summary."""
    cfg = SynthConfig(output=str(tmp_path_factory.mktemp("synth")), workers=1, **TINY)
    return Path(cfg.output), cfg, run(cfg)
