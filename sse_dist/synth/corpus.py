"""The ``synth`` stage: synthesise the corpus in parallel and write it as two Kaldi data dirs plus a trial list.

Speakers ``s0000``... are numbered in one population; the last ``num_test_speakers`` are held out for ``test/``.
Every utterance draws from its own generator, seeded by (seed, speaker, utterance), so the corpus is the same
whatever the number of workers or the order they finish in. The output is a local folder.
"""

from __future__ import annotations

import itertools
import logging
import math
import multiprocessing
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from tqdm import tqdm

from ..config import SynthConfig
from .lexicon import LEXICON
from .plan import plan_utterance
from .speakers import Speaker, sample_speaker, sample_style
from .synthesize import synthesize

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
# streams of the seed: speakers, utterances, trials
_SPEAKER, _UTTERANCE, _TRIALS = range(3)


@dataclass(frozen=True)
class _Job:
    speaker: Speaker
    speaker_index: int
    utt_index: int
    data_dir: str
    cfg: SynthConfig


@dataclass(frozen=True)
class _SpeakerJob:
    speaker: Speaker
    speaker_index: int
    count: int
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

    @property
    def seconds(self) -> float:
        return float(self.bounds[-1]) / self.sample_rate


def _synthesize(job: _Job) -> tuple[str, _Utterance]:
    """Synthesise one utterance and write its FLAC; return its split and what goes in the data dir."""
    cfg = job.cfg
    rng = np.random.default_rng([cfg.seed, _UTTERANCE, job.speaker_index, job.utt_index])
    utt_id = f"{job.speaker.id}-{job.utt_index:04d}"
    style = sample_style(rng, cfg.channel_db, (cfg.snr_db_min, cfg.snr_db_max))
    duration = rng.uniform(cfg.min_duration, cfg.max_duration)
    plan = plan_utterance(rng, job.speaker, style, duration, cfg.sample_rate)
    audio = synthesize(rng, plan, job.speaker, cfg.sample_rate)
    path = Path(job.data_dir, "audio", job.speaker.id, f"{utt_id}.flac")
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, cfg.sample_rate, subtype="PCM_16", format="FLAC")
    split = Path(job.data_dir).name
    return split, _Utterance(utt_id, job.speaker.id, plan.words, plan.phones, plan.bounds, cfg.sample_rate)


def _synthesize_speaker(job: _SpeakerJob) -> tuple[str, Speaker, list[_Utterance]]:
    """All of one speaker's utterances, in order: a speaker is the unit of work, so the parent holds only the
    few speakers in flight, whatever the corpus size."""
    results = [
        _synthesize(_Job(job.speaker, job.speaker_index, u, job.data_dir, job.cfg)) for u in range(job.count)
    ]
    return Path(job.data_dir).name, job.speaker, [utt for _, utt in results]


def _run_jobs(
    jobs: Iterator[_SpeakerJob], total: int, workers: int
) -> Iterator[tuple[str, Speaker, list[_Utterance]]]:
    """Each speaker's utterances in speaker order (``imap`` keeps it, so the data dirs come out sorted)."""
    bar = tqdm(total=total, desc="synth", unit="utt")
    if workers == 1:
        for job in jobs:
            yield _synthesize_speaker(job)
            bar.update(job.count)
    else:
        with multiprocessing.Pool(workers) as pool:
            for result in pool.imap(_synthesize_speaker, jobs):
                yield result
                bar.update(len(result[2]))
    bar.close()


def _seconds(samples: int, sample_rate: int) -> str:
    return f"{samples / sample_rate:.7f}".rstrip("0").rstrip(".")


