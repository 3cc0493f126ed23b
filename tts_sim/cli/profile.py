"""``tts-sim profile``: measure a real model (latency tables, answer banks, fusion calibration) into a
Profile file. Also the backend options and factory that ``validate`` shares."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tts_sim.cli.models import QUANTIZATIONS
from tts_sim.cli.options import (
    add_quiet,
    int_list,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    probability,
    progress_printer,
)
from tts_sim.core.backend import Backend
from tts_sim.errors import ConfigError
from tts_sim.registry import parse_set_options

#: Convenience flags -> backend option names; each is passed only when given, and the chosen backend's
#: config dataclass rejects options it does not have (``--backend-option KEY=VALUE`` reaches any option).
_BACKEND_FLAGS = {"quantization": "quantization", "threads": "threads", "max_batch": "max_batch",
                  "cache_dir": "cache_dir", "base_url": "base_url", "api_key": "api_key", "stream": "stream",
                  "timeout": "timeout_s", "device": "device", "engine": "engine"}


def add_backend_options(p: argparse.ArgumentParser) -> None:
    """Options choosing and configuring the real backend (shared with ``validate``)."""

    g = p.add_argument_group("backend")
    g.add_argument("--backend", default="onnx", help="a registered backend: onnx (local ONNX Runtime), openai "
                                                     "(an OpenAI-compatible server: vLLM, llama.cpp server, Ollama)")
    g.add_argument("--backend-option", action="append", metavar="KEY=VALUE",
                   help="any option of the backend's config (repeatable)")
    g.add_argument("--quantization", "-q", choices=QUANTIZATIONS,
                   help="onnx weights (default fp32; int4-b128, fp16: genai engine only; int8-dynamic: onnx only)")
    g.add_argument("--engine", choices=("onnx", "genai"),
                   help="onnx backend: optimum export + numpy loop (default), or genai: onnxruntime-genai (fused "
                        "attention, fastest)")
    g.add_argument("--threads", type=positive_int, help="onnx: intra-op threads (default: onnxruntime's)")
    g.add_argument("--max-batch", type=positive_int, help="onnx: sequences decoded together (default 8)")
    g.add_argument("--cache-dir", help="onnx: prepared models (default: $TTS_SIM_CACHE or ~/.cache/tts-sim/models)")
    g.add_argument("--base-url", help="openai: the server's API root (default http://127.0.0.1:8000/v1)")
    g.add_argument("--api-key", help="openai: bearer token, if the server wants one")
    g.add_argument("--stream", action="store_true", default=None, help="openai: stream, to measure time to first "
                                                                      "token")
    g.add_argument("--timeout", type=positive_float, help="openai: seconds per request (default 300)")
    g.add_argument("--device", help="device name for latency tables (a DEVICES name such as cpu or H100; "
                                    "default: from the backend; required for openai); onnx: 'cuda' runs on the "
                                    "CUDA execution provider (an error if it would fall back to the CPU)")


def make_backend(args: argparse.Namespace) -> Backend:
    """The backend the options describe, built through the ``BACKENDS`` registry."""
    from tts_sim.backends import BACKENDS

    options: dict[str, Any] = parse_set_options(args.backend_option)
    known = BACKENDS.options(args.backend)
    for flag, key in _BACKEND_FLAGS.items():
        value = getattr(args, flag, None)
        if value is None or (flag == "device" and key not in known):
            continue
        options[key] = value
    backend: Backend = BACKENDS.build(args.backend, options)
    return backend


def journal_path(out: Path) -> Path:
    """The default journal next to profile ``out``: ``p.json.gz`` -> ``p.journal.jsonl``."""
    name = out.name
    for suffix in (".json.gz", ".json"):
        if name.endswith(suffix):
            name = name[:-len(suffix)]
            break
    return out.with_name(name + ".journal.jsonl")


def call_bar(total: int, done: int) -> Any:
    """The progress bar over the profile's backend calls (``tts_sim.progress``)."""
    from tts_sim import progress

    return progress.call_bar(total, done, desc="profile calls")


