"""Experiment files for tests that start a stage as its own process (a plain module: conftest is not importable)."""

from __future__ import annotations

from pathlib import Path

import yaml


def write_config(path: Path, overrides: dict, base: dict | None = None) -> str:
    """``base`` with dotted ``overrides`` (``train.optim.lr``) nested in, written as YAML to ``path``."""
    cfg = base if base is not None else {}
    for dotted, value in overrides.items():
        node = cfg
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(cfg))
    return str(path)
