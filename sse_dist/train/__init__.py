"""Training: the modes (tasks), the input pipeline and the DeepSpeed loop."""


def run(cfg):  # noqa: ANN001, ANN201 - imported lazily: importing the package needs no DeepSpeed
    from .loop import run as _run

    return _run(cfg)


__all__ = ["run"]