def register(subparsers: argparse._SubParsersAction) -> None:
    from tts_sim.cli.options import add_common
    from tts_sim.real.profiling.latency import (
        DEFAULT_BATCH_SIZES,
        DEFAULT_CONTEXTS,
        DEFAULT_PASSES,
        DEFAULT_PROMPT_LENGTHS,
    )

    p = subparsers.add_parser("profile", help="measure a real model: latency tables, answer banks, fusion runs")
    p.add_argument("--model", "-m", action="append", required=True,
                   help="catalog model to profile, NAME or NAME=BACKEND_MODEL (repeat for several)")
    add_common(p)
    p.add_argument("--data", help="the task's data file (tasks without packaged data)")
    p.add_argument("--questions", type=positive_int, default=20, help="questions in the answer banks")
    p.add_argument("--offset", type=non_negative_int, default=0, help="skip this many questions of the pool")
    p.add_argument("--samples", "-k", type=positive_int, default=8, help="answers sampled per question and model")
    p.add_argument("--fusion-records", type=non_negative_int, default=40,
                   help="fusion calls (records) from small graphs over bank replies: width 1-4, depth 1-2, "
                        "1-4 inputs per node")
    p.add_argument("--deep-records", type=non_negative_int, default=0,
                   help="at least this many more fusion records from graphs three levels of calls deep over bank "
                        "replies (nodes reading refined or fused answers of refined answers); a profile can be "
                        "given more of them later from the same journal")
    p.add_argument("--fusion-graphs", type=non_negative_int, default=0,
                   help="random small graphs run end to end for more fusion records (not journaled: a resumed "
                        "run repeats them)")
    p.add_argument("--max-new-tokens", type=positive_int, default=256)
    p.add_argument("--temperature", type=non_negative_float, default=0.7)
    p.add_argument("--top-p", type=probability, default=1.0)
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--batch", type=positive_int, default=16,
                   help="requests per backend call (calls of all questions are batched; a resumed run may change it)")
    p.add_argument("--no-latency", action="store_true", help="skip the latency tables")
    p.add_argument("--no-banks", action="store_true", help="skip answer banks and fusion calibration")
    p.add_argument("--retime", metavar="PROFILE",
                   help="time the latency tables again (on this machine, now) and write PROFILE with them in place "
                        "of its own to -o: its answer banks and fusion records kept (implies --no-banks; give the "
                        "models, backend and grid PROFILE's tables were timed with)")
    p.add_argument("--prompt-lengths", type=int_list, default=DEFAULT_PROMPT_LENGTHS,
                   help="prefill table: prompt lengths, e.g. 16,64,256")
    p.add_argument("--batch-sizes", type=int_list, default=DEFAULT_BATCH_SIZES, help="latency table batch sizes")
    p.add_argument("--contexts", type=int_list, default=DEFAULT_CONTEXTS, help="decode table: context lengths")
    p.add_argument("--repeats", type=positive_int, default=3, help="timed prefills per row (median)")
    p.add_argument("--steps", type=positive_int, default=8, help="timed decode steps per row (median)")
    p.add_argument("--passes", type=positive_int, default=DEFAULT_PASSES,
                   help="time the whole grid this many times and keep each row's fastest (another job on a shared "
                        "machine only slows rows down)")
    p.add_argument("--max-batch-tokens", type=positive_int,
                   help="skip prefill rows whose batch holds more tokens (length x batch)")
    p.add_argument("--label", help="profile label (default: models, device and backend)")
    p.add_argument("-o", "--out", help="profile file (.json or .json.gz; default profile-MODEL-TASK.json.gz)")
    p.add_argument("--journal", help="JSONL journal of finished calls; a rerun with the same options resumes from it "
                                     "(default: OUT with .journal.jsonl for .json/.json.gz)")
    add_quiet(p)
    add_backend_options(p)
    p.set_defaults(func=cmd_profile)


def cmd_profile(args: argparse.Namespace) -> None:
    from tts_sim.cli.options import catalog_from, emit, table
    from tts_sim.real.profiling.latency import can_time_steps
    from tts_sim.real.profiling.run import ProfileConfig, check_models, parse_models, run_profile

    models = parse_models(args.model)
    check_models(models, catalog_from(args))
    base = None
    if args.retime:
        from tts_sim.sim.profiles import load_profile

        if args.no_latency:
            raise ConfigError("--retime times the latency tables: drop --no-latency")
        base = load_profile(args.retime)  # refused before anything is timed
    config = ProfileConfig(
        task=args.task, models=models, data=args.data, questions=args.questions, offset=args.offset,
        samples=args.samples, fusion_records=args.fusion_records, deep_records=args.deep_records,
        fusion_graphs=args.fusion_graphs,
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p, seed=args.seed,
        batch=args.batch, latency=not args.no_latency, banks=not (args.no_banks or args.retime),
        prompt_lengths=args.prompt_lengths,
        batch_sizes=args.batch_sizes, contexts=args.contexts, repeats=args.repeats, steps=args.steps,
        passes=args.passes, max_batch_tokens=args.max_batch_tokens,
        device=None if args.device == "cuda" else args.device, label=args.label)
    backend = make_backend(args)
    if config.latency and not can_time_steps(backend):
        raise ConfigError(f"backend {args.backend!r} cannot time single prefill/decode steps: pass --no-latency")
    out = Path(args.out or f"profile-{'-'.join(models)}-{args.task}.json.gz")
    journal = Path(args.journal) if args.journal else journal_path(out)
    run = run_profile(backend, config, progress=progress_printer(args), journal=journal,
                      bar=None if args.quiet else call_bar)
    if getattr(args, "argv", None) is not None:  # the command that regenerates this profile
        import shlex

        run.profile.metadata["command"] = shlex.join(["tts-sim", *args.argv])
    profile = run.profile if base is None else base.retimed(run.profile)
    profile.save(out)
    meta = run.profile.metadata
    rows: list[tuple[Any, ...]] = [("profile", str(out)), ("journal", str(journal)), ("label", profile.label),
                                   ("device", meta["device"]), ("provider", meta["provider"])]
    for m, info in meta["models"].items():
        if "bank_accuracy" in info:
            rows.append((f"{m}: bank accuracy", f"{info['bank_accuracy']:.3f} ({args.questions} questions x "
                                               f"{args.samples} samples)"))
    stats = meta["token_stats"].get(args.task)
    if stats:
        rows.append(("mean prompt / answer tokens", f"{stats['prompt_tokens']:.1f} / {stats['answer_tokens']:.1f}"))
    if run.fusion:
        rows.append(("fusion records", len(run.fusion)))
    for t in run.profile.latency:
        rows.append((f"latency table {t.model} on {t.device}",
                     f"{len(t.prefill)} prefill + {len(t.decode)} decode rows"))
    if base is not None:
        for name, r in profile.metadata["tables_retimed"]["median_ratio_new_over_old"].items():
            rows.append((f"retimed {name}: new/old (median)", ", ".join(
                f"{k} x{v:.3f}" for k, v in r.items() if v is not None)))
    emit(args, {"profile": str(out), "metadata": meta}, table(["item", "value"], rows))
