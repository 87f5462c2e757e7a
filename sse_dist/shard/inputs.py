"""What to shard: the utterances of a Kaldi data dir or of a folder of audio files, with their labels.

Every line of ``wav.scp`` (every audio file of a folder) becomes either an :class:`Utterance` or a quarantine
entry, so the shard summary can account for all of them. Problems with the data dir itself (no ``wav.scp``, a
piped command, a malformed label file, an unreadable speakers file) raise before anything is written.
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .. import storage
from ..config import ShardConfig
from .table import Utterance, UtteranceTable

__all__ = ["Inputs", "Utterance", "UtteranceTable", "read_inputs"]

log = logging.getLogger(__name__)

WAV_SCP = "wav.scp"
LABEL_FILES = ("utt2spk", "text", "phones.ctm")
# Extensions of a folder input that are audio; anything else in the folder (transcripts, READMEs) is skipped.
# RAW and MAT are left out: soundfile lists them, but they are not self-describing audio.
AUDIO_EXTENSIONS = frozenset(
    ("wav", "wave", "flac", "ogg", "oga", "opus", "mp3", "aif", "aiff", "aifc", "au", "snd", "caf", "w64")
    + ("rf64", "sph", "nist", "voc")
)


@dataclass
class Inputs:
    source: str
    utterances: UtteranceTable
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
    # Streamed: a label file of a large corpus (a CTM: ~1.5 KB per utterance) is never held whole.
    with storage.open_read(url) as f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError as e:
                raise ValueError(f"{url}: not UTF-8 text (line {n}: {e})") from None
            if line:
                yield n, line


def _split(line: str) -> tuple[str, str]:
    """A Kaldi table line as (utterance, rest of the line); the rest may contain spaces (paths, text)."""
    utt, *rest = line.split(maxsplit=1)
    return utt, rest[0] if rest else ""


def _kaldi_dir(root: str, source: str) -> Inputs:
    scp = storage.join(root, WAV_SCP)
    inputs = Inputs(source, UtteranceTable())
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
        url = path if storage.is_remote(path) or os.path.isabs(path) else storage.join(root, path)
        inputs.utterances.add(utt, path, url)
    if not len(inputs.utterances) and not inputs.quarantine:
        raise ValueError(f"{scp}: empty (no utterances)")
    _read_labels(root, inputs.utterances)
    for name in LABEL_FILES:
        stray = inputs.utterances.unmatched(name)
        if stray:
            inputs.unmatched[name] = stray
            log.warning(
                "%s: %d line(s) name utterances that are not in %s; ignored",
                storage.join(root, name), stray, WAV_SCP,
            )  # fmt: skip
    _count_unlabelled(root, inputs.utterances, inputs.unlabelled)
    return inputs


def _read_labels(root: str, table: UtteranceTable) -> None:
    """``utt2spk``, ``text`` and ``phones.ctm`` of a data dir (where present) into the table."""
    for name in ("utt2spk", "text"):
        url = storage.join(root, name)
        if storage.exists(url):
            _read_table(url, table, name, empty_ok=name == "text")
    url = storage.join(root, "phones.ctm")
    if storage.exists(url):
        _read_ctm(url, table)


def _count_unlabelled(root: str, table: UtteranceTable, unlabelled: dict[str, int]) -> None:
    """An utterance a present label file does not list would go in unlabelled without a word: count it."""
    for name in table.label_names():
        missing, first = table.unlabelled(name)
        if missing:
            unlabelled[name] = missing
            log.warning(
                "%s: no line for %d of %d utterances of %s (e.g. %s); they are sharded without it",
                storage.join(root, name), missing, len(table), WAV_SCP, ", ".join(first),
            )  # fmt: skip


def unlabelled_speakers(index: dict[str, Any]) -> int:
    """Utterances of a shard set that ``utt2spk`` did not label although it was given (0 for older sets)."""
    return int(index.get("summary", {}).get("unlabelled", {}).get("utt2spk", 0))


def _read_table(url: str, table: UtteranceTable, name: str, empty_ok: bool) -> None:
    """A Kaldi ``<utt> <value>`` table; ``text`` may have empty values (an utterance with no words)."""
    for n, line in _lines(url):
        utt, value = _split(line)
        if not value and not empty_ok:
            raise ValueError(f"{url}:{n}: expected '<utt> <value>', got {line!r}")
        if not table.add_label(name, utt, value):
            raise ValueError(f"{url}:{n}: utterance {utt!r} listed twice")


def _read_ctm(url: str, table: UtteranceTable) -> None:
    """A CTM of phones, ``<utt> <channel> <start> <dur> <phone>``, packed per run of lines of one utterance
    (see :attr:`Utterance.ctm`)."""
    utt, run = None, []
    for n, line in _lines(url):
        try:
            this, _chan, start, dur, phone = line.split()[:5]
            float(start), float(dur)
        except ValueError:
            raise ValueError(
                f"{url}:{n}: expected '<utt> <channel> <start> <dur> <phone>', got {line!r}"
            ) from None
        if this != utt and run:
            table.add_ctm(utt, ";".join(run))
            run = []
        utt = this
        run.append(f"{start} {dur} {phone}")
    if run:
        table.add_ctm(utt, ";".join(run))


def _audio_folder(root: str, source: str) -> Inputs:
    fs, base = storage.filesystem(root)
    base = base.rstrip("/")
    table, skipped = UtteranceTable(), Counter()
    for path in sorted(fs.find(base)):
        rel = posixpath.relpath(path, base)
        stem, ext = posixpath.splitext(rel)
        if ext[1:].lower() in AUDIO_EXTENSIONS:
            table.add(stem, rel, storage.join(root, *rel.split("/")))
        else:
            skipped[ext.lower() or "(none)"] += 1
    if skipped:
        log.info("%s: skipped %d file(s) that are not audio (%s)", root, sum(skipped.values()), dict(skipped))
    if not len(table):
        raise ValueError(f"{root}: no audio files (looked for {', '.join(sorted(AUDIO_EXTENSIONS))})")
    return Inputs(source, table)


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
    if "utt2spk" not in inputs.utterances.label_names():
        raise ValueError("a speakers subset needs speaker labels: the input has no utt2spk (or it is empty)")
    inputs.excluded, missing = inputs.utterances.keep_speakers(speakers)
    if missing:
        log.warning(
            "%d of %d listed speakers have no utterances: %s",
            len(missing),
            len(speakers),
            sorted(missing)[:10],
        )
