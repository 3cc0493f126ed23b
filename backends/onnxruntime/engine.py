"""Text generation on onnxruntime + tokenizers + numpy alone (no torch at run time).

One forward pass per step over an optimum ``text-generation-with-past`` export: the prompt batch is left
padded, with an attention mask and (for graphs that take them, e.g. LLaMA) position ids counted over the
real tokens; the ``present.*`` outputs are bound back as ``past_key_values.*`` inputs without copies.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from tts_sim.core.backend import stop_at
from tts_sim.errors import ConfigError

from .chat import render_chat
from .manifest import ModelManifest
from .sampling import SamplingParams, choose_token

_NP_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64}


@dataclass(frozen=True)
class GenerationResult:
    """One completed sequence. ``decode_s`` covers the forward passes after prefill until it finished."""

    text: str
    token_ids: tuple[int, ...]
    prompt_tokens: int
    completion_tokens: int
    prefill_s: float  # the whole batch's prefill (shared by every sequence of the batch)
    decode_s: float
    finish_reason: str  # "stop" (EOS or stop string) | "length"
    provider: str


@dataclass(frozen=True)
class StepTiming:
    """One forward pass, reported to ``OnnxEngine.step_hook``."""

    kind: str  # "prefill" | "decode"
    batch: int
    new_tokens: int  # positions per sequence fed in this pass (prompt length at prefill, 1 at decode)
    context: int  # positions per sequence already in the KV cache before this pass
    seconds: float


def _pick_providers(providers: Sequence[str] | None) -> list[str]:
    available = ort.get_available_providers()
    if providers is None:
        preferred = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return [p for p in preferred if p in available] or ["CPUExecutionProvider"]
    missing = [p for p in providers if p not in available]
    if missing:
        raise ConfigError(f"onnxruntime provider(s) {', '.join(missing)} not available "
                          f"(this build has: {', '.join(available)})")
    return list(providers)


def require_cuda(session_providers: Sequence[str]) -> None:
    """Raise unless the session runs on CUDA (onnxruntime-gpu without CUDA/cuDNN falls back to the CPU)."""
    if "CUDAExecutionProvider" not in session_providers:
        raise ConfigError(f"--device cuda: onnxruntime fell back to {', '.join(session_providers)} "
                          f"(onnxruntime {ort.__version__} provides {', '.join(ort.get_available_providers())}; "
                          "install onnxruntime-gpu with matching CUDA and cuDNN)")


class _Stream:
    """Book-keeping of one sequence while its batch decodes."""

    def __init__(self, prompt_len: int, params: SamplingParams, rng: np.random.Generator) -> None:
        self.prompt_len, self.params, self.rng = prompt_len, params, rng
        self.tokens: list[int] = []
        self.text = ""
        self.finish: str | None = None
        self.done_at = 0.0


class OnnxEngine:
    """Generate with one prepared model folder (see ``prepare_model``)."""

    def __init__(self, model_dir: Path, providers: list[str] | None = None, threads: int | None = None,
                 step_hook: Callable[[StepTiming], None] | None = None, spin: bool = False,
                 device: str = "cpu") -> None:
        """``device="cuda"``: the session must run on the CUDA execution provider (a ``ConfigError`` when
        onnxruntime falls back to the CPU, which it otherwise does silently). ``threads``: intra-op threads
        (default: onnxruntime's choice, one per core). ``spin``: let idle pool threads busy-wait; faster on a
        machine of one's own, but on a shared one it halves decode speed
        (measured: SmolLM2 int4, 2 threads, another process on one of the 2 cores: 32.7 ms/step spinning,
        16.1 ms not)."""
        self.model_dir = Path(model_dir)
        self.manifest = ModelManifest.read(self.model_dir)
        onnx_path = self.model_dir / self.manifest.onnx_file
        if not onnx_path.is_file():
            raise ConfigError(f"{self.model_dir}: missing {self.manifest.onnx_file}")
        try:
            self.tokenizer = Tokenizer.from_file(str(self.model_dir / self.manifest.tokenizer_file))
        except Exception as exc:  # tokenizers raises a bare Exception on malformed files
            raise ConfigError(f"{self.model_dir}: unreadable {self.manifest.tokenizer_file} ({exc})") from None
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            if threads < 1:
                raise ConfigError(f"threads must be >= 1, got {threads}")
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "1" if spin else "0")
        self.threads, self.spin = threads, spin
        if device == "cuda" and providers is None:
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(onnx_path), options, providers=_pick_providers(providers))
        self.provider: str = self.session.get_providers()[0]
        if device == "cuda":
            require_cuda(self.session.get_providers())
        self._device = "cuda" if self.provider == "CUDAExecutionProvider" else "cpu"
        self.step_hook = step_hook

        inputs = {i.name: i for i in self.session.get_inputs()}
        for required in ("input_ids", "attention_mask"):
            if required not in inputs:
                raise ConfigError(f"{onnx_path}: graph has no {required!r} input (not a text-generation export)")
        self.past_names = sorted((n for n in inputs if n.startswith("past_key_values.")),
                                 key=lambda n: (int(n.split(".")[1]), n.split(".")[2]))
        if not self.past_names:
            raise ConfigError(f"{onnx_path}: graph has no past_key_values inputs (export with -with-past)")
        self.has_position_ids = "position_ids" in inputs
        first = inputs[self.past_names[0]]
        self.kv_dtype = _NP_TYPES.get(first.type, np.float32)
        self.kv_heads, self.head_dim = int(first.shape[1]), int(first.shape[3])
        self.present_names = ["present." + n.split(".", 1)[1] for n in self.past_names]
        outputs = {o.name for o in self.session.get_outputs()}
        missing = [n for n in ["logits", *self.present_names] if n not in outputs]
        if missing:
            raise ConfigError(f"{onnx_path}: graph lacks output(s) {missing[:3]}")
        self.eos_ids = frozenset(self.manifest.eos_token_ids)
        self.pad_id = self.manifest.pad_token_id

    # ----- text ---------------------------------------------------------------------------------
    def apply_chat_template(self, messages: Sequence[Mapping[str, str]], add_generation_prompt: bool = True) -> str:
        """The model's chat template rendered for ``messages`` (ready to encode without extra specials)."""
        return render_chat(self.manifest.chat_template, messages, bos_token=self.manifest.bos_token,
                           eos_token=self.manifest.eos_token, add_generation_prompt=add_generation_prompt)

    def encode_chat(self, messages: Sequence[Mapping[str, str]]) -> list[int]:
        return self.tokenizer.encode(self.apply_chat_template(messages), add_special_tokens=False).ids

    def encode(self, text: str) -> list[int]:
        """Token ids of raw text, with the tokenizer's own special tokens (e.g. BOS)."""
        return self.tokenizer.encode(text).ids

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    # ----- forward passes -----------------------------------------------------------------------
    def _empty_past(self, batch: int) -> dict[str, ort.OrtValue]:
        empty = np.zeros((batch, self.kv_heads, 0, self.head_dim), dtype=self.kv_dtype)
        return {name: ort.OrtValue.ortvalue_from_numpy(empty, self._device) for name in self.past_names}

    def _forward(self, input_ids: np.ndarray, mask: np.ndarray, past: dict[str, ort.OrtValue],
                 ) -> tuple[np.ndarray, dict[str, ort.OrtValue]]:
        """One pass; returns last-position logits [batch, vocab] and the new KV cache."""
        binding = self.session.io_binding()
        binding.bind_cpu_input("input_ids", input_ids)
        binding.bind_cpu_input("attention_mask", mask)
        if self.has_position_ids:
            positions = np.clip(np.cumsum(mask, axis=1) - 1, 0, None)[:, -input_ids.shape[1]:]
            binding.bind_cpu_input("position_ids", np.ascontiguousarray(positions, dtype=np.int64))
        for name, value in past.items():
            binding.bind_ortvalue_input(name, value)
        binding.bind_output("logits", "cpu")
        for name in self.present_names:
            binding.bind_output(name, self._device)
        self.session.run_with_iobinding(binding)
        outputs = binding.get_outputs()
        logits = outputs[0].numpy()[:, -1, :]
        new_past = {past_name: value for past_name, value in zip(self.past_names, outputs[1:], strict=True)}
        return logits, new_past

    def _timed_forward(self, kind: str, input_ids: np.ndarray, mask: np.ndarray, past: dict[str, ort.OrtValue]
                       ) -> tuple[np.ndarray, dict[str, ort.OrtValue], float]:
        start = time.perf_counter()
        logits, past = self._forward(input_ids, mask, past)
        seconds = time.perf_counter() - start
        if self.step_hook is not None:
            self.step_hook(StepTiming(kind, input_ids.shape[0], input_ids.shape[1],
                                      mask.shape[1] - input_ids.shape[1], seconds))
        return logits, past, seconds

    # ----- generation -----------------------------------------------------------------------------
    def _as_ids(self, prompts: Sequence[Sequence[int] | str]) -> list[list[int]]:
        if isinstance(prompts, str) or not prompts:
            raise ConfigError("prompts must be a non-empty list of strings or token-id lists")
        out = []
        for i, prompt in enumerate(prompts):
            ids = self.encode(prompt) if isinstance(prompt, str) else [int(t) for t in prompt]
            if not ids:
                raise ConfigError(f"prompt {i} is empty")
            vocab = self.manifest.vocab_size or self.tokenizer.get_vocab_size()
            if min(ids) < 0 or max(ids) >= vocab:
                raise ConfigError(f"prompt {i} has token ids outside the vocabulary [0, {vocab})")
            out.append(ids)
        return out

    def generate(self, prompts: Sequence[Sequence[int]] | Sequence[str], max_new_tokens: int = 256,
                 temperature: float = 0.0, top_p: float = 1.0, stop: Sequence[str] = (),
                 seed: int | None = None) -> list[GenerationResult]:
        """Complete a batch of prompts (token-id lists, or raw text encoded with the tokenizer's specials).

        Sequence ``i`` samples with seed ``seed + i``; ``temperature == 0`` is greedy.
        """
        params = [SamplingParams(max_new_tokens, temperature, top_p, tuple(stop),
                                 None if seed is None else seed + i) for i in range(len(prompts))]
        return self.generate_batch(prompts, params)

    def generate_batch(self, prompts: Sequence[Sequence[int]] | Sequence[str],
                       params: Sequence[SamplingParams]) -> list[GenerationResult]:
        """Like ``generate`` with one ``SamplingParams`` per prompt (all decoded in one batch)."""
        ids = self._as_ids(prompts)
        if len(params) != len(ids):
            raise ConfigError(f"{len(ids)} prompts but {len(params)} sampling parameter sets")
        batch, width = len(ids), max(len(p) for p in ids)
        input_ids = np.full((batch, width), self.pad_id, dtype=np.int64)
        mask = np.zeros((batch, width), dtype=np.int64)
        for row, prompt in enumerate(ids):
            input_ids[row, width - len(prompt):] = prompt
            mask[row, width - len(prompt):] = 1
        streams = [_Stream(len(p), sp, np.random.default_rng(sp.seed)) for p, sp in zip(ids, params, strict=True)]

        logits, past, prefill_s = self._timed_forward("prefill", input_ids, mask, self._empty_past(batch))
        decode_start = time.perf_counter()
        while True:
            next_ids = np.full((batch, 1), self.pad_id, dtype=np.int64)
            for row, stream in enumerate(streams):
                if stream.finish is None:
                    token = choose_token(logits[row], stream.params, stream.rng)
                    append_token(stream, token, self.eos_ids, self.decode)
                    if stream.finish is not None:
                        stream.done_at = time.perf_counter()
                    next_ids[row, 0] = token
            if all(s.finish is not None for s in streams):
                break
            mask = np.concatenate([mask, np.ones((batch, 1), dtype=np.int64)], axis=1)
            logits, past, _ = self._timed_forward("decode", next_ids, mask, past)
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
        ids = filler_ids(self._vocab_size(), batch, prompt_len, np.int64)
        mask = np.ones_like(ids)
        times = [self._timed_forward("prefill", ids, mask, self._empty_past(batch))[2] for _ in range(repeats + 1)]
        return statistics.median(times[1:])

    def time_decode(self, context: int, batch: int = 1, steps: int = 8, temperature: float = 0.0,
                    top_p: float = 1.0) -> float:
        """Median seconds of one decode step (one new token per sequence) with ``context`` cached positions:
        the token choice as ``generate`` makes it (argmax, or per row the nucleus draw when ``temperature``
        > 0: it costs milliseconds per row on large vocabularies) and the forward pass."""
        if context < 1 or batch < 1 or steps < 1:
            raise ConfigError("context, batch and steps must be >= 1")
        ids = filler_ids(self._vocab_size(), batch, context, np.int64)
        mask = np.ones_like(ids)
        logits, past = self._forward(ids, mask, self._empty_past(batch))
        params, rng = SamplingParams(steps + 2, temperature, top_p), np.random.default_rng(0)
        times = []
        for _ in range(steps + 1):
            start = time.perf_counter()
            next_ids = np.array([[choose_token(row, params, rng)] for row in logits], dtype=np.int64)
            mask = np.ones((batch, mask.shape[1] + 1), dtype=np.int64)
            logits, past, _ = self._timed_forward("decode", next_ids, mask, past)
            times.append(time.perf_counter() - start)
        return statistics.median(times[1:])


def append_token(stream: _Stream, token: int, eos_ids: frozenset[int] | set[int],
                 decode: Callable[[list[int]], str]) -> None:
    """Add ``token`` to ``stream`` and settle it when it ends: an end-of-sequence id, a stop string
    (the text is cut before it; ``stop_at``: never in leading whitespace) or ``max_new_tokens``
    (shared by both engines)."""
    stream.tokens.append(token)
    if token in eos_ids:
        stream.finish = "stop"
        stream.text = decode(stream.tokens[:-1])
        return
    if stream.params.stop:
        text = decode(stream.tokens)
        cut = stop_at(text, stream.params.stop)
        if cut is not None:
            stream.text, stream.finish = text[:cut], "stop"
            return
    if len(stream.tokens) >= stream.params.max_new_tokens:
        stream.finish = "length"
        stream.text = decode(stream.tokens)


def filler_ids(vocab_size: int, batch: int, length: int, dtype: type, seed: int = 0) -> np.ndarray:
    """Deterministic ordinary token ids (no specials) to fill prompts for timing."""
    rng = np.random.default_rng(seed)
    return rng.integers(min(1000, vocab_size // 2), vocab_size, size=(batch, length), dtype=dtype)
