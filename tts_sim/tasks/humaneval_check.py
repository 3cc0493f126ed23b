"""A HumanEval check the candidate cannot subvert: its code and the problem's tests run in two sandboxes.

- The **candidate sandbox** runs prompt + completion, then serves calls of the entry point over a pipe.
  Every result must be a plain built-in value, recursively (``plain_values``), or the call fails.
- The **checker sandbox** runs prompt + tests (the data set's code) with ``candidate`` a proxy that sends
  the arguments and rebuilds each reply as fresh built-ins: an object whose ``__eq__`` is always True never
  reaches an ``assert``. Once ``check`` returns, it writes a nonce, given to it alone, to a pipe that only
  the grader reads: that nonce is the only way to pass.

Arguments must be plain values too (HumanEval's all are); a test that passes anything else cannot pass.
The candidate never sees the tests, the expected values, the nonce or the checker (separate mount, PID,
IPC and network namespaces), so ``sys.exit(0)``, patched builtins or ``assert``, and printed "passed"
lines only end or alter its own process: the check then fails. (In the weak mode, without bwrap, the two
processes share the host's ``/proc`` and user, so this holds against code that does not attack the
checker's process; the guard prelude is installed in the candidate there.)
"""

from __future__ import annotations

import os
import secrets
import select
import shutil
import tempfile
import time
from pathlib import Path

from tts_sim.tasks import plain_values
from tts_sim.tasks.sandbox import (
    GUARD_PRELUDE,
    NOBODY,
    START_UP_ALLOWANCE_S,
    Limits,
    SandboxResult,
    kill_sandbox,
    launch,
    sandbox_capabilities,
    sandbox_mode,
    tail,
)

_CODEC = Path(plain_values.__file__).read_text(encoding="utf-8")

_CANDIDATE_STAGE = r'''
import os, sys
requests, replies = ARGS["requests_fd"], ARGS["replies_fd"]
with open("solution.py", "w", encoding="utf-8") as f:
    f.write(ARGS["program"])
program = compile(ARGS["program"], "solution.py", "exec")
entry_point = ARGS["entry_point"]
BLOCK_NET = ARGS["block_net"]
if ARGS["guard_src"]:
    exec(compile(ARGS["guard_src"], "<sandbox-guard>", "exec"))
del ARGS
namespace = {"__name__": "solution", "__file__": "solution.py", "__builtins__": __builtins__}
exec(program, namespace)
function = namespace.get(entry_point)
while True:
    message = receive(requests)
    if message is None:
        break
    args, kwargs = decode(message)
    try:
        reply = encode(("ok", function(*args, **kwargs)))
    except Exception as exc:
        reply = encode(("raised", type(exc).__name__, str(exc)[:500]))
    send(replies, reply)
'''

_CHECKER_STAGE = r'''
import builtins, os
requests, replies, verdict = ARGS["requests_fd"], ARGS["replies_fd"], ARGS["verdict_fd"]
nonce = ARGS["nonce"].encode()


class CandidateFailed(Exception):
    """The candidate raised, returned something not plain, or its process ended."""


class Candidate:
    """Stands for the candidate's function: arguments go out as plain values, results come back as built-ins."""

    def __init__(self, name):
        self.__name__ = name

    def __call__(self, *args, **kwargs):
        send(requests, encode((args, kwargs)))
        message = receive(replies)
        if message is None:
            raise CandidateFailed("the candidate's process ended")
        reply = decode(message)
        if type(reply) is tuple and len(reply) == 2 and reply[0] == "ok":
            return reply[1]
        if type(reply) is tuple and len(reply) == 3 and reply[0] == "raised" and type(reply[1]) is str:
            kind = getattr(builtins, reply[1], None)
            if (isinstance(kind, type) and issubclass(kind, Exception)
                    and not issubclass(kind, (StopIteration, StopAsyncIteration))):
                raise kind(reply[2])
            raise CandidateFailed(f"{reply[1]}: {reply[2]}")
        raise CandidateFailed("malformed reply")


namespace = {"__name__": "checker"}
exec(compile(ARGS["prompt"], "prompt.py", "exec"), namespace)
candidate = namespace[ARGS["entry_point"]] = Candidate(ARGS["entry_point"])  # tests may call it by name
exec(compile(ARGS["test"], "test.py", "exec"), namespace)
del ARGS
namespace["check"](candidate)
os.write(verdict, nonce)
'''


