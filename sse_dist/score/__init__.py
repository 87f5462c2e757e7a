"""The ``score`` stage: cosine or LDA+PLDA scoring of a trial list, optional AS-norm, EER, minDCF and a DET plot.

``run(cfg)`` reads the ``embed`` stage's embeddings file and a trial list, and writes ``<stem>.json``
(metrics), ``<stem>.scores`` and ``<stem>.det.png``.
"""

from .backends import BACKENDS, Backend, CosineBackend, PldaBackend, Space, make_backend
from .embeddings import Embeddings, EmbeddingsError, load_embeddings
from .metrics import det_curve, eer, min_dcf
from .plot import det_png
from .stage import run, score_trials
from .trials import Trials, TrialsError, parse_trials, read_trials, resolve

__all__ = [
    "BACKENDS",
    "Backend",
    "CosineBackend",
    "PldaBackend",
    "Space",
    "Embeddings",
    "EmbeddingsError",
    "Trials",
    "TrialsError",
    "det_curve",
    "det_png",
    "eer",
    "load_embeddings",
    "make_backend",
    "min_dcf",
    "parse_trials",
    "read_trials",
    "resolve",
    "run",
    "score_trials",
]
