"""Are the prediction intervals' coefficient draws where the records' likelihood is?

Until stop 24, ``tts_sim.sim.quality.interval`` drew fusion coefficients from N(fit, inverse information),
clipped to the bounds (a parametric bootstrap); it now draws them from the likelihood itself
(``tts_sim.sim.quality.posterior``, NUTS). This script compares the two. If the log-likelihood were
quadratic around the fit, a draw's
log-likelihood would lie below the fit's by half a chi-square with as many degrees of freedom as
coefficients drawn: a median of about k/2. This script draws them (optionally with the proposal's
spread scaled), and prints the median drop, the importance-sampling effective sample size of the draws
weighed by their own likelihood (p(x)/q(x)), and, for one graph of a fidelity report, the spread of
its predicted accuracy over the draws, unweighted (what the intervals used) and weighted; then the same
for ``--likelihood-draws`` draws by the sampler the intervals use now (uncached, timed).

    python benchmarks/interval_draws.py add-words docs/fidelity/seed5/fidelity_add-words.json --graph 6
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tts_sim.errors import TtsSimError  # noqa: E402
from tts_sim.jsonio import read_json  # noqa: E402
from tts_sim.real.fidelity import FidelityReport  # noqa: E402
from tts_sim.sim.profiles import load_profile  # noqa: E402
from tts_sim.sim.quality import fusion as F  # noqa: E402
from tts_sim.sim.quality.model import QualityModel, fit_inputs  # noqa: E402
from tts_sim.sim.quality.posterior import likelihood_draws  # noqa: E402
from tts_sim.tasks import get_task  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("task")
    ap.add_argument("report", type=Path, help="a fidelity report of that task (its graphs)")
    ap.add_argument("--graph", type=int, default=-1, help="row of the report (default: the largest graph)")
    ap.add_argument("--profile", help="default: measured:TASK")
    ap.add_argument("--draws", type=int, default=256)
    ap.add_argument("--scales", default="1,0.5", help="the proposal's spread, times the inverse information's")
    ap.add_argument("--likelihood-draws", type=int, default=64, help="draws by the intervals' sampler (0: none)")
    args = ap.parse_args()
    threadpool_limits(1)
    try:
        spec = get_task(args.task)
        profile = load_profile(args.profile or f"measured:{spec.name}")
        report = FidelityReport.from_dict(read_json(args.report, "fidelity report"), f"fidelity report {args.report}")
        rows = report.rows
        if args.graph >= len(rows):
            raise ValueError(f"--graph {args.graph}: the report has rows 0..{len(rows) - 1}")
        graph = (max(rows, key=lambda r: len(r.graph.nodes)) if args.graph < 0 else rows[args.graph]).graph
        scales = [float(s) for s in args.scales.split(",")]
        if args.draws < 8 or any(s <= 0 for s in scales) or args.likelihood_draws < 0:
            raise ValueError("--draws must be >= 8, every scale > 0 and --likelihood-draws >= 0")
    except (TtsSimError, OSError, ValueError) as exc:
        print(f"interval_draws: {exc}", file=sys.stderr)
        sys.exit(2)
    qm = QualityModel.from_profile(profile, spec)
    _, rec, _ = fit_inputs(profile.task(spec.name), spec)
    p = qm.params
    names = [c for c in F.COEF_NAMES if c in p.stderr]
    cov = np.asarray(p.covariance, dtype=float)
    vals, vecs = np.linalg.eigh((cov + cov.T) / 2)
    keep = vals > 0
    root = vecs[:, keep] * np.sqrt(vals[keep])
    idx = [F.COEF_NAMES.index(c) for c in names]
    lo, hi = np.array(F.BOUNDS).T
    ll0 = -F.negative_log_likelihood(p.vector, rec)[0]
    print(f"{profile.label}, {spec.name}: {len(names)} coefficients drawn ({int(keep.sum())} informed directions); "
          f"a quadratic log-likelihood would drop by a median of ~{keep.sum() / 2:.1f}")
    for scale in scales:
        rng = np.random.default_rng(0)
        z = rng.standard_normal((args.draws, int(keep.sum())))
        x = np.repeat(p.vector[None], args.draws, axis=0)
        x[:, idx] += scale * z @ root.T
        x = np.clip(x, lo, hi)
        ll = np.array([-F.negative_log_likelihood(v, rec)[0] for v in x])
        log_w = ll - ll0 + 0.5 * (z ** 2).sum(axis=1)
        w = np.exp(log_w - log_w.max())
        w /= w.sum()
        n = min(64, args.draws)
        acc = np.array([QualityModel(qm.task, qm.answers, F.FusionParams.from_vector(v, skills=p.skills,
                                                                                    widest=p.widest))
                        .expected(graph, replicates=64).mean() for v in x[:n]])
        wn = w[:n] / w[:n].sum()
        mean_w = float((wn * acc).sum())
        print(f"  scale {scale}: log-likelihood drop median {np.median(ll0 - ll):.1f} (10%-90%: "
              f"{np.quantile(ll0 - ll, 0.1):.1f}-{np.quantile(ll0 - ll, 0.9):.1f}); effective sample size "
              f"{1 / (w ** 2).sum():.1f} of {args.draws}; graph accuracy over {n} draws: unweighted sd "
              f"{acc.std():.3f} (2.5-97.5%: {np.quantile(acc, 0.025):.3f}-{np.quantile(acc, 0.975):.3f}), "
              f"weighted mean {mean_w:.3f} sd {np.sqrt((wn * (acc - mean_w) ** 2).sum()):.3f}; "
              f"at the fit {qm.expected(graph).mean():.3f}")
    if args.likelihood_draws:
        t0 = time.perf_counter()
        x = likelihood_draws(p, rec, args.likelihood_draws)
        took = time.perf_counter() - t0
        if x is None:
            print("  likelihood draws: none (no fitted coefficient)")
            return
        ll = np.array([-F.negative_log_likelihood(v, rec)[0] for v in x])
        acc = np.array([QualityModel(qm.task, qm.answers, F.FusionParams.from_vector(v, skills=p.skills,
                                                                                    widest=p.widest))
                        .expected(graph, replicates=64).mean() for v in x])
        drop = ll0 - ll
        print(f"  likelihood draws (NUTS, {len(x)} in {took:.1f} s): log-likelihood drop median "
              f"{np.median(drop):.1f} (10%-90%: {np.quantile(drop, 0.1):.1f}-{np.quantile(drop, 0.9):.1f}); "
              f"graph accuracy mean {acc.mean():.3f} sd {acc.std():.3f} (2.5-97.5%: "
              f"{np.quantile(acc, 0.025):.3f}-{np.quantile(acc, 0.975):.3f})")


if __name__ == "__main__":
    main()
