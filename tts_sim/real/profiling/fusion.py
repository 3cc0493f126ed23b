"""Fusion calibration: real calls of nodes with predecessors, recorded as ``FusionRecord``s.

Two designs, both graded with the banks' shared ``AnswerIndex``:

- ``fusion_from_banks`` (one call per record, every call of a level batched across questions): small
  random graphs (``draw_fusion_graph``: width 1-4, depth 1-2, both roles, mixed models, in-degree 1-4)
  whose sources are replies from the answer banks of the same question; second-level nodes read
  first-level outputs and bank replies.
- ``plan_deep_graphs`` + ``run_fusion_graphs``: the same over graphs three levels of calls deep
  (``draw_deep_graph``): records of nodes that read refined or fused answers of refined answers, what
  the held-out graphs of a fidelity run reach and the small graphs do not.
- ``fusion_from_graphs``: small random graphs run end to end with ``GraphExecutor``; every executed
  node with predecessors gives one record (inputs here may themselves be fused or refined answers).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tts_sim.core.backend import Backend, Generation, GenerationRequest
from tts_sim.core.graph import Graph, Node, Role
from tts_sim.core.profile import FusionRecord
from tts_sim.core.prompts import PromptTemplates, node_messages, prompt_kind, templates_for
from tts_sim.errors import ConfigError
from tts_sim.real.executor import GraphExecutor, request_seed
from tts_sim.real.profiling.banks import AnswerBanks, BankSample
from tts_sim.real.profiling.journal import CallJournal, PlannedCall, ProgressBar, run_calls
from tts_sim.tasks.graders import grader_stop

ROLES = ("assistant", "fuser")


@dataclass(frozen=True)
class FusionCall:
    """One calibration call with its texts (for inspection and reports)."""

    record: FusionRecord
    kind: str
    input_texts: tuple[str, ...]
    text: str
    completion_tokens: int
    input_tokens: tuple[int, ...] = ()  # completion tokens of each input reply
    level: int = 1  # the node's level: 1 reads bank replies only, each level above reads the one below


@dataclass(frozen=True)
class FusionGraph:
    """One drawn calibration graph on question ``question``: its sources ``s0..`` are bank replies
    (``sources[i]`` indexes ``banks.samples``), its other nodes are real calls."""

    question: int
    graph: Graph
    sources: tuple[int, ...]


def draw_fusion_graph(rng: np.random.Generator, q: int, pool: Sequence[int], samples: Sequence[BankSample],
                      models: Sequence[str], calls: int, *, max_width: int = 4, roles: Sequence[str] = ROLES
                      ) -> FusionGraph:
    """A small graph of at most ``calls`` fusion nodes (>= 1) on question ``q``: 1..``max_width`` bank
    replies (``pool``: indices into ``samples``, mixed models) read either by one output node (depth 1)
    or by 1..``max_width`` middle nodes whose outputs, with the replies no middle read, feed the output
    (depth 2). Every fusion node has 1..``max_width`` inputs and a random model; roles are random where
    legal (a fuser never feeds a fuser)."""
    w = int(rng.integers(1, max_width + 1))
    picks = rng.choice(len(pool), size=w, replace=w > len(pool))
    sources = tuple(int(pool[int(i)]) for i in picks)
    nodes = [Node(f"s{i}", Role.ASSISTANT, samples[j].model) for i, j in enumerate(sources)]
    src = [n.id for n in nodes]
    out_role = Role(str(roles[int(rng.integers(len(roles)))]))
    edges: set[tuple[str, str]] = set()
    if calls >= 2 and rng.random() < 0.5:  # depth 2
        m = int(rng.integers(1, min(max_width, calls - 1) + 1))
        mid_roles = [Role.ASSISTANT if out_role is Role.FUSER else Role(str(roles[int(rng.integers(len(roles)))]))
                     for _ in range(m)]
        read: set[str] = set()
        for i, role in enumerate(mid_roles):
            k = int(rng.integers(1, w + 1))
            feeds = [src[int(x)] for x in sorted(rng.choice(w, size=k, replace=False))]
            read |= set(feeds)
            nodes.append(Node(f"m{i}", role, models[int(rng.integers(len(models)))]))
            edges |= {(u, f"m{i}") for u in feeds}
        direct = [u for u in src if u not in read]
        while m + len(direct) > max_width:  # too many inputs for the output: a middle reads one more reply
            u = direct.pop(int(rng.integers(len(direct))))
            edges.add((u, f"m{int(rng.integers(m))}"))
        edges |= {(f"m{i}", "out") for i in range(m)} | {(u, "out") for u in direct}
    else:
        edges |= {(u, "out") for u in src}
    nodes.append(Node("out", out_role, models[int(rng.integers(len(models)))]))
    return FusionGraph(q, Graph.build(nodes, edges, "out", catalog=None), sources)


def plan_fusion_graphs(banks: AnswerBanks, models: Sequence[str], n_records: int, *, max_inputs: int = 4,
                       roles: Sequence[str] = ROLES, seed: int = 0) -> list[FusionGraph]:
    """Graphs on random profiled questions until they hold exactly ``n_records`` fusion nodes."""
    return _plan(banks, models, n_records, max_inputs, roles, seed, lambda rng, q, pool, names, left: draw_fusion_graph(
        rng, q, pool, banks.samples, names, left, max_width=max_inputs, roles=roles))


#: draw(rng, question, its bank samples, sorted models, records still wanted) -> one graph
Draw = Callable[[np.random.Generator, int, Sequence[int], Sequence[str], int], FusionGraph]


def _plan(banks: AnswerBanks, models: Sequence[str], n_records: int, max_inputs: int, roles: Sequence[str],
          seed: int, draw: Draw) -> list[FusionGraph]:
    """Graphs from ``draw`` on random profiled questions until they hold at least ``n_records`` fusion nodes."""
    pools, usable, names = _check_plan(banks, models, n_records, max_inputs, roles)
    rng = np.random.default_rng(seed)
    graphs: list[FusionGraph] = []
    left = n_records
    while left > 0:
        q = usable[int(rng.integers(len(usable)))]
        g = draw(rng, q, pools[q], names, left)
        graphs.append(g)
        left -= len(g.graph.nodes) - len(g.sources)
    return graphs


def _check_plan(banks: AnswerBanks, models: Sequence[str], n_records: int, max_inputs: int, roles: Sequence[str]
                ) -> tuple[list[list[int]], list[int], list[str]]:
    """Checked plan settings: each question's bank samples, the questions that have any, the sorted models."""
    if n_records < 0 or max_inputs < 1:
        raise ConfigError(f"need n_records >= 0 and max_inputs >= 1, got {n_records} and {max_inputs}")
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise ConfigError(f"fusion roles must be among {', '.join(ROLES)}, got {list(roles)!r}")
    missing = [m for m in models if m not in banks.models]
    if missing:
        raise ConfigError(f"model(s) {', '.join(missing)} have no answer bank to calibrate fusion with")
    pools: list[list[int]] = [[] for _ in banks.questions]
    for i, s in enumerate(banks.samples):
        pools[s.question].append(i)
    return pools, [q for q, p in enumerate(pools) if p], sorted(models)


