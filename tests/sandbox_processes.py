"""Finding processes left behind by this test process's sandboxes (and only those: other jobs on the machine
may run sandboxes of their own as ``nobody``)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tts_sim.tasks.sandbox import SANDBOX_PARENT_ENV


def sandbox_processes(exclude: tuple[int, ...] = ()) -> list[str]:
    """Live processes started by a sandbox of this process: marked with our pid in their environment,
    or descended from us (the sandbox's pid 1 and bwrap run as root, the code as nobody)."""
    me, found = os.getpid(), []
    marker = f"{SANDBOX_PARENT_ENV}={me}".encode()
    parents: dict[int, int] = {}
    states: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            states[int(entry.name)], parents[int(entry.name)] = fields[0], int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    for pid, state in states.items():
        if pid in exclude or pid == me or state == "Z":
            continue
        ancestor, hops = parents.get(pid, 0), 0
        while ancestor > 1 and ancestor != me and hops < 64:
            ancestor, hops = parents.get(ancestor, 0), hops + 1
        try:
            marked = marker + b"\0" in (Path("/proc") / str(pid) / "environ").read_bytes() + b"\0"
        except OSError:
            marked = False
        if ancestor == me or marked:
            try:
                found.append(f"{pid}: {(Path('/proc') / str(pid) / 'cmdline').read_bytes()[:80]!r}")
            except OSError:
                continue
    return found


def assert_no_sandbox_processes(exclude: tuple[int, ...] = (), wait_s: float = 3.0) -> None:
    deadline = time.monotonic() + wait_s
    while sandbox_processes(exclude) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = sandbox_processes(exclude)
    assert not left, f"sandboxed processes outlived the run: {left}"
