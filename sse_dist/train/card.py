"""The model card of a training run: what the model was trained on, how, from which code, and how well it scored.

``model_card.json`` (for tools) and ``model_card.md`` (a few lines for people) are written beside ``model.pt``
at the end of every run; ``sse-dist score --run`` adds the dev set's EER and the decision threshold calibrated
on it. ``embed`` and ``verify`` print :func:`describe`'s one line, so every output says which model made it.
"""

from __future__ import annotations

import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import storage
from ..config import TrainConfig
from ..shard.fields import Corpus
from .tasks import speaker_index

CARD_JSON = "model_card.json"
CARD_MD = "model_card.md"
# The repository this package runs from, when it runs from a clone (not from an installed wheel).
_SOURCE = Path(__file__).resolve().parents[2]


def commit() -> str:
    """``git describe`` of the code that runs, or "unknown" outside a clone (a wheel, an image without .git)."""

    def git(*args: str) -> str:
        out = subprocess.run(["git", "-C", str(_SOURCE), *args], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else ""

    try:
        # The package may sit inside some other repository (a venv in a project): describe only our own.
        if Path(git("rev-parse", "--show-toplevel") or "/nonexistent").resolve() != _SOURCE:
            return "unknown"
        return git("describe", "--always", "--dirty", "--tags") or "unknown"
    except (OSError, subprocess.TimeoutExpired):  # no git installed, or a hung filesystem
        return "unknown"


def objective(weights: dict[str, float]) -> str:
    """The loss as a sum, e.g. ``cross_entropy + 0.5 x reconstruction``."""
    return " + ".join(name if w == 1 else f"{w:g} x {name}" for name, w in weights.items())


def write(cfg: TrainConfig, corpus: Corpus, weights: dict[str, float], step: int) -> None:
    """The card of a finished run (rank 0, at the end of training)."""
    labelled = len(speaker_index(cfg, corpus))
    card = {
        "run": cfg.output,
        "mode": cfg.mode,
        "objective": objective(weights),
        "steps": step,
        "seed": cfg.seed,
        "data": {
            "shards": list(cfg.shards),
            "utterances": corpus.utterances,
            "hours": round(corpus.hours, 3),
            "speakers": len(corpus.speakers),
            "labelled_speakers": labelled,
        },
        "embed_dim": cfg.model.embed_dim,
        "commit": commit(),
        "trained": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dev": None,
    }
    _publish(cfg.output, card)


def read(run: str) -> dict[str, Any] | None:
    """The card of a run folder (or of the folder holding a ``model.pt``); None for a run without one."""
    url = storage.join(run_folder(run), CARD_JSON)
    return storage.read_json(url) if storage.exists(url) else None


def record_dev(run: str, dev: dict[str, Any]) -> None:
    """Add (or replace) the dev set's result on the run's card."""
    card = read(run)
    if card is None:
        raise FileNotFoundError(
            f"{storage.join(run_folder(run), CARD_JSON)}: no model card (not a training run?)"
        )
    _publish(run_folder(run), card | {"dev": dev})


def run_folder(run: str) -> str:
    return run[: -len("/model.pt")] if run.endswith("/model.pt") else run.rstrip("/")


def describe(run: str, card: dict[str, Any] | None) -> str:
    """One line naming the model, for the output of ``embed`` and ``verify``."""
    if card is None:
        return f"{run} (no model card)"
    data = card["data"]
    line = (
        f"{run}: {card['mode']} ({card['objective']}), {card['steps']} steps, seed {card['seed']}, "
        f"{data['hours']:g} h / {data['utterances']} utterances, commit {card['commit']}"
    )
    dev = card.get("dev")
    return line + (f", dev EER {dev['eer_percent']:.2f}%" if dev else ", not scored")


def markdown(card: dict[str, Any]) -> str:
    data, dev = card["data"], card.get("dev")
    lines = [
        f"# Model card: {card['run']}",
        "",
        f"- Trained: {card['mode']} mode, objective {card['objective']}, {card['steps']} steps, seed "
        f"{card['seed']}, {card['embed_dim']}-dim embeddings, commit `{card['commit']}`, {card['trained']}",
        f"- Data: {data['hours']:g} h, {data['utterances']} utterances, {data['speakers']} speakers "
        f"({data['labelled_speakers']} with labels used) from {', '.join(data['shards'])}",
    ]
    if dev:
        lines.append(
            f"- Dev: EER {dev['eer_percent']:.2f}% on {dev['trials']} trials ({dev['trial_list']}); decision "
            f"threshold {dev['threshold']:.4f} ({dev['backend']} scoring), scored {dev['scored']}"
        )
    else:
        lines.append(
            "- Dev: not scored (`sse-dist score --run RUN` records the EER and a decision threshold)"
        )
    return "\n".join(lines) + "\n"


def _publish(run: str, card: dict[str, Any]) -> None:
    storage.write_json(storage.join(run, CARD_JSON), card)
    storage.write_bytes(storage.join(run, CARD_MD), markdown(card).encode("utf-8"))
