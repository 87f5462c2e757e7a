"""Training: the model, the input pipeline and the DeepSpeed loop."""


def run(cfg):  # noqa: ANN001, ANN201 - imported lazily so `import sse_dist.train.model` stays light
    from .loop import run as _run

    return _run(cfg)


__all__ = ["run"]