def draw_deep_graph(rng: np.random.Generator, q: int, pool: Sequence[int], samples: Sequence[BankSample],
                    models: Sequence[str], *, levels: int = 3, max_width: int = 4, max_middle: int = 3,
                    roles: Sequence[str] = ROLES) -> FusionGraph:
    """A graph of ``levels`` levels of calls on question ``q``: 1..``max_width`` bank replies, then
    ``levels - 1`` levels of 1..``max_middle`` nodes, each reading 1..``max_width`` nodes of the level
    below (every node there read by at least one), then one output node reading the last level. Models
    random; roles random where legal (a node fed by a fuser is an assistant)."""
    if levels < 1 or max_middle < 1 or max_middle > max_width:
        raise ConfigError(f"need levels >= 1 and 1 <= max_middle <= max_width, got {levels}, {max_middle}, "
                          f"{max_width}")
    w = int(rng.integers(1, max_width + 1))
    picks = rng.choice(len(pool), size=w, replace=w > len(pool))
    sources = tuple(int(pool[int(i)]) for i in picks)
    nodes = [Node(f"s{i}", Role.ASSISTANT, samples[j].model) for i, j in enumerate(sources)]
    below = [n.id for n in nodes]
    edges: set[tuple[str, str]] = set()
    for level in range(1, levels + 1):
        ids = ["out"] if level == levels else [f"l{level}n{i}" for i in range(int(rng.integers(1, max_middle + 1)))]
        reads: dict[str, set[str]] = {}
        for v in ids:
            k = len(below) if v == "out" else int(rng.integers(1, min(len(below), max_width) + 1))
            reads[v] = {below[int(x)] for x in rng.choice(len(below), size=k, replace=False)}
        for u in below:  # a node nobody reads goes to one that still has room
            if not any(u in r for r in reads.values()):
                room = [v for v in ids if len(reads[v]) < max_width]
                reads[room[int(rng.integers(len(room)))]].add(u)
        fed_by_fuser = {n.id for n in nodes if n.role is Role.FUSER}
        for v in ids:
            legal = [r for r in roles if not (r == "fuser" and reads[v] & fed_by_fuser)] or ["assistant"]
            nodes.append(Node(v, Role(str(legal[int(rng.integers(len(legal)))])),
                              models[int(rng.integers(len(models)))]))
            edges |= {(u, v) for u in reads[v]}
        below = ids
    return FusionGraph(q, Graph.build(nodes, edges, "out", catalog=None), sources)


