"""``sse-dist embed``: one embedding per utterance of a shard set, from a trained extractor or a baseline."""

from .extract import run

__all__ = ["run"]
