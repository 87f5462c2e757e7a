"""The run's loss history (``history.jsonl``) and its picture (``loss.png``)."""

from __future__ import annotations

import io
import json
from typing import Any

from .. import storage


def write(url: str, rows: list[dict[str, Any]]) -> None:
    storage.write_bytes(url, "".join(json.dumps(r) + "\n" for r in rows).encode("utf-8"))


def read(url: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in storage.read_bytes(url).decode("utf-8").splitlines() if line]


def plotted(rows: list[dict[str, Any]]) -> list[str]:
    """What the model reported (the task's loss terms, accuracy), in the order first logged: a panel each."""
    return list(dict.fromkeys(k for r in rows for k in r if k not in ("step", "lr", "samples_per_second")))


def plot(url: str, rows: list[dict[str, Any]], title: str) -> None:
    from matplotlib.figure import Figure  # no pyplot: nothing global changes, no display is needed

    components = plotted(rows)
    fig = Figure(figsize=(4.2 * (len(components) + 1), 3.4))
    axes = fig.subplots(1, len(components) + 1)
    for ax, name in zip(axes, components):
        pts = [(r["step"], r[name]) for r in rows if name in r]
        ax.plot(*zip(*pts))
        if name != "accuracy":
            ax.set_yscale("log")  # the first steps' loss would otherwise flatten the rest of the curve
        ax.set_title(name.replace("_", " "))
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[-1].plot([r["step"] for r in rows], [r["lr"] for r in rows])
    axes[-1].set_title("learning rate")
    axes[-1].set_xlabel("step")
    axes[-1].grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    storage.write_bytes(url, buf.getvalue())
