"""The locked environment (requirements/*.txt) that set-up installs agrees with pyproject.toml."""

from __future__ import annotations

import os
import re
import subprocess
from importlib.metadata import requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]


def locked(name: str) -> dict[str, Version]:
    """Package -> pinned version of one lock file; every pin must carry a hash."""
    text = (REPO / "requirements" / name).read_text()
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+) \\\n\s+--hash=sha256:[0-9a-f]{64}", text, re.M)
    assert len(pins) == len(re.findall(r"^[A-Za-z0-9_.\-]+==", text, re.M)), "a pin without a hash"
    return {canonical(n): Version(v) for n, v in pins}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> list[Requirement]:
    """pyproject.toml's dependencies and test extras, as the installed package's metadata states them."""
    return [Requirement(r) for r in requires("sse-dist") or []]


@pytest.mark.parametrize("lock", ["cpu.txt", "cuda.txt"])
def test_every_declared_dependency_is_locked_within_its_bounds(lock):
    pins = locked(lock)
    for req in declared():
        assert canonical(req.name) in pins, f"{req.name} is missing from {lock}: run make lock"
        assert req.specifier.contains(pins[canonical(req.name)], prereleases=True), (
            f"{lock} pins {req.name}=={pins[canonical(req.name)]} outside {req.specifier}: run make lock"
        )


def test_the_cpu_lock_takes_the_cpu_torch_and_no_cuda_wheels():
    pins = locked("cpu.txt")
    assert str(pins["torch"]) == "2.13.0+cpu"
    assert not [p for p in pins if p.startswith("nvidia-") or p == "triton"]


def test_the_cuda_lock_takes_the_same_torch_release_with_cuda():
    pins = locked("cuda.txt")
    assert pins["torch"].base_version == locked("cpu.txt")["torch"].base_version
    assert any(p.startswith("nvidia-nccl") for p in pins)


def test_setup_refuses_the_cpu_lock_without_the_find_links_rather_than_fetching_cuda(tmp_path):
    """uv ignores pip's configuration: without the carried-over find-links it would take PyPI's CUDA torch."""
    env = {**os.environ, "PIP_FIND_LINKS": "", "PIP_CONFIG_FILE": os.devnull}
    out = subprocess.run(
        ["bash", str(REPO / "launch" / "setup.sh"), str(tmp_path / "venv"), "requirements/cpu.txt"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert "find-links" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "venv").exists()
