"""``sse-dist verify --checkpoint RUN a.wav b.wav``: are two recordings the same speaker?

The score of the two files' embeddings, and the decision at the threshold stored with the model (the EER
threshold of the dev trial list it was scored on, see ``score/calibration.py``); a short line, or JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

HELP = "Score two audio files with a trained model and decide whether they are the same speaker."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, metavar="RUN", help="training run folder (or its model.pt)")
    p.add_argument("a", help="audio file")
    p.add_argument("b", help="audio file")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def verify(run: str, a: str, b: str) -> dict[str, Any]:
    from .api import load

    model = load(run)
    print(f"model {model.description}", file=sys.stderr)
    score = model.score(model.embed_file(a), model.embed_file(b))
    dev = (model.card or {}).get("dev") or {}
    return {
        "a": a,
        "b": b,
        "score": score,
        "threshold": model.threshold,
        "same_speaker": model.same_speaker(score),
        "model": model.run,
        "dev_eer_percent": dev.get("eer_percent"),
    }


def line(result: dict[str, Any]) -> str:
    score, threshold = result["score"], result["threshold"]
    if threshold is None:
        return (
            f"score {score:.4f}; no decision: {result['model']} has no calibrated threshold (score a dev "
            f"trial list with `sse-dist score --run {result['model']}`)"
        )
    if result["same_speaker"]:
        verdict = f"same speaker: score {score:.4f} > threshold {threshold:.4f}"
    else:
        verdict = f"different speakers: score {score:.4f} <= threshold {threshold:.4f}"
    eer = result["dev_eer_percent"]
    return verdict + (f" (dev EER {eer:.2f}%)" if eer is not None else "")


def run(args: argparse.Namespace) -> str:
    result = verify(args.checkpoint, args.a, args.b)
    return json.dumps(result) if args.json else line(result)
