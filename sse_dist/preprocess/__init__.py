"""Preprocessing: features (log-mel, VAD) and phone labels for every audio shard, as a Ray job."""


def run(cfg):  # noqa: ANN001, ANN201 - Ray is imported only when the stage runs, not with its submodules
    from .job import run as _run

    return _run(cfg)


__all__ = ["run"]
