"""Starting a local Ray cluster that survives a busy machine.

On a loaded host (a training beside it, two cores) Ray's own start-up fails now and then: the driver gives the
raylet a fixed 30 s to register ("The current node timed out during startup"), and the raylet waits for the
dashboard agent's port files. A user's job should not fail because the machine is busy, so the local start
(1) gives Ray's configurable start-up waits more room (``RAY_*`` variables a user has set are kept), (2) leaves
out the dashboard, (3) retries a failed start a bounded number of times after shutting down what it left, and
(4) if it still fails, raises one line naming the log folder to read. ``bench/ray_start.py`` measures it.
"""

from __future__ import annotations

import logging
import os
import time

import ray
from ray._common.utils import get_default_ray_temp_dir

log = logging.getLogger(__name__)

ATTEMPTS = 3
"""Local start-ups tried before giving up."""
BACKOFF_S = 2.0
"""Pause before the second attempt; doubled for each further one."""
# Start-up waits Ray reads from the environment (its defaults: 30 s each), inherited by the GCS and raylet.
PATIENT_ENV = {
    "RAY_raylet_start_wait_time_s": "120",
    "RAY_gcs_server_port_wait_time_s": "120",
    "RAY_agent_register_timeout_ms": "120000",
}


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


def start_local(num_cpus: int | None, attempts: int = ATTEMPTS) -> None:
    """``ray.init`` of a local cluster, retried; ``RuntimeError`` in one line if every attempt fails."""
    for name, value in PATIENT_ENV.items():
        os.environ.setdefault(name, value)
    error: BaseException | None = None
    for attempt in range(1, attempts + 1):
        try:
            ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING)
            if attempt > 1:
                log.info("Ray started on attempt %d of %d", attempt, attempts)
            return
        except Exception as e:  # Ray raises bare Exception, RuntimeError, ConnectionError, TimeoutError
            error = e
            log.warning("Ray start-up failed (attempt %d of %d): %s", attempt, attempts, _first_line(e))
            ray.shutdown()  # stops the processes the failed attempt left
            if attempt < attempts:
                time.sleep(BACKOFF_S * 2 ** (attempt - 1))
    assert error is not None
    logs = os.path.join(get_default_ray_temp_dir(), "session_latest", "logs")
    raise RuntimeError(
        f"a local Ray cluster did not start in {attempts} attempts ({_first_line(error)}); "
        f"read {logs}/raylet.out and gcs_server.out"
    )
