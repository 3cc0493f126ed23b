"""Deterministic fake backends shared by the executor, real-evaluator, profiling and validate tests (no tests here)."""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence

from tts_sim.core.backend import BackendInfo, Generation, GenerationRequest

RESPONSE = re.compile(r"Response \d+:\n(.*?)(?=\n\nResponse \d+:|\n\n(?:Evaluate|Review|Synthesise)|\Z)", re.S)


def question_numbers(text: str) -> tuple[int, int] | None:
    m = re.search(r"What is (\d+) \+ (\d+)\?", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


class FakeBackend:
    """Answers addition questions from the prompt alone.

    Without predecessor responses in the prompt, model ``m`` answers ``a + b + offsets[m]`` plus a
    seed-dependent slip ``slips[seed % len(slips)]`` (none without ``slips``); with responses it answers their
    majority (ties: the smallest), so answers propagate visibly along edges. Token counts: words in the
    messages (prompt) and in the reply (completion). Timings: ``prefill_per_token`` x prompt tokens and
    ``decode_per_token`` x completion tokens, reported, not slept. Every ``generate`` call is logged.
    """

    name = "fake"

    def __init__(self, offsets: dict[str, int] | None = None, slips: tuple[int, ...] = (),
                 prefill_per_token: float = 1e-3, decode_per_token: float = 1e-2,
                 on_call: Callable[[str, Sequence[GenerationRequest]], None] | None = None) -> None:
        self.offsets = dict(offsets or {})
        self.slips = slips
        self.prefill_per_token, self.decode_per_token = prefill_per_token, decode_per_token
        self.calls: list[tuple[str, list[GenerationRequest]]] = []
        self.lock = threading.Lock()
        self.on_call = on_call

    def reply(self, model: str, request: GenerationRequest) -> str:
        user = request.messages[-1]["content"]
        answers = [int(x) for block in RESPONSE.findall(user) for x in re.findall(r"-?\d+", block)[-1:]]
        if answers:
            counts = Counter(answers)
            best = max(counts.values())
            return f"Having checked them, the answer is {min(a for a, c in counts.items() if c == best)}"
        nums = question_numbers(user)
        if nums is None:
            return "I do not know"
        slip = self.slips[request.seed % len(self.slips)] if self.slips and request.seed is not None else 0
        return f"Adding the numbers, the answer is {sum(nums) + self.offsets.get(model, 0) + slip}"

    def generate(self, model: str, requests: Sequence[GenerationRequest]) -> list[Generation]:
        with self.lock:
            self.calls.append((model, list(requests)))
        if self.on_call is not None:
            self.on_call(model, requests)
        out = []
        for r in requests:
            text = self.reply(model, r)
            prompt = sum(len(m["content"].split()) for m in r.messages)
            completion = min(len(text.split()), r.max_new_tokens)
            out.append(Generation(text, prompt, completion, self.prefill_per_token * prompt,
                                  self.decode_per_token * completion, "stop"))
        return out

    def info(self, model: str) -> BackendInfo:
        return BackendInfo("fake", "0", "FakeProvider", "fake-device", model, "fp32")
