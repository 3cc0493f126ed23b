"""Bayesian optimisation with scikit-optimize over the fixed-length graph encoding.

``bo-gp`` is ``gp_minimize``'s loop (GP surrogate, ``gp_hedge`` acquisition) and
``bo-forest`` ``forest_minimize``'s (extra-trees forest, EI), both driven
ask/tell through ``skopt.Optimizer`` so that every point goes through the shared driver:
repeated proposals are answered from its cache (free), infeasible points (over budget) are
penalised (``-1 - overshoot``, never dropped), numpy scalars are cast to int. The initial design is
``n_initial`` feasible random budget-spending graphs (the random baseline's sampler).
scikit-optimize's upstream is archived; this module is the only place that touches it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

from threadpoolctl import threadpool_limits

from baselines.random_search import initial_design
from tts_sim.graph import Graph
from tts_sim.search.context import SearchContext
from tts_sim.search.encoding import GraphEncoding
from tts_sim.search.searcher import BaseSearcher


@dataclass
class _SkoptSearch(BaseSearcher):
    n_initial: int = 5
    acq_func: str = "gp_hedge"
    n_points: int = 1000  # random candidates scored by the acquisition function per proposal
    n_trees: int = 32  # forest surrogate only

    estimator: ClassVar[str] = "GP"

    def optimizer(self, encoding: GraphEncoding, seed: int) -> Any:
        from skopt import Optimizer
        from skopt.space import Categorical, Integer

        # models are unordered categories (one-hot); binary edge/role bits as 0..1 integers (one-hot
        # transforms of 50+ binary dimensions make every proposal seconds slower for no gain)
        dims = [Categorical(list(range(d.size)), name=d.name) if d.size > 2 else Integer(0, 1, name=d.name)
                for d in encoding.dimensions]
        return Optimizer(dims, base_estimator=self.surrogate(seed), n_initial_points=0,
                         acq_func=self.acq_func, acq_optimizer="sampling",
                         acq_optimizer_kwargs={"n_points": self.n_points}, random_state=seed)

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
        return GaussianProcessRegressor(kernel=kernel, normalize_y=True, noise="gaussian", n_restarts_optimizer=1,
                                        random_state=seed)

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
        # one BLAS thread: the surrogate's small matrices gain nothing from threads, and on a shared
        # machine OpenBLAS threads make each GP fit several times slower
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore")  # "objective has been evaluated at this point before": cached
            if xs:
                opt.tell(xs, ys)
            while not ctx.done:
                x = [int(v) for v in opt.ask()]
                graph = encoding.decode(x, repair=False)
                if space.feasible(graph):
                    y = -ctx.evaluate(graph, phase=f"bo-{self.estimator.lower()}").score
                else:
                    y = -ctx.penalise(graph)
                opt.tell(x, float(y))
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
