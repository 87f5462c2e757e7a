"""Phones from PocketSphinx 5 (CMU's en-us acoustic model, CMUdict, a phone bigram; all in the PyPI wheel).

An utterance with a transcript (the shard JSON's ``"text"``) is force-aligned to it, two passes as PocketSphinx
wants (words, then phones and states); one without is decoded with a phone loop. An utterance whose transcript
has a word neither CMUdict nor the corpus lexicon (``preprocess.phones.lexicon``) knows, or whose alignment
fails, falls back to the phone loop: it is counted, with the reason, never dropped. Phones are put on the
feature frame grid by time, so the two front ends' frame conventions need not agree.
"""

from __future__ import annotations

import re
from importlib.metadata import version
from typing import Any

import numpy as np

from ... import storage
from ...config import FeatureConfig, PhoneConfig
from ...phoneset import SILENCE, normalise
from ...shard.fields import ALIGNED, DECODED, FALLEN_BACK
from ..utterance import AudioError, waveform
from .alignment import on_frame_grid
from .base import Labels, PhoneError, PhoneSource, Utterance

RATE = 16000  # the en-us acoustic model's
# Settings CMU recommends for phone recognition with the phone bigram.
_PHONE_LOOP = {"lw": 2.0, "pip": 0.3, "beam": 1e-200, "pbeam": 1e-20}
_NOT_A_WORD = re.compile(r"[^a-z0-9'\-]")


def read_lexicon(url: str) -> dict[str, list[str]]:
    """``WORD PH1 PH2 ...`` lines (Kaldi ``lexicon.txt``) -> lower-case word: pronunciations in inventory phones."""
    lexicon: dict[str, list[str]] = {}
    for n, line in enumerate(storage.read_bytes(url).decode("utf-8").splitlines(), 1):
        word, *phones = line.split()
        if not phones:
            raise ValueError(f"{url}:{n}: a word with no pronunciation")
        pron = " ".join(p for p in map(normalise, phones) if p != SILENCE)
        if pron:
            lexicon.setdefault(word.lower(), []).append(pron)
    return lexicon


def words_of(text: str) -> list[str]:
    return [w for w in (_NOT_A_WORD.sub("", t) for t in text.lower().split()) if w]


class PocketsphinxSource(PhoneSource):
    reads = ("audio", "fbank")

    def __init__(self, phones: PhoneConfig, features: FeatureConfig):
        super().__init__(phones, features)
        from pocketsphinx import Decoder, get_model_path

        # bestpath=False: the second (phone-level) alignment pass fails with it on.
        self._aligner = Decoder(lm=None, bestpath=False, loglevel="FATAL")
        loop_lm = get_model_path("en-us/en-us-phone.lm.bin")
        self._loop = Decoder(allphone=loop_lm, loglevel="FATAL", **_PHONE_LOOP)
        self._lexicon = read_lexicon(phones.lexicon) if phones.lexicon else {}
        self._shift = 1.0 / self._aligner.config["frate"]
        self._offset = self._aligner.config["wlen"] / 2 - self._shift / 2

    @classmethod
    def identity(cls, phones: PhoneConfig) -> dict[str, Any]:
        lexicon = storage.sha256(phones.lexicon) if phones.lexicon else ""
        return {"pocketsphinx": version("pocketsphinx"), "lexicon_sha256": lexicon}

    def label(self, utt: Utterance) -> Labels:
        try:
            pcm = (np.clip(waveform(utt.sample, RATE), -1, 1) * 32767).astype("<i2").tobytes()
        except AudioError as e:
            raise PhoneError(str(e)) from None
        text = utt.meta.get("text")
        if not text or not words_of(text):
            return Labels(self._segments_to_frames(self._decode(pcm), utt), DECODED)
        words = words_of(text)
        unknown = [w for w in words if not self._known(w)]
        if unknown:
            note = f"not in the dictionary: {' '.join(unknown[:3])}"
        else:
            try:
                return Labels(self._segments_to_frames(self._align(pcm, words), utt), ALIGNED)
            except RuntimeError as e:
                note = f"alignment failed: {e}"
        return Labels(self._segments_to_frames(self._decode(pcm), utt), FALLEN_BACK, note)

    def _known(self, word: str) -> bool:
        """In CMUdict, or added now from the corpus lexicon (alternatives as ``word(2)`` ...)."""
        if self._aligner.lookup_word(word) is not None:
            return True
        prons = self._lexicon.get(word)
        if not prons:
            return False
        for i, pron in enumerate(prons):
            self._aligner.add_word(word if i == 0 else f"{word}({i + 1})", pron, update=i == len(prons) - 1)
        return True

    def _run(self, decoder: Any, pcm: bytes) -> None:
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()

    def _align(self, pcm: bytes, words: list[str]) -> list[tuple[int, int, str]]:
        self._aligner.set_align_text(" ".join(words))
        self._run(self._aligner, pcm)
        if self._aligner.hyp() is None:
            raise RuntimeError("no path reached the end of the transcript")
        self._aligner.set_alignment()
        self._run(self._aligner, pcm)
        return [(p.start, p.start + p.duration, p.name) for p in self._aligner.get_alignment().phones()]

    def _decode(self, pcm: bytes) -> list[tuple[int, int, str]]:
        try:
            self._run(self._loop, pcm)
        except RuntimeError as e:
            raise PhoneError(f"phone-loop decoding failed: {e}") from None
        segments = [(s.start_frame, s.end_frame + 1, s.word) for s in self._loop.seg()]
        if not segments:
            raise PhoneError("phone-loop decoding gave no phones")
        return segments

    def _segments_to_frames(self, segments: list[tuple[int, int, str]], utt: Utterance) -> np.ndarray:
        """PocketSphinx frames [a, b) -> the span from half a hop before frame a's centre to half a hop after
        frame b-1's, then onto our grid."""
        starts = [a * self._shift + self._offset for a, _, _ in segments]
        ends = [b * self._shift + self._offset for _, b, _ in segments]
        return on_frame_grid(starts, ends, [s for _, _, s in segments], len(utt.log_mel), self.features)
