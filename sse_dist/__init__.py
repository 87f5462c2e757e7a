"""sse-dist: distributed training of self-supervised speaker embeddings.

``sse_dist.load(RUN)`` gives a trained run as a :class:`sse_dist.api.Model` (``embed``, ``score``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .api import Model


def load(run: str) -> Model:
    """A trained run (folder or ``model.pt``) as a model that embeds waveforms and scores pairs."""
    # Imported here: `import sse_dist` (the CLI, Ray workers) should not pay for torch and the model.
    from .api import load as load_run

    return load_run(run)
