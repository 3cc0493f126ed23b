"""Bayesian optimisation with scikit-optimize over the fixed-length graph encoding.

``bo-gp`` is ``gp_minimize``'s loop (GP surrogate, ``gp_hedge`` acquisition) and
``bo-forest`` ``forest_minimize``'s (extra-trees forest, EI), both driven
ask/tell through ``skopt.Optimizer`` so that every point goes through the shared driver:
repeated proposals are answered from its cache (free), infeasible points (over budget) are
penalised (``-1 - overshoot``, never dropped), numpy scalars are cast to int. The initial design is
``n_initial`` feasible random budget-spending graphs (the random baseline's sampler, mixes weighted
by the search's prior under ``--prior published``).
scikit-optimize's upstream is archived; this module is the only place that touches it.

Speed (each ``tell`` refits the surrogate and re-scores ``n_points`` random candidates, and an
infeasible proposal costs a ``tell`` but no evaluation): model slots are one-hot encoded with numpy
instead of scikit-learn's ``LabelBinarizer`` (same encoding, a fraction of the cost); the GP's
kernel hyper-parameters are re-fitted from the previous fit (warm start, no random restarts);
and ``n_penalty_prior`` uniformly random encodings that are over the budget are told with their
penalty before the first proposal (in one fit): the optimiser learns where the budget ends from
free, known points instead of proposing them one refit at a time. No point is evaluated for free:
the prior holds only infeasible points, whose value is known without evaluating them.

Repeated proposals: skopt itself replaces a proposal it has already told with a random point; here
a proposal whose *graph* was already evaluated (many encodings decode to one graph) is told its known
score without a refit, and a random unevaluated budget-spending graph is evaluated instead. Without
this rule, a small space kept the loop proposing repeats (free for the evaluation budget) up to the
driver's proposal limit, refitting an ever larger surrogate each time: minutes per search.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from threadpoolctl import threadpool_limits

from tts_sim.baselines.random_search import initial_design
from tts_sim.core.graph import Graph
from tts_sim.search.context import PENALTY_FLOOR, SearchContext
from tts_sim.search.encoding import GraphEncoding
from tts_sim.search.searcher import BaseSearcher


def _numpy_onehot() -> Any:
    """skopt's one-hot ``CategoricalEncoder`` with numpy transforms (its own goes through
    scikit-learn's ``LabelBinarizer``, whose input validation dominates every ``tell``)."""
    from skopt.space.transformers import CategoricalEncoder

    class NumpyOneHot(CategoricalEncoder):
        def fit(self, X: Any) -> Any:
            super().fit(X)
            self._categories = list(X)
            return self

        def transform(self, X: Any) -> np.ndarray:
            idx = np.fromiter((self.mapping_[v] for v in X), dtype=np.intp)
            return np.eye(self.n_classes, dtype=int)[idx]

        def inverse_transform(self, Xt: Any) -> list:
            return [self._categories[i] for i in np.asarray(Xt).reshape(-1, self.n_classes).argmax(axis=1)]

    return NumpyOneHot


