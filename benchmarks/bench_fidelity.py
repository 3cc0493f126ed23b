"""What a fidelity report costs besides the model calls: fitting, predicting, journalling, writing.

Builds a profile at the scale issue 12 asks for (``--profile-questions`` x ``--samples`` per model,
``--fusion-records`` fusion records; two models) from the deterministic fake backend of the tests
(answers derived from the prompt, timings reported, not slept) with synthetic CPU latency tables, then
times each phase of ``tts-sim fidelity`` on ``--graphs`` random held-out graphs (width <= 6, depth
<= 3) x ``--questions`` questions:

- ``fit``: the quality model fitted on the profile (``SimulatedEvaluator`` construction);
- ``measure``: the real-run loop on the fake backend (prompts, grading, one fsynced journal write per
  batch) - the part real model calls replace;
- ``resume``: the same call again, everything answered from the journal;
- ``predict``: per graph, the 95% prediction interval with the fit's likelihood draws and the
  simulated latency (``assemble``);
- ``write``: JSON, Markdown and the PNG.

    PYTHONPATH=$PWD python benchmarks/bench_fidelity.py --out /tmp/bench_fidelity
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

SMALL, BIG = "smollm2-135m", "gemma-3-270m"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile-questions", type=int, default=200)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--fusion-records", type=int, default=2000)
    ap.add_argument("--graphs", type=int, default=12)
    ap.add_argument("--questions", type=int, default=150)
    ap.add_argument("--latency-questions", type=int, default=30)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--out", default="bench_fidelity_out")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

    from tests.test_executor_fakes import FakeBackend
    from tts_sim.core.profile import LatencyTable
    from tts_sim.real.executor import GraphExecutor
    from tts_sim.real.fidelity import FidelityPlan, assemble, heldout_graphs, heldout_questions, measure
    from tts_sim.real.fidelity.run import journal_path, model_pool, write_outputs
    from tts_sim.real.profiling import ProfileConfig, run_profile
    from tts_sim.real.validate import latency_simulator, task_spec_for
    from tts_sim.tasks import TASKS
    from tts_sim.tasks.questions import load_questions

    def fake() -> FakeBackend:
        return FakeBackend(offsets={SMALL: 1}, slips=(0, 0, 0, 1, 0, 2, 0), prefill_per_token=1e-4,
                           decode_per_token=1e-3)

    times: dict[str, float] = {}
    t0 = time.perf_counter()
    pool = load_questions("add")
    cfg = ProfileConfig(task="add", models={SMALL: SMALL, BIG: BIG}, questions=args.profile_questions,
                        samples=args.samples, fusion_records=args.fusion_records, max_new_tokens=32, latency=False,
                        seed=3)
    profile = run_profile(fake(), cfg, questions=pool[:args.profile_questions]).profile
    for model, scale in ((SMALL, 1.0), (BIG, 2.0)):
        profile.latency.append(LatencyTable(
            model, "cpu", "fake",
            prefill=[(n, b, scale * (1e-3 + 1e-4 * n * b)) for n in (16, 64, 256, 1024) for b in (1, 4, 16)],
            decode=[(c, b, scale * (0.01 + 1e-6 * c * b)) for c in (16, 256, 1024) for b in (1, 4, 16)]))
    times["profile_s"] = time.perf_counter() - t0

    spec, _ = task_spec_for(profile, "add")
    TASKS._items["add"] = spec  # the measured A and B, as `tts-sim fidelity` uses them
    t0 = time.perf_counter()
    simulated, _ = latency_simulator(profile, spec, cluster="cpu", tokens="sampled",
                                     n_questions=args.latency_questions, max_batch=args.batch)
    times["fit_s"] = time.perf_counter() - t0

    questions = heldout_questions(pool, profile.task("add").question_ids, args.profile_questions, args.questions,
                                  "add")
    graphs = heldout_graphs(args.graphs, model_pool(simulated), seed=0)
    plan = FidelityPlan("add", tuple(graphs), tuple(questions), args.latency_questions, args.batch, 0)
    out = Path(args.out)
    journal = journal_path(out, "add")
    journal.unlink(missing_ok=True)
    config = plan.journal_config(profile=profile.label)
    backend = fake()
    executor = GraphExecutor(backend, "add", max_new_tokens=32)
    t0 = time.perf_counter()
    done = measure(plan, executor, journal, config, quiet=True)
    times["measure_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    done = measure(plan, executor, journal, config, quiet=True)
    times["resume_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = assemble(plan, done, simulated, profile=profile.label, command="bench_fidelity")
    times["predict_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    write_outputs(report, out)
    times["write_s"] = time.perf_counter() - t0

    calls = sum(len(r) for _, r in backend.calls)
    result = {
        "config": vars(args), "graphs_nodes": [len(g.executed) for g in graphs], "backend_calls": len(backend.calls),
        "requests": calls, "journal_bytes": journal.stat().st_size, "load_avg": os.getloadavg(),
        "times": {k: round(v, 3) for k, v in times.items()},
        "predict_s_per_graph": round(times["predict_s"] / len(graphs), 3),
        "measure_ms_per_request": round(1000 * times["measure_s"] / calls, 3),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
