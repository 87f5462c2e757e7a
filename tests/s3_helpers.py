"""Pointing s3fs at an S3 endpoint through the environment, as a pod's environment would (shared by the
``s3_bucket`` fixture and tests that put something between s3fs and the server)."""

from __future__ import annotations

import fsspec.config


def s3_env(endpoint: str) -> dict[str, str]:
    return {"FSSPEC_S3_ENDPOINT_URL": endpoint, "FSSPEC_S3_KEY": "testing", "FSSPEC_S3_SECRET": "testing"}


def use_s3_endpoint(monkeypatch, endpoint: str) -> None:
    """Point s3fs at ``endpoint`` through the environment, as a pod's environment would."""
    import s3fs

    for name, value in s3_env(endpoint).items():
        monkeypatch.setenv(name, value)
    # fsspec reads FSSPEC_* once, at import: rebuild its config from the environment we just set.
    conf: dict = {}
    fsspec.config.set_conf_env(conf)
    monkeypatch.setattr(fsspec.config, "conf", conf)
    s3fs.S3FileSystem.clear_instance_cache()
