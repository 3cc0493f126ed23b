"""What bound a search: budget, node limit, latency limit. Says so when a limit was missed, so a
returned graph never silently violates what the user asked for."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tts_sim.core.evaluation import Evaluation
from tts_sim.core.graph import Graph
from tts_sim.search.objectives import LatencyLimit, Objective
from tts_sim.search.space import SearchSpace

#: A budget counts as binding when the returned graph spends at least this share of it.
BINDING_SHARE = 0.9


@dataclass(frozen=True)
class ConstraintReport:
    budget_units: float
    units_used: float
    worker_nodes: int
    max_nodes: int
    binding: tuple[str, ...]  # "budget", "max-nodes"; empty when neither bound the returned graph
    latency_limit: str | None = None  # e.g. "p95 <= 0.5 s"
    latency_value_s: float | None = None
    latency_met: bool | None = None
    any_trial_met: bool | None = None  # did any evaluated graph meet the latency limit?

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[tuple[str, str]]:
        """(label, text) rows for the search summary."""
        share = self.units_used / self.budget_units if self.budget_units else 0.0
        if self.binding:
            bound = " and ".join({"budget": "the budget", "max-nodes": "--max-nodes"}[b] for b in self.binding)
            why = f"{bound} bound the search"
            if self.binding == ("max-nodes",):
                why += " (raise --max-nodes to spend more of the budget)"
        else:
            why = "neither the budget nor --max-nodes bound the returned graph"
        rows = [("constraints", f"{self.units_used:.2f} of {self.budget_units:.2f} units ({share:.0%}), "
                                f"{self.worker_nodes} of {self.max_nodes} worker nodes: {why}")]
        if self.latency_limit is not None:
            verdict = "met" if self.latency_met else "MISSED"
            text = f"{self.latency_limit}: {verdict} (held-out {self.latency_value_s:.3f} s)"
            if not self.latency_met:
                text += ("; no evaluated graph met it: the returned graph is the least-violating one"
                         if not self.any_trial_met else "; a graph met it at search time but not on held-out data")
            rows.append(("latency limit", text))
        return rows


def constraint_report(best: Graph, heldout: Evaluation, space: SearchSpace, objective: Objective,
                      trial_latencies: list[dict[str, Any] | None] | None = None) -> ConstraintReport:
    """Which constraints bound the returned graph, and whether a latency limit was met."""
    workers = len(best.executed) - 1
    binding = tuple(name for name, hit in (("budget", heldout.budget_units >= BINDING_SHARE * space.budget),
                                           ("max-nodes", workers >= space.max_nodes)) if hit)
    report = ConstraintReport(space.budget, heldout.budget_units, workers, space.max_nodes, binding)
    if isinstance(objective, LatencyLimit) and heldout.latency is not None:
        value = float(getattr(heldout.latency, f"{objective.metric}_s"))
        key = f"{objective.metric}_s"
        any_met = any(lat is not None and lat.get(key, float("inf")) <= objective.limit_s
                      for lat in trial_latencies or [])
        report = ConstraintReport(space.budget, heldout.budget_units, workers, space.max_nodes, binding,
                                  f"{objective.metric} <= {objective.limit_s:g} s", value,
                                  value <= objective.limit_s, any_met)
    return report
