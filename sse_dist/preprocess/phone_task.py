"""A phone field of one shard, labelled by a long-lived worker (a Ray actor) that holds the phone source.

The source (a recognizer, a classifier's weights, k-means units) is loaded once per actor, not once per shard.
The actor reads the fields the source needs (the fbank field always: phone fields never recompute features),
labels the utterances in batches, writes ``<field>/<name>.tar`` and then its done-manifest. Utterances the fbank
field quarantined stay quarantined; an utterance the source cannot label is counted as ``failed`` with its reason;
a fallback (e.g. alignment -> phone loop) is counted with its reason; nothing is dropped silently.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from .. import storage
from ..config import FeatureConfig, PhoneConfig
from ..phoneset import INDEX, SILENCE
from ..shard import format as fmt
from ..shard.fields import ALIGNED, FALLEN_BACK, FBANK
from .phones import PhoneError, make_source
from .phones.base import Labels, Utterance
from .shard_task import fbank_fingerprint, fingerprint, joined_samples, shard_keys
from .utterance import phone_member

FAILED = "failed"


def phone_fingerprint(phones: PhoneConfig, features: FeatureConfig, identity: dict[str, Any]) -> str:
    """The phone settings, the source's models and the features it reads (new features relabel the corpus).
    The model-unit settings enter only when a model is named: without one they change nothing, and fields
    labelled before the settings existed stay done."""
    settings = asdict(phones)
    if not phones.unit_model:
        del settings["unit_model"], settings["unit_layer"]
    return fingerprint({"phones": settings, "source": identity, "fbank": fbank_fingerprint(features)})


def to_utterance(key: str, sample: dict[str, Any], where: str) -> Utterance:
    missing = [m for m in ("json", "fbank.npy", "vad.npy") if m not in sample]
    if missing:
        raise fmt.ShardError(f"{where}: no {', '.join(missing)} member")
    return Utterance(
        key=key,
        meta=fmt.load_json(sample["json"], where),
        log_mel=fmt.load_npy(sample["fbank.npy"], where).astype(np.float32),
        vad=fmt.load_npy(sample["vad.npy"], where).astype(bool),
        sample=sample,
    )


def batches(utts: Iterable[Utterance], max_frames: int) -> Iterator[list[Utterance]]:
    """Consecutive utterances, up to ``max_frames`` frames a batch (an utterance longer than that goes alone)."""
    batch: list[Utterance] = []
    frames = 0
    for utt in utts:
        if batch and frames + len(utt.log_mel) > max_frames:
            yield batch
            batch, frames = [], 0
        batch.append(utt)
        frames += len(utt.log_mel)
    if batch:
        yield batch


def hard(values: np.ndarray) -> np.ndarray:
    return values if values.ndim == 1 else values.argmax(axis=1)


class Agreement:
    """Frame agreement of this field with a reference field, over the utterances the reference force-aligned:
    on all frames, on speech frames (VAD: those training sees) and on the frames the reference calls a phone."""

    def __init__(self, root: str, field: str, name: str):
        self.field = field
        self.reference = {s["__key__"]: s for s in fmt.iter_tar(fmt.shard_url(root, field, name))}
        self.counts = collections.Counter()

    def add(self, utt: Utterance, labels: np.ndarray) -> None:
        ref = self.reference.get(utt.key)
        if ref is None or fmt.load_json(ref[f"{self.field}.json"], utt.key).get("how") != ALIGNED:
            return
        truth = hard(fmt.load_npy(ref[f"{self.field}.npy"], utt.key))
        same = truth == hard(labels)
        phone = truth != INDEX[SILENCE]
        self.counts.update(utterances=1, frames=len(same), agree=int(same.sum()))
        self.counts.update(speech_frames=int(utt.vad.sum()), speech_agree=int(same[utt.vad].sum()))
        self.counts.update(phone_frames=int(phone.sum()), phone_agree=int(same[phone].sum()))

    def result(self) -> dict[str, Any]:
        return {"reference": self.field, **dict(self.counts)}


@dataclass
class Tally:
    """What became of each utterance of one shard."""

    agreement: Agreement | None
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    labelled: set[str] = field(default_factory=set)
    failed: list[dict[str, str]] = field(default_factory=list)
    fallen_back: list[dict[str, str]] = field(default_factory=list)

    def add(self, utt: Utterance, result: Labels) -> None:
        self.labelled.add(utt.key)
        self.outcomes[result.how] += 1
        if result.how == FALLEN_BACK:
            self.fallen_back.append({"key": utt.key, "reason": result.note})
        if self.agreement is not None:
            self.agreement.add(utt, result.values)

    def account(self, keys: list[str], lost: list[dict[str, str]], quarantined: set[str]) -> None:
        """Keys neither labelled nor quarantined by the fbank field are failures, with a reason."""
        self.failed += [q for q in lost if q["key"] not in quarantined]
        accounted = self.labelled | quarantined | {q["key"] for q in self.failed}
        self.failed += [{"key": k, "reason": "not in the fbank shard"} for k in keys if k not in accounted]


class PhoneLabeller:
    """Ray actor: labels whole shards with one phone source."""

    def __init__(self, phones: PhoneConfig, features: FeatureConfig, fingerprint: str):
        if not torch.cuda.is_available():
            torch.set_num_threads(1)  # one actor per core
        self.phones, self.fingerprint = phones, fingerprint
        self.source = make_source(phones, features)
        self.num_classes = self.source.num_classes(phones)

    def _utterances(self, root: str, name: str, keys: list[str], lost: list, unexpected: list) -> Iterator:
        for key, sample in joined_samples(root, name, list(self.source.reads), keys, lost, unexpected):
            try:
                yield to_utterance(key, sample, f"{root} shard {name} key {key}")
            except fmt.ShardError as e:
                lost.append({"key": key, "reason": str(e)})

    def _write(self, writer: Any, utt: Utterance, result: Labels | PhoneError, tally: Tally) -> None:
        if isinstance(result, Labels) and len(result.values) != len(utt.log_mel):
            result = PhoneError(
                f"source gave {len(result.values)} frames for {len(utt.log_mel)} feature frames"
            )
        if isinstance(result, PhoneError):
            tally.failed.append({"key": utt.key, "reason": str(result)})
            return
        writer.write(phone_member(utt.key, result, self.phones, self.num_classes))
        tally.add(utt, result)

    def label_shard(self, root: str, name: str, keys: list[str] | None = None) -> dict[str, Any]:
        t0 = time.perf_counter()
        keys = shard_keys(root, name, keys)
        fbank = storage.read_json(fmt.done_url(root, FBANK, name))
        lost: list[dict[str, str]] = []
        unexpected: list[dict[str, str]] = []
        tally = Tally(Agreement(root, self.phones.reference, name) if self.phones.reference else None)
        with storage.atomic_write(fmt.shard_url(root, self.phones.field, name), sole_writer=True) as f:
            writer = fmt.tar_writer(f)
            utts = self._utterances(root, name, keys, lost, unexpected)
            for batch in batches(utts, self.phones.batch_frames):
                for utt, result in zip(batch, self.source.label_batch(batch), strict=True):
                    self._write(writer, utt, result, tally)
            writer.close()
        tally.account(keys, lost, {q["key"] for q in fbank["quarantined"]})
        done = {
            "shard": name,
            "input": len(keys),
            "fingerprint": self.fingerprint,
            "processed": sum(tally.outcomes.values()),
            "quarantined": fbank["quarantined"],
            "unexpected": unexpected,
            FAILED: tally.failed,
            FALLEN_BACK: tally.fallen_back,
            "outcomes": {**tally.outcomes, FAILED: len(tally.failed)},
            "frames": fbank["frames"],
            "seconds": time.perf_counter() - t0,
        }
        if tally.agreement is not None:
            done["agreement"] = tally.agreement.result()
        storage.write_json(fmt.done_url(root, self.phones.field, name), done)
        return done
