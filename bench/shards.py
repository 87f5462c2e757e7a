"""Shard I/O: `sse-dist shard` write throughput and tar read throughput, local disk and S3 on loopback.

    python bench/shards.py [--input /path/to/kaldi_dir]

Input: a Kaldi data dir (default: ../shared/data/so762-dev if present, else a synthetic corpus). The S3 side is
a real S3-compatible server on 127.0.0.1 (moto's), reached through s3fs exactly as a cluster would reach its
object store; its numbers measure the client stack and HTTP, not a production store.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

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


def read(root: str) -> dict:
    index = fmt.read_index(root)
    t0 = time.perf_counter()
    n = sum(1 for s in index["shards"] for _ in fmt.iter_tar(fmt.shard_url(root, fmt.AUDIO, s["name"])))
    seconds = time.perf_counter() - t0
    mb = sum(s["bytes"] for s in index["shards"]) / 1e6
    hours = sum(s["seconds"] for s in index["shards"]) / 3600
    return {
        "utterances": n,
        "seconds": seconds,
        "mb_per_s": mb / seconds,
        "audio_hours_per_s": hours / seconds,
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
    args = p.parse_args()
    src = args.input or default_input()
    local = os.path.join(tempfile.mkdtemp(), "set")
    result = {"input": src, "local": {"write": write(src, local), "read": read(local)}}
    remote, server = s3_root()
    try:
        result["s3_loopback"] = {"write": write(src, remote), "read": read(remote)}
    finally:
        server.stop()
    storage.remove(local, recursive=True)
    save("shards", result)


if __name__ == "__main__":
    main()
