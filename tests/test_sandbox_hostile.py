"""A hostile corpus against the sandbox and the HumanEval grader.

Every case must end not passed (except the legitimately slow completion), leave the host intact (a secret
file, a world-writable directory, ``/tmp``, a sentinel process of the sandbox user) and leave no process
behind. Sandbox cases mostly run without the Python guard prelude: the isolation itself must hold.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.sandbox_processes import assert_no_sandbox_processes
from tts_sim.tasks import Question, load_questions
from tts_sim.tasks.bwrap import bwrap_problem
from tts_sim.tasks.humaneval import HumanEvalGrader
from tts_sim.tasks.sandbox import NOBODY, run_sandboxed

pytestmark = pytest.mark.skipif(bwrap_problem() is not None, reason=f"needs bubblewrap: {bwrap_problem()}")

FAST = 3.0  # timeout of hostile code
SLACK = 5.0  # seconds allowed beyond it (start-up allowance, kill, clean-up)
SECRET = "s3cret-" + os.urandom(4).hex()


@dataclass(frozen=True)
class Host:
    secret: Path  # 0600 file in a 0700 directory, owned by root
    open_dir: Path  # a world-writable directory in /tmp with a canary file
    sentinel: subprocess.Popen[bytes]  # a process of the sandbox user (when root) that must survive
    tmp_before: frozenset[str]

    def assert_intact(self) -> None:
        assert self.secret.read_text() == SECRET
        assert sorted(p.name for p in self.open_dir.iterdir()) == ["canary.txt"]
        assert (self.open_dir / "canary.txt").read_text() == "alive"
        assert self.sentinel.poll() is None, "the sentinel process was killed"
        assert not Path(os.__file__).read_text().endswith("# pwned")
        new = {name for name in os.listdir("/tmp") if "pwned" in name} - self.tmp_before
        assert not new, f"files appeared in /tmp: {new}"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    secret_dir = Path(tempfile_dir("tts-secret-"))
    secret_dir.chmod(0o700)
    secret = secret_dir / "f"
    secret.write_text(SECRET)
    secret.chmod(0o600)
    open_dir = Path(tempfile_dir("tts-open-"))
    open_dir.chmod(0o777)
    (open_dir / "canary.txt").write_text("alive")
    as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] if os.geteuid() == 0 else []
    sentinel = subprocess.Popen([*as_nobody, "sleep", "600"])
    try:
        yield Host(secret, open_dir, sentinel, frozenset(n for n in os.listdir("/tmp") if "pwned" in n))
    finally:
        sentinel.kill()
        sentinel.wait()
        for path in (secret, open_dir / "canary.txt"):
            path.unlink(missing_ok=True)
        for directory in (secret_dir, open_dir):
            for leftover in directory.iterdir():
                leftover.unlink()
            directory.rmdir()


def tempfile_dir(prefix: str) -> str:
    return tempfile.mkdtemp(prefix=prefix, dir="/tmp")


def assert_clean(host: Host) -> None:
    host.assert_intact()
    assert_no_sandbox_processes(exclude=(host.sentinel.pid,))


# --- code run in the sandbox: {secret}, {open_dir}, {host_pid} are filled in -------------------------------

FRESH_POSIX = """
import importlib.machinery, importlib.util
spec = importlib.machinery.BuiltinImporter.find_spec("posix")
posix = importlib.util.module_from_spec(spec)
spec.loader.exec_module(posix)
"""

RUN_CASES: dict[str, tuple[str, dict[str, object]]] = {
    "read a 0600 file in a 0700 dir": ("print(open({secret!r}).read())\n", {}),
    "read it through /proc/<host pid>/root": ("print(open('/proc/{host_pid}/root' + {secret!r}).read())\n", {}),
    "list host processes via /proc": (
        "import os\npids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
        "cmds = [open(f'/proc/{{p}}/cmdline', 'rb').read() for p in pids]\nprint(cmds)\n"
        "assert any(b'pytest' in c for c in cmds), cmds\n", {}),
    "write outside after a fresh posix module": (
        FRESH_POSIX + "fd = posix.open({open_dir!r} + '/pwned', posix.O_WRONLY | posix.O_CREAT, 0o666)\n"
        "posix.write(fd, b'pwned')\n", {"guard": True}),
    "write to /tmp after a fresh posix module": (
        FRESH_POSIX + "fd = posix.open('/tmp/pwned-by-sandbox', posix.O_WRONLY | posix.O_CREAT, 0o666)\n",
        {"guard": True}),
    "delete the canary": ("import os\nos.remove({open_dir!r} + '/canary.txt')\n", {}),
    "rmtree outside": ("import shutil\nshutil.rmtree({open_dir!r})\n", {}),
    "write into the interpreter's files": (
        "import os\nopen(os.__file__, 'a').write('# pwned')\n", {}),
    "ctypes syscalls: setuid(0), mount, kill(1)": (
        "import ctypes, os, signal\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "results = [libc.setuid(0), libc.mount(b'none', b'/sandbox', b'tmpfs', 0, None), "
        "libc.syscall(62, 1, signal.SIGKILL)]\nprint(results)\nassert results == [0, 0, 0], results\n", {}),
    "create a user namespace (ctypes unshare)": (
        "import ctypes\nassert ctypes.CDLL(None).unshare(0x10000000) == 0, 'unshare(CLONE_NEWUSER) failed'\n", {}),
    "x32 system call ABI and keyctl": (
        "import ctypes, os\nlibc = ctypes.CDLL(None)\n"
        "assert libc.syscall(0x40000000 | 39) == os.getpid() or libc.syscall(250, 0, 0) >= 0, 'refused'\n", {}),
    "ctypes kill(-1, SIGKILL)": (
        "import ctypes, signal, time\nassert ctypes.CDLL(None).syscall(62, -1, signal.SIGKILL) == 0, 'no one'\n"
        "time.sleep(1)\n", {}),
    "os.kill(os.getppid(), SIGKILL)": ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n", {}),
    "os.kill(-1, SIGKILL)": ("import os, signal, time\nos.kill(-1, signal.SIGKILL)\ntime.sleep(1)\n", {}),
    "signal the host test process": ("import os, signal\nos.kill({host_pid}, signal.SIGTERM)\n", {}),
    "exhaust file descriptors": (
        "import os\nfds = []\nwhile True:\n    fds.append(os.open('/dev/null', os.O_RDONLY))\n", {}),
    "fill the work dir's disk": (
        "i = 0\nwhile True:\n    with open(f'fill{{i}}', 'wb') as f:\n        f.write(b'x' * 900_000)\n    i += 1\n",
        {}),
    "infinite loop": ("while True:\n    pass\n", {}),
    "fork bomb": ("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n", {}),
    "fork bomb through the guard": ("import os\nwhile True:\n    os.fork()\n", {"guard": True}),
    "10 GB allocation": ("x = bytearray(10 * 2**30)\n", {}),
    "loopback socket to the host": (
        "import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n", {}),
    "huge output": ("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", {}),
    "exec a shell": ("import os\nos.execv('/bin/sh', ['sh', '-c', 'echo pwned > /tmp/pwned-sh'])\n", {}),
}


@pytest.mark.parametrize("name", sorted(RUN_CASES))
def test_hostile_code_in_the_sandbox(name: str, host: Host) -> None:
    code, options = RUN_CASES[name]
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(0.2)
        text = code.format(secret=str(host.secret), open_dir=str(host.open_dir), host_pid=os.getpid(),
                           port=server.getsockname()[1])
        start = time.monotonic()
        result = run_sandboxed(text, timeout_s=FAST, guard=bool(options.get("guard", False)), max_output_kb=512)
        assert time.monotonic() - start < FAST + SLACK
        with pytest.raises(TimeoutError):
            server.accept()  # nothing connected to the host's loopback
    assert not result.passed, result
    assert SECRET not in result.stdout_tail + result.stderr_tail
    assert_clean(host)


def test_fill_disk_hits_the_tmpfs_limit(host: Host) -> None:
    code = RUN_CASES["fill the work dir's disk"][0].format()
    result = run_sandboxed(code, timeout_s=FAST, guard=False, disk_mb=8)
    assert "No space left on device" in result.stderr_tail and not result.timed_out
    assert_clean(host)


# --- completions graded against a toy HumanEval problem ---------------------------------------------------

TOY = {
    "task_id": "Toy/0",
    "prompt": "import math\n\n\ndef area(r: float) -> float:\n    \"\"\"Area of a circle of radius r.\"\"\"\n",
    "entry_point": "area",
    "canonical_solution": "    return math.pi * r * r\n",
    "test": "def check(candidate):\n    assert abs(candidate(1.0) - 3.14159265) < 1e-6\n"
            "    assert candidate(0) == 0\n    assert candidate(2.0) == 4 * math.pi\n",
}
POSITIVE = {
    "task_id": "Toy/1",
    "prompt": "def positive(x: int) -> bool:\n    \"\"\"Whether x > 0.\"\"\"\n",
    "entry_point": "positive",
    "canonical_solution": "    return x > 0\n",
    "test": "def check(candidate):\n    assert all(map(candidate, [1, 2, 3]))\n"
            "    assert not any(map(candidate, [-1, 0]))\n",
}

ALWAYS_EQUAL = """
class Anything:
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    def __lt__(self, other):
        return True
    def __sub__(self, other):
        return 0
    __rsub__ = __sub__
    def __abs__(self):
        return 0
    def __bool__(self):
        return True
