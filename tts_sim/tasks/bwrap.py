"""The bubblewrap (``bwrap``) command line of the sandbox.

The sandboxed process sees a root that is an empty tmpfs holding only:

- read-only binds of the interpreter binary, its standard library, and the directories of the shared
  libraries that it and its extension modules load (found with ``ldd``; symlinks on the way, such as
  ``/lib64 -> usr/lib64``, are recreated); ``site-packages`` is hidden under an empty tmpfs;
- a fresh ``/proc`` for its own PID namespace (it sees only its own processes), a minimal ``/dev``;
- a private, size-limited tmpfs ``/sandbox`` as working directory.

Nothing else of the host exists in it (no ``/etc``, ``/home``, ``/root``, ``/tmp``, no shell). Directories
that bwrap creates on the way to a bind are made 0755, so an interpreter under a 0700 ``/root`` is reachable
by ``nobody`` without any capability.

Namespaces: IPC, PID, network (no interface but a downed loopback), UTS and cgroup are always new.
As non-root, ``--unshare-all`` also creates a user namespace (further ones are disabled). As root, no user
namespace is created on purpose: bwrap would map the sandbox user to host root, which the kernel exempts
from ``RLIMIT_NPROC``; instead all capabilities but ``CAP_SETUID``/``CAP_SETGID`` are dropped and the
sandbox's trusted runner switches to uid/gid 65534 (``nobody``, which clears those two as well) before any
untrusted code runs. ``--die-with-parent`` kills the sandbox if the grader dies; ``--new-session`` detaches
it from the terminal; bwrap always sets ``no_new_privs`` and mounts binds ``nosuid``. A seccomp filter
(``tts_sim.tasks.seccomp``) refuses new user namespaces and a few risky kernel interfaces.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from functools import lru_cache
from pathlib import Path

from tts_sim.tasks.seccomp import seccomp_program

SANDBOX_DIR = "/sandbox"
INSTALL_HINT = "apt-get install bubblewrap"


def find_bwrap() -> str | None:
    """The ``bwrap`` executable, or None."""
    return shutil.which("bwrap")


@lru_cache(maxsize=1)
def bwrap_problem() -> str | None:
    """Why bwrap cannot run the sandbox here (None if it can): probed once with a real sandboxed run."""
    bwrap = find_bwrap()
    if bwrap is None:
        return f"bubblewrap (bwrap) is not installed: {INSTALL_HINT}"
    seccomp = seccomp_fd()
    cmd = [*bwrap_command(bwrap, disk_mb=1, seccomp=seccomp), sys_executable(), "-I", "-S", "-c", "import json"]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=30, text=True,
                              pass_fds=() if seccomp is None else (seccomp,))
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bwrap does not run: {exc}"
    finally:
        if seccomp is not None:
            os.close(seccomp)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return f"bwrap cannot create the sandbox here ({last})"
    return None


def sys_executable() -> str:
    """The interpreter binary itself (symlinks resolved, so a venv maps to its base interpreter)."""
    return os.path.realpath(sys.executable)


def seccomp_fd() -> int | None:
    """A pipe's read end holding the seccomp filter (``tts_sim.tasks.seccomp``) for ``--seccomp``; the caller
    passes it to bwrap and closes it. None where no filter is defined."""
    program = seccomp_program()
    if program is None:
        return None
    read, write = os.pipe()
    os.write(write, program)  # a few hundred bytes: fits the pipe's buffer
    os.close(write)
    return read


def bwrap_command(bwrap: str, *, disk_mb: int, seccomp: int | None = None) -> list[str]:
    """``bwrap`` and its options, up to (not including) the command to run in the sandbox; ``seccomp`` a
    descriptor from ``seccomp_fd`` (inherited by bwrap)."""
    if os.geteuid() == 0:
        namespaces = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                      "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        namespaces = ["--unshare-all", "--unshare-user", "--disable-userns"]
    filters = [] if seccomp is None else ["--seccomp", str(seccomp)]
    return [bwrap, *namespaces, *filters, "--die-with-parent", "--new-session", *interpreter_view(),
            "--proc", "/proc", "--dev", "/dev",
            "--perms", "0777", "--size", str(disk_mb * 2**20), "--tmpfs", SANDBOX_DIR, "--chdir", SANDBOX_DIR]


@lru_cache(maxsize=1)
def interpreter_view() -> tuple[str, ...]:
    """bwrap mount options exposing (read-only) only the interpreter, its stdlib and its shared libraries."""
    exe = sys_executable()
    stdlib = os.path.realpath(os.path.dirname(os.__file__))
    dynload = Path(sysconfig.get_config_var("DESTSHARED") or Path(stdlib) / "lib-dynload")
    objects = [exe, *(str(p) for p in sorted(dynload.glob("*.so")))]
    binds: set[str] = {exe, stdlib}
    links: dict[str, str] = {}
    for lib in _shared_libraries(objects):
        real = _resolve(lib, links)
        binds.add(real if os.path.isdir(real) else os.path.dirname(real))
    binds = {b for b in binds if not any(_under(b, other) for other in binds if other != b)}
    links = {path: target for path, target in links.items() if not any(_under(path, b) for b in binds)}
    parents = sorted({str(p) for path in [*binds, *links] for p in Path(path).parents if str(p) != "/"
                      and not any(_under(str(p), b) for b in binds)}, key=lambda p: (p.count("/"), p))
    # a venv's and its base's
    bases: tuple[dict[str, str], ...] = ({}, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix})
    hidden = sorted({os.path.realpath(sysconfig.get_path(key, vars=v)) for key in ("purelib", "platlib")
                     for v in bases})
    args: list[str] = []
    for parent in parents:
        args += ["--perms", "0755", "--dir", parent]
    for bind in sorted(binds, key=lambda p: (p.count("/"), p)):
        args += ["--ro-bind", bind, bind]
    for path, target in sorted(links.items()):
        args += ["--symlink", target, path]
    for path in hidden:
        if os.path.isdir(path) and any(_under(path, b) for b in binds):
            args += ["--perms", "0755", "--tmpfs", path, "--remount-ro", path]
    return tuple(args)


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


_LDD_PATH = re.compile(r"(/\S+) \(0x[0-9a-f]+\)")


def _shared_libraries(objects: list[str]) -> set[str]:
    """The shared libraries (paths as the loader finds them) that ``objects`` load; where ``ldd`` is
    missing, the usual system library directories instead."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return {d for d in ("/lib64", "/usr/lib64", "/lib", "/usr/lib") if os.path.isdir(d)}
    done = subprocess.run([ldd, *objects], capture_output=True, text=True, timeout=60)
    return set(_LDD_PATH.findall(done.stdout))


def _resolve(path: str, links: dict[str, str], depth: int = 0) -> str:
    """``path`` with every symlink on the way resolved; the links met are recorded to be recreated."""
    if depth > 40:
        raise OSError(f"too many symlinks resolving {path}")
    current = "/"
    parts = Path(path).parts[1:]
    for i, part in enumerate(parts):
        step = os.path.join(current, part)
        if os.path.islink(step):
            target = os.readlink(step)
            links[step] = target
            return _resolve(os.path.normpath(os.path.join(current, target, *parts[i + 1:])), links, depth + 1)
        current = step
    return current
