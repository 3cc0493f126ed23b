"""The sandbox: normal code runs; hostile code ends quickly with passed=False and leaves the host fine."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from tts_sim.errors import ConfigError
from tts_sim.tasks import sandbox
from tts_sim.tasks.sandbox import NOBODY, SandboxCapabilities, run_sandboxed, sandbox_capabilities

FAST = 3.0  # timeout for hostile code
SLACK = 4.0  # seconds allowed beyond the timeout (start-up, kill, clean-up)


def _nobody_processes() -> list[int]:
    """Live (non-zombie) processes of the sandbox user."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == NOBODY:
                if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def _assert_ends_failed(code: str, **kwargs: object) -> None:
    start = time.monotonic()
    result = run_sandboxed(code, timeout_s=FAST, **kwargs)  # type: ignore[arg-type]
    assert not result.passed
    assert time.monotonic() - start < FAST + SLACK
    _assert_no_leftovers()


def _assert_no_leftovers() -> None:
    if sandbox_capabilities().drop_to_nobody:
        deadline = time.monotonic() + 2
        while _nobody_processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _nobody_processes(), "sandboxed processes outlived the run"


def test_normal_code_passes_and_reports_output() -> None:
    result = run_sandboxed("import math\nprint('hello', math.factorial(5))\nassert sum(range(4)) == 6\n")
    assert result.passed and result.returncode == 0 and not result.timed_out
    assert "hello 120" in result.stdout_tail
    assert result.duration_s > 0


def test_code_may_write_in_its_own_directory() -> None:
    code = ("import os, shutil\nos.mkdir('d')\nopen('d/f.txt', 'w').write('x')\n"
            "assert open('d/f.txt').read() == 'x'\nshutil.rmtree('d')\nassert not os.path.exists('d')\n")
    assert run_sandboxed(code).passed


def test_failing_assertion_fails_with_traceback() -> None:
    result = run_sandboxed("assert 1 == 2, 'boom'\n")
    assert not result.passed and result.returncode == 1
    assert "AssertionError: boom" in result.stderr_tail


@pytest.mark.parametrize("exit_call", ["import sys; sys.exit(0)", "import os; os._exit(0)"])
def test_early_exit_zero_is_not_a_pass(exit_call: str) -> None:
    result = run_sandboxed(exit_call + "\nassert False\n")
    assert result.returncode == 0 and not result.passed


def test_infinite_loop_is_killed() -> None:
    result = run_sandboxed("while True:\n    pass\n", timeout_s=1.5)
    assert result.timed_out and not result.passed and result.returncode is None
    assert result.duration_s < 1.5 + SLACK
    _assert_ends_failed("while True:\n    pass\n")


def test_fork_bomb_through_os_fork() -> None:
    _assert_ends_failed("import os\nwhile True:\n    os.fork()\n")


def test_fork_bomb_without_the_prelude_guard() -> None:
    """The guard off: only the process limit, the PID namespace and the group kill stop it."""
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    _assert_ends_failed(code, guard=False)


@pytest.mark.skipif(not sandbox_capabilities().pid_namespace, reason="needs a PID namespace (unshare)")
def test_escaped_background_process_dies_with_the_run() -> None:
    """A child that leaves the process group and outlives the main program is killed too."""
    code = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\n"
    start = time.monotonic()
    result = run_sandboxed(code, timeout_s=FAST, guard=False)
    assert result.passed and time.monotonic() - start < FAST
    _assert_no_leftovers()


@pytest.mark.parametrize("guard", [True, False])
@pytest.mark.parametrize("attack", [
    "import shutil\nshutil.rmtree({d!r})\n",
    "import os\nos.remove({f!r})\n",
    "import os\nos.rename({f!r}, 'stolen')\n",
    "open({f!r}, 'w').write('overwritten')\n",
])
def test_files_outside_the_sandbox_survive(tmp_path: Path, attack: str, guard: bool) -> None:
    target = tmp_path / "outside"
    target.mkdir()
    canary = target / "canary.txt"
    canary.write_text("alive")
    if not guard and not sandbox_capabilities().drop_to_nobody:
        pytest.skip("without the guard, only a privilege drop protects the user's own files")
    result = run_sandboxed(attack.format(d=str(target), f=str(canary)), timeout_s=FAST, guard=guard)
    assert not result.passed
    assert canary.read_text() == "alive"


def test_huge_allocation_fails() -> None:
    _assert_ends_failed("x = bytearray(10 * 2**30)\n", memory_mb=512)
    result = run_sandboxed("x = bytearray(10 * 2**30)\n", timeout_s=FAST)
    assert "MemoryError" in result.stderr_tail


def test_network_is_blocked() -> None:
    with socket.socket() as server:  # a real listener on the host's loopback
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        code = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        result = run_sandboxed(code, timeout_s=FAST)
        assert not result.passed
        assert any(word in result.stderr_tail for word in ("unreachable", "disabled", "refused"))
        server.settimeout(0.2)
        with pytest.raises(TimeoutError):
            server.accept()


def test_huge_output_is_capped() -> None:
    start = time.monotonic()
    result = run_sandboxed("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", timeout_s=FAST,
                           max_output_kb=256)
    assert not result.passed and time.monotonic() - start < FAST + SLACK
    assert len(result.stdout_tail) <= 2000


def test_environment_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TTS_SECRET_TOKEN", "hunter2")
    result = run_sandboxed("import os\nprint(sorted(os.environ))\nprint(os.getcwd())\n")
    assert result.passed and "TTS_SECRET_TOKEN" not in result.stdout_tail
    assert "tts-sandbox-" in result.stdout_tail
    assert os.environ["TTS_SECRET_TOKEN"] == "hunter2"


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ConfigError):
        run_sandboxed("pass", timeout_s=0)


@pytest.fixture()
def prelude_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend neither unshare nor setpriv works: only the limits, the group kill and the guard remain."""
    monkeypatch.setattr(sandbox, "sandbox_capabilities", lambda: SandboxCapabilities((), False, False, False, False))


@pytest.mark.usefixtures("prelude_only")
def test_prelude_alone_blocks_sockets_forks_and_deletions(tmp_path: Path) -> None:
    canary = tmp_path / "canary.txt"
    canary.write_text("alive")
    net = run_sandboxed("import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)\n", timeout_s=FAST)
    assert not net.passed and "socket.create_connection is disabled" in net.stderr_tail
    fork = run_sandboxed("import os\nwhile True:\n    os.fork()\n", timeout_s=FAST)
    assert not fork.passed and "os.fork is disabled" in fork.stderr_tail
    rm = run_sandboxed(f"import shutil\nshutil.rmtree({str(tmp_path)!r})\n", timeout_s=FAST)
    assert not rm.passed and canary.read_text() == "alive"
    loop = run_sandboxed("while True:\n    pass\n", timeout_s=1.0)
    assert loop.timed_out and not loop.passed
    assert run_sandboxed("print(sum(range(10)))\n").passed