def _wait_for_verdict(fd: int, deadline: float, size: int) -> tuple[bytes, bool]:
    """What the checker wrote to the verdict pipe, as soon as ``size`` bytes came or the pipe closed (the
    checker ended; nobody else holds its write end); and whether ``deadline`` passed first."""
    os.set_blocking(fd, False)
    data = b""
    while len(data) <= size:
        left = deadline - time.monotonic()
        if left <= 0:
            return data, True
        if select.select([fd], [], [], left)[0]:
            try:
                chunk = os.read(fd, size + 1 - len(data))
            except BlockingIOError:
                continue
            if not chunk:
                break
            data += chunk
            if len(data) == size:
                break
    return data, False


def check_in_sandbox(prompt: str, program: str, test: str, entry_point: str, *, timeout_s: float = 10.0,
                     memory_mb: int = 1024, max_processes: int = 16, tail_chars: int = 2000,
                     allow_weak: bool | None = None) -> SandboxResult:
    """Run ``check(candidate)`` of ``test`` (with ``prompt``'s helpers) against ``entry_point`` of ``program``.

    ``passed`` only if the checker wrote its nonce within ``timeout_s`` (wall time for the whole check, after
    ``START_UP_ALLOWANCE_S`` for starting the two sandboxes).
    ``stdout_tail``/``stderr_tail`` are the candidate's and then the checker's, labelled. ``memory_mb`` is
    per process and ``max_processes`` the sandbox user's process limit, so together they bound the memory a
    fork-and-allocate attack can take (there is no cgroup limit).
    """
    limits = Limits(timeout_s=timeout_s, memory_mb=memory_mb, max_processes=max_processes)
    mode = sandbox_mode(allow_weak)
    logs = Path(tempfile.mkdtemp(prefix="tts-check-logs-"))
    workdirs = {"candidate": None, "checker": None} if mode == "bwrap" else {
        name: Path(tempfile.mkdtemp(prefix=f"tts-sandbox-{name}-")) for name in ("candidate", "checker")}
    requests_r, requests_w = os.pipe()
    replies_r, replies_w = os.pipe()
    verdict_r, verdict_w = os.pipe()
    child_ends = [requests_r, requests_w, replies_r, replies_w, verdict_w]
    try:
        for workdir in workdirs.values():
            if workdir is not None and sandbox_capabilities().drop_to_nobody:
                os.chown(workdir, NOBODY, NOBODY)
        nonce = secrets.token_hex(16)
        files = {name: open(logs / name, "wb") for name in ("cand.out", "cand.err", "check.out", "check.err")}
        start = time.monotonic()
        try:
            candidate = launch(_CODEC + _CANDIDATE_STAGE,
                               {"program": program, "entry_point": entry_point, "requests_fd": requests_r,
                                "replies_fd": replies_w, "guard_src": "" if mode == "bwrap" else GUARD_PRELUDE,
                                "block_net": mode != "bwrap" and not sandbox_capabilities().network_namespace},
                               limits, mode=mode, stdout=files["cand.out"], stderr=files["cand.err"],
                               pass_fds=(requests_r, replies_w), workdir=workdirs["candidate"])
            try:
                checker = launch(_CODEC + _CHECKER_STAGE,
                                 {"prompt": prompt, "test": test, "entry_point": entry_point, "nonce": nonce,
                                  "requests_fd": requests_w, "replies_fd": replies_r, "verdict_fd": verdict_w},
                                 limits, mode=mode, stdout=files["check.out"], stderr=files["check.err"],
                                 pass_fds=(requests_w, replies_r, verdict_w), workdir=workdirs["checker"])
                for fd in child_ends:
                    os.close(fd)
                child_ends = []
                verdict, timed_out = _wait_for_verdict(verdict_r, start + timeout_s + START_UP_ALLOWANCE_S,
                                                        len(nonce))
                kill_sandbox(checker)
            finally:
                kill_sandbox(candidate)
        finally:
            for f in files.values():
                f.close()
        duration = time.monotonic() - start
        passed = not timed_out and secrets.compare_digest(verdict, nonce.encode())
        rc = None if timed_out else 0 if passed else checker.returncode
        half = tail_chars // 2
        out = f"[candidate]\n{tail(logs / 'cand.out', half)}\n[checker]\n{tail(logs / 'check.out', half)}"
        err = f"[candidate]\n{tail(logs / 'cand.err', half)}\n[checker]\n{tail(logs / 'check.err', half)}"
        return SandboxResult(passed, rc, timed_out, out, err, duration)
    finally:
        for fd in [*child_ends, verdict_r]:
            if fd >= 0:
                os.close(fd)
        shutil.rmtree(logs, ignore_errors=True)
        for workdir in workdirs.values():
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)
