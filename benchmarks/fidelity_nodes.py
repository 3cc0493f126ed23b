"""A fidelity run node by node: where in a graph does the simulator part from the real run?

``tts-sim fidelity`` journals every executed node's answer and correctness with each (graph,
question) record. This script puts each node's measured behaviour next to the simulator's (the
profile's quality model, ``QualityModel.simulate`` over the profile's questions, many replicates):

1. every node's accuracy (its marginal P(correct)), by graph;
2. pooled by level and role: where the levels of the two first part;
3. fusing nodes by the share of their inputs that are correct (the per-node model, checked on the
   held-out graphs' own nodes: wider and deeper than the profile's records);
4. when two nodes of a graph are both wrong on a question, how often they give the same wrong answer,
   by how the two are related (the structure that voting and fusion gain or lose from);
5. (measured only) what fusing nodes write when wrong: no answer, an input's answer, or another one.

Standard errors are clustered by question (the nodes of one question are not independent). The
measured side is on the run's held-out questions, the simulated side on the profile's: the two agree
only as far as the question populations do (the single models' rows show how far that is).

    python benchmarks/fidelity_nodes.py runs/fidelity-seed4/fidelity_mul-words.journal.jsonl
"""

from __future__ import annotations

import argparse
import gzip
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tts_sim.core.graph import Graph  # noqa: E402
from tts_sim.errors import TtsSimError  # noqa: E402
from tts_sim.journal import Journal  # noqa: E402
from tts_sim.real.fidelity.run import JOURNAL_SCHEMA, JOURNAL_VERSION  # noqa: E402
from tts_sim.sim.profiles import load_profile  # noqa: E402
from tts_sim.sim.quality.fusion import ROLES, role_index  # noqa: E402
from tts_sim.sim.quality.model import QualityModel  # noqa: E402
from tts_sim.tasks.graders import get_grader  # noqa: E402

NO_ANSWER = "<no answer>"
SHARE_BINS = ((0.0, 0.0, "none"), (1e-9, 0.5 - 1e-9, "<half"), (0.5, 1 - 1e-9, ">=half"), (1.0, 1.0, "all"))


@dataclass
class Tally:
    """Observations (0/1) clustered by question: the mean and its cluster-robust standard error (never
    below the binomial one at a smoothed rate)."""

    by_question: dict[object, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, question: object, values: Iterable[float]) -> None:
        self.by_question[question].extend(values)

    @property
    def n(self) -> int:
        return sum(len(v) for v in self.by_question.values())

    def mean_se(self) -> tuple[float, float]:
        n = self.n
        if not n:
            return float("nan"), float("nan")
        mean = sum(sum(v) for v in self.by_question.values()) / n
        resid = np.array([sum(x - mean for x in v) for v in self.by_question.values()])
        smoothed = (mean * n + 0.5) / (n + 1)  # a floor: all-0 or all-1 groups are not known exactly
        return mean, max(float(np.sqrt((resid ** 2).sum()) / n), float(np.sqrt(smoothed * (1 - smoothed) / n)))


def read_journal(path: Path) -> tuple[dict, list[dict]]:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
            raise ValueError(f"{path}: not a gzipped journal ({exc})") from None
    loaded = Journal(path, JOURNAL_SCHEMA, JOURNAL_VERSION, what="fidelity journal").load(raw=raw)
    if loaded is None:
        raise ValueError(f"{path}: an empty journal")
    config, records = loaded
    if not any("nodes" in r for r in records):
        raise ValueError(f"{path}: its records have no per-node answers (journals written before they were kept)")
    return config, [r for r in records if "nodes" in r]


def role_name(graph: Graph, node: str) -> str:
    preds = graph.predecessors(node)
    return "source" if not preds else ROLES[role_index(graph.node(node).role.value, len(preds))]


def node_kind(graph: Graph, node: str) -> str:
    return f"L{graph.levels[node]} {role_name(graph, node)}"


def pair_kind(graph: Graph, a: str, b: str) -> str:
    """How two nodes of a graph are related."""
    pa, pb = set(graph.predecessors(a)), set(graph.predecessors(b))
    if a in pb or b in pa:
        return "node and its input"
    if not pa and not pb:
        same = graph.node(a).model == graph.node(b).model
        return "two sources, same model" if same else "two sources, other models"
    if pa == pb:
        return "siblings (same inputs)"
    return "share an input" if pa & pb else "unrelated"


def share_bin(share: float) -> str:
    return next(label for lo, hi, label in SHARE_BINS if lo <= share <= hi)


@dataclass
class Side:
    """The tallies of one side (measured or simulated)."""

    node: dict[tuple[int, str], Tally] = field(default_factory=lambda: defaultdict(Tally))
    kind: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    given: dict[tuple[str, str, str], Tally] = field(default_factory=lambda: defaultdict(Tally))
    same_wrong: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))

    def add_question(self, index: int, graph: Graph, question: object, correct: Mapping[str, np.ndarray],
                     answer: Mapping[str, np.ndarray]) -> None:
        """One question's runs of graph ``index``: per node, arrays over replicates of whether it was
        correct and of its answer."""
        nodes = list(graph.executed)
        for n in nodes:
            c = correct[n].astype(float)
            self.node[(index, n)].add(question, c)
            self.kind[node_kind(graph, n)].add(question, c)
            preds = graph.predecessors(n)
            if preds:
                share = np.mean([correct[p] for p in preds], axis=0)
                d = len(preds)
                degree = f"{d}" if d <= 2 else "3-4" if d <= 4 else "5-6" if d <= 6 else "7+"
                for label in {share_bin(s) for s in share}:
                    sel = np.array([share_bin(s) == label for s in share])
                    self.given[(role_name(graph, n), degree, label)].add(question, c[sel])
        for a, b in combinations(nodes, 2):
            both = ~correct[a] & ~correct[b]
            if both.any():
                self.same_wrong[pair_kind(graph, a, b)].add(question, (answer[a] == answer[b])[both].astype(float))


