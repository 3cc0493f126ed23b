"""Where the bench's jobs run: anything with the ``concurrent.futures.Executor`` interface.

``make_executor(spec, workers)``:

- ``process`` (default): a local ``ProcessPoolExecutor`` (one BLAS thread per worker; workers die
  with the bench process, even when it is killed with SIGKILL);
- ``thread``: a ``ThreadPoolExecutor``;
- ``inline``: runs each job in the calling process when submitted (debugging, profiling);
- ``ray``: Ray tasks on a local Ray or an existing cluster (``ray_address``; ``tts_sim.bench.ray_executor``,
  the ``ray`` extra);
- ``MODULE:FACTORY``: any callable returning an executor, called with ``max_workers=workers`` when it
  takes that keyword (``concurrent.futures:ThreadPoolExecutor``, a cluster engine's Executor adapter),
  else with ``processes=workers`` (``multiprocessing:Pool`` and its drop-in replacements such as
  ``ray.util.multiprocessing:Pool``), else with no argument. A returned pool without ``submit`` but
  with ``apply_async`` is wrapped in ``PoolExecutor``. Tested here with the standard library's
  thread/process executors and ``multiprocessing.dummy:Pool``.

Jobs and their settings are plain picklable values and the worker function is module-level, so any
engine that can ship a function call to a worker runs the bench without changes to the searchers.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

from tts_sim.bench.orphans import die_with_parent
from tts_sim.errors import ConfigError


def _worker_init(parent_pid: int) -> None:
    """Process-pool worker initialiser: die with the bench process (``die_with_parent``) and use
    one BLAS/OpenMP thread (the workers already fill the cores)."""
    die_with_parent(parent_pid)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass


class InlineExecutor(Executor):
    """Runs every submitted call at once, in the calling thread."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
            if isinstance(exc, KeyboardInterrupt):
                raise
            fut.set_exception(exc)
        return fut


class PoolExecutor(Executor):
    """``Executor`` over a ``multiprocessing.Pool``-like object (``apply_async`` with callbacks),
    e.g. ``ray.util.multiprocessing.Pool``."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        fut: Future = Future()
        fut.set_running_or_notify_cancel()
        self.pool.apply_async(fn, args, kwargs, callback=fut.set_result, error_callback=fut.set_exception)
        return fut

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if cancel_futures or not wait:
            self.pool.terminate()
        else:
            self.pool.close()
        self.pool.join()


def make_executor(spec: str, workers: int, ray_address: str | None = None) -> Executor:
    """The executor named by ``spec`` with ``workers`` workers (see the module docstring);
    ``ray_address`` is where ``ray`` runs (None: ``$RAY_ADDRESS``, else a local Ray)."""
    if spec == "process":
        return ProcessPoolExecutor(max_workers=workers, initializer=_worker_init, initargs=(os.getpid(),))
    if spec == "thread":
        return ThreadPoolExecutor(max_workers=workers)
    if spec == "inline":
        return InlineExecutor()
    if spec == "ray":
        from tts_sim.bench.ray_executor import RayExecutor

        return RayExecutor(workers, ray_address)
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ConfigError(f"executor {spec!r}: expected process, thread, inline, ray or MODULE:FACTORY")
    try:
        factory = getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise ConfigError(f"executor {spec!r}: cannot import {module!r} ({exc})") from None
    except AttributeError:
        raise ConfigError(f"executor {spec!r}: module {module!r} has no {name!r}") from None
    if not callable(factory):
        raise ConfigError(f"executor {spec!r}: {name!r} is not callable")
    params: Mapping[str, inspect.Parameter]
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    if "max_workers" in params:
        made = factory(max_workers=workers)
    elif "processes" in params:
        made = factory(processes=workers)
    else:
        made = factory()
    if hasattr(made, "submit") and hasattr(made, "shutdown"):
        return made
    if hasattr(made, "apply_async"):
        return PoolExecutor(made)
    raise ConfigError(f"executor {spec!r}: {name}() returned a {type(made).__name__}, which has neither "
                      f"submit/shutdown nor apply_async")
