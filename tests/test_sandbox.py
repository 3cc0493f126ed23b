"""The sandbox: normal code runs; limits hold; the weak mode is refused unless opted in (the hostile corpus is
in ``test_sandbox_hostile``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.sandbox_processes import assert_no_sandbox_processes
from tts_sim.errors import ConfigError
from tts_sim.tasks import sandbox
from tts_sim.tasks.bwrap import bwrap_problem
from tts_sim.tasks.sandbox import (
    SANDBOX_PARENT_ENV,
    WEAK_SANDBOX_ENV,
    SandboxCapabilities,
    SandboxUnavailable,
    run_sandboxed,
    sandbox_capabilities,
    sandbox_mode,
)

needs_bwrap = pytest.mark.skipif(bwrap_problem() is not None, reason=f"needs bubblewrap: {bwrap_problem()}")

FAST = 3.0  # timeout for hostile code
SLACK = 4.0  # seconds allowed beyond the timeout (start-up, kill, clean-up)


def _assert_ends_failed(code: str, **kwargs: object) -> None:
    start = time.monotonic()
    result = run_sandboxed(code, timeout_s=FAST, **kwargs)  # type: ignore[arg-type]
    assert not result.passed
    assert time.monotonic() - start < FAST + SLACK
    _assert_no_leftovers()


def _assert_no_leftovers() -> None:
    assert_no_sandbox_processes()


@needs_bwrap
def test_normal_code_passes_and_reports_output() -> None:
    result = run_sandboxed("import math\nprint('hello', math.factorial(5))\nassert sum(range(4)) == 6\n")
    assert result.passed and result.returncode == 0 and not result.timed_out
    assert "hello 120" in result.stdout_tail
    assert result.duration_s > 0


@needs_bwrap
def test_code_may_write_in_its_own_directory() -> None:
    code = ("import os, shutil\nos.mkdir('d')\nopen('d/f.txt', 'w').write('x')\n"
            "assert open('d/f.txt').read() == 'x'\nshutil.rmtree('d')\nassert not os.path.exists('d')\n")
    assert run_sandboxed(code).passed


@needs_bwrap
def test_failing_assertion_fails_with_traceback() -> None:
    result = run_sandboxed("assert 1 == 2, 'boom'\n")
    assert not result.passed and result.returncode == 1
    assert "AssertionError: boom" in result.stderr_tail


@needs_bwrap
@pytest.mark.parametrize("exit_call", ["import sys; sys.exit(0)", "import os; os._exit(0)"])
def test_early_exit_zero_is_not_a_pass(exit_call: str) -> None:
    result = run_sandboxed(exit_call + "\nassert False\n")
    assert result.returncode == 0 and not result.passed


@needs_bwrap
def test_infinite_loop_is_killed() -> None:
    result = run_sandboxed("while True:\n    pass\n", timeout_s=1.5)
    assert result.timed_out and not result.passed and result.returncode is None
    assert result.duration_s < 1.5 + SLACK
    _assert_no_leftovers()


@needs_bwrap
def test_escaped_background_process_dies_with_the_run() -> None:
    """A child that leaves the process group and outlives the main program is killed too."""
    code = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\n"
    start = time.monotonic()
    result = run_sandboxed(code, timeout_s=FAST, guard=False)
    assert result.passed and time.monotonic() - start < FAST
    _assert_no_leftovers()


@needs_bwrap
def test_sandbox_dies_with_its_parent(tmp_path: Path) -> None:
    """SIGKILL the process that started a sandbox: nothing of the sandbox survives it."""
    script = ("import sys; sys.path.insert(0, sys.argv[1])\n"
              "from tts_sim.tasks.sandbox import run_sandboxed\n"
              "run_sandboxed('import time\\nprint(1, flush=True)\\ntime.sleep(60)\\n', timeout_s=60, guard=False)\n")
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # the killed grader cannot remove its log folder
    grader = subprocess.Popen([sys.executable, "-c", script, str(Path(__file__).resolve().parents[1])], env=env)
    marker = f"{SANDBOX_PARENT_ENV}={grader.pid}".encode()

    def sandboxed() -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and marker + b"\0" in (entry / "environ").read_bytes() + b"\0":
                    if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                        found.append(int(entry.name))
            except OSError:
                continue
        return found

    try:
        deadline = time.monotonic() + 20
        while len(sandboxed()) < 3 and time.monotonic() < deadline:  # bwrap, its pid 1, python
            time.sleep(0.1)
        assert len(sandboxed()) >= 3, "the sandbox did not start"
    finally:
        grader.kill()
        grader.wait()
    deadline = time.monotonic() + 5
    while sandboxed() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not sandboxed()


@needs_bwrap
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


@needs_bwrap
def test_huge_allocation_fails() -> None:
    _assert_ends_failed("x = bytearray(10 * 2**30)\n", memory_mb=512)
    result = run_sandboxed("x = bytearray(10 * 2**30)\n", timeout_s=FAST)
    assert "MemoryError" in result.stderr_tail


@needs_bwrap
def test_huge_output_is_capped() -> None:
    start = time.monotonic()
    result = run_sandboxed("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", timeout_s=FAST,
                           max_output_kb=256)
    assert not result.passed and time.monotonic() - start < FAST + SLACK
    assert len(result.stdout_tail) <= 2000


@needs_bwrap
def test_environment_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TTS_SECRET_TOKEN", "hunter2")
    result = run_sandboxed("import os\nprint(sorted(os.environ))\nprint(os.getcwd())\n")
    assert result.passed and "TTS_SECRET_TOKEN" not in result.stdout_tail
    assert result.stdout_tail.splitlines()[-1] == "/sandbox"
    assert os.environ["TTS_SECRET_TOKEN"] == "hunter2"


@needs_bwrap
def test_the_standard_library_works_inside() -> None:
    code = ("import hashlib, json, math, re, decimal, fractions, itertools, collections, heapq, bisect, zlib\n"
            "assert hashlib.md5(b'a').hexdigest() == '0cc175b9c0f1b6a831c399e269772661'\n"
            "import ctypes\nassert ctypes.CDLL(None).getpid() == __import__('os').getpid()\n")
    result = run_sandboxed(code, guard=False)
    assert result.passed, result.stderr_tail


@needs_bwrap
def test_site_packages_are_not_visible() -> None:
    assert not run_sandboxed("import pytest\n").passed
    assert not run_sandboxed("import sysconfig, os\nassert os.listdir(sysconfig.get_path('purelib'))\n").passed


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ConfigError):
        run_sandboxed("pass", timeout_s=0)


@pytest.fixture()
def no_bwrap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend bubblewrap is missing."""
    problem = "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    monkeypatch.setattr(sandbox, "bwrap_problem", lambda: problem)
    monkeypatch.delenv(WEAK_SANDBOX_ENV, raising=False)


