"""The ``sse-dist`` command: one subcommand per stage, each configured by the same typed experiment config.

    sse-dist <stage> [--config FILE ...] [--set section.field=VALUE ...] [--field VALUE ...]

``--config`` files (YAML, later ones win) and ``--set`` overrides may touch any section; ``--field`` flags are
the stage's own section's fields (nested ones dotted, e.g. ``train --optim.lr 3e-4``), listed with their
documentation by ``sse-dist <stage> --help``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import typing
from typing import Any

from .config import ConfigError, ExperimentConfig, field_docs, load

STAGES = {
    "synth": "Generate the embedded synthetic multi-speaker corpus (Kaldi data dirs with exact phone alignments).",
    "shard": "Pack audio (a folder or a Kaldi data dir) into WebDataset tar shards with a JSON index.",
    "preprocess": "Compute log-mel features, VAD and phone labels for every shard, as a Ray job.",
    "train": "Train the speaker embedding model with DeepSpeed (run under torchrun for several ranks).",
    "embed": "Extract one embedding per utterance of a shard set (and export the extractor as ONNX).",
    "score": "Score a trial list (cosine or LDA+PLDA, optional AS-norm); EER, minDCF and a DET curve.",
    "demo": "Run every stage on the embedded synthetic corpus and report untrained vs MFCC vs SSL.",
    "launch": "Render, validate and create the Kubernetes job of a stage (RayJob; TrainJob or PyTorchJob); follow it.",
}
CHECK_SHARDS = (
    "Verify every audio shard of shard sets (local or s3://) against the sha256 and size in index.json."
)
PLAN = "Cost of N hours of audio end to end, from the measured benchmark rates and stated assumptions."


def _leaf_fields(cls: type, prefix: str = "") -> list[tuple[str, Any, str, Any]]:
    """(dotted name, type, doc, default) of every leaf field below a section."""
    out = []
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out += _leaf_fields(tp, f"{prefix}{f.name}.")
        else:
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            out.append((prefix + f.name, tp, docs.get(f.name, ""), default))
    return out


def _add_stage(sub: argparse._SubParsersAction, stage: str) -> None:
    usage = f"sse-dist {stage} [--config FILE ...] [--set KEY=VALUE ...] [--FIELD VALUE ...]"
    p = sub.add_parser(stage, help=STAGES[stage], description=STAGES[stage], usage=usage)
    p.add_argument(
        "--config", action="append", default=[], metavar="FILE", help="experiment YAML (repeatable)"
    )
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any field")
    section = typing.get_type_hints(ExperimentConfig)[stage]
    group = p.add_argument_group(f"{stage} settings (section '{stage}' of the config)")
    for name, tp, doc, default in _leaf_fields(section):
        flag = {"dest": f"field:{name}", "metavar": "VALUE", "help": f"{doc} [default: {default!r}]"}
        if tp is bool:
            flag |= {"nargs": "?", "const": "true", "metavar": "BOOL"}
        group.add_argument(f"--{name}", **flag)
    if stage == "launch":
        from .launch.command import add_arguments

        add_arguments(p)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sse-dist",
        description="Distributed training of self-supervised speaker embeddings (Stafylakis et al., 2019).",
        epilog="Each stage reads the same experiment config; see configs/ for examples.",
    )
    sub = p.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for stage in STAGES:
        _add_stage(sub, stage)
    from . import plan, verify

    plan.add_arguments(sub.add_parser("plan", help=PLAN, description=PLAN))
    verify.add_arguments(sub.add_parser("verify", help=verify.HELP, description=verify.HELP))
    check = sub.add_parser("check-shards", help=CHECK_SHARDS, description=CHECK_SHARDS)
    check.add_argument("roots", nargs="+", metavar="SHARD_SET", help="shard set folder or URL")
    return p


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    files = list(args.config)
    if args.stage == "demo" and not files:
        from .demo import preset

        files = [preset()]
    overrides = list(args.set)
    for dest, value in vars(args).items():
        if dest.startswith("field:") and value is not None:
            overrides.append(f"{args.stage}.{dest[len('field:') :]}={value}")
    return load(ExperimentConfig, files, overrides)


def run_stage(stage: str, cfg: ExperimentConfig) -> dict[str, Any]:
    # Imported lazily: `sse-dist score --help` should not pay for torch, Ray and DeepSpeed.
    if stage == "synth":
        from .synth import run

        return run(cfg.synth)
    if stage == "shard":
        from .shard import run

        return run(cfg.shard)
    if stage == "preprocess":
        from .preprocess import run

        return run(cfg.preprocess)
    if stage == "train":
        from .train import run

        return run(cfg.train)
    if stage == "embed":
        from .embed import run

        return run(cfg.embed, cfg.train, cfg.shard)
    if stage == "score":
        from .score import run

        return run(cfg.score)
    from .demo import run

    return run(cfg)


def setup_logging() -> None:
    rank = os.environ.get("RANK")
    prefix = f"[rank {rank}] " if rank is not None and os.environ.get("WORLD_SIZE", "1") != "1" else ""
    logging.basicConfig(
        level=os.environ.get("SSE_LOG_LEVEL", "INFO"),
        format=f"%(asctime)s {prefix}%(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging()
    if args.stage in ("plan", "verify", "check-shards"):  # no experiment config of their own
        from . import plan, verify
        from .shard import verify as check_shards

        run = {
            "plan": plan.run,
            "verify": verify.run,
            "check-shards": lambda a: json.dumps(check_shards.verify(a.roots), indent=1),
        }[args.stage]
        try:
            print(run(args))
        except (ValueError, OSError) as e:
            print(f"sse-dist {args.stage}: error: {e}", file=sys.stderr)
            return 1
        return 0
    try:
        cfg = config_from_args(args)
    except ConfigError as e:
        print(f"sse-dist {args.stage}: invalid configuration: {e}", file=sys.stderr)
        return 2
    try:
        if args.stage == "launch":
            from .launch.command import run

            summary = run(args, cfg)
        else:
            summary = run_stage(args.stage, cfg)
    except (ValueError, OSError, RuntimeError) as e:
        if os.environ.get("SSE_DEBUG"):
            raise
        from .storage import explain  # a storage error as `<path>: <cause>`, not errno and repr

        print(f"sse-dist {args.stage}: error: {explain(e) if isinstance(e, OSError) else e}", file=sys.stderr)
        return 1
    # The demo prints its own table; every other stage prints its summary as JSON (rank 0 only).
    if args.stage != "demo" and os.environ.get("RANK", "0") == "0":
        print(json.dumps(summary, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
