"""The bubblewrap command line: what the sandbox may see, and the seccomp filter's shape."""

from __future__ import annotations

import os
import platform
import struct
import sysconfig
from pathlib import Path

import pytest

from tts_sim.tasks.bwrap import _resolve, interpreter_view, sys_executable
from tts_sim.tasks.seccomp import BLOCKED, seccomp_program


def test_resolve_records_every_symlink_on_the_way(tmp_path: Path) -> None:
    (tmp_path / "real" / "lib").mkdir(parents=True)
    (tmp_path / "real" / "lib" / "libx.so.1.2").write_text("")
    (tmp_path / "real" / "lib" / "libx.so.1").symlink_to("libx.so.1.2")
    (tmp_path / "alias").symlink_to("real")
    links: dict[str, str] = {}
    assert _resolve(str(tmp_path / "alias" / "lib" / "libx.so.1"), links) == str(tmp_path / "real/lib/libx.so.1.2")
    assert links == {str(tmp_path / "alias"): "real", str(tmp_path / "real/lib/libx.so.1"): "libx.so.1.2"}


def test_resolve_refuses_symlink_loops(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(OSError):
        _resolve(str(tmp_path / "a" / "x"), {})


def test_view_holds_only_the_interpreter_its_stdlib_and_libraries() -> None:
    view = list(interpreter_view())
    binds = [view[i + 1] for i, arg in enumerate(view) if arg == "--ro-bind"]
    assert sys_executable() in binds
    stdlib = os.path.realpath(os.path.dirname(os.__file__))
    assert any(stdlib == b or stdlib.startswith(b + "/") for b in binds)
    assert "--bind" not in view and "--dev-bind" not in view  # nothing writable from the host
    for top in ("/", "/etc", "/home", "/root", "/tmp", "/usr", "/usr/bin", "/bin"):
        assert top not in binds, top
    for i, arg in enumerate(view):
        if arg == "--dir":
            assert view[i - 2:i] == ["--perms", "0755"], "directories on the way must be reachable by nobody"
    site = os.path.realpath(sysconfig.get_path("purelib"))
    if any(site.startswith(b + "/") for b in binds):
        assert view[view.index(site) - 1] == "--tmpfs", "site-packages must be hidden"


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the filter is defined for x86-64 only")
def test_seccomp_program_is_well_formed() -> None:
    program = seccomp_program()
    assert program is not None and len(program) % 8 == 0
    instructions = [struct.unpack("=HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    for index, (op, jt, jf, _k) in enumerate(instructions):
        if op & 0x07 == 0x05:  # jumps stay inside the program
            assert index + 1 + max(jt, jf) < len(instructions)
    assert instructions[-1][0] == 0x06 and instructions[-2][0] == 0x06  # ends with returns
    numbers = {k for op, _jt, _jf, k in instructions if op == 0x15}
    assert set(BLOCKED.values()) <= numbers
