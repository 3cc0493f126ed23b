"""Bayesian optimisation with scikit-optimize's surrogates and acquisition functions.

``bo-gp`` fits ``gp_minimize``'s surrogate (a Gaussian process, Matern-5/2 kernel with Gaussian
noise, one shared length scale) and ``bo-forest`` ``forest_minimize``'s (extra trees, fewer of
them); both propose by maximising expected improvement (``acq_func``: EI, PI or LCB). Each
proposal:

1. **Surrogate on graph features.** The surrogate is fitted to every evaluated graph's
   slot-order-free features (``tts_sim.search.features``: models used, models feeding the output,
   fusers, edges, depth, budget use) and its search-time score, not to the slot encoding: one
   graph has many slot encodings and neighbouring encodings can decode to unrelated graphs, so a
   surrogate of the encoding ranks unseen graphs poorly (``benchmarks/bench_bo_surrogate.py``).
2. **Acquisition over feasible candidates.** The acquisition is maximised over a candidate pool
   of graphs not evaluated yet, all within the budget: ``n_points`` random budget-spending graphs
   (the random searcher's sampler, mixes weighted by the search's prior as for random search)
   and ``n_local`` one- or two-entry changes (``GraphEncoding.neighbour``, budget-repaired) of
   the ``n_parents`` best graphs so far. The FLOPs budget is a known constraint, so it is kept by
   construction instead of learnt from penalised proposals, and no proposal repeats a graph.

The initial design is ``n_initial`` random budget-spending graphs (``initial_design``, shared with
TPE). scikit-optimize's upstream is archived; this module is the only place that touches it.

History (``docs/bench/bo.md``): these searchers used to run skopt's own ``Optimizer`` over the
slot encoding, with uniformly random encodings as acquisition candidates and infeasible proposals
told a penalty below every accuracy. The penalties dominated the normalised targets, the
candidates spent about half the budget, and BO trailed random search on most cells.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from threadpoolctl import threadpool_limits

from tts_sim.baselines.random_search import initial_design, prior_weights, random_graph
from tts_sim.core.graph import Graph
from tts_sim.core.identity import graph_key
from tts_sim.errors import ConfigError, GraphError
from tts_sim.search.context import SearchContext
from tts_sim.search.encoding import GraphEncoding
from tts_sim.search.features import feature_matrix
from tts_sim.search.mixes import enumerate_mixes
from tts_sim.search.searcher import BaseSearcher

ACQUISITIONS = ("EI", "PI", "LCB")


@dataclass
class _SkoptSearch(BaseSearcher):
    uses_prior: ClassVar[bool] = True  # initial design and random candidates weighted by the prior

    n_initial: int = 5
    acq_func: str = "EI"  # EI | PI | LCB
    n_points: int = 200  # random budget-spending graphs among each proposal's candidates
    n_local: int = 100  # changes of the best graphs so far among each proposal's candidates
    n_parents: int = 3  # how many of the best graphs so far the local candidates change
    xi: float = 0.01  # EI / PI: improvement (in accuracy) below which a gain does not count
    kappa: float = 1.96  # LCB: standard deviations of optimism
    n_trees: int = 32  # forest surrogate only
    n_restarts: int = 0  # GP only: extra random starts of the kernel hyper-parameter fit

    estimator: ClassVar[str] = "GP"

    def __post_init__(self) -> None:
        if self.acq_func not in ACQUISITIONS:
            raise ConfigError(f"{self.name}: acq_func must be one of {', '.join(ACQUISITIONS)}, got {self.acq_func!r}")
        for opt in ("n_points", "n_trees"):
            if getattr(self, opt) < 1:
                raise ConfigError(f"{self.name}: {opt} must be at least 1, got {getattr(self, opt)!r}")
        for opt in ("n_initial", "n_local", "n_parents", "n_restarts"):
            if getattr(self, opt) < 0:
                raise ConfigError(f"{self.name}: {opt} must not be negative, got {getattr(self, opt)!r}")

    def surrogate(self, seed: int) -> Any:
        """The surrogate model. For the forest: extra trees (fewer than ``forest_minimize``'s 100: the
        refit at every proposal costs per tree). For the GP: ``gp_minimize``'s Matern-5/2 kernel with
        Gaussian noise, one shared length scale (every feature lies in [0, 1])."""
        if self.estimator == "ET":
            from skopt.learning import ExtraTreesRegressor

            return ExtraTreesRegressor(n_estimators=self.n_trees, min_samples_leaf=3, random_state=seed)
        from skopt.learning import GaussianProcessRegressor
        from skopt.learning.gaussian_process.kernels import ConstantKernel, Matern

        kernel = ConstantKernel(1.0, (0.01, 1000.0)) * Matern(length_scale=1.0, length_scale_bounds=(0.01, 100.0),
                                                                 nu=2.5)
        return GaussianProcessRegressor(kernel=kernel, normalize_y=True, noise="gaussian",
                                        n_restarts_optimizer=self.n_restarts, random_state=seed)

    def acquisition(self, model: Any, x: np.ndarray, y_best: float) -> np.ndarray:
        """Acquisition values of candidate features ``x`` (higher is better); targets are negated
        scores (skopt minimises), ``y_best`` the lowest target so far."""
        from skopt.acquisition import gaussian_ei, gaussian_lcb, gaussian_pi

        if self.acq_func == "EI":
            return np.asarray(gaussian_ei(x, model, y_opt=y_best, xi=self.xi))
        if self.acq_func == "PI":
            return np.asarray(gaussian_pi(x, model, y_opt=y_best, xi=self.xi))
        return -np.asarray(gaussian_lcb(x, model, kappa=self.kappa))

    def run(self, ctx: SearchContext) -> Graph | None:
        space = ctx.space
        for graph in initial_design(ctx, min(self.n_initial, ctx.max_evals)):
            if ctx.done:
                break
            ctx.evaluate(graph, phase="initial design")
        model = self.surrogate(ctx.seed % 2 ** 32)
        candidates = CandidatePool(ctx, "bo-candidates")
        phase = f"bo-{self.estimator.lower()}"
        # one BLAS thread: the surrogate's small matrices gain nothing from threads, and on a shared
        # machine OpenBLAS threads make each GP fit several times slower
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore")  # GP convergence warnings on a few dozen noisy points
            while not ctx.done:
                pool = candidates.draw(self.n_points, self.n_local, self.n_parents)
                if not pool:  # every graph the candidate generators reach was evaluated
                    break
                if not ctx.trials:
                    ctx.evaluate(pool[0], phase=phase)
                    continue
                x = feature_matrix(space, [t.graph for t in ctx.trials])
                y = -np.array([t.score for t in ctx.trials])
                model.fit(x, y)
                values = self.acquisition(model, feature_matrix(space, pool), float(y.min()))
                ctx.evaluate(pool[int(np.argmax(values))], phase=phase)
        return None


class CandidatePool:
    """Graphs a model-based searcher may propose next: distinct, within the budget, not evaluated
    yet in ``ctx``; random budget-spending graphs (the random baseline's sampler, prior-weighted
    mixes) and one- or two-entry encoding changes of the best graphs so far."""

    def __init__(self, ctx: SearchContext, stream: str) -> None:
        self.ctx, self.stream = ctx, stream
        self.encoding = GraphEncoding(ctx.space)
        self.mixes = enumerate_mixes(ctx.space)
        self.weights = prior_weights(ctx.prior, self.mixes)
        self.draws = 0

    def draw(self, n_random: int, n_local: int = 0, n_parents: int = 1) -> list[Graph]:
        """Up to ``n_random + n_local`` candidates (fewer when draws repeat or were evaluated)."""
        ctx, space, enc = self.ctx, self.ctx.space, self.encoding
        rng = ctx.rng(self.stream, self.draws)
        self.draws += 1
        seen = {t.graph_key for t in ctx.trials}
        found: dict[str, Graph] = {}

        def add(graph: Graph) -> None:
            key = graph_key(graph)
            if key not in seen and key not in found:
                found[key] = graph

        for _ in range(n_random):
            add(random_graph(space, rng, self.mixes, weights=self.weights))
        best = sorted(ctx.trials, key=lambda t: (-t.score, t.index))[:n_parents]
        parents = [enc.encode(t.graph) for t in best]
        for i in range(n_local if parents else 0):
            x = enc.neighbour(parents[i % len(parents)], rng, int(rng.integers(1, 3)))
            try:
                add(enc.decode(x))  # budget-repaired
            except GraphError:
                continue
        return list(found.values())


@dataclass
class GPSearch(_SkoptSearch):
    name: ClassVar[str] = "bo-gp"
    estimator: ClassVar[str] = "GP"


@dataclass
class ForestSearch(_SkoptSearch):
    name: ClassVar[str] = "bo-forest"
    estimator: ClassVar[str] = "ET"  # forest_minimize's default (extra trees)
