"""Migrate a shard set's index to the current version, in place:

    python -m sse_dist.shard.migrate ROOT [ROOT ...]

Version 1 listed every utterance (keys, durations, speakers, sample rates) in ``index.json``; version 2 keeps
those lists in a manifest beside each audio shard (``audio/NNNNNN.json``) and only counts in the index. The
manifests are written first and the index last (atomically), so an interrupted migration leaves a readable
version-1 set that the next run migrates again; the shards themselves are not touched.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from .. import storage
from . import format as fmt

log = logging.getLogger(__name__)

_V1_ENTRY = ("name", "utterances", "bytes", "sha256", "seconds")


def migrate(root: str) -> dict[str, Any]:
    """Bring ``root``'s index to :data:`format.VERSION`; returns what was done."""
    index = fmt.read_raw_index(root)
    version = index.get("version")
    if version == fmt.VERSION:
        return {"root": root, "from": version, "to": version, "shards": 0}
    if version != 1:
        raise fmt.ShardError(f"{root}: index version {version!r}: no migration to {fmt.VERSION}")
    for shard in index["shards"]:
        manifest = {"shard": shard["name"], **{k: shard[k] for k in fmt.MANIFEST_LISTS}}
        storage.write_json(fmt.manifest_url(root, shard["name"]), manifest)
        fmt.read_manifest(root, shard["name"])  # the keys are checked as any reader checks them
    index["shards"] = [{k: shard[k] for k in _V1_ENTRY} for shard in index["shards"]]
    index["version"] = fmt.VERSION
    storage.write_json(storage.join(root, fmt.INDEX), index)
    fmt.read_index(root)
    log.info(
        "%s: index migrated from version 1 to %d (%d shard manifests)",
        root,
        fmt.VERSION,
        len(index["shards"]),
    )
    return {"root": root, "from": version, "to": fmt.VERSION, "shards": len(index["shards"])}


def main(argv: list[str] | None = None) -> int:
    roots = sys.argv[1:] if argv is None else argv
    if not roots:
        print(__doc__, file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for root in roots:
        try:
            print(migrate(root))
        except fmt.ShardError as e:
            print(f"migrate: error: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