@pytest.mark.usefixtures("no_bwrap")
def test_without_bwrap_untrusted_code_is_refused_in_one_line() -> None:
    with pytest.raises(SandboxUnavailable) as error:
        run_sandboxed("print(1)\n")
    message = str(error.value)
    assert "\n" not in message and "apt-get install bubblewrap" in message and WEAK_SANDBOX_ENV in message
    assert isinstance(error.value, ConfigError)  # the CLI turns it into exit 2


@pytest.mark.usefixtures("no_bwrap")
def test_the_weak_mode_needs_an_opt_in_and_warns(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    sandbox._warn_weak.cache_clear()
    assert sandbox_mode(allow_weak=True) == "weak"
    assert "WARNING" in capsys.readouterr().err
    with pytest.raises(SandboxUnavailable):
        sandbox_mode(allow_weak=False)
    monkeypatch.setenv(WEAK_SANDBOX_ENV, "1")
    assert sandbox_mode() == "weak"
    assert run_sandboxed("print(6 * 7)\n").stdout_tail.strip() == "42"
    monkeypatch.setenv(WEAK_SANDBOX_ENV, "0")
    with pytest.raises(SandboxUnavailable):
        sandbox_mode()


@pytest.fixture()
def prelude_only(monkeypatch: pytest.MonkeyPatch, no_bwrap: None) -> None:
    """The weak mode with neither unshare nor setpriv working: only the limits, the group kill and the guard."""
    monkeypatch.setenv(WEAK_SANDBOX_ENV, "1")
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
