"""Trial lists in the two common forms, detected line by line.

* VoxCeleb: ``label enroll test`` with label ``1``/``0`` (or ``target``/``nontarget``);
* Kaldi: ``enroll test target|nontarget``.

A line that fits both (``1 a target``) is read as the VoxCeleb form: a leading label wins.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .. import storage
from .embeddings import Embeddings, preview

log = logging.getLogger(__name__)
_LEADING_LABELS = {"1": 1, "0": 0, "target": 1, "nontarget": 0}
_TRAILING_LABELS = {"target": 1, "nontarget": 0}


class TrialsError(ValueError):
    """A trial list that cannot be scored; the message starts with the file (and line)."""


@dataclass(frozen=True)
class Trials:
    enroll: np.ndarray
    """Enrollment utterance of each trial (str [T])."""
    test: np.ndarray
    """Test utterance of each trial (str [T])."""
    labels: np.ndarray
    """1 for a target (same-speaker) trial, 0 for a non-target (int8 [T])."""
    source: str
    """Where the list came from, for error messages."""
    duplicates: int = 0
    """Repeated lines (same enrollment, test and label) dropped: scored twice, they would weigh double."""

    def __len__(self) -> int:
        return len(self.labels)


def _parse_line(fields: list[str]) -> tuple[str, str, int] | None:
    if len(fields) != 3:
        return None
    first, second, third = fields
    if first in _LEADING_LABELS:
        return second, third, _LEADING_LABELS[first]
    if third in _TRAILING_LABELS:
        return first, second, _TRAILING_LABELS[third]
    return None


def parse_trials(text: str, source: str = "<trials>") -> Trials:
    """Parse a trial list; blank lines are skipped, anything else that is not a trial is an error."""
    enroll, test, labels = [], [], []
    seen: dict[tuple[str, str], tuple[int, int]] = {}
    duplicates = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        trial = _parse_line(fields)
        if trial is None:
            raise TrialsError(
                f"{source}:{lineno}: expected 'label enroll test' (label 1/0/target/nontarget) "
                f"or 'enroll test target|nontarget', got {line.strip()!r}"
            )
        first = seen.setdefault(trial[:2], (lineno, trial[2]))
        if first[0] != lineno:
            if first[1] != trial[2]:
                raise TrialsError(
                    f"{source}:{lineno}: trial {trial[0]} {trial[1]} is labelled differently on line {first[0]}"
                )
            duplicates += 1
            continue
        enroll.append(trial[0])
        test.append(trial[1])
        labels.append(trial[2])
    if not labels:
        raise TrialsError(f"{source}: no trials")
    if duplicates:
        log.warning("%s: %d repeated trial line(s) dropped (each trial is scored once)", source, duplicates)
    return Trials(np.array(enroll), np.array(test), np.array(labels, dtype=np.int8), source, duplicates)


def read_trials(url: str) -> Trials:
    """Read a trial list (local path or object-store URL)."""
    try:
        # utf-8-sig: a byte-order mark would otherwise glue itself to the first label.
        text = storage.read_bytes(url).decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise TrialsError(f"{url}: not UTF-8 text ({e})") from e
    return parse_trials(text, url)


def resolve(trials: Trials, embeddings: Embeddings) -> tuple[np.ndarray, np.ndarray]:
    """Row indices into ``embeddings`` of each trial's enrollment and test utterance.

    Every utterance must have an embedding: scoring a subset silently would report a metric on a different
    trial list than the one asked for.
    """
    enroll = embeddings.lookup(trials.enroll)
    test = embeddings.lookup(trials.test)
    if (enroll >= 0).all() and (test >= 0).all():
        return enroll, test
    # Interleaved so the utterances are quoted in the order they appear in the list.
    names = np.stack([trials.enroll, trials.test], axis=1).ravel()
    known = np.stack([enroll, test], axis=1).ravel() >= 0
    unknown_names = names[~known]
    _, first = np.unique(unknown_names, return_index=True)
    unknown = unknown_names[np.sort(first)]
    affected = int(np.count_nonzero((enroll < 0) | (test < 0)))
    raise TrialsError(
        f"{trials.source}: {len(unknown)} utterances ({affected} of {len(trials)} trials) have no embedding "
        f"in {embeddings.source}: {preview(unknown)}"
    )
