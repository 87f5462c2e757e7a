"""The ``synth`` stage: synthesise the corpus in parallel and write it as two Kaldi data dirs plus a trial list.

Speakers ``s0000``... are numbered in one population; the last ``num_test_speakers`` are held out for ``test/``.
Every utterance draws from its own generator, seeded by (seed, speaker, utterance), so the corpus is the same
whatever the number of workers or the order they finish in. The output is a local folder.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from tqdm import tqdm

from ..config import SynthConfig
from .lexicon import LEXICON
from .plan import plan_utterance
from .speakers import Speaker, in_session, sample_session, sample_speaker, sample_style
from .synthesize import synthesize

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
# streams of the seed: speakers, utterances, trials, sessions
_SPEAKER, _UTTERANCE, _TRIALS, _SESSION = range(4)


@dataclass(frozen=True)
class _Job:
    speaker: Speaker
    speaker_index: int
    utt_index: int
    data_dir: str
    cfg: SynthConfig


@dataclass(frozen=True)
class _Utterance:
    utt_id: str
    speaker: str
    words: tuple[str, ...]
    phones: tuple[str, ...]
    bounds: np.ndarray
    sample_rate: int
    session: int | None

    @property
    def seconds(self) -> float:
        return float(self.bounds[-1]) / self.sample_rate


def _synthesize(job: _Job) -> tuple[str, _Utterance]:
    """Synthesise one utterance and write its FLAC; return its split and what goes in the data dir."""
    cfg = job.cfg
    rng = np.random.default_rng([cfg.seed, _UTTERANCE, job.speaker_index, job.utt_index])
    utt_id = f"{job.speaker.id}-{job.utt_index:04d}"
    style = sample_style(rng, cfg.channel_db, (cfg.snr_db_min, cfg.snr_db_max))
    session = _session(cfg, job.utt_index)
    if session is not None:
        conditions = sample_session(np.random.default_rng([cfg.seed, _SESSION, job.speaker_index, session]),
                                    cfg.channel_db, (cfg.snr_db_min, cfg.snr_db_max), cfg.rt60_max)  # fmt: skip
        style = in_session(rng, style, conditions)
    elif cfg.rt60_max > 0:  # every utterance its own recording, in its own room
        style = in_session(rng, style, sample_session(rng, cfg.channel_db, (cfg.snr_db_min, cfg.snr_db_max),
                                                      cfg.rt60_max))  # fmt: skip
    duration = rng.uniform(cfg.min_duration, cfg.max_duration)
    plan = plan_utterance(rng, job.speaker, style, duration, cfg.sample_rate)
    audio = synthesize(rng, plan, job.speaker, cfg.sample_rate)
    path = Path(job.data_dir, "audio", job.speaker.id, f"{utt_id}.flac")
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, cfg.sample_rate, subtype="PCM_16", format="FLAC")
    split = Path(job.data_dir).name
    utt = _Utterance(utt_id, job.speaker.id, plan.words, plan.phones, plan.bounds, cfg.sample_rate, session)
    return split, utt


def _session(cfg: SynthConfig, utt_index: int) -> int | None:
    """The session an utterance was recorded in (None: its own), dealt in turn."""
    return utt_index % cfg.sessions_per_speaker if cfg.sessions_per_speaker else None


def _run_jobs(jobs: list[_Job], workers: int) -> Iterable[tuple[str, _Utterance]]:
    bar = tqdm(total=len(jobs), desc="synth", unit="utt")
    if workers == 1:
        for job in jobs:
            yield _synthesize(job)
            bar.update()
    else:
        with multiprocessing.Pool(workers) as pool:
            for result in pool.imap_unordered(_synthesize, jobs, chunksize=4):
                yield result
                bar.update()
    bar.close()


def _seconds(samples: int, sample_rate: int) -> str:
    return f"{samples / sample_rate:.7f}".rstrip("0").rstrip(".")


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines))


def _write_data_dir(data_dir: Path, utts: list[_Utterance], speakers: dict[str, Speaker]) -> None:
    utts = sorted(utts, key=lambda u: u.utt_id)
    by_speaker = {
        spk: [u.utt_id for u in group] for spk, group in itertools.groupby(utts, key=lambda u: u.speaker)
    }
    _write_lines(data_dir / "wav.scp", (f"{u.utt_id} audio/{u.speaker}/{u.utt_id}.flac" for u in utts))
    _write_lines(data_dir / "utt2spk", (f"{u.utt_id} {u.speaker}" for u in utts))
    _write_lines(data_dir / "spk2utt", (f"{spk} {' '.join(ids)}" for spk, ids in by_speaker.items()))
    _write_lines(data_dir / "spk2gender", (f"{spk} {speakers[spk].gender}" for spk in by_speaker))
    _write_lines(data_dir / "text", (f"{u.utt_id} {' '.join(u.words)}" for u in utts))
    _write_lines(
        data_dir / "phones.ctm",
        (
            f"{u.utt_id} 1 {_seconds(a, u.sample_rate)} {_seconds(b - a, u.sample_rate)} {phone}"
            for u in utts
            for phone, a, b in zip(u.phones, u.bounds[:-1], u.bounds[1:], strict=True)
        ),
    )


def make_trials(
    utts: list[str], speakers: list[str], max_trials: int, seed: int, sessions: list[int | None] | None = None
) -> list[tuple[int, str, str]]:
    """(label, enroll, test): every target pair, then distinct non-target pairs drawn to fill up to max_trials.
    With ``sessions``, a target pair's utterances come from different recording sessions (None: its own)."""
    n = len(utts)
    same = [(i, j) for i, j in itertools.combinations(range(n), 2) if speakers[i] == speakers[j]]
    targets = [
        (i, j) for i, j in same if sessions is None or sessions[i] is None or sessions[i] != sessions[j]
    ]
    available = n * (n - 1) // 2 - len(same)
    wanted = min(max(max_trials - len(targets), 0), available)
    rng = np.random.default_rng([seed, _TRIALS])
    if 2 * wanted >= available:  # most of them: list them all (few, as wanted <= max_trials) and pick
        every = [(i, j) for i, j in itertools.combinations(range(n), 2) if speakers[i] != speakers[j]]
        chosen = {every[k] for k in rng.choice(available, size=wanted, replace=False)}
    else:  # a sample of many: draw random pairs until enough distinct ones
        chosen = set()
        while len(chosen) < wanted:
            i, j = np.sort(rng.integers(n, size=(2, 2 * (wanted - len(chosen)))), axis=0)
            draws = [(a, b) for a, b in zip(i.tolist(), j.tolist()) if speakers[a] != speakers[b]]
            chosen.update(draws[: wanted - len(chosen)])
    labelled = sorted([(i, j, 1) for i, j in targets] + [(i, j, 0) for i, j in chosen])
    return [(label, utts[i], utts[j]) for i, j, label in labelled]