def plan_deep_graphs(banks: AnswerBanks, models: Sequence[str], n_records: int, *, levels: int = 3,
                     max_inputs: int = 4, roles: Sequence[str] = ROLES, seed: int = 0) -> list[FusionGraph]:
    """``draw_deep_graph`` graphs on random profiled questions until they hold at least ``n_records``
    fusion nodes. The graphs do not depend on ``n_records``: a plan for more records starts with the
    plan for fewer (so a journal of a smaller run replays into a larger one)."""
    return _plan(banks, models, n_records, max_inputs, roles, seed, lambda rng, q, pool, names, _left: draw_deep_graph(
        rng, q, pool, banks.samples, names, levels=levels, max_width=max_inputs, max_middle=min(3, max_inputs),
        roles=roles))


def fusion_from_banks(backend: Backend, banks: AnswerBanks, models: Mapping[str, str], n_records: int, *,
                      max_inputs: int = 4, roles: Sequence[str] = ROLES, templates: PromptTemplates | None = None,
                      max_new_tokens: int = 256, temperature: float = 0.7, top_p: float = 1.0, seed: int = 0,
                      batch: int = 8, journal: CallJournal | None = None,
                      bar: ProgressBar | None = None) -> list[FusionCall]:
    """``n_records`` fusion calls from small graphs (``plan_fusion_graphs``) over bank replies
    (``models``: catalog -> backend name), run by ``run_fusion_graphs`` under keys ``fusion/...``."""
    graphs = plan_fusion_graphs(banks, list(models), n_records, max_inputs=max_inputs, roles=roles, seed=seed)
    return run_fusion_graphs(backend, banks, graphs, models, key="fusion", templates=templates,
                             max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed,
                             batch=batch, journal=journal, bar=bar)


def run_fusion_graphs(backend: Backend, banks: AnswerBanks, graphs: Sequence[FusionGraph], models: Mapping[str, str],
                      *, key: str, templates: PromptTemplates | None = None, max_new_tokens: int = 256,
                      temperature: float = 0.7, top_p: float = 1.0, seed: int = 0, batch: int = 8,
                      journal: CallJournal | None = None, bar: ProgressBar | None = None) -> list[FusionCall]:
    """Every call of ``graphs`` (sources: their bank replies), level by level: all calls of a level, of
    all graphs, batched, then the next level's, which read them. Calls are journaled under
    ``key/graph/node``. Records follow graph order, nodes in topological order, each with its level;
    answer ids are given in that order after every call is back (so a replay rebuilds them)."""
    grader = banks.index.grader
    templates = templates if templates is not None else templates_for(grader.task)
    stop = grader_stop(grader)
    journal = journal if journal is not None else CallJournal(None, {})
    texts: dict[str, Generation] = {}  # "g/node" -> the node's reply (sources: their bank replies)
    for g, fg in enumerate(graphs):
        for i, j in enumerate(fg.sources):
            s = banks.samples[j]
            texts[f"{g}/s{i}"] = Generation(s.text, s.prompt_tokens, s.completion_tokens, s.prefill_s, s.decode_s,
                                            s.finish_reason)
    for level in range(1, max((fg.graph.depth for fg in graphs), default=0) + 1):
        plan = []
        for g, fg in enumerate(graphs):
            question = banks.questions[fg.question]
            for node in fg.graph.topological_order:
                if fg.graph.levels[node] != level:
                    continue
                preds = fg.graph.predecessors(node)
                kind = prompt_kind(fg.graph.node(node).role, len(preds), node == fg.graph.output)
                messages = node_messages(templates, kind, question.prompt, grader.instructions,
                                         [texts[f"{g}/{p}"].text for p in preds])
                model = fg.graph.node(node).model
                plan.append(PlannedCall(f"{key}/{g}/{node}", model, models[model], GenerationRequest(
                    messages, max_new_tokens, temperature, top_p, stop,
                    request_seed(seed, question.id, f"{key}/{g}/{node}"))))
        results = run_calls(backend, plan, journal, batch=batch, bar=bar)
        texts.update({k.removeprefix(f"{key}/"): gen for k, gen in results.items()})
    calls: list[FusionCall] = []
    for g, fg in enumerate(graphs):
        q, graph = fg.question, fg.graph
        ids = {n: banks.samples[j].answer_id for n, j in zip((f"s{i}" for i in range(len(fg.sources))),
                                                               fg.sources, strict=True)}
        for node in graph.topological_order:
            preds = graph.predecessors(node)
            if not preds:
                continue
            gen = texts[f"{g}/{node}"]
            ids[node] = banks.index.id_of_text(q, gen.text)
            n, level = graph.node(node), graph.levels[node]
            record = FusionRecord(n.model, n.role.value, q, tuple(ids[p] for p in preds), ids[node],
                                  gen.prompt_tokens, level)
            inputs = [texts[f"{g}/{p}"] for p in preds]
            calls.append(FusionCall(record, prompt_kind(n.role, len(preds), node == graph.output),
                                    tuple(x.text for x in inputs), gen.text, gen.completion_tokens,
                                    tuple(x.completion_tokens for x in inputs), level))
    return calls


