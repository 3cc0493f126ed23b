"""``--executor ray``: the bench's jobs as Ray tasks, on a local Ray or an existing Ray cluster.

Where it runs: ``address`` (``--ray-address``: ``HOST:6379``, ``auto``, any ``ray.init`` address), else
``$RAY_ADDRESS``, else a local Ray started for the bench with ``workers`` CPUs (and shut down with
it). A Ray the caller already initialised is used as it is and left running. Ray's usage statistics
are off unless ``RAY_USAGE_STATS_ENABLED`` says otherwise.

Each job is one task of one CPU that is not retried (a failed job is reported by the bench, and
resumes run it again). A task's exception reaches the bench as the job's own exception (Ray's
``RayTaskError`` wrapper is taken off), so a bad job fails in one line as it does in a process pool.
Every node must be able to import ``tts_sim`` at the driver's version (``pip install 'tts-sim[ray]'``)
and read the profile files the bench names (``--profile``, world profiles, ``$TTS_SIM_CACHE``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any


def _call(fn: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> Any:
    """What a Ray worker runs for one submitted call."""
    return fn(*args, **kwargs)


class RayExecutor(Executor):
    """``concurrent.futures.Executor`` over Ray tasks (one CPU each, no retries)."""

    def __init__(self, workers: int, address: str | None = None) -> None:
        import ray  # ModuleNotFoundError names the ray extra (tts_sim.extras)

        self._ray = ray
        self._own = not ray.is_initialized()
        if self._own:
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            address = address or os.environ.get("RAY_ADDRESS") or None
            # log_to_driver/configure_logging off: the bench's stdout and logging stay its own
            if address:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
            else:
                ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
        self._remote = ray.remote(num_cpus=1, max_retries=0)(_call)
        self._refs: dict[Future, Any] = {}
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        ref = self._remote.remote(fn, args, kwargs)
        fut: Future = Future()
        fut.set_running_or_notify_cancel()
        with self._lock:
            self._refs[fut] = ref
        ref.future().add_done_callback(lambda done: self._settle(fut, done))
        return fut

    def _settle(self, fut: Future, done: Future) -> None:
        """Hand a finished task's result, or its original exception, to ``fut``."""
        with self._lock:
            self._refs.pop(fut, None)
        try:
            exc = done.exception()
        except BaseException as cancelled:  # noqa: BLE001 - a cancelled task: its error goes to the caller
            exc = cancelled
        if exc is None:
            fut.set_result(done.result())
        else:
            cause = getattr(exc, "cause", None)  # RayTaskError wraps the task's own exception
            fut.set_exception(cause if isinstance(cause, BaseException) else exc)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            pending = list(self._refs.values())
        if cancel_futures or not wait:
            for ref in pending:
                self._ray.cancel(ref, force=True)
        elif pending:
            self._ray.wait(pending, num_returns=len(pending))
        if self._own:
            self._ray.shutdown()
