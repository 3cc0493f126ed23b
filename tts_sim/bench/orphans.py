"""Worker processes that die with their parent, so a killed bench leaves no orphans.

``die_with_parent`` (called in each worker) asks Linux to SIGKILL the worker when its parent
exits (``prctl(PR_SET_PDEATHSIG)``, through ctypes) and starts a daemon thread that exits the
worker once it has been re-parented (other systems, and start methods whose direct parent is not
the bench process, e.g. a forkserver that outlives it by a moment). A worker's unfinished job is
lost either way; the bench's resume runs it again.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading

PR_SET_PDEATHSIG = 1
POLL_S = 0.5


def die_with_parent(parent_pid: int | None = None) -> bool:
    """Make this process exit when its parent does; True if the kernel-level hook was set.
    ``parent_pid``: the process that should be alive (exits at once if it is gone already)."""
    hooked = _pdeathsig(signal.SIGKILL)
    parent = os.getppid()
    if parent_pid is not None and parent != parent_pid and not _alive(parent_pid):
        os._exit(1)  # the parent died before the hook was set
    threading.Thread(target=_watch, args=(parent,), name="die-with-parent", daemon=True).start()
    return hooked


def _pdeathsig(sig: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    stop = threading.Event()
    while not stop.wait(POLL_S):
        if os.getppid() != parent:
            os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
