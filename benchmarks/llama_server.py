"""llama.cpp's ``llama-server`` as a reference peer: build it from PyPI sources, run it, measure decode speed.

The llama.cpp sources come from the ``llama-cpp-python`` source distribution on PyPI (it vendors
llama.cpp under ``vendor/llama.cpp``): ``pip download --no-deps --no-binary :all:``, then cmake builds only
the ``llama-server`` target (Release, ``-DGGML_NATIVE=ON``). The binary is cached under
``~/.cache/tts-sim/llama.cpp/<version>/bin/llama-server`` (built in a temporary folder, renamed into place,
so a failed build leaves nothing behind; a second call is a no-op).

    python benchmarks/llama_server.py build                   # prints the binary's path
    python benchmarks/llama_server.py decode MODEL.gguf -t 2  # single-stream decode tok/s from `timings`

Reuse from Python (``sys.path`` holding the repository root)::

    from benchmarks.llama_server import LlamaServer, ensure_llama_server
    with LlamaServer(ensure_llama_server(), gguf, threads=2, parallel=4) as server:
        server.complete("Hello", max_tokens=64)   # -> dict with text and the server's timings
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: llama-cpp-python release whose vendored llama.cpp is built (newest on PyPI, 2026-10)
DEFAULT_VERSION = "0.3.36"
#: cmake flags of the build. AMX is compiled out: on this machine type the CPU reports AMX and
#: -march=native enables it, but llama.cpp's AMX matmul (used for repacked weights) segfaults at the first
#: forward pass (gdb: ggml_backend_amx_mul_mat); the AVX-512 paths remain. A cached binary built with other
#: flags is rebuilt.
CMAKE_FLAGS = ("-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=ON", "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF",
               "-DLLAMA_BUILD_EXAMPLES=OFF", "-DBUILD_SHARED_LIBS=OFF",
               "-DCMAKE_C_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16",
               "-DCMAKE_CXX_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16")


class LlamaServerError(RuntimeError):
    """Building, starting or querying llama-server failed (message is one line)."""


def cache_root() -> Path:
    """``$TTS_SIM_LLAMA_CPP_CACHE`` or ``~/.cache/tts-sim/llama.cpp``."""
    env = os.environ.get("TTS_SIM_LLAMA_CPP_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tts-sim" / "llama.cpp"


def binary_path(version: str = DEFAULT_VERSION) -> Path:
    return cache_root() / version / "bin" / "llama-server"


def _run(cmd: Sequence[str], log: Path, cwd: Path | None = None) -> None:
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        done = subprocess.run(list(cmd), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [""]
        raise LlamaServerError(f"`{' '.join(cmd[:3])} ...` failed (exit {done.returncode}): {tail[0][:200]} "
                               f"(log: {log})")


def ensure_llama_server(version: str = DEFAULT_VERSION, jobs: int = 2, progress=print) -> Path:
    """The cached ``llama-server`` binary of llama-cpp-python ``version``'s llama.cpp, building it if absent.

    Cost here (2 shared cores): download ~40 s, build ~10-15 min. Needs cmake, a C++ compiler and pip."""
    target = cache_root() / version
    binary = target / "bin" / "llama-server"
    if binary.is_file() and os.access(binary, os.X_OK) and _built_flags(target) == list(CMAKE_FLAGS):
        return binary
    if shutil.which("cmake") is None or shutil.which("c++") is None:
        raise LlamaServerError("building llama-server needs cmake and a C++ compiler on PATH")
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{version}.tmp", dir=target.parent))
    log = target.parent / f"build-{version}.log"
    log.write_text("")
    try:
        progress(f"llama-server {version}: downloading the llama-cpp-python sdist (log: {log})")
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
              f"llama-cpp-python=={version}", "-d", str(work / "sdist")], log)
        archives = list((work / "sdist").glob("llama_cpp_python-*.tar.gz"))
        if not archives:
            raise LlamaServerError(f"pip did not download a llama-cpp-python {version} source archive")
        with tarfile.open(archives[0]) as tar:
            members = [m for m in tar.getmembers() if "/vendor/llama.cpp/" in m.name]
            if not members:
                raise LlamaServerError(f"{archives[0].name} has no vendor/llama.cpp sources")
            tar.extractall(work / "src", members=members, filter="data")
        source = next((work / "src").glob("*/vendor/llama.cpp"))
        build = work / "build"
        progress(f"llama-server {version}: cmake configure + build (Release, GGML_NATIVE=ON, -j{jobs}); "
                 "about 10-15 min on 2 cores")
        _run(["cmake", "-S", str(source), "-B", str(build), *CMAKE_FLAGS], log)
        _run(["cmake", "--build", str(build), "--config", "Release", "--target", "llama-server", f"-j{jobs}"], log)
        built = build / "bin" / "llama-server"
        if not built.is_file():
            raise LlamaServerError(f"the build finished without {built}")
        staged = work / "install"
        (staged / "bin").mkdir(parents=True)
        shutil.copy2(built, staged / "bin" / "llama-server")
        (staged / "BUILD_INFO.json").write_text(json.dumps({
            "llama_cpp_python": version, "cmake_flags": list(CMAKE_FLAGS),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        staged.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    progress(f"llama-server {version}: ready at {binary}")
    return binary


def _built_flags(target: Path) -> list[str] | None:
    try:
        return json.loads((target / "BUILD_INFO.json").read_text()).get("cmake_flags")
    except (OSError, ValueError):
        return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Completion:
    text: str
    timings: dict  # llama-server's: prompt_n, prompt_ms, predicted_n, predicted_ms, predicted_per_second, ...

    @property
    def decode_tok_s(self) -> float:
        return float(self.timings.get("predicted_per_second", 0.0))


class LlamaServer:
    """A ``llama-server`` process on a free 127.0.0.1 port, started on ``__enter__``/``start`` and stopped on
    ``__exit__``/``stop``. ``parallel`` is its ``-np`` (slots decoded together). ``spin``: let OpenMP
    workers busy-wait (default off, like ``OnnxEngine``/``GenaiEngine``)."""

    def __init__(self, binary: Path, gguf: Path, threads: int = 2, parallel: int = 1, ctx_size: int = 4096,
                 port: int | None = None, extra_args: Sequence[str] = (), startup_timeout_s: float = 120.0,
                 spin: bool = False) -> None:
        self.binary, self.gguf, self.threads, self.parallel = Path(binary), Path(gguf), threads, parallel
        self.ctx_size, self.port, self.extra_args = ctx_size, port, list(extra_args)
        self.startup_timeout_s, self.spin = startup_timeout_s, spin
        self.process: subprocess.Popen | None = None
        self.log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LlamaServer:
        if not self.gguf.is_file():
            raise LlamaServerError(f"{self.gguf}: no such GGUF file")
        self.port = self.port or free_port()
        handle, name = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
        os.close(handle)
        self.log_path = Path(name)
        cmd = [str(self.binary), "-m", str(self.gguf), "--host", "127.0.0.1", "--port", str(self.port),
               "-t", str(self.threads), "-tb", str(self.threads), "-np", str(self.parallel),
               "-c", str(self.ctx_size * self.parallel), "--no-webui", *self.extra_args]
        with self.log_path.open("w") as log:
            # OpenMP workers busy-wait by default; on a shared machine that is pathological (measured here at
            # load 10 on 2 cores: SmolLM2 1.0 tok/s spinning, 27-36 passive). ONNX Runtime runs without spinning too.
            env = dict(os.environ) if self.spin else {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-1:] or [""]
                raise LlamaServerError(f"llama-server exited with {self.process.returncode}: {tail[0][:200]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as reply:
                    if reply.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        self.stop()
        raise LlamaServerError(f"llama-server did not become healthy within {self.startup_timeout_s:.0f} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def complete(self, prompt: str | list[int], max_tokens: int = 128, temperature: float = 0.0,
                 ignore_eos: bool = True, stream: bool = True, timeout_s: float = 600.0) -> Completion:
        """One ``/completion`` request (streamed by default); returns the text and the final ``timings``."""
        body = {"prompt": prompt, "n_predict": max_tokens, "temperature": temperature, "ignore_eos": ignore_eos,
                "stream": stream, "cache_prompt": False, "seed": 0}
        request = urllib.request.Request(f"{self.url}/completion", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        text, timings = [], {}
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as reply:
                if not stream:
                    data = json.loads(reply.read())
                    return Completion(data.get("content", ""), data.get("timings", {}))
                for raw in reply:
                    line = raw.decode().strip()
                    if not line.startswith("data:"):
                        continue
                    event = json.loads(line[5:])
                    text.append(event.get("content", ""))
                    if event.get("timings"):
                        timings = event["timings"]
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError) as exc:
            raise LlamaServerError(f"llama-server request failed: {exc}") from None
        return Completion("".join(text), timings)


def decode_tok_s(binary: Path, gguf: Path, threads: int = 2, new_tokens: int = 128, repeats: int = 3,
                 prompt: str = "Write a long story about a robot who learns to paint.",
                 extra_args: Sequence[str] = ()) -> dict:
    """Median single-stream decode tok/s (llama-server's own ``timings.predicted_per_second``) over
    ``repeats`` greedy completions of ``new_tokens`` tokens (EOS ignored), after one warm-up."""
    with LlamaServer(binary, gguf, threads=threads, parallel=1, extra_args=extra_args) as server:
        server.complete(prompt, max_tokens=8)
        runs = [server.complete(prompt, max_tokens=new_tokens) for _ in range(repeats)]
    speeds = sorted(r.decode_tok_s for r in runs)
    return {"decode_tok_s": round(speeds[len(speeds) // 2], 1), "runs_tok_s": [round(s, 1) for s in speeds],
            "prompt_tokens": runs[0].timings.get("prompt_n"), "predicted_n": runs[0].timings.get("predicted_n"),
            "threads": threads, "binary": str(binary)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build (or find) the cached llama-server binary; print its path")
    build.add_argument("--version", default=DEFAULT_VERSION)
    build.add_argument("-j", "--jobs", type=int, default=2)
    decode = sub.add_parser("decode", help="single-stream decode tok/s of a GGUF on llama-server")
    decode.add_argument("gguf", type=Path)
    decode.add_argument("-t", "--threads", type=int, default=2)
    decode.add_argument("-n", "--new-tokens", type=int, default=128)
    decode.add_argument("--version", default=DEFAULT_VERSION)
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            print(ensure_llama_server(args.version, args.jobs, progress=lambda m: print(m, file=sys.stderr)))
        else:
            binary = ensure_llama_server(args.version, progress=lambda m: print(m, file=sys.stderr))
            print(json.dumps(decode_tok_s(binary, args.gguf, args.threads, args.new_tokens)))
    except LlamaServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
