"""Fixtures of the training tests."""

from __future__ import annotations

import os

import pytest
import torch.distributed as dist
from train_helpers import LAUNCHER_VARS

from sse_dist.train import distributed


@pytest.fixture(scope="session")
def world():
    """One process group (gloo, one rank) for every in-process DeepSpeed engine of the session: DeepSpeed keeps
    a clone of the first group it sees (``deepspeed.utils.groups._WORLD_GROUP``), so an engine made after the
    group was destroyed and created again fails. The launcher variables are restored afterwards."""
    saved = {k: os.environ.get(k) for k in LAUNCHER_VARS}
    yield distributed.init("gloo", timeout_s=60)
    if dist.is_initialized():
        dist.destroy_process_group()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
