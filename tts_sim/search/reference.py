"""A strong reference optimum for spaces too large to enumerate: hill climbing with random restarts on
noise-free expected scores (``SimulatedEvaluator.expected_accuracy``), cached on disk.

A climb moves to the best improving neighbour among ``NEIGHBOURS`` random one- and two-coordinate
changes of the integer encoding (``GraphEncoding``: a model, a role, an edge), until a round of
neighbours brings no improvement. The first ``RANDOM_STARTS`` climbs start from random graphs of the
space (``ProbabilisticGraph.uniform``, the random searcher's distribution), as does every
``RANDOM_EVERY``-th later one; the others (iterated local search) start from the best graph so far
with ``KICK`` coordinates changed at random. Climbs continue until ``evaluations`` distinct graphs
were scored, or ``STALE_CLIMBS`` climbs in a row found none new (a small space is exhausted). The
best graph over all climbs is the reference. It is a lower bound on the true optimum, not the
optimum itself: the bench reports any searcher graph that beats it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tts_sim.core.graph import Graph
from tts_sim.core.identity import graph_key
from tts_sim.errors import GraphError
from tts_sim.jsonio import read_json
from tts_sim.search.encoding import GraphEncoding
from tts_sim.search.space import ProbabilisticGraph, SearchSpace

NEIGHBOURS = 40
RANDOM_STARTS = 4  # climbs from random graphs; later ones start from a kicked copy of the best graph
RANDOM_EVERY = 3  # and every third climb after them
KICK = (3, 6)  # coordinates changed by a kick
STALE_CLIMBS = 500  # stop early after this many climbs in a row found no graph not scored before
REFERENCE_VERSION = 3


def local_search(space: SearchSpace, scorer: Any, questions: Sequence[int], evaluations: int, seed: int = 0
                 ) -> tuple[Graph, float, int]:
    """(best graph, its expected accuracy, distinct graphs scored) of hill climbing with restarts."""
    enc = GraphEncoding(space)
    sampler = ProbabilisticGraph.uniform(space)
    rng = np.random.default_rng(seed)
    cache: dict[str, float] = {}
    best: tuple[float, Graph] | None = None

    def score(g: Graph) -> float:
        key = graph_key(g)
        if key not in cache:
            cache[key] = float(scorer.expected_accuracy(g, questions))
        return cache[key]

    def climb(x: list[int], g: Graph, v: float) -> tuple[list[int], Graph, float]:
        while len(cache) < evaluations:
            step: tuple[float, list[int], Graph] | None = None
            for _ in range(NEIGHBOURS):
                h = neighbour(x, int(rng.integers(1, 3)))
                if h is None:
                    continue
                w = score(h)
                if w > v + 1e-12 and (step is None or w > step[0]):
                    step = (w, enc.encode(h), h)
                if len(cache) >= evaluations:
                    break
            if step is None:
                break
            v, x, g = step
        return x, g, v

    def neighbour(x: list[int], changes: int) -> Graph | None:
        try:
            return enc.decode(enc.neighbour(x, rng, changes))
        except GraphError:
            return None

    stale = 0  # climbs in a row that scored no new graph (a space smaller than ``evaluations``)
    for restart in range(10**9):
        if len(cache) >= evaluations or stale >= STALE_CLIMBS:
            break
        before = len(cache)
        if best is None or restart < RANDOM_STARTS or restart % RANDOM_EVERY == 0:
            g = sampler.sample(space, rng)
        else:  # iterated local search: kick the best graph found so far
            kicked = neighbour(enc.encode(best[1]), int(rng.integers(KICK[0], KICK[1] + 1)))
            if kicked is None:
                stale += 1
                continue
            g = kicked
        _, g, v = climb(enc.encode(g), g, score(g))
        if best is None or v > best[0]:
            best = (v, g)
        stale = stale + 1 if len(cache) == before else 0
    assert best is not None
    return best[1], best[0], len(cache)


def reference_key(checksum: str, task: str, budget: float, space: dict[str, Any], questions: Sequence[int],
                  evaluations: int, seed: int) -> str:
    text = json.dumps({"profile": checksum, "task": task, "budget": budget, "space": space,
                       "questions": list(questions), "evaluations": evaluations, "seed": seed,
                       "v": REFERENCE_VERSION}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def cached_reference(cache: Path, key: str, compute: Any) -> dict[str, Any]:
    """The reference row cached at ``cache/references/KEY.json`` (``compute()`` on a miss)."""
    path = cache / "references" / f"{key}.json"
    if path.exists():
        try:
            data = read_json(path, "reference optimum")
            if isinstance(data, dict) and "value" in data:
                return {**data, "cached": True}
        except Exception:  # noqa: BLE001 -- a corrupt cache entry is recomputed
            pass
    data = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)
    return {**data, "cached": False}
