"""Latency tables from streamed token timings, against a fake streaming engine on 127.0.0.1 whose
step times are known: prefill 0.5 ms per prompt word, decode step 15 ms + 10 ms per active stream."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tts_sim.core.devices import CPU
from tts_sim.core.models import DEFAULT_CATALOG
from tts_sim.errors import ConfigError
from tts_sim.openai_client import ClientSettings, MalformedReply, OpenAIClient
from tts_sim.real.profiling.http_latency import decode_step, measure_http_latency_table
from tts_sim.sim.cluster import TablePredictor


def step_s(active: int) -> float:
    return 0.015 + 0.010 * active


class _Engine:
    def __init__(self) -> None:
        self.active = 0
        self.lock = threading.Lock()


def _handler(engine: _Engine, usage: bool):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            words = len(body["messages"][0]["content"].split())
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            time.sleep(0.0005 * words)  # prefill
            with engine.lock:
                engine.active += 1
            try:
                for i in range(body["max_tokens"]):
                    if i:
                        time.sleep(step_s(engine.active))
                    chunk = {"choices": [{"delta": {"content": "x "}, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
            finally:
                with engine.lock:
                    engine.active -= 1
            end = {"choices": [], **({"usage": {"prompt_tokens": words, "completion_tokens": body["max_tokens"]}}
                                     if usage else {})}
            self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
            self.wfile.flush()

    return Handler


@pytest.fixture()
def fake_url():
    servers = []

    def start(usage: bool = True) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(_Engine(), usage))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def test_decode_steps_by_batch_and_prefill_by_prompt_are_recovered(fake_url) -> None:
    client = OpenAIClient(ClientSettings(fake_url(), timeout_s=10, retries=0))
    table = measure_http_latency_table(client, "fake", name="smollm2-135m", prompt_words=(20, 200),
                                       batches=(1, 3), decode_tokens=8, decode_prompt_words=(10,), repeats=1,
                                       decode_stagger_s=0.0)
    assert (table.model, table.device) == ("smollm2-135m", "cpu")
    decode = {b: s for _, b, s in table.decode}
    assert decode[1] == pytest.approx(step_s(1), rel=0.3)
    assert decode[3] == pytest.approx(step_s(3), rel=0.3)
    # context: prompt words + the mean position of the timed tokens
    assert all(10 < c < 10 + 8 for c, _, _ in table.decode)
    prefill = {(n, b): s for n, b, s in table.prefill}
    assert prefill[(203, 1)] > prefill[(23, 1)] + 0.05  # "Request k. Repeat:" adds 3 words
    # the simulator reads it: its decode step at batch 3 is the measured one
    pred = TablePredictor([table])
    assert pred.decode_step_s(DEFAULT_CATALOG["smollm2-135m"], CPU, 14, 3) == pytest.approx(decode[3], rel=0.2)


def test_no_usage_or_no_overlap_is_an_error(fake_url) -> None:
    client = OpenAIClient(ClientSettings(fake_url(usage=False), timeout_s=10, retries=0))
    with pytest.raises(MalformedReply, match="prompt_tokens"):
        measure_http_latency_table(client, "fake", name="m", prompt_words=(5,), batches=(1,), decode_tokens=4,
                                   repeats=1)
    with pytest.raises(ConfigError):
        measure_http_latency_table(client, "fake", name="m", batches=(0,))
    assert decode_step([]) is None


def test_rounds_are_interleaved_and_each_decode_cell_is_one_row(fake_url, monkeypatch) -> None:
    from tts_sim.real.profiling import http_latency

    calls: list[tuple[int, int]] = []  # (batch, max_tokens) in the order sent
    staggers: set[tuple[int, float]] = set()
    real = http_latency.concurrent_chats

    def recording(client, bodies, stagger_s=0.0):
        calls.append((len(bodies), bodies[0]["max_tokens"]))
        staggers.add((bodies[0]["max_tokens"], stagger_s))
        return real(client, bodies, stagger_s)

    monkeypatch.setattr(http_latency, "concurrent_chats", recording)
    client = OpenAIClient(ClientSettings(base_url=fake_url(), timeout_s=10))
    table = measure_http_latency_table(client, "fake", name="smollm2-135m", prompt_words=(10,), batches=(1, 2),
                                       decode_tokens=6, decode_prompt_words=(10, 40), repeats=3,
                                       decode_stagger_s=0.01)
    one_round = [(1, 1), (2, 1), (1, 6), (2, 6), (1, 6), (2, 6)]  # prefill cells, then decode cells
    assert calls == one_round * 3  # every cell once per round, not one cell's rounds back to back
    assert staggers == {(1, 0.0), (6, 0.01)}  # prefill prompts together, decode streams staggered
    assert len(table.prefill) == 2 * 3  # a prefill row per round
    assert sorted((b, c < 25) for c, b, _ in table.decode) == [(1, False), (1, True), (2, False), (2, True)]


def test_staggered_streams_start_one_stagger_apart(fake_url) -> None:
    from tts_sim.real.profiling.http_latency import concurrent_chats, filler_prompt, stream_body

    client = OpenAIClient(ClientSettings(base_url=fake_url(), timeout_s=10))
    bodies = [stream_body("fake", filler_prompt(5, k), 4, {}) for k in range(3)]
    streams = concurrent_chats(client, bodies, stagger_s=0.05)
    starts = [s.started - streams[0].started for s in streams]
    assert starts[1] == pytest.approx(0.05, abs=0.03) and starts[2] == pytest.approx(0.10, abs=0.03)
    with pytest.raises(ConfigError, match="stagger"):
        measure_http_latency_table(client, "fake", name="smollm2-135m", decode_stagger_s=-1.0)


def test_the_decode_row_is_the_mean_of_its_rounds_or_on_request_their_median() -> None:
    from tts_sim.real.profiling.http_latency import HttpRounds

    rounds = HttpRounds(prefill=((40, 1, 0.2), (40, 1, 0.3)),
                        decode={(20, 2): ((70.0, 0.035), (71.0, 0.036), (70.0, 0.062)), (20, 1): ((69.0, 0.03),)})
    mean = {b: (c, s) for c, b, s in rounds.table("smollm2-135m").decode}
    median = {b: (c, s) for c, b, s in rounds.table("smollm2-135m", statistic="median").decode}
    assert mean[2] == (70, pytest.approx((0.035 + 0.036 + 0.062) / 3))  # one row per cell, context averaged
    assert median[2] == (70, pytest.approx(0.036))  # the slow round does not move the median
    assert mean[1] == median[1] == (69, pytest.approx(0.03))
    assert len(rounds.table("smollm2-135m").prefill) == 2  # every prefill round is a row
    assert rounds.to_dict()["decode"][0]["rounds"] == [[70.0, 0.035], [71.0, 0.036], [70.0, 0.062]]
    with pytest.raises(ConfigError, match="decode statistic"):
        rounds.table("smollm2-135m", statistic="max")
    with pytest.raises(MalformedReply, match="never overlapped"):
        HttpRounds((), {}).table("smollm2-135m")
