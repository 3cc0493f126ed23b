"""What a fidelity check runs: held-out graphs (given or drawn at random) and held-out questions.

Random graphs: ``depth`` levels of non-output nodes (0..``max_depth``, uniform), each level 1..``max_width``
nodes (uniform), models uniform over the pool. Level-0 nodes are assistants; a node of a later level
is an assistant or a fuser (even odds; a fuser only when its previous level has an assistant, as a
fuser needs an assistant input and never reads a fuser), reads 1..4 nodes of the previous level
(fusers: only assistants) and, with probability 0.3, one node of an earlier level. Nodes no one
reads feed the output node (a fuser only when none of them is a fuser). So ``graph.depth`` and
``graph.width`` are exactly the drawn ones. Distinct graphs (by canonical key) are drawn until ``n``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tts_sim.core.graph import Graph, Node, Role
from tts_sim.core.identity import graph_key
from tts_sim.core.models import DEFAULT_CATALOG, ModelCatalog
from tts_sim.errors import ConfigError
from tts_sim.tasks.question import Question

MAX_INPUTS = 4  # inputs a node draws from its previous level
SKIP_P = 0.3  # chance of one extra input from an earlier level


def random_graph(rng: np.random.Generator, models: Sequence[str], max_width: int = 6, max_depth: int = 3,
                 catalog: ModelCatalog | None = DEFAULT_CATALOG) -> Graph:
    """One random graph (see the module docstring)."""
    if not models:
        raise ConfigError("no models to draw graphs from")
    if max_width < 1 or max_depth < 0:
        raise ConfigError(f"max width must be >= 1 and max depth >= 0, got {max_width} and {max_depth}")
    pick = list(models)
    depth = int(rng.integers(0, max_depth + 1))
    if depth == 0:
        return Graph.build([Node("out", Role.ASSISTANT, str(rng.choice(pick)))], [], "out", catalog)
    levels: list[list[Node]] = []
    edges: set[tuple[str, str]] = set()
    for lv in range(depth):
        width = int(rng.integers(1, max_width + 1))
        nodes = []
        for i in range(width):
            node_id, model = f"n{lv}_{i}", str(rng.choice(pick))
            if lv == 0:
                nodes.append(Node(node_id, Role.ASSISTANT, model))
                continue
            prev = levels[-1]
            helpers = [n for n in prev if n.role is Role.ASSISTANT]
            role = Role.FUSER if helpers and rng.random() < 0.5 else Role.ASSISTANT
            pool = helpers if role is Role.FUSER else prev
            k = int(rng.integers(1, min(MAX_INPUTS, len(pool)) + 1))
            edges |= {(str(u), node_id) for u in rng.choice([n.id for n in pool], size=k, replace=False)}
            earlier = [n for level in levels[:-1] for n in level if role is Role.ASSISTANT or n.role is Role.ASSISTANT]
            if earlier and rng.random() < SKIP_P:
                edges.add((earlier[int(rng.integers(len(earlier)))].id, node_id))
            nodes.append(Node(node_id, role, model))
        levels.append(nodes)
    everything = [n for level in levels for n in level]
    sinks = [n for n in everything if not any(u == n.id for u, _ in edges)]
    fuser_ok = not any(n.role is Role.FUSER for n in sinks)
    out_role = Role.FUSER if fuser_ok and rng.random() < 0.5 else Role.ASSISTANT
    edges |= {(n.id, "out") for n in sinks}
    return Graph.build([*everything, Node("out", out_role, str(rng.choice(pick)))], edges, "out", catalog)


def heldout_graphs(n: int, models: Sequence[str], seed: int = 0, *, max_width: int = 6, max_depth: int = 3,
                   exclude: Sequence[Graph] = (), catalog: ModelCatalog | None = DEFAULT_CATALOG) -> list[Graph]:
    """``n`` distinct random graphs over ``models`` (none isomorphic to one of ``exclude``); deterministic
    in ``seed``."""
    if n < 0:
        raise ConfigError(f"number of graphs must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    seen = {graph_key(g) for g in exclude}
    out: list[Graph] = []
    for _ in range(200 * n + 100):
        if len(out) == n:
            break
        g = random_graph(rng, sorted(models), max_width, max_depth, catalog)
        key = graph_key(g)
        if key not in seen:
            seen.add(key)
            out.append(g)
    if len(out) < n:
        raise ConfigError(f"only {len(out)} distinct graphs of width <= {max_width} and depth <= {max_depth} "
                          f"over {len(models)} model(s) came out (asked for {n})")
    return out


def heldout_questions(pool: Sequence[Question], profiled: Sequence[str], offset: int | None, n: int,
                      task: str) -> list[Question]:
    """``pool[offset:offset + n]``, refused (one line) when it is too short or holds a question the
    profile was measured on (``profiled``: the profile's question ids). ``offset`` None: the first
    window of ``n`` questions free of profiled ones."""
    taken = set(profiled)
    if offset is None:
        offset = _first_free_window(pool, taken, n)
        if offset is None:
            raise ConfigError(f"{task}: no {n} consecutive questions of the {len(pool)} are free of the profile's")
    if n < 1 or offset < 0:
        raise ConfigError(f"need at least one question and an offset >= 0, got {n} and {offset}")
    chosen = list(pool[offset:offset + n])
    if len(chosen) < n:
        raise ConfigError(f"{task}: only {len(chosen)} questions from offset {offset} (the data has {len(pool)}; "
                          f"asked for {n})")
    clash = [q.id for q in chosen if q.id in taken]
    if clash:
        free = _first_free_window(pool, taken, n)
        hint = f"; --offset {free} is free of them" if free is not None else "; no window of that size is free of them"
        raise ConfigError(f"{task}: {len(clash)} of the questions {offset}..{offset + n - 1} were profiled "
                          f"(e.g. {clash[0]!r}); fidelity needs questions the profile never saw{hint}")
    return chosen


def _first_free_window(pool: Sequence[Question], taken: set[str], n: int) -> int | None:
    """The first offset whose ``n`` questions hold none of ``taken`` (None when no window is free)."""
    return next((i for i in range(max(0, len(pool) - n + 1)) if not any(q.id in taken for q in pool[i:i + n])),
                None)
