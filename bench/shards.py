"""Shard I/O: `sse-dist shard` write throughput and tar read throughput, local disk and S3 on loopback.

    python bench/shards.py [--input /path/to/kaldi_dir] [--rounds 5]

Input: a Kaldi data dir (default: ../shared/data/so762-dev if present, else a synthetic corpus). The S3 side is
a real S3-compatible server on 127.0.0.1 (moto's), reached through s3fs exactly as a cluster would reach its
object store; its numbers measure the client stack and HTTP, not a production store. Reads are timed for
sse-dist's shard reader and for WebDataset's general one (tarfile + group_by_keys), alternating.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Iterator

import webdataset as wds
from common import SHARED, save

from sse_dist import storage
from sse_dist.config import ShardConfig, SynthConfig
from sse_dist.shard import format as fmt
from sse_dist.shard import run as shard


def default_input() -> str:
    so762 = SHARED / "so762-dev"
    if so762.exists():
        return str(so762)
    out = tempfile.mkdtemp()
    from sse_dist.synth import run

    run(SynthConfig(output=out))
    return os.path.join(out, "train")


def write(input_dir: str, output: str) -> dict:
    t0 = time.perf_counter()
    summary = shard(ShardConfig(input=input_dir, output=output, max_utts_per_shard=200))
    seconds = time.perf_counter() - t0
    index = fmt.read_index(output)
    mb = sum(s["bytes"] for s in index["shards"]) / 1e6
    hours = summary["summary"]["hours"]
    return {"seconds": seconds, "mb": mb, "mb_per_s": mb / seconds, "audio_hours_per_s": hours / seconds}


def webdataset_samples(url: str) -> Iterator[dict]:
    """The general reader the shard reader replaces: tarfile members grouped by WebDataset."""
    with storage.open_read(url) as stream:
        files = ({**m, "__url__": url} for m in wds.tariterators.tar_file_iterator(stream))
        yield from wds.tariterators.group_by_keys(files)


def read(root: str, rounds: int) -> dict:
    """Every audio shard read through, by sse-dist's reader and by WebDataset's, alternating; medians."""
    index = fmt.read_index(root)
    urls = [fmt.shard_url(root, fmt.AUDIO, s["name"]) for s in index["shards"]]
    readers = {"sse_dist": fmt.iter_tar, "webdataset": webdataset_samples}
    times = {name: [] for name in readers}
    for _ in range(rounds):
        for name, reader in readers.items():
            t0 = time.perf_counter()
            n = sum(1 for url in urls for _ in reader(url))
            times[name].append(time.perf_counter() - t0)
    mb = sum(s["bytes"] for s in index["shards"]) / 1e6
    hours = sum(s["seconds"] for s in index["shards"]) / 3600
    seconds = {name: statistics.median(t) for name, t in times.items()}
    return {
        "utterances": n,
        "seconds": seconds["sse_dist"],
        "mb_per_s": mb / seconds["sse_dist"],
        "audio_hours_per_s": hours / seconds["sse_dist"],
        "webdataset_mb_per_s": mb / seconds["webdataset"],
        "speedup_vs_webdataset": seconds["webdataset"] / seconds["sse_dist"],
    }


def s3_root() -> tuple[str, object]:
    import fsspec
    import fsspec.config
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "FSSPEC_S3_ENDPOINT_URL": f"http://{host}:{port}",
        "FSSPEC_S3_KEY": "bench",
        "FSSPEC_S3_SECRET": "bench",
    }
    os.environ.update(env)
    fsspec.config.set_conf_env(fsspec.config.conf)
    fsspec.filesystem("s3").mkdir("bench-shards")
    return "s3://bench-shards/set", server


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--input", default=None)
    p.add_argument("--rounds", type=int, default=5, help="read passes per reader")
    args = p.parse_args()
    src = args.input or default_input()
    local = os.path.join(tempfile.mkdtemp(), "set")
    result = {"input": src, "local": {"write": write(src, local), "read": read(local, args.rounds)}}
    remote, server = s3_root()
    try:
        result["s3_loopback"] = {"write": write(src, remote), "read": read(remote, args.rounds)}
    finally:
        server.stop()
    storage.remove(local, recursive=True)
    save("shards", result)


if __name__ == "__main__":
    main()