@dataclass
class _SkoptSearch(BaseSearcher):
    uses_prior: ClassVar[bool] = True  # initial design and fresh graphs weighted by the prior

    n_initial: int = 5
    acq_func: str = "gp_hedge"
    n_points: int = 300  # random candidates scored by the acquisition function per proposal
    n_trees: int = 32  # forest surrogate only
    n_penalty_prior: int = 20  # infeasible random encodings told with their penalty up front (free)
    n_restarts: int = 0  # GP only: extra random starts of the kernel hyper-parameter fit

    estimator: ClassVar[str] = "GP"

    def optimizer(self, encoding: GraphEncoding, seed: int) -> Any:
        from skopt import Optimizer
        from skopt.space import Categorical, Integer

        # models are unordered categories (one-hot); binary edge/role bits as 0..1 integers (one-hot
        # transforms of 50+ binary dimensions make every proposal seconds slower for no gain)
        dims = [Categorical(list(range(d.size)), name=d.name) if d.size > 2 else Integer(0, 1, name=d.name)
                for d in encoding.dimensions]
        opt = Optimizer(dims, base_estimator=self.surrogate(seed), n_initial_points=0,
                        acq_func=self.acq_func, acq_optimizer="sampling",
                        acq_optimizer_kwargs={"n_points": self.n_points}, random_state=seed,
                        model_queue_size=1)  # keeps only the last surrogate (all of them: memory grows)
        onehot = _numpy_onehot()
        for dim in opt.space.dimensions:
            if isinstance(dim, Categorical) and dim.transform_ == "onehot":
                dim.transformer = onehot().fit(dim.categories)
        return opt

    def surrogate(self, seed: int) -> Any:
        """The surrogate model. For the forest: extra trees (fewer than ``forest_minimize``'s 100: the
        refit at every proposal costs per tree). For the GP: ``gp_minimize``'s Matern-5/2 kernel with Gaussian noise,
        but one shared length scale instead of one per dimension (fitting ~100 length scales by
        L-BFGS at every proposal takes minutes and overfits a few dozen points)."""
        if self.estimator == "ET":  # forest_minimize's extra trees (it grows 100; fit cost is per tree)
            from skopt.learning import ExtraTreesRegressor

            return ExtraTreesRegressor(n_estimators=self.n_trees, min_samples_leaf=3, random_state=seed)
        from skopt.learning import GaussianProcessRegressor
        from skopt.learning.gaussian_process.kernels import ConstantKernel, Matern

        kernel = ConstantKernel(1.0, (0.01, 1000.0)) * Matern(length_scale=1.0, length_scale_bounds=(0.01, 100.0),
                                                                 nu=2.5)
        return GaussianProcessRegressor(kernel=kernel, normalize_y=True, noise="gaussian",
                                        n_restarts_optimizer=self.n_restarts, random_state=seed)

    def penalty_prior(self, ctx: SearchContext, encoding: GraphEncoding) -> tuple[list[list[int]], list[float]]:
        """Up to ``n_penalty_prior`` uniformly random encodings that are over the budget, with the
        (negated) penalty the driver would give them; feasible draws are skipped, not evaluated."""
        space, rng = ctx.space, ctx.rng("bo-penalty-prior")
        xs: list[list[int]] = []
        ys: list[float] = []
        for _ in range(4 * self.n_penalty_prior):
            if len(xs) >= self.n_penalty_prior:
                break
            x = encoding.random(rng)
            graph = encoding.decode(x, repair=False)
            if not space.feasible(graph):
                xs.append(x)
                ys.append(-(PENALTY_FLOOR - max(0.0, space.units(graph) / space.budget - 1.0)))
        return xs, ys

    def run(self, ctx: SearchContext) -> Graph | None:
        space = ctx.space
        encoding = GraphEncoding(space)
        opt = self.optimizer(encoding, ctx.seed % 2 ** 32)
        xs: list[list[int]] = []
        ys: list[float] = []
        for graph in initial_design(ctx, min(self.n_initial, ctx.max_evals)):
            if ctx.done:
                break
            trial = ctx.evaluate(graph, phase="initial design")
            xs.append(encoding.encode(trial.graph))
            ys.append(-trial.score)
        prior_x, prior_y = self.penalty_prior(ctx, encoding)
        ctx.cost.penalised += len(prior_x)
        # one BLAS thread: the surrogate's small matrices gain nothing from threads, and on a shared
        # machine OpenBLAS threads make each GP fit several times slower
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore")  # "objective has been evaluated at this point before": cached
            if xs or prior_x:
                opt.tell(xs + prior_x, ys + prior_y)
            fresh = FreshGraphs(ctx, "bo-fresh")
            while not ctx.done:
                x = [int(v) for v in opt.ask()]
                graph = encoding.decode(x, repair=False)
                if not space.feasible(graph):
                    opt.tell(x, float(-ctx.penalise(graph)))
                    continue
                before = ctx.evaluations
                trial = ctx.evaluate(graph, phase=f"bo-{self.estimator.lower()}")
                new = fresh.next() if ctx.evaluations == before and not ctx.done else None
                if new is None:
                    opt.tell(x, float(-trial.score))
                    continue
                # a graph already evaluated (another encoding of it, or the same one): skopt's own rule
                # for a repeated point, a random new point instead; the repeat is told, without a refit
                opt.tell(x, float(-trial.score), fit=False)
                other = ctx.evaluate(new, phase="bo-random (repeated proposal)")
                opt.tell(encoding.encode(other.graph), float(-other.score))
        return None


class FreshGraphs:
    """Random budget-spending graphs (the random baseline's sampler) not evaluated yet in ``ctx``:
    what a model-based searcher evaluates instead of a proposal it has already paid for."""

    def __init__(self, ctx: SearchContext, stream: str, tries: int = 50) -> None:
        from tts_sim.baselines.random_search import prior_weights
        from tts_sim.search.mixes import enumerate_mixes

        self.ctx, self.stream, self.tries = ctx, stream, tries
        self.mixes = enumerate_mixes(ctx.space)
        self.weights = prior_weights(ctx.prior, self.mixes)
        self.draws = 0

    def next(self) -> Graph | None:
        """An unevaluated graph, or None when ``tries`` draws find none."""
        from tts_sim.baselines.random_search import random_graph
        from tts_sim.core.identity import graph_key

        seen = {t.graph_key for t in self.ctx.trials}
        for _ in range(self.tries):
            graph = random_graph(self.ctx.space, self.ctx.rng(self.stream, self.draws), self.mixes,
                                 weights=self.weights)
            self.draws += 1
            if graph_key(graph) not in seen:
                return graph
        return None


@dataclass
class GPSearch(_SkoptSearch):
    name: ClassVar[str] = "bo-gp"
    estimator: ClassVar[str] = "GP"


@dataclass
class ForestSearch(_SkoptSearch):
    name: ClassVar[str] = "bo-forest"
    estimator: ClassVar[str] = "ET"  # forest_minimize's default (extra trees)
    acq_func: str = "EI"
