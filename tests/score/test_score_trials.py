from __future__ import annotations

import numpy as np
import pytest

from sse_dist import storage
from sse_dist.score.embeddings import Embeddings
from sse_dist.score.trials import TrialsError, parse_trials, read_trials, resolve


def test_voxceleb_form_with_numeric_and_word_labels():
    trials = parse_trials("1 a b\n0 a c\ntarget c d\nnontarget b d\n")
    assert list(trials.enroll) == ["a", "a", "c", "b"]
    assert list(trials.test) == ["b", "c", "d", "d"]
    assert list(trials.labels) == [1, 0, 1, 0]


def test_kaldi_form_and_forms_mixed_line_by_line():
    trials = parse_trials("a b target\n\n   \nid1/x.wav id2/y.wav nontarget\r\n1 c d\n")
    assert list(trials.enroll) == ["a", "id1/x.wav", "c"]
    assert list(trials.test) == ["b", "id2/y.wav", "d"]
    assert list(trials.labels) == [1, 0, 1]


def test_a_leading_label_wins_when_a_line_fits_both_forms():
    trials = parse_trials("0 a target\n")
    assert (trials.enroll[0], trials.test[0], trials.labels[0]) == ("a", "target", 0)


@pytest.mark.parametrize(
    "bad_line",
    ["a b", "1 a b c", "a b 1", "yes a b", "a b Target"],
)
def test_malformed_line_names_file_and_line(bad_line):
    text = f"1 a b\n\n{bad_line}\n0 a c\n"
    with pytest.raises(TrialsError, match=r"^lists/trials\.txt:3: expected") as err:
        parse_trials(text, "lists/trials.txt")
    assert repr(bad_line) in str(err.value)


def test_empty_list_is_an_error():
    with pytest.raises(TrialsError, match="no trials"):
        parse_trials("\n\n", "t")


def test_read_trials_from_a_file_with_a_byte_order_mark(tmp_path):
    path = str(tmp_path / "trials")
    storage.write_bytes(path, "\ufeff1 a b\na c nontarget\n".encode())
    trials = read_trials(path)
    assert trials.source == path
    assert list(trials.labels) == [1, 0]


def test_resolve_maps_names_to_rows():
    embeddings = Embeddings(np.array(["c", "a", "b"]), np.eye(3, dtype=np.float32))
    enroll, test = resolve(parse_trials("1 a b\n0 b c\n0 c a\n"), embeddings)
    assert list(enroll) == [1, 2, 0]
    assert list(test) == [2, 0, 1]


def test_unknown_utterances_are_reported_by_file_count_and_first_keys():
    embeddings = Embeddings(np.array(["a", "b"]), np.eye(2, dtype=np.float32), "emb.npz")
    text = "1 a b\n0 a zz\n" + "".join(f"0 u{i} b\n" for i in range(7)) + "1 zz b\n"
    with pytest.raises(TrialsError) as err:
        resolve(parse_trials(text, "trials.txt"), embeddings)
    message = str(err.value)
    assert message.startswith("trials.txt: 8 utterances (9 of 10 trials) have no embedding in emb.npz: ")
    # Quoted in order of first appearance, the first five only.
    assert message.endswith("zz, u0, u1, u2, u3, ...")
