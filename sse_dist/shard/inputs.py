"""What to shard: the utterances of a Kaldi data dir or of a folder of audio files, with their labels.

Every line of ``wav.scp`` (every audio file of a folder) becomes either an :class:`Utterance` or a quarantine
entry, so the shard summary can account for all of them. Problems with the data dir itself (no ``wav.scp``, a
piped command, a malformed label file, an unreadable speakers file) raise before anything is written.
"""

from __future__ import annotations

import functools
import logging
import os
import posixpath
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .. import storage
from ..config import ShardConfig

log = logging.getLogger(__name__)

WAV_SCP = "wav.scp"
LABEL_FILES = ("utt2spk", "text", "phones.ctm")
# Extensions of a folder input that are audio; anything else in the folder (transcripts, READMEs) is skipped.
# RAW and MAT are left out: soundfile lists them, but they are not self-describing audio.
AUDIO_EXTENSIONS = frozenset(
    ("wav", "wave", "flac", "ogg", "oga", "opus", "mp3", "aif", "aiff", "aifc", "au", "snd", "caf", "w64")
    + ("rf64", "sph", "nist", "voc")
)


@dataclass(frozen=True)
class Utterance:
    id: str
    path: str
    """As the input names it: relative to the input folder, or absolute when ``wav.scp`` lists it so."""
    url: str
    """Where it is read from."""
    speaker: str | None = None
    text: str | None = None
    ctm: str | None = None
    """Its ``phones.ctm`` segments packed as ``"start dur phone;..."``: a CTM of 10k hours as Python lists
    would take tens of GB."""

    @property
    def phones(self) -> list[list[Any]] | None:
        """``[[start_s, dur_s, phone], ...]`` ordered by start (readers binary-search them), or None."""
        if self.ctm is None:
            return None
        segments = [[float(s), float(d), p] for s, d, p in (seg.split(" ") for seg in self.ctm.split(";"))]
        return sorted(segments, key=lambda seg: seg[0])


@dataclass
class Inputs:
    source: str
    utterances: list[Utterance]
    quarantine: list[dict[str, str]] = field(default_factory=list)
    """Entries that name no usable file (``{"id", "path", "reason"}``)."""
    excluded: int = 0
    """Utterances left out because their speaker is not in ``cfg.speakers``."""
    unmatched: dict[str, int] = field(default_factory=dict)
    """Per label file, lines whose utterance is not in ``wav.scp`` (ignored)."""
    unlabelled: dict[str, int] = field(default_factory=dict)
    """Per label file present, utterances of ``wav.scp`` it has no line for (they go in without that label)."""

    @property
    def count(self) -> int:
        return len(self.utterances) + len(self.quarantine)


def read_inputs(cfg: ShardConfig) -> Inputs:
    """The utterances of ``cfg.input`` (subset to ``cfg.speakers`` if given), in input order."""
    root = cfg.input.rstrip("/") or cfg.input
    source = cfg.source or posixpath.basename(root.replace(os.sep, "/"))
    if not storage.exists(root):
        raise FileNotFoundError(f"{root}: shard input does not exist (a Kaldi data dir or a folder of audio)")
    if storage.exists(storage.join(root, WAV_SCP)):
        inputs = _kaldi_dir(root, source)
    elif _is_dir(root):
        _refuse_kaldi_dir_without_scp(root)
        inputs = _audio_folder(root, source)
    else:
        raise ValueError(
            f"{root}: shard input must be a Kaldi data dir (with {WAV_SCP}) or a folder of audio"
        )
    if cfg.speakers:
        _keep_speakers(inputs, _read_speakers(cfg.speakers))
    if not inputs.count:
        raise ValueError(f"{root}: none of its utterances belongs to a speaker listed in {cfg.speakers}")
    return inputs


def _refuse_kaldi_dir_without_scp(root: str) -> None:
    """A data dir that lost its wav.scp would otherwise be sharded as a folder of unlabelled audio."""
    labels = [name for name in LABEL_FILES if storage.exists(storage.join(root, name))]
    if labels:
        raise FileNotFoundError(f"{storage.join(root, WAV_SCP)}: missing, but {root} has {', '.join(labels)}")


def _is_dir(url: str) -> bool:
    fs, path = storage.filesystem(url)
    return fs.isdir(path)


def _lines(url: str) -> Iterator[tuple[int, str]]:
    """Non-blank lines of a text file as ``(line number, stripped line)``."""
    try:
        text = storage.read_bytes(url).decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{url}: not UTF-8 text ({e})") from None
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            yield n, line.strip()


def _split(line: str) -> tuple[str, str]:
    """A Kaldi table line as (utterance, rest of the line); the rest may contain spaces (paths, text)."""
    utt, *rest = line.split(maxsplit=1)
    return utt, rest[0] if rest else ""


def _kaldi_dir(root: str, source: str) -> Inputs:
    scp = storage.join(root, WAV_SCP)
    inputs = Inputs(source, [])
    entries = []
    for n, line in _lines(scp):
        utt, path = _split(line)
        if path.endswith("|"):
            raise ValueError(
                f"{scp}:{n}: piped command for {utt!r}; shard reads audio files only, so write the audio to "
                "files first (e.g. `wav-copy scp:wav.scp ark,scp:audio.ark,...` or sox) and list those"
            )
        if not path:
            inputs.quarantine.append(
                {"id": utt, "path": "", "reason": f"malformed: {WAV_SCP} line {n} has no path"}
            )
            continue
        entries.append((utt, path))
    if not entries and not inputs.quarantine:
        raise ValueError(f"{scp}: empty (no utterances)")
    labels = _read_labels(root, {utt for utt, _ in entries}, inputs.unmatched)
    _count_unlabelled(root, [utt for utt, _ in entries], labels, inputs.unlabelled)
    for utt, path in entries:
        url = path if storage.is_remote(path) or os.path.isabs(path) else storage.join(root, path)
        speaker, text, ctm = (labels[name].get(utt) for name in LABEL_FILES)
        inputs.utterances.append(Utterance(utt, path, url, speaker, text, ctm))
    return inputs


