"""The ``embed`` stage's embeddings file: an ``.npz`` of ``keys`` (str [N]), ``embeddings`` (float [N, D]) and,
optionally, ``speakers`` (str [N], "" where unknown; the labels LDA/PLDA and cohort averaging need).

It is read with ``allow_pickle=False``, so a file from elsewhere cannot run code when it is scored.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np

from .. import storage

_SHOWN = 5  # keys quoted in an error message


class EmbeddingsError(ValueError):
    """An embeddings file that cannot be scored; the message starts with the file."""


def preview(keys: np.ndarray) -> str:
    """The first few keys, for an error message."""
    return ", ".join(str(k) for k in keys[:_SHOWN]) + (", ..." if len(keys) > _SHOWN else "")


class Embeddings:
    """Vectors keyed by utterance, with vectorised key lookup and the speaker of each ("" where unknown)."""

    def __init__(
        self,
        keys: np.ndarray,
        vectors: np.ndarray,
        source: str = "<memory>",
        speakers: np.ndarray | None = None,
    ) -> None:
        if keys.ndim != 1 or keys.dtype.kind != "U":
            raise EmbeddingsError(f"{source}: keys must be a 1-D array of str, got {keys.dtype} {keys.shape}")
        if vectors.ndim != 2 or vectors.dtype.kind != "f" or len(vectors) != len(keys):
            raise EmbeddingsError(
                f"{source}: embeddings must be a float array [N={len(keys)}, D], "
                f"got {vectors.dtype} {vectors.shape}"
            )
        if speakers is None:
            speakers = np.full(len(keys), "")
        if speakers.shape != keys.shape or speakers.dtype.kind != "U":
            raise EmbeddingsError(
                f"{source}: speakers must be a 1-D array of str like keys, got {speakers.dtype} {speakers.shape}"
            )
        bad = ~np.isfinite(vectors).all(axis=1)
        if bad.any():
            raise EmbeddingsError(f"{source}: {bad.sum()} embeddings are not finite: {preview(keys[bad])}")
        self.keys = keys
        self.vectors = vectors
        self.speakers = speakers
        self.source = source
        self._order = np.argsort(keys, kind="stable")
        self._sorted = keys[self._order]
        repeated = self._sorted[1:][self._sorted[1:] == self._sorted[:-1]]
        if repeated.size:
            repeated = np.unique(repeated)
            raise EmbeddingsError(f"{source}: {repeated.size} keys are repeated: {preview(repeated)}")

    def __len__(self) -> int:
        return len(self.keys)

    def lookup(self, names: np.ndarray) -> np.ndarray:
        """Row index of each name, -1 where the name is not a key."""
        if not len(self):
            return np.full(len(names), -1)
        pos = np.minimum(np.searchsorted(self._sorted, names), len(self) - 1)
        return np.where(self._sorted[pos] == names, self._order[pos], -1)


def _read_arrays(url: str) -> dict[str, np.ndarray]:
    try:
        loaded = np.load(io.BytesIO(storage.read_bytes(url)), allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("a single .npy array")
        with loaded as npz:
            return {name: npz[name] for name in npz.files}
    except (ValueError, zipfile.BadZipFile) as e:
        # Object arrays (pickles) and non-numpy files both land here.
        raise EmbeddingsError(f"{url}: not an .npz of plain arrays ({e})") from e


def load_embeddings(url: str) -> Embeddings:
    """Read an embeddings file (local path or object-store URL)."""
    arrays = _read_arrays(url)
    missing = {"keys", "embeddings"} - set(arrays)
    if missing:
        raise EmbeddingsError(f"{url}: no array named {', '.join(sorted(missing))} (has {sorted(arrays)})")
    return Embeddings(arrays["keys"], arrays["embeddings"], url, arrays.get("speakers"))
