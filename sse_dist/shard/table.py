"""The utterances of a shard input and their labels, held in a temporary SQLite file rather than in Python lists.

``shard`` reads a whole input (``wav.scp`` and its label files) before it writes the first shard, because
utterances go into shards in id order. Held as Python objects, that input grows with the corpus (measured: the
driver's peak memory rose by ~10 KB per utterance, most of it ``phones.ctm``, which would be tens of GB at
10,000 hours); in SQLite on local disk the driver holds one utterance at a time and SQLite's bounded page cache.
Duplicate keys are found by a window query in the same order, so no key-to-owner table is held either.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from . import format as fmt

_SCHEMA = """
CREATE TABLE utts (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, key TEXT NOT NULL, path TEXT NOT NULL,
                   url TEXT NOT NULL);
CREATE TABLE labels (name TEXT NOT NULL, utt TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (name, utt))
    WITHOUT ROWID;
CREATE TABLE ctm (utt TEXT NOT NULL, segments TEXT NOT NULL);
"""
# Indexes are built once the rows are in (cheaper than keeping them up to date row by row).
_INDEXES = """
CREATE INDEX IF NOT EXISTS utts_by_id ON utts (id, seq);
CREATE INDEX IF NOT EXISTS utts_by_key ON utts (key, id, seq);
CREATE INDEX IF NOT EXISTS ctm_by_utt ON ctm (utt);
"""
_BATCH = 10_000
_CACHE_KB = 16_384  # SQLite's page cache: the table's whole footprint in memory


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
    """Its ``phones.ctm`` segments packed as ``"start dur phone;..."``."""

    @property
    def phones(self) -> list[list[Any]] | None:
        """``[[start_s, dur_s, phone], ...]`` ordered by start (readers binary-search them), or None."""
        if self.ctm is None:
            return None
        segments = [[float(s), float(d), p] for s, d, p in (seg.split(" ") for seg in self.ctm.split(";"))]
        return sorted(segments, key=lambda seg: seg[0])


class UtteranceTable:
    """Utterances (``wav.scp`` lines or audio files, in input order) and their labels by name (``utt2spk``,
    ``text``, ``phones.ctm``), in a SQLite file that is deleted with the table."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="sse-dist-inputs-")
        self.db = sqlite3.connect(os.path.join(self._dir.name, "inputs.db"))
        # A scratch file: no journal or fsync (a crash loses nothing that the input does not still hold).
        self.db.executescript(
            f"PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-{_CACHE_KB};"
        )
        self.db.executescript(_SCHEMA)
        self._pending: list[tuple[str, str, str, str]] = []
        self._ctm: list[tuple[str, str]] = []

    @classmethod
    def of(cls, utterances: Iterable[Utterance]) -> UtteranceTable:
        """A table of ready-made utterances (their labels too)."""
        table = cls()
        for u in utterances:
            table.add(u.id, u.path, u.url)
            for name, value in (("utt2spk", u.speaker), ("text", u.text)):
                if value is not None:
                    table.add_label(name, u.id, value)
            if u.ctm is not None:
                table.add_ctm(u.id, u.ctm)
        return table

    def add(self, utt_id: str, path: str, url: str) -> None:
        self._pending.append((utt_id, fmt.key_for(utt_id), path, url))
        if len(self._pending) >= _BATCH:
            self._flush()

    def add_label(self, name: str, utt: str, value: str) -> bool:
        """Record a label; False if the utterance already has one of that name."""
        try:
            self.db.execute("INSERT INTO labels VALUES (?, ?, ?)", (name, utt, value))
        except sqlite3.IntegrityError:
            return False
        return True

    def add_ctm(self, utt: str, segments: str) -> None:
        """A run of an utterance's CTM segments (packed); its runs are joined in the order they were added."""
        self._ctm.append((utt, segments))
        if len(self._ctm) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        self.db.executemany("INSERT INTO utts (id, key, path, url) VALUES (?, ?, ?, ?)", self._pending)
        self.db.executemany("INSERT INTO ctm VALUES (?, ?)", self._ctm)
        self._pending, self._ctm = [], []

    def _query(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self._flush()
        self.db.executescript(_INDEXES)
        return self.db.execute(sql, args)

    def __len__(self) -> int:
        return self._query("SELECT COUNT(*) FROM utts").fetchone()[0]

    def label_names(self) -> list[str]:
        """The label files present (with at least one line), CTM included."""
        names = [r[0] for r in self._query("SELECT DISTINCT name FROM labels")]
        return names + (["phones.ctm"] if self._query("SELECT 1 FROM ctm LIMIT 1").fetchone() else [])

    def _labelled(self, name: str) -> str:
        """The utterance ids that have a label ``name``, as a subquery."""
        if name == "phones.ctm":
            return "SELECT utt FROM ctm"
        return f"SELECT utt FROM labels WHERE name = '{name}'"  # names are the module's constants

    def unmatched(self, name: str) -> int:
        """Distinct utterances a label file names that are not in the input."""
        sql = (
            f"SELECT COUNT(DISTINCT utt) FROM ({self._labelled(name)}) WHERE utt NOT IN (SELECT id FROM utts)"
        )
        return self._query(sql).fetchone()[0]

    def unlabelled(self, name: str) -> tuple[int, list[str]]:
        """Input utterances (lines) without a label ``name``, and the first few of them."""
        where = f"FROM utts WHERE id NOT IN ({self._labelled(name)})"
        count = self._query(f"SELECT COUNT(*) {where}").fetchone()[0]
        return count, [r[0] for r in self._query(f"SELECT id {where} ORDER BY seq LIMIT 3")]

    def keep_speakers(self, speakers: set[str]) -> tuple[int, set[str]]:
        """Drop the utterances of other speakers (or none); how many were dropped, and the listed speakers
        that have no utterances."""
        self._query("CREATE TEMP TABLE keep (speaker TEXT PRIMARY KEY)")
        self.db.executemany("INSERT OR IGNORE INTO keep VALUES (?)", ((s,) for s in speakers))
        spk = "SELECT value FROM labels WHERE name = 'utt2spk' AND utt = utts.id"
        dropped = self.db.execute(f"DELETE FROM utts WHERE ({spk}) IS NULL OR ({spk}) NOT IN keep").rowcount
        kept = "SELECT DISTINCT value FROM labels WHERE name = 'utt2spk' AND utt IN (SELECT id FROM utts)"
        missing = {r[0] for r in self.db.execute(f"SELECT speaker FROM keep WHERE speaker NOT IN ({kept})")}
        return dropped, missing

    def keyed(self, duplicates: list[dict[str, str]]) -> Iterator[tuple[str, Utterance]]:
        """``(key, utterance)`` in utterance-id order (input order among equal ids); an utterance whose key an
        earlier one in that order holds goes to ``duplicates`` instead (as it is reached)."""
        label = "(SELECT value FROM labels WHERE name = '{}' AND utt = u.id)"
        rows = self._query(
            f"""SELECT u.id, u.key, u.path, u.url, {label.format("utt2spk")}, {label.format("text")},
                FIRST_VALUE(u.id) OVER (PARTITION BY u.key ORDER BY u.id, u.seq),
                ROW_NUMBER() OVER (PARTITION BY u.key ORDER BY u.id, u.seq)
            FROM utts u ORDER BY u.id, u.seq"""
        )
        ctm = self.db.cursor()
        for utt_id, key, path, url, speaker, text, owner, rank in rows:
            if rank > 1:
                who = "an earlier line with the same id" if owner == utt_id else f"utterance {owner!r}"
                duplicates.append(
                    {"id": utt_id, "path": path, "reason": f"duplicate key: {key!r} is taken by {who}"}
                )
                continue
            runs = [
                r[0] for r in ctm.execute("SELECT segments FROM ctm WHERE utt = ? ORDER BY rowid", (utt_id,))
            ]
            yield key, Utterance(utt_id, path, url, speaker, text, ";".join(runs) if runs else None)

    def close(self) -> None:
        self.db.close()
        self._dir.cleanup()
