"""Fault injection on a real local Ray cluster: a worker process SIGKILLed in the middle of a shard."""

import collections
import os

import pytest
import ray

from sse_dist import storage
from sse_dist.config import PreprocessConfig, ShardConfig
from sse_dist.preprocess import run as preprocess
from sse_dist.shard import format as fmt
from sse_dist.shard import run as shard

pytestmark = pytest.mark.integration


def _kill_once_hook(markers: str, fbank_victim: str, phone_victim: str):
    """A Ray worker set-up hook (it runs in every worker process, actors included): the first worker to reach
    a victim key SIGKILLs itself there, as the OOM killer or a lost node would, mid-shard."""

    def hook():
        import signal

        from sse_dist.preprocess import phone_task, shard_task

        def die_once(name):
            try:
                os.close(os.open(os.path.join(markers, name), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return  # killed once already: the retry runs normally
            os.kill(os.getpid(), signal.SIGKILL)

        featurize, to_utterance = shard_task.featurize, phone_task.to_utterance

        def featurize_or_die(sample, features):
            if sample["__key__"] == fbank_victim:
                die_once("fbank")
            return featurize(sample, features)

        def to_utterance_or_die(key, sample, where):
            if key == phone_victim:
                die_once("phones")
            return to_utterance(key, sample, where)

        shard_task.featurize = featurize_or_die
        phone_task.to_utterance = to_utterance_or_die

    return hook


def test_killed_worker_and_actor_lose_nothing(corpus, tmp_path):
    root = str(tmp_path / "set")
    shard(ShardConfig(input=str(corpus / "train"), output=root, max_utts_per_shard=6))
    index = {"shards": list(fmt.iter_shards(root))}
    keys = [k for s in index["shards"] for k in s["keys"]]
    # Victims in the middle of their shards, so the killed task had already written part of its output.
    fbank_victim, phone_victim = index["shards"][1]["keys"][3], index["shards"][2]["keys"][2]
    markers = tmp_path / "markers"
    markers.mkdir()
    hook = _kill_once_hook(str(markers), fbank_victim, phone_victim)
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"worker_process_setup_hook": hook})
    try:
        result = preprocess(PreprocessConfig(shards=[root], num_cpus=2))
    finally:
        ray.shutdown()
    assert sorted(os.listdir(markers)) == ["fbank", "phones"]  # both faults really happened

    totals = result["totals"]
    assert totals["input"] == len(keys) == totals["processed"] + totals["quarantined"]
    assert totals["quarantined"] == 0 and totals["phones"]["failed"] == 0
    for field in ("fbank", "phones"):
        got = collections.Counter(
            s["__key__"]
            for sh in index["shards"]
            for s in fmt.iter_tar(fmt.shard_url(root, field, sh["name"]))
        )
        assert got == collections.Counter(keys)  # every key exactly once
        names = storage.listdir(storage.join(root, field))
        assert not [n for n in names if n.startswith(".tmp-")], names  # the killed writers' partial files
