"""Model mixes: step 0 of Agent-REINFORCE.

As in the released code, each model gets an integer cost (its direct-call cost in budget units,
rounded up; 1B=1, 3B=3, 8B=8 on MATH), and a mix is a multiset of pool models whose integer costs
fit the units left after the output node (counted with one predecessor). Only maximal mixes are
kept (no further model fits, or all slots are used), least leftover first. A pool whose cheapest
model costs less than one budget unit (the measured profiles' 135M-270M models: 0.14-0.27 units)
counts in that model's cost instead (``mix_unit``): otherwise every model would cost 1 and a budget of
a few units would afford no mix at all.
"""

from __future__ import annotations

import itertools
import math

from tts_sim.core.graph import Graph, Role
from tts_sim.search.agent_api import MixOption
from tts_sim.search.space import SearchSpace


def mix_unit(space: SearchSpace) -> float:
    """The budget units one integer cost unit stands for: 1, or the cheapest pool model's direct call
    when that costs less."""
    return min(1.0, min(space.node_units(m, 0) for m in space.pool))


def unit_costs(space: SearchSpace) -> dict[str, int]:
    """Integer cost of one direct call of each pool model (in ``mix_unit``s)."""
    unit = mix_unit(space)
    return {m: max(1, math.ceil(space.node_units(m, 0) / unit - 0.05)) for m in space.pool}


def available_units(space: SearchSpace) -> int:
    """Integer units (``mix_unit``s) left for worker nodes once the output node (with one input) is paid."""
    return max(0, math.floor((space.budget - space.node_units(space.output_model, 1)) / mix_unit(space) + 1e-9))


def enumerate_mixes(space: SearchSpace) -> list[MixOption]:
    """Maximal mixes, least leftover first, then fewer nodes, then by model order."""
    costs = unit_costs(space)
    avail = available_units(space)
    pool = list(space.pool)
    cheapest = min(costs.values())
    found: list[MixOption] = []
    max_len = min(space.max_nodes, avail // cheapest)
    for size in range(1, max_len + 1):
        for combo in itertools.combinations_with_replacement(pool, size):
            spent = sum(costs[m] for m in combo)
            if spent > avail:
                continue
            left = avail - spent
            if left >= cheapest and size < space.max_nodes:
                continue  # another model still fits: not maximal
            found.append(MixOption(tuple(combo), spent, left))
    order = {m: i for i, m in enumerate(pool)}
    found.sort(key=lambda o: (o.leftover, len(o.models), [order[m] for m in o.models]))
    return found


def blend_mixes(space: SearchSpace, first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    """A mix taking models from ``first`` and ``second`` in turn (each largest first) while they fit the
    available units and the slots: about half of each, so every multi-input node can read both kinds of
    model (the paper's heuristic: diverse predecessors help)."""
    costs = unit_costs(space)
    left, chosen = available_units(space), list[str]()
    queues = [list(mix_models_by_size(space, first)), list(mix_models_by_size(space, second))]
    turn = 0
    while any(queues) and len(chosen) < space.max_nodes:
        queue = queues[turn % 2] or queues[(turn + 1) % 2]
        model = queue.pop(0)
        if costs[model] <= left:
            chosen.append(model)
            left -= costs[model]
        turn += 1
    return mix_models_by_size(space, tuple(chosen))


def mix_models_by_size(space: SearchSpace, models: tuple[str, ...]) -> tuple[str, ...]:
    """The mix's models, largest first (slot n0 holds the largest)."""
    return tuple(sorted(models, key=lambda m: (-space.catalog[m].m_flops, m)))


def parallel_variant(space: SearchSpace, models: tuple[str, ...]) -> Graph:
    """Every node of the mix answering directly and feeding the output (pure width)."""
    n = len(models)
    return space.build(list(models), [Role.ASSISTANT] * n, [], list(range(n)))


def layered_variant(space: SearchSpace, models: tuple[str, ...], depth: int) -> Graph:
    """The mix arranged as parallel chains of length ``depth`` (width x depth), chains ending at the output."""
    n = len(models)
    depth = max(1, min(depth, n))
    width = math.ceil(n / depth)
    chains = [list(range(c, n, width)) for c in range(width)]
    edges = [(a, b) for chain in chains for a, b in itertools.pairwise(chain)]
    return space.build(list(models), [Role.ASSISTANT] * n, edges, [chain[-1] for chain in chains])


def aggregator_variant(space: SearchSpace, models: tuple[str, ...]) -> Graph:
    """Proposers and aggregators (Mixture-of-Agents): the ``ceil(n/3)`` smallest models of the mix
    (``models`` is largest first) each read every proposer's answer (the other models) and alone feed the output.
    The budget repair drops the smallest nodes first: a mix of large models keeps little of it."""
    n = len(models)
    if n < 2:
        return parallel_variant(space, models)
    aggregators = range(n - math.ceil(n / 3), n)
    edges = [(a, b) for a in range(n - len(aggregators)) for b in aggregators]
    return space.build(list(models), [Role.ASSISTANT] * n, edges, list(aggregators))
