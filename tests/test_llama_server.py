"""``benchmarks/llama_server.py`` against a stand-in server script (the real binary takes ~15 min to build)."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from benchmarks.llama_server import (
    CMAKE_FLAGS,
    LlamaServer,
    LlamaServerError,
    decode_tok_s,
    ensure_llama_server,
    free_port,
    main,
)

#: speaks the two endpoints the helper uses: /health and a streamed /completion ending with ``timings``
FAKE_SERVER = r'''#!PYTHON
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

args = sys.argv[1:]
port = int(args[args.index("--port") + 1])
threads = args[args.index("-t") + 1]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b'{"status":"ok"}')

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        n = body["n_predict"]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for i in range(n):
            self.wfile.write(f"data: {json.dumps({'content': 'x', 'stop': False})}\n\n".encode())
        timings = {"prompt_n": 7, "predicted_n": n, "predicted_ms": n * 10.0,
                   "predicted_per_second": 100.0 + n + int(threads), "omp": os.environ.get("OMP_WAIT_POLICY")}
        self.wfile.write(f"data: {json.dumps({'content': '', 'stop': True, 'timings': timings})}\n\n".encode())


HTTPServer(("127.0.0.1", port), Handler).serve_forever()
'''


@pytest.fixture
def fake_binary(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TTS_SIM_LLAMA_CPP_CACHE", str(tmp_path / "cache"))
    binary = tmp_path / "cache" / "9.9.9" / "bin" / "llama-server"
    binary.parent.mkdir(parents=True)
    binary.write_text(FAKE_SERVER.replace("PYTHON", sys.executable))
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    (binary.parents[1] / "BUILD_INFO.json").write_text(json.dumps({"cmake_flags": list(CMAKE_FLAGS)}))
    return binary


def test_a_cached_binary_is_reused_without_building(fake_binary, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # no cmake: a build attempt would fail
    assert ensure_llama_server("9.9.9") == fake_binary


def test_a_binary_built_with_other_flags_is_rebuilt(fake_binary, monkeypatch):
    (fake_binary.parents[1] / "BUILD_INFO.json").write_text(json.dumps({"cmake_flags": ["-DGGML_NATIVE=ON"]}))
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(LlamaServerError, match="cmake"):
        ensure_llama_server("9.9.9")


def test_building_without_cmake_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TTS_SIM_LLAMA_CPP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LlamaServerError, match="cmake") as err:
        ensure_llama_server("9.9.8")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "cache" / "9.9.8").exists()


def test_server_streams_text_and_timings(fake_binary, tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    with LlamaServer(fake_binary, gguf, threads=2, parallel=4) as server:
        assert server.port and server.process is not None
        out = server.complete("hello", max_tokens=5)
        assert out.text == "xxxxx"
        assert out.timings["predicted_n"] == 5 and out.decode_tok_s == 107.0
        assert out.timings["omp"] == "PASSIVE"  # no OpenMP busy-waiting on a shared machine
        process = server.process
    assert process.poll() is not None  # stopped on exit


def test_decode_tok_s_is_the_median_of_the_servers_timings(fake_binary, tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    report = decode_tok_s(fake_binary, gguf, threads=2, new_tokens=16, repeats=3)
    assert report["decode_tok_s"] == 118.0 and report["predicted_n"] == 16


def test_missing_gguf_and_a_crashing_server_are_one_line_errors(tmp_path):
    with pytest.raises(LlamaServerError, match="no such GGUF"):
        LlamaServer(tmp_path / "bin", tmp_path / "none.gguf").start()
    crash = tmp_path / "crash"
    crash.write_text("#!/bin/sh\necho 'error: unknown model format' >&2\nexit 3\n")
    crash.chmod(0o755)
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"x")
    with pytest.raises(LlamaServerError, match="exited with 3: error: unknown model format") as err:
        LlamaServer(crash, gguf, startup_timeout_s=10).start()
    assert "\n" not in str(err.value)


def test_cli_decode_prints_json_and_exit_2_on_errors(fake_binary, tmp_path, capsys):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert main(["decode", str(gguf), "--version", "9.9.9", "-n", "4"]) == 0
    assert json.loads(capsys.readouterr().out)["predicted_n"] == 4
    assert main(["decode", str(tmp_path / "none.gguf"), "--version", "9.9.9"]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_free_port_is_bindable():
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