def _read_labels(root: str, utts: set[str], unmatched: dict[str, int]) -> dict[str, dict[str, Any]]:
    """``utt2spk``, ``text`` and ``phones.ctm`` of a data dir (empty when absent), keyed by utterance."""
    readers = {
        "utt2spk": functools.partial(_read_table, empty_ok=False),
        "text": functools.partial(_read_table, empty_ok=True),
        "phones.ctm": _read_ctm,
    }
    labels: dict[str, dict[str, Any]] = {}
    for name, reader in readers.items():
        url = storage.join(root, name)
        labels[name] = reader(url) if storage.exists(url) else {}
        stray = len(labels[name].keys() - utts)
        if stray:
            unmatched[name] = stray
            log.warning("%s: %d line(s) name utterances that are not in %s; ignored", url, stray, WAV_SCP)
    return labels


def _count_unlabelled(
    root: str, utts: list[str], labels: dict[str, dict[str, Any]], unlabelled: dict[str, int]
) -> None:
    """An utterance a present label file does not list would go in unlabelled without a word: count it."""
    for name, table in labels.items():
        missing = [u for u in utts if u not in table]
        if table and missing:
            unlabelled[name] = len(missing)
            log.warning(
                "%s: no line for %d of %d utterances of %s (e.g. %s); they are sharded without it",
                storage.join(root, name), len(missing), len(utts), WAV_SCP, ", ".join(missing[:3]),
            )  # fmt: skip


def unlabelled_speakers(index: dict[str, Any]) -> int:
    """Utterances of a shard set that ``utt2spk`` did not label although it was given (0 for older sets)."""
    return int(index.get("summary", {}).get("unlabelled", {}).get("utt2spk", 0))


def _read_table(url: str, empty_ok: bool) -> dict[str, str]:
    """A Kaldi ``<utt> <value>`` table; ``text`` may have empty values (an utterance with no words)."""
    table: dict[str, str] = {}
    for n, line in _lines(url):
        utt, value = _split(line)
        if not value and not empty_ok:
            raise ValueError(f"{url}:{n}: expected '<utt> <value>', got {line!r}")
        if utt in table:
            raise ValueError(f"{url}:{n}: utterance {utt!r} listed twice")
        table[utt] = value
    return table


def _read_ctm(url: str) -> dict[str, str]:
    """A CTM of phones, ``<utt> <channel> <start> <dur> <phone>``, packed per utterance (see
    :attr:`Utterance.ctm`)."""
    segments: dict[str, list[str]] = {}
    for n, line in _lines(url):
        try:
            utt, _chan, start, dur, phone = line.split()[:5]
            float(start), float(dur)
        except ValueError:
            raise ValueError(
                f"{url}:{n}: expected '<utt> <channel> <start> <dur> <phone>', got {line!r}"
            ) from None
        segments.setdefault(utt, []).append(f"{start} {dur} {phone}")
    return {utt: ";".join(segs) for utt, segs in segments.items()}


def _audio_folder(root: str, source: str) -> Inputs:
    fs, base = storage.filesystem(root)
    base = base.rstrip("/")
    found, skipped = [], Counter()
    for path in sorted(fs.find(base)):
        rel = posixpath.relpath(path, base)
        stem, ext = posixpath.splitext(rel)
        if ext[1:].lower() in AUDIO_EXTENSIONS:
            found.append(Utterance(stem, rel, storage.join(root, *rel.split("/"))))
        else:
            skipped[ext.lower() or "(none)"] += 1
    if skipped:
        log.info("%s: skipped %d file(s) that are not audio (%s)", root, sum(skipped.values()), dict(skipped))
    if not found:
        raise ValueError(f"{root}: no audio files (looked for {', '.join(sorted(AUDIO_EXTENSIONS))})")
    return Inputs(source, found)


def _read_speakers(url: str) -> set[str]:
    """Speaker ids, one per line (the first field, so a ``spk2utt`` works too)."""
    try:
        speakers = {line.split()[0] for _, line in _lines(url)}
    except FileNotFoundError:
        raise FileNotFoundError(f"{url}: speakers file does not exist") from None
    except OSError as e:
        raise ValueError(f"{url}: cannot read speakers file ({e})") from None
    if not speakers:
        raise ValueError(f"{url}: speakers file lists no speaker ids")
    return speakers


def _keep_speakers(inputs: Inputs, speakers: set[str]) -> None:
    if all(u.speaker is None for u in inputs.utterances):
        raise ValueError("a speakers subset needs speaker labels: the input has no utt2spk (or it is empty)")
    kept = [u for u in inputs.utterances if u.speaker in speakers]
    inputs.excluded = len(inputs.utterances) - len(kept)
    inputs.utterances = kept
    missing = speakers - {u.speaker for u in kept}
    if missing:
        log.warning(
            "%d of %d listed speakers have no utterances: %s",
            len(missing),
            len(speakers),
            sorted(missing)[:10],
        )