class _DataDir:
    """A Kaldi data dir written as speakers arrive (in speaker order, so every table is sorted): nothing of a
    finished speaker stays in memory."""

    TABLES = ("wav.scp", "utt2spk", "spk2utt", "spk2gender", "text", "phones.ctm")

    def __init__(self, data_dir: Path):
        data_dir.mkdir(parents=True, exist_ok=True)
        self.files = {name: (data_dir / name).open("w") for name in self.TABLES}

    def add(self, speaker: Speaker, utts: list[_Utterance]) -> None:
        f = self.files
        for u in utts:
            f["wav.scp"].write(f"{u.utt_id} audio/{u.speaker}/{u.utt_id}.flac\n")
            f["utt2spk"].write(f"{u.utt_id} {u.speaker}\n")
            f["text"].write(f"{u.utt_id} {' '.join(u.words)}\n")
            f["phones.ctm"].writelines(
                f"{u.utt_id} 1 {_seconds(a, u.sample_rate)} {_seconds(b - a, u.sample_rate)} {phone}\n"
                for phone, a, b in zip(u.phones, u.bounds[:-1], u.bounds[1:], strict=True)
            )
        f["spk2utt"].write(f"{speaker.id} {' '.join(u.utt_id for u in utts)}\n")
        f["spk2gender"].write(f"{speaker.id} {speaker.gender}\n")

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines))


def make_trials(
    utts: list[str], speakers: list[str], max_trials: int, seed: int
) -> list[tuple[int, str, str]]:
    """(label, enroll, test): every target pair, then distinct non-target pairs drawn to fill up to max_trials."""
    n = len(utts)
    pairs = itertools.combinations(range(n), 2)
    targets = [(i, j) for i, j in pairs if speakers[i] == speakers[j]]
    available = n * (n - 1) // 2 - len(targets)
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


def num_train_speakers(cfg: SynthConfig) -> int:
    """Training speakers: ``num_speakers - num_test_speakers``, or as many as fill ``hours`` when it is set."""
    if cfg.hours <= 0:
        return cfg.num_speakers - cfg.num_test_speakers
    mean_seconds = (cfg.min_duration + cfg.max_duration) / 2
    return max(1, math.ceil(cfg.hours * 3600 / (mean_seconds * cfg.utts_per_speaker)))


def run(cfg: SynthConfig) -> dict[str, Any]:
    """Synthesise the corpus into ``cfg.output`` (``train/``, ``test/`` with ``trials``, ``lexicon.txt``).

    Returns a summary: speakers, utterances and hours per split, trials (and how many are targets), seconds.
    Memory stays bounded by the speakers in flight, so the corpus can be any size (``synth.hours``).
    """
    cfg.validate()
    start = time.perf_counter()
    out = Path(cfg.output)
    num_train = num_train_speakers(cfg)
    num_speakers = num_train + cfg.num_test_speakers
    speakers = (
        sample_speaker(np.random.default_rng([cfg.seed, _SPEAKER, i]), i) for i in range(num_speakers)
    )
    jobs = (
        _SpeakerJob(spk, i, *(
            (cfg.utts_per_speaker, str(out / "train")) if i < num_train
            else (cfg.test_utts_per_speaker, str(out / "test"))
        ), cfg)
        for i, spk in enumerate(speakers)
    )  # fmt: skip
    total = num_train * cfg.utts_per_speaker + cfg.num_test_speakers * cfg.test_utts_per_speaker
    dirs = {split: _DataDir(out / split) for split in SPLITS}
    counts = {split: 0 for split in SPLITS}
    seconds = {split: 0.0 for split in SPLITS}
    words: set[str] = set()
    test: list[_Utterance] = []  # the held-out speakers: a few hundred utterances for the trial list
    try:
        for split, speaker, utts in _run_jobs(jobs, total, cfg.workers):
            dirs[split].add(speaker, utts)
            counts[split] += len(utts)
            seconds[split] += sum(u.seconds for u in utts)
            words.update(w for u in utts for w in u.words)
            if split == "test":
                test += utts
    finally:
        for d in dirs.values():
            d.close()
    trials = make_trials([u.utt_id for u in test], [u.speaker for u in test], cfg.max_trials, cfg.seed)
    _write_lines(out / "test" / "trials", (f"{label} {a} {b}" for label, a, b in trials))
    _write_lines(out / "lexicon.txt", (f"{w} {' '.join(LEXICON[w])}" for w in sorted(words)))
    summary = {
        "output": str(out),
        "speakers": {"train": num_train, "test": cfg.num_test_speakers},
        "utterances": counts,
        "hours": {split: round(seconds[split] / 3600, 3) for split in SPLITS},
        "trials": len(trials),
        "target_trials": sum(label for label, _, _ in trials),
        "seconds": round(time.perf_counter() - start, 1),
    }
    log.info("synth: %s", summary)
    return summary
