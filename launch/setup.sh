#!/usr/bin/env bash
# Set-up from the lock: `launch/setup.sh VENV LOCKFILE` creates VENV and installs LOCKFILE (hashes checked,
# nothing resolved), then the project itself without dependencies. `launch/setup.sh --lock` refreshes the locks.
# uv is used when it is on PATH or can be bootstrapped from pip; plain pip from the same lock is the fallback.
# uv does not read pip's configuration: the find-links that hold the local CPU torch wheel are carried over from
# PIP_FIND_LINKS or `pip config get global.find-links`, else uv would look for torch on PyPI (a CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
LOCK_PYTHON=3.11  # the Python the locks are compiled for; another one resolves from pyproject.toml instead

find_links() {
  local links=${PIP_FIND_LINKS:-}
  if [ -z "$links" ]; then links=$("$PYTHON" -m pip config get global.find-links 2> /dev/null || true); fi
  echo "$links"
}

if [ "${1:-}" = --lock ]; then
  command -v uv > /dev/null || { echo "make lock needs uv (pip install uv)" >&2; exit 1; }
  links=$(find_links)
  [ -n "$links" ] || { echo "make lock: no find-links with the CPU torch wheel (PIP_FIND_LINKS)" >&2; exit 1; }
  compile=(uv pip compile pyproject.toml requirements/torch.in --extra test --generate-hashes --quiet
    --python-version "$LOCK_PYTHON" --python-platform x86_64-manylinux_2_28 --annotation-style line
    --custom-compile-command "make lock")
  UV_FIND_LINKS=$links "${compile[@]}" -o requirements/cpu.txt
  env -u UV_FIND_LINKS "${compile[@]}" -o requirements/cuda.txt
  exit 0
fi

venv=${1:?usage: launch/setup.sh VENV LOCKFILE | --lock}
lockfile=${2:?usage: launch/setup.sh VENV LOCKFILE | --lock}
links=$(find_links)
if [ "$(basename "$lockfile")" = cpu.txt ] && [ -z "$links" ]; then
  echo "set-up: the CPU lock needs the find-links that hold torch 2.13.0+cpu (set PIP_FIND_LINKS);" \
    "on a GPU machine use 'make LOCK=cuda setup'" >&2
  exit 1
fi
export UV_FIND_LINKS=$links
"$PYTHON" -m venv "$venv"
py=$venv/bin/python
uv=$(command -v uv || true)
if [ -z "$uv" ] && "$py" -m pip install --quiet uv; then uv=$venv/bin/uv; fi

version=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$version" != "$LOCK_PYTHON" ]; then
  # The locks pin wheels for one Python; elsewhere resolve from pyproject.toml's bounds (slower, unlocked).
  echo "set-up: Python $version is not the locked $LOCK_PYTHON; resolving from pyproject.toml" >&2
  torch=$(grep -v '^#' requirements/torch.in)
  if [ -n "$uv" ]; then "$uv" pip install --quiet --compile-bytecode --python "$py" "$torch" -e '.[test]'; else
    "$py" -m pip install --quiet "$torch" && "$py" -m pip install --quiet -e '.[test]'; fi
  exit 0
fi
if [ -n "$uv" ] && "$uv" pip install --quiet --compile-bytecode --python "$py" --require-hashes -r "$lockfile"; then
  "$uv" pip install --quiet --compile-bytecode --python "$py" --no-deps -e .
else
  echo "set-up: uv unavailable or failed; installing the lock with pip" >&2
  "$py" -m pip install --quiet --require-hashes -r "$lockfile"
  "$py" -m pip install --quiet --no-deps -e .
fi