def run(cfg: SynthConfig) -> dict[str, Any]:
    """Synthesise the corpus into ``cfg.output`` (``train/``, ``test/`` with ``trials``, ``lexicon.txt``).

    Returns a summary: speakers, utterances and hours per split, trials (and how many are targets), seconds.
    """
    cfg.validate()
    start = time.perf_counter()
    out = Path(cfg.output)
    num_train = cfg.num_speakers - cfg.num_test_speakers
    speakers = [
        sample_speaker(np.random.default_rng([cfg.seed, _SPEAKER, i]), i) for i in range(cfg.num_speakers)
    ]
    jobs = [
        _Job(spk, i, u, str(out / split), cfg)
        for i, spk in enumerate(speakers)
        for split, count in [
            ("train", cfg.utts_per_speaker) if i < num_train else ("test", cfg.test_utts_per_speaker)
        ]
        for u in range(count)
    ]
    results: dict[str, list[_Utterance]] = {split: [] for split in SPLITS}
    for split, utt in _run_jobs(jobs, cfg.workers):
        results[split].append(utt)
    for split in SPLITS:
        _write_data_dir(out / split, results[split], {s.id: s for s in speakers})
    test = sorted(results["test"], key=lambda u: u.utt_id)
    trials = make_trials([u.utt_id for u in test], [u.speaker for u in test], cfg.max_trials, cfg.seed,
                         [u.session for u in test])  # fmt: skip
    _write_lines(out / "test" / "trials", (f"{label} {a} {b}" for label, a, b in trials))
    words = sorted({w for utts in results.values() for u in utts for w in u.words})
    _write_lines(out / "lexicon.txt", (f"{w} {' '.join(LEXICON[w])}" for w in words))
    summary = {
        "output": str(out),
        "speakers": {"train": num_train, "test": cfg.num_test_speakers},
        "utterances": {split: len(results[split]) for split in SPLITS},
        "hours": {split: round(sum(u.seconds for u in results[split]) / 3600, 3) for split in SPLITS},
        "trials": len(trials),
        "target_trials": sum(label for label, _, _ in trials),
        "seconds": round(time.perf_counter() - start, 1),
    }
    log.info("synth: %s", summary)
    return summary