def compare(rows: Iterable[tuple[str, Tally, Tally]], header: str) -> None:
    print(f"{header:<44}{'measured':>17}{'simulated':>17}{'diff':>8}{'z':>6}{'n meas':>8}")
    for label, real, sim in rows:
        (mr, sr), (ms, ss) = real.mean_se(), sim.mean_se()
        z = (mr - ms) / np.hypot(sr, ss) if np.hypot(sr, ss) > 0 else float("nan")
        print(f"{label:<44}{mr:>10.3f}±{sr:.3f}{ms:>10.3f}±{ss:.3f}{mr - ms:>+8.3f}{z:>+6.1f}{real.n:>8}")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("journal", type=Path, help="a fidelity journal (.jsonl or .jsonl.gz) with per-node answers")
    ap.add_argument("--profile", help="default: measured:TASK of the journal's task")
    ap.add_argument("--replicates", type=int, default=64, help="simulated runs per profile question")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    threadpool_limits(1)
    try:
        if args.replicates < 1:
            raise ValueError(f"--replicates must be >= 1, got {args.replicates}")
        config, records = read_journal(args.journal)
        task = config["task"]
        qm = QualityModel.from_profile(load_profile(args.profile or f"measured:{task}"), task)
        graphs = [Graph.from_dict(g) for g in config["graphs"]]
    except (TtsSimError, ValueError, OSError, KeyError) as exc:
        print(f"fidelity_nodes: {exc}", file=sys.stderr)
        sys.exit(2)
    grader = get_grader(task)

    def canon(a: str | None) -> str:
        return NO_ANSWER if a is None else grader.canonical(a)

    real, sim = Side(), Side()
    for r in records:
        nodes = r["nodes"]
        real.add_question(r["graph"], graphs[r["graph"]], r["question"],
                          {n: np.array([bool(c)]) for n, (_, c) in nodes.items()},
                          {n: np.array([canon(a)], dtype=object) for n, (a, _) in nodes.items()})
    rng = np.random.default_rng(args.seed)
    qs = np.arange(qm.n_questions)
    for index, g in enumerate(graphs):
        ids = qm.simulate(g, qs, rng, args.replicates)
        for q in range(len(qs)):
            sim.add_question(index, g, q, {n: v[q] == 0 for n, v in ids.items()}, {n: v[q] for n, v in ids.items()})
    questions = len({r["question"] for r in records})
    print(f"{args.journal}: task {task}, {len(records)} records on {questions} questions; simulated: "
          f"{qm.label}, {qm.n_questions} questions x {args.replicates} replicates\n")

    print("1. every node (graph #, node, level and role, model, inputs)")
    compare(((f"#{i} {n} {node_kind(g, n)} {g.node(n).model[:6]} d={len(g.predecessors(n))}"
              + (" (out)" if n == g.output else ""), real.node[(i, n)], sim.node[(i, n)])
             for i, g in enumerate(graphs) for n in g.executed), "node")
    print("2. pooled by level and role")
    compare(((k, real.kind[k], sim.kind[k]) for k in sorted(set(real.kind) | set(sim.kind))), "level, role")
    print("3. fusing nodes by the share of their inputs that are correct")
    compare(((f"{role} d={d} inputs correct: {share}", real.given[(role, d, share)], sim.given[(role, d, share)])
             for role, d, share in sorted(set(real.given) | set(sim.given),
                                          key=lambda k: (k[0], k[1], [b[2] for b in SHARE_BINS].index(k[2])))),
            "role, in-degree, inputs correct")
    print("4. two nodes both wrong: the same wrong answer")
    compare(((k, real.same_wrong[k], sim.same_wrong[k]) for k in sorted(set(real.same_wrong) | set(sim.same_wrong))),
            "how the two are related")
    print("5. fusing nodes (measured): what they write, by the share of their inputs that are correct")
    writes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in records:
        g, nodes = graphs[r["graph"]], r["nodes"]
        for n in g.executed:
            preds = g.predecessors(n)
            if preds:
                answer, right = nodes[n]
                what = ("correct" if right else "no answer" if answer is None else
                        "an input's answer" if canon(answer) in {canon(nodes[p][0]) for p in preds} else "another")
                writes[share_bin(float(np.mean([nodes[p][1] for p in preds])))][what] += 1
    kinds = ("correct", "an input's answer", "no answer", "another")
    print(f"{'inputs correct':<16}{'nodes':>7}" + "".join(f"{k:>19}" for k in kinds))
    for _, _, label in SHARE_BINS:
        total = sum(writes[label].values())
        if total:
            print(f"{label:<16}{total:>7}" + "".join(f"{writes[label][k] / total:>19.3f}" for k in kinds))
    print()


if __name__ == "__main__":
    main()
