"""The ``shard`` stage: a Kaldi data dir or a folder of audio -> WebDataset tar shards + ``index.json``.

``run(cfg)`` is the entry point; the format itself (names, keys, reading) is in :mod:`.format` and
documented in ``shards/README.md``.
"""

from .pipeline import run

__all__ = ["run"]