"""

GRADE_CASES: dict[str, tuple[dict[str, str], str]] = {
    "always-equal object": (TOY, ALWAYS_EQUAL + "\ndef area(r):\n    return Anything()\n"),
    "float subclass equal to everything": (
        TOY, "class Num(float):\n    def __eq__(self, o):\n        return True\n    def __sub__(self, o):\n"
             "        return 0.0\n    __hash__ = float.__hash__\n\ndef area(r):\n    return Num(1)\n"),
    "list holding an always-equal object": (TOY, ALWAYS_EQUAL + "\ndef area(r):\n    return [Anything()]\n"),
    "sys.exit(0) before the tests": (TOY, "import sys\nsys.exit(0)\n\ndef area(r):\n    return 0\n"),
    "os._exit(0) when called": (TOY, "def area(r):\n    import os\n    os._exit(0)\n"),
    "patched builtins and assert": (
        TOY, "import builtins\nbuiltins.abs = lambda x: 0\nbuiltins.AssertionError = type('Quiet', (Exception,), {})\n"
             "builtins.__build_class__ = None\n\ndef area(r):\n    return 1\n"),
    "sys.settrace skipping asserts": (
        TOY, "import sys\ndef skip(frame, event, arg):\n    if event == 'line' and 'assert' in str(frame.f_code):\n"
             "        return None\n    return skip\nsys.settrace(skip)\n\ndef area(r):\n    return 1\n"),
    "printed fake passed lines": (
        TOY, "import os\nfor fd in (1, 2):\n    os.write(fd, b'passed\\nALL TESTS PASSED\\nOK\\n')\n"
             "def area(r):\n    print('passed')\n    return 1\n"),
    "forged verdicts on every descriptor": (
        TOY, "import gc, os\nfound = [o for o in gc.get_objects() if isinstance(o, dict) and 'nonce' in o]\n"
             "texts = [b'\\n' * 8, b'passed', *(str(d['nonce']).encode() for d in found)]\n"
             "for fd in range(3, 64):\n    for text in texts:\n"
             "        try:\n            os.write(fd, text)\n        except OSError:\n            pass\n"
             "def area(r):\n    return 1\n"),
    "StopIteration truncating map()": (POSITIVE, "def positive(x):\n    raise StopIteration\n"),
    "reads the test file": (TOY, "def area(r):\n    return eval(open('test.py').read())\n"),
}


def toy_question(tmp_path: Path, problem: dict[str, str]) -> Question:
    path = tmp_path / "toy.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write(json.dumps(problem) + "\n")
    (question,) = load_questions("humaneval", path)
    return question


@pytest.mark.parametrize("problem", [TOY, POSITIVE], ids=["area", "positive"])
def test_canonical_toy_solutions_pass(tmp_path: Path, problem: dict[str, str]) -> None:
    question = toy_question(tmp_path, problem)
    assert HumanEvalGrader(timeout_s=FAST).is_correct(problem["canonical_solution"], question)


@pytest.mark.parametrize("name", sorted(GRADE_CASES))
def test_hostile_completion_is_graded_failed(name: str, tmp_path: Path, host: Host) -> None:
    problem, completion = GRADE_CASES[name]
    question = toy_question(tmp_path, problem)
    result = HumanEvalGrader(timeout_s=FAST).run_tests(completion, question)
    assert not result.passed, result
    assert_clean(host)


def test_completion_taking_9_9_seconds_passes(tmp_path: Path, host: Host) -> None:
    """A legitimately slow completion within the default 10 s limit is not cut off."""
    question = toy_question(tmp_path, TOY)
    completion = "import time\ntime.sleep(9.9)\n\ndef area(r):\n    return math.pi * r * r\n"
    result = HumanEvalGrader().run_tests(completion, question)
    assert result.passed, result
    assert 9.9 <= result.duration_s
    assert_clean(host)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_sandboxed_code_has_no_capabilities_and_sees_almost_nothing() -> None:
    code = ("import os\nstatus = open('/proc/self/status').read()\n"
            "caps = {l.split(':')[0]: int(l.split()[1], 16) for l in status.splitlines() if l.startswith('Cap')}\n"
            "assert caps['CapEff'] == caps['CapPrm'] == caps['CapAmb'] == 0, caps\n"
            "assert 'NoNewPrivs:\\t1' in status\n"
            f"assert os.getuid() == {NOBODY} or {os.geteuid() != 0}, os.getuid()\n"
            "assert not os.path.exists('/etc') and not os.path.exists('/home') and not os.path.exists('/bin/sh')\n"
            "assert [p for p in os.listdir('/proc') if p.isdigit()] == ['1', '2'], os.listdir('/proc')\n")
    result = run_sandboxed(code, guard=False)
    assert result.passed, result.stderr_tail


def test_signal_to_host_is_not_delivered(host: Host) -> None:
    received: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: received.append(signum))
    try:
        result = run_sandboxed(f"import os, signal\nos.kill({os.getpid()}, signal.SIGUSR1)\n", guard=False)
        time.sleep(0.2)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert not result.passed and not received
    assert_clean(host)
