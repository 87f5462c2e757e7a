from __future__ import annotations

import io

import numpy as np
import pytest
from score_helpers import write_npz

from sse_dist import storage
from sse_dist.score.embeddings import EmbeddingsError, load_embeddings


def test_loads_keys_and_vectors(tmp_path):
    path = str(tmp_path / "emb.npz")
    write_npz(path, keys=np.array(["b", "a"]), embeddings=np.ones((2, 3), np.float32))
    embeddings = load_embeddings(path)
    assert list(embeddings.keys) == ["b", "a"]
    assert embeddings.vectors.shape == (2, 3)
    assert list(embeddings.lookup(np.array(["a", "zz", "b"]))) == [1, -1, 0]
    # Files without speakers (older ones, unlabelled data) read as unknown speakers.
    assert list(embeddings.speakers) == ["", ""]


def test_loads_speakers(tmp_path):
    path = str(tmp_path / "emb.npz")
    write_npz(path, keys=np.array(["b", "a"]), embeddings=np.ones((2, 3)), speakers=np.array(["s1", ""]))
    assert list(load_embeddings(path).speakers) == ["s1", ""]


def test_duplicate_keys_are_refused(tmp_path):
    path = str(tmp_path / "emb.npz")
    write_npz(path, keys=np.array(["a", "b", "a", "c", "b"]), embeddings=np.ones((5, 3), np.float32))
    with pytest.raises(EmbeddingsError, match=r"emb\.npz: 2 keys are repeated: a, b$"):
        load_embeddings(path)


def test_object_arrays_are_not_unpickled(tmp_path):
    path = str(tmp_path / "emb.npz")
    write_npz(path, keys=np.array(["a", "b"], dtype=object), embeddings=np.ones((2, 3), np.float32))
    with pytest.raises(EmbeddingsError, match="not an .npz of plain arrays"):
        load_embeddings(path)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"keys": np.array(["a"])}, "no array named embeddings"),
        ({"keys": np.array([1, 2]), "embeddings": np.ones((2, 3))}, "keys must be a 1-D array of str"),
        ({"keys": np.array(["a", "b"]), "embeddings": np.ones((3, 3))}, r"must be a float array \[N=2, D\]"),
        (
            {"keys": np.array(["a", "b"]), "embeddings": np.array([[0.0], [np.inf]])},
            "1 embeddings are not finite: b",
        ),
        (
            {"keys": np.array(["a", "b"]), "embeddings": np.ones((2, 3)), "speakers": np.array(["s"])},
            "speakers must be a 1-D array of str like keys",
        ),
    ],
)
def test_malformed_files_are_refused(tmp_path, arrays, message):
    path = str(tmp_path / "emb.npz")
    write_npz(path, **arrays)
    with pytest.raises(EmbeddingsError, match=message):
        load_embeddings(path)


def test_a_single_npy_array_is_refused(tmp_path):
    path = str(tmp_path / "emb.npz")
    buf = io.BytesIO()
    np.save(buf, np.ones((2, 3)))
    storage.write_bytes(path, buf.getvalue())
    with pytest.raises(EmbeddingsError, match="single .npy"):
        load_embeddings(path)