def random_small_graph(rng: np.random.Generator, models: Sequence[str], max_sources: int = 3) -> Graph:
    """1..``max_sources`` direct assistants, at most one middle node, and an output node; random
    models and legal roles. Model names are not checked against a catalog."""
    n_src = int(rng.integers(1, max_sources + 1))
    nodes = [Node(f"s{i}", Role.ASSISTANT, str(rng.choice(list(models)))) for i in range(n_src)]
    edges: set[tuple[str, str]] = set()
    if rng.random() < 0.5:
        k = int(rng.integers(1, n_src + 1))
        feeds = [str(x) for x in rng.choice([n.id for n in nodes], size=k, replace=False)]
        nodes.append(Node("m0", Role(str(rng.choice(ROLES))), str(rng.choice(list(models)))))
        edges |= {(u, "m0") for u in feeds}
    fuser_mid = any(n.role is Role.FUSER for n in nodes)
    out_role = Role.ASSISTANT if fuser_mid else Role(str(rng.choice(ROLES)))  # a fuser never feeds a fuser
    out = Node("out", out_role, str(rng.choice(list(models))))
    sinks = [n.id for n in nodes if not any(u == n.id for u, _ in edges)]
    edges |= {(s, "out") for s in sinks}
    return Graph.build([*nodes, out], edges, "out", catalog=None)


def fusion_from_graphs(executor: GraphExecutor, banks: AnswerBanks, models: Sequence[str], n_graphs: int, *,
                       questions_per_graph: int = 2, seed: int = 0,
                       progress: Callable[[str], None] | None = None) -> list[FusionCall]:
    """Run ``n_graphs`` random small graphs of ``models`` (catalog names; the executor maps them) on
    random profiled questions; one record per executed node with predecessors."""
    if not models:
        raise ConfigError("fusion_from_graphs needs at least one model")
    rng = np.random.default_rng(seed)
    out: list[FusionCall] = []
    n_q = len(banks.questions)
    for g in range(n_graphs):
        graph = random_small_graph(rng, models)
        for q in rng.choice(n_q, size=min(questions_per_graph, n_q), replace=False):
            q = int(q)
            run = executor.run(graph, banks.questions[q], seed=seed + g)
            ids = {t.node: banks.index.id_of(q, t.answer) for t in run.nodes}
            for t in run.nodes:
                if t.predecessors:
                    texts = tuple(run.trace[p].text for p in t.predecessors)
                    rec = FusionRecord(t.model, t.role, q, tuple(ids[p] for p in t.predecessors), ids[t.node],
                                       t.prompt_tokens, graph.levels[t.node])
                    out.append(FusionCall(rec, t.kind, texts, t.text, t.completion_tokens,
                                          tuple(run.trace[p].completion_tokens for p in t.predecessors),
                                          graph.levels[t.node]))
        if progress is not None:
            progress(f"fusion graph {g + 1}/{n_graphs}: {len(out)} records")
    return out
