"""Read and check one audio file: decode it completely, keep FLAC/WAV bytes as they are, re-encode the rest.

A file that cannot be used raises :class:`BadAudio` with a reason for the quarantine list; nothing here lets a
broken file crash the run or slip into a shard unnoticed.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from .. import storage

# Container formats (soundfile's names) stored as they are, and the extension they get in the shard.
KEEP = {"FLAC": "flac", "WAV": "wav", "WAVEX": "wav"}
_BLOCK = 1 << 16  # frames decoded at a time: long files are checked without holding them as float arrays
# libsndfile logs a WAV whose data chunk is shorter than its header says as "data : <header> (should be <n>)".
_WAV_SHORT = re.compile(r"^data : (\d+) \(should be (\d+)\)", re.MULTILINE)


class BadAudio(Exception):
    """The file cannot go into a shard; ``str(e)`` is the quarantine reason."""


@dataclass(frozen=True)
class Audio:
    data: bytes
    ext: str
    duration: float
    sample_rate: int
    channels: int


def load(url: str, min_duration: float, max_duration: float) -> Audio:
    """The shard-ready audio of ``url``, or :class:`BadAudio` saying why there is none."""
    data = _read(url)
    if not data:
        raise BadAudio("empty file: 0 bytes")
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            return _check(f, data, min_duration, max_duration)
    except BadAudio:
        raise
    except Exception as e:  # whatever the decoder throws, the cause is the file's content
        # libsndfile's full message embeds the BytesIO's address, which would make reruns' indexes differ.
        detail = getattr(e, "error_string", None) or str(e)
        raise BadAudio(f"unreadable audio: {type(e).__name__}: {detail}") from None


def _read(url: str) -> bytes:
    # Never opened: a named pipe blocks the read for ever, a device never ends.
    problem = storage.regular_file_problem(url)
    if problem:
        raise BadAudio(f"{problem}: {url}")
    try:
        return storage.read_bytes(url)
    except FileNotFoundError:
        raise BadAudio(f"missing file: {url}") from None
    except IsADirectoryError:
        raise BadAudio(f"not a file: {url} is a directory") from None
    except OSError as e:
        raise BadAudio(f"unreadable file: {type(e).__name__}: {e}") from None


def _check(f: sf.SoundFile, data: bytes, min_duration: float, max_duration: float) -> Audio:
    # The header's length is enough to refuse a long file without decoding hours of audio.
    if f.frames / f.samplerate > max_duration:
        raise BadAudio(_too_long(f.frames / f.samplerate, max_duration))
    _check_wav_length(f)
    ext = KEEP.get(f.format)
    encoder = None if ext else _FlacEncoder(f.samplerate, f.channels)
    frames = _decode(f, encoder)
    duration = frames / f.samplerate
    if frames == 0:
        raise BadAudio("empty audio: no samples")
    if duration < min_duration:
        raise BadAudio(f"too short: {duration:.3f} s < min_duration {min_duration} s")
    if duration > max_duration:
        raise BadAudio(_too_long(duration, max_duration))
    stored = encoder.finish() if encoder else data
    return Audio(stored, ext or "flac", duration, f.samplerate, f.channels)


def _too_long(duration: float, max_duration: float) -> str:
    return f"too long: {duration:.1f} s > max_duration {max_duration} s"


def _check_wav_length(f: sf.SoundFile) -> None:
    """Refuse a WAV cut short (an interrupted copy): libsndfile reads what is there without complaint."""
    if KEEP.get(f.format) != "wav":
        return
    short = _WAV_SHORT.search(f.extra_info)
    if short and int(short[1]) > int(short[2]):
        raise BadAudio(f"truncated: header declares {short[1]} bytes of audio, the file holds {short[2]}")


def _decode(f: sf.SoundFile, encoder: _FlacEncoder | None) -> int:
    """Decode every frame (the only proof a file is sound), feeding the encoder if any; frames decoded."""
    frames = 0
    for block in f.blocks(blocksize=_BLOCK, dtype="float32", always_2d=True):
        if not np.isfinite(block).all():
            raise BadAudio(f"NaN or infinite samples: in the block at {frames / f.samplerate:.2f} s")
        if encoder:
            encoder.write(block)
        frames += len(block)
    return frames


class _FlacEncoder:
    """16-bit FLAC in memory, written block by block."""

    def __init__(self, sample_rate: int, channels: int):
        self.buffer = io.BytesIO()
        try:
            self.file = sf.SoundFile(self.buffer, "w", sample_rate, channels, "PCM_16", format="FLAC")
        except Exception as e:  # FLAC's limits (channels <= 8, sample rates) refuse some sources
            raise BadAudio(f"cannot re-encode to FLAC: {type(e).__name__}: {e}") from None

    def write(self, block: np.ndarray) -> None:
        self.file.write(block)  # libsndfile saturates the slight overshoot of lossy decoders at +-1

    def finish(self) -> bytes:
        self.file.close()
        return self.buffer.getvalue()
