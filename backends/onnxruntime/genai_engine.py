"""Generation with ONNX Runtime GenAI (``onnxruntime-genai``) over a model made by its model builder.

The builder's graph fuses attention (``GroupQueryAttention``) and keeps the KV cache in a buffer shared
between steps; ``og.Generator`` runs prefill and decode. Tokenising stays with ``tokenizers`` (genai's own
tokenizer mis-encodes the GGUF-derived SmolLM2 ``tokenizer.json``), ids go in with ``append_tokens``.

Sampling: an all-greedy batch uses genai's own argmax (``generate_next_token``); otherwise the logits of
each step come back (``get_logits``), every row draws with its own ``SamplingParams`` and seed as
``OnnxEngine`` does, and the draws go back as logits that are -inf except at the chosen ids
(``set_logits``) for genai's greedy search to append (``append_tokens`` works only once per batch > 1).

Batching: only prompts of equal length share a generator; a call with mixed lengths runs one generator per
length, one after the other (the profiler's batches of one prompt sampled k times are one group). Measured
with onnxruntime-genai 0.18 on SmolLM2: a batch padded with an id absent from the prompts (left or right)
changes the shorter prompt's greedy tokens, so padding is not used. ``OnnxRuntimeBackend`` therefore groups a
call's requests by prompt length before cutting batches (``batch_rows``).

Continuous batching: onnxruntime-genai 0.18's ``og.Engine`` batches in flight only with PagedAttention models,
which its builder makes for CUDA fp16/bf16 only. On CPU it falls back to static batches (a new batch starts
when every request of the last one has finished), fails (``ENGINE_EXECUTION_FAILURE``) on our pruned-LM-head
builds, and on an unpruned SmolLM2 int4 build ran 5 chat prompts no faster than one at a time (0.88-1.1x,
``benchmarks/genai_og_engine.py``; default static batch 4); it is not used.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from tts_sim.errors import ConfigError

from .chat import render_chat
from .engine import GenerationResult, StepTiming, _Stream, append_token, filler_ids
from .manifest import ModelManifest
from .sampling import SamplingParams, choose_token

#: genai device names of onnxruntime execution providers
_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def _import_genai():
    try:
        import onnxruntime_genai as og
    except ImportError:
        raise ConfigError("this model needs onnxruntime-genai (pip install onnxruntime-genai; "
                          "onnxruntime-genai-cuda for --device cuda)") from None
    return og


class GenaiEngine:
    """Generate with one prepared genai model folder (``prepare_model(..., engine="genai")``).

    Same surface as ``OnnxEngine``: ``encode_chat``, ``generate``, ``generate_batch``, ``time_prefill``,
    ``time_decode``, ``manifest``, ``provider``, ``step_hook``."""

    #: prompts of different lengths never share a generator (the backend groups requests by length)
    equal_lengths_only = True

    def __init__(self, model_dir: Path, device: str = "cpu", threads: int | None = None,
                 step_hook: Callable[[StepTiming], None] | None = None, spin: bool = False) -> None:
        og = _import_genai()
        self._og = og
        self.model_dir = Path(model_dir)
        self.manifest = ModelManifest.read(self.model_dir)
        if device not in _PROVIDERS:
            raise ConfigError(f"unknown device {device!r} (choose from {', '.join(_PROVIDERS)})")
        for name in (self.manifest.onnx_file, "genai_config.json"):
            if not (self.model_dir / name).is_file():
                raise ConfigError(f"{self.model_dir}: missing {name} (prepare the model again)")
        try:
            self.tokenizer = Tokenizer.from_file(str(self.model_dir / self.manifest.tokenizer_file))
        except Exception as exc:  # tokenizers raises a bare Exception on malformed files
            raise ConfigError(f"{self.model_dir}: unreadable {self.manifest.tokenizer_file} ({exc})") from None
        if threads is not None and threads < 1:
            raise ConfigError(f"threads must be >= 1, got {threads}")
        options: dict[str, object] = {"allow_spinning": "1" if spin else "0"}
        if threads is not None:
            options |= {"intra_op_num_threads": threads, "inter_op_num_threads": 1}
        try:
            config = og.Config(str(self.model_dir))
            config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
            config.clear_providers()
            if device == "cuda":
                config.append_provider("cuda")
            self.model = og.Model(config)
        except RuntimeError as exc:
            if device == "cuda":
                raise ConfigError(f"--device cuda: onnxruntime-genai cannot run it on CUDA "
                                  f"({str(exc).splitlines()[0][:160]}; install onnxruntime-genai-cuda)") from None
            raise ConfigError(f"{self.model_dir}: onnxruntime-genai cannot load it "
                              f"({str(exc).splitlines()[0][:200]})") from None
        if device == "cuda" and "cuda" not in str(self.model.device_type).lower():
            raise ConfigError(f"--device cuda: onnxruntime-genai runs the model on {self.model.device_type} "
                              "(install onnxruntime-genai-cuda with matching CUDA and cuDNN)")
        self.device, self.threads, self.spin, self.step_hook = device, threads, spin, step_hook
        self.provider = _PROVIDERS[device]
        self.eos_ids = frozenset(self.manifest.eos_token_ids)
        self.pad_id = self.manifest.pad_token_id
        genai_config = json.loads((self.model_dir / "genai_config.json").read_text())
        self.context_length = int(genai_config["model"].get("context_length", 4096))
        self.min_length = int(self.manifest.sliding_window or 0)

    # ----- text ---------------------------------------------------------------------------------
    def apply_chat_template(self, messages: Sequence[Mapping[str, str]], add_generation_prompt: bool = True) -> str:
        return render_chat(self.manifest.chat_template, messages, bos_token=self.manifest.bos_token,
                           eos_token=self.manifest.eos_token, add_generation_prompt=add_generation_prompt)

    def encode_chat(self, messages: Sequence[Mapping[str, str]]) -> list[int]:
        return self.tokenizer.encode(self.apply_chat_template(messages), add_special_tokens=False).ids

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    # ----- generator plumbing ---------------------------------------------------------------------
    def _generator(self, batch: int, total_length: int):
        if total_length > self.context_length:
            raise ConfigError(f"prompt + new tokens = {total_length} exceeds the model's context "
                              f"({self.context_length})")
        params = self._og.GeneratorParams(self.model)
        # Gemma 3's sliding-window layers need a KV buffer at least the window long
        max_length = min(self.context_length, max(total_length, self.min_length))
        params.set_search_options(max_length=max_length, batch_size=batch, do_sample=False)
        return self._og.Generator(self.model, params)

    def _timed(self, kind: str, call: Callable, batch: int, context: int, new: int = 1, seconds: bool = False):
        """Run one forward pass ``call()``; report it to ``step_hook``; return its result (or its seconds)."""
        start = time.perf_counter()
        out = call()
        elapsed = time.perf_counter() - start
        if self.step_hook is not None:
            self.step_hook(StepTiming(kind, batch, new, context, elapsed))
        return elapsed if seconds else out

    # ----- generation -----------------------------------------------------------------------------
    def _as_ids(self, prompts: Sequence[Sequence[int] | str]) -> list[list[int]]:
        if isinstance(prompts, str) or not prompts:
            raise ConfigError("prompts must be a non-empty list of strings or token-id lists")
        vocab = self.manifest.vocab_size or self.tokenizer.get_vocab_size()
        out = []
        for i, prompt in enumerate(prompts):
            ids = self.encode(prompt) if isinstance(prompt, str) else [int(t) for t in prompt]
            if not ids:
                raise ConfigError(f"prompt {i} is empty")
            if min(ids) < 0 or max(ids) >= vocab:
                raise ConfigError(f"prompt {i} has token ids outside the vocabulary [0, {vocab})")
            out.append(ids)
        return out

    def generate(self, prompts: Sequence[Sequence[int]] | Sequence[str], max_new_tokens: int = 256,
                 temperature: float = 0.0, top_p: float = 1.0, stop: Sequence[str] = (),
                 seed: int | None = None) -> list[GenerationResult]:
        """Complete a batch of prompts; sequence ``i`` samples with seed ``seed + i``; temperature 0 is greedy."""
        params = [SamplingParams(max_new_tokens, temperature, top_p, tuple(stop),
                                 None if seed is None else seed + i) for i in range(len(prompts))]
        return self.generate_batch(prompts, params)

    def generate_batch(self, prompts: Sequence[Sequence[int]] | Sequence[str],
                       params: Sequence[SamplingParams]) -> list[GenerationResult]:
        """Like ``generate`` with one ``SamplingParams`` per prompt; prompts of equal length decode together."""
        ids = self._as_ids(prompts)
        if len(params) != len(ids):
            raise ConfigError(f"{len(ids)} prompts but {len(params)} sampling parameter sets")
        groups: dict[int, list[int]] = {}
        for row, prompt in enumerate(ids):
            groups.setdefault(len(prompt), []).append(row)
        results: list[GenerationResult | None] = [None] * len(ids)
        for rows in groups.values():
            for row, result in zip(rows, self._generate_group([ids[r] for r in rows], [params[r] for r in rows]),
                                   strict=True):
                results[row] = result
        return [r for r in results if r is not None]

    def _generate_group(self, ids: list[list[int]], params: list[SamplingParams]) -> list[GenerationResult]:
        batch, width = len(ids), len(ids[0])
        longest = max(p.max_new_tokens for p in params)
        generator = self._generator(batch, width + longest)
        streams = [_Stream(width, sp, np.random.default_rng(sp.seed)) for sp in params]
        greedy = all(sp.temperature == 0 for sp in params)
        prefill_s = self._timed("prefill", lambda: generator.append_tokens(np.asarray(ids, dtype=np.int32)), batch, 0,
                                new=width, seconds=True)
        decode_start = time.perf_counter()
        context = width
        while True:
            if greedy:  # genai's argmax; each call after the first runs the forward pass on the last tokens
                if context == width:
                    generator.generate_next_token()
                else:
                    self._timed("decode", generator.generate_next_token, batch, context - 1)
                chosen = generator.get_next_tokens()
            else:
                chosen = self._sampled_step(generator, batch, [None if s.finish is not None else (s.params, s.rng)
                                                               for s in streams], None if context == width
                                            else context - 1)
            for row, stream in enumerate(streams):
                if stream.finish is None:
                    append_token(stream, int(chosen[row]), self.eos_ids, self.decode)
                    if stream.finish is not None:
                        stream.done_at = time.perf_counter()
            if all(s.finish is not None for s in streams):
                break
            if generator.is_done():  # genai's own stop (its EOS ids are ours, max_length covers ours)
                for stream in streams:
                    if stream.finish is None:
                        stream.finish, stream.done_at = "length", time.perf_counter()
                        stream.text = self.decode(stream.tokens)
                break
            context += 1
        return [GenerationResult(text=s.text, token_ids=tuple(s.tokens), prompt_tokens=s.prompt_len,
                                 completion_tokens=len(s.tokens), prefill_s=prefill_s,
                                 decode_s=max(0.0, s.done_at - decode_start), finish_reason=s.finish or "length",
                                 provider=self.provider) for s in streams]

    def _vocab_size(self) -> int:
        return int(self.manifest.vocab_size or self.tokenizer.get_vocab_size())

    def time_prefill(self, prompt_len: int, batch: int = 1, repeats: int = 3) -> float:
        """Median seconds of one prefill of ``batch`` prompts of ``prompt_len`` tokens (after one warm-up)."""
        if prompt_len < 1 or batch < 1 or repeats < 1:
            raise ConfigError("prompt_len, batch and repeats must be >= 1")
        ids = filler_ids(self._vocab_size(), batch, prompt_len, np.int32)
        times = []
        for _ in range(repeats + 1):
            generator = self._generator(batch, prompt_len + 1)
            times.append(self._timed("prefill", lambda g=generator: g.append_tokens(ids), batch, 0, new=prompt_len,
                                     seconds=True))
        return statistics.median(times[1:])

    def _sampled_step(self, generator: Any, batch: int, rows: Sequence[tuple[SamplingParams, Any] | None],
                      context: int | None) -> np.ndarray:
        """One step of sampling: genai's logits (the forward pass on the last tokens, timed as a decode step at
        ``context``; None right after the prefill, whose logits are ready), our draw per row (``(params, rng)``;
        None: a finished row, fed padding), fed back as logits genai's argmax can only pick. The chosen ids."""
        logits = generator.get_logits() if context is None else self._timed("decode", generator.get_logits, batch,
                                                                            context)
        logits = logits.reshape(batch, -1)
        chosen = np.array([self.pad_id if row is None else choose_token(logits[r], row[0], row[1])
                           for r, row in enumerate(rows)], dtype=np.int64)
        forced = np.full_like(logits, -np.inf)
        forced[np.arange(batch), chosen] = 0.0
        generator.set_logits(forced)
        generator.generate_next_token()
        return chosen

    def time_decode(self, context: int, batch: int = 1, steps: int = 8, temperature: float = 0.0,
                    top_p: float = 1.0) -> float:
        """Median seconds of one decode step with ``context`` cached positions, over ``steps`` steps after one
        warm-up, as ``generate`` decodes: greedy, the forward pass on one new token per sequence and genai's
        argmax; with ``temperature`` > 0, also our nucleus draw per row (milliseconds per row on large
        vocabularies: Gemma's 262k ids) and feeding it back (``_sampled_step``)."""
        if context < 1 or batch < 1 or steps < 1:
            raise ConfigError("context, batch and steps must be >= 1")
        generator = self._generator(batch, context + steps + 2)
        generator.append_tokens(filler_ids(self._vocab_size(), batch, context, np.int32))
        if temperature == 0:
            generator.generate_next_token()  # the first pick uses the prefill's logits
            times = [self._timed("decode", generator.generate_next_token, batch, context + step, seconds=True)
                     for step in range(steps + 1)]
            return statistics.median(times[1:])
        rows = [(SamplingParams(steps + 2, temperature, top_p), np.random.default_rng(r)) for r in range(batch)]
        self._sampled_step(generator, batch, rows, None)
        times = []
        for step in range(steps + 1):
            start = time.perf_counter()
            self._sampled_step(generator, batch, rows, context + step)
            times.append(time.perf_counter() - start)
        return statistics.median(times[1:])
