"""Coverage of the quality model's 95% prediction intervals, against a known truth.

For each seed: draw a synthetic profile of the default scenario (``--samples`` answers per question,
``--records`` fusion records, ``--questions`` math questions), fit the quality model to it, and for a
few fixed graphs compare (a) the prediction interval with the fit's uncertainty (``prediction_interval``)
and (b) a Wilson interval around the expected accuracy (run noise only) with one realised run of the
scenario's *true* model on the same questions. A calibrated 95% interval covers ~95% of the runs.
Then where the fitted expected accuracy's error comes from: the fitted coefficients on the true answer
banks, and the fitted (smoothed) banks with the true coefficients. The intervals carry the first only.

Run: ``python benchmarks/interval_coverage.py [--seeds 12] [--samples 16] [--records 2000] [--questions 200]``.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

from tts_sim.core.graph import Graph
from tts_sim.sim.quality import QualityModel
from tts_sim.sim.scenario import generate_profile, scenario_task
from tts_sim.stats import wilson_interval


def graphs() -> dict[str, Graph]:
    def fan(k: int, src: str, out: str) -> Graph:
        nodes = [*[(f"s{i}", "assistant", src) for i in range(k)], ("out", "assistant", out)]
        return Graph.build(nodes, [(f"s{i}", "out") for i in range(k)], "out")

    chain = Graph.build([("a", "assistant", "llama-3.2-1b"), ("b", "assistant", "llama-3.2-1b"),
                         ("out", "assistant", "llama-3.2-3b")], [("a", "b"), ("b", "out")], "out")
    mixed = Graph.build([("a", "assistant", "llama-3.2-1b"), ("b", "assistant", "gemma-3-1b"),
                         ("c", "assistant", "llama-3.2-3b"), ("f", "fuser", "llama-3.2-3b"),
                         ("out", "assistant", "llama-3.2-3b")],
                        [("a", "f"), ("b", "f"), ("c", "f"), ("f", "out"), ("c", "out")], "out")
    return {"4x1B->3B": fan(4, "llama-3.2-1b", "llama-3.2-3b"), "8x3B->8B": fan(8, "llama-3.2-3b", "llama-3.1-8b"),
            "chain 1B-1B->3B": chain, "mixed 5 nodes": mixed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=12)
    ap.add_argument("--samples", type=int, default=16, help="answers per question per model in the profile")
    ap.add_argument("--records", type=int, default=2000, help="fusion records in the profile")
    ap.add_argument("--questions", type=int, default=200)
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # small profiles warn about missing long contexts; counted below
    t0 = time.perf_counter()
    hits = {"fit+run": [], "run only": []}
    fit_sd, gaps = [], []
    errors: dict[str, list[float]] = {"fitted (both)": [], "coefficients only": [], "banks only": []}
    for seed in range(args.seeds):
        questions = {"math": args.questions}
        prof = generate_profile(100 + seed, samples=args.samples, records=args.records, questions=questions)
        child = np.random.SeedSequence(100 + seed).spawn(1)[0]
        truth = scenario_task("math", args.questions, np.random.default_rng(child)).quality_model()
        qm = QualityModel.from_profile(prof, "math")
        coefficients_only = QualityModel(truth.task, truth.answers, qm.params)  # true banks, fitted coefficients
        banks_only = QualityModel(qm.task, qm.answers, truth.params)  # fitted banks, true coefficients
        for i, g in enumerate(graphs().values()):
            run = truth.predict(g, seed=10_000 * seed + i).mean()
            iv = qm.prediction_interval(g)
            exp = iv.accuracy
            low, high = wilson_interval(exp * iv.n_questions, iv.n_questions)
            hits["fit+run"].append(iv.low <= run <= iv.high)
            hits["run only"].append(low <= run <= high)
            fit_sd.append(iv.fit_sd)
            true_exp = truth.expected(g).mean()
            gaps.append(abs(exp - true_exp))
            for label, model in (("fitted (both)", qm), ("coefficients only", coefficients_only),
                                 ("banks only", banks_only)):
                errors[label].append(model.expected(g).mean() - true_exp)
    n = len(hits["fit+run"])
    print(f"{args.seeds} seeds x {len(graphs())} graphs = {n} intervals; profile: {args.samples} samples/question, "
          f"{args.records} records, {args.questions} questions")
    for k, v in hits.items():
        print(f"coverage of a true run, {k:<8}: {np.mean(v):.2f}  (nominal 0.95)")
    print(f"mean fit sd {np.mean(fit_sd):.4f}; mean |fitted expected - true expected| {np.mean(gaps):.4f}")
    for label, errs in errors.items():
        e = np.array(errs)
        print(f"error of the expected accuracy, {label:<17}: rms {np.sqrt((e ** 2).mean()):.4f}, mean {e.mean():+.4f}")
    print(f"wall {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
