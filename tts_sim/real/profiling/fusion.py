"""Fusion calibration: real calls of nodes with predecessors, recorded as ``FusionRecord``s.

Two designs, both graded with the banks' shared ``AnswerIndex``:

- ``fusion_from_banks`` (cheap: one call per record): a node of a random model and role reads 1..3
  replies drawn from the answer banks of the same question and answers; assistants use the refine or
  the output node's synthesise prompt at random.
- ``fusion_from_graphs``: small random graphs run end to end with ``GraphExecutor``; every executed
  node with predecessors gives one record (inputs here may themselves be fused or refined answers).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tts_sim.core.backend import Backend, GenerationRequest
from tts_sim.core.graph import Graph, Node, Role
from tts_sim.core.profile import FusionRecord
from tts_sim.core.prompts import PromptTemplates, node_messages, prompt_kind, templates_for
from tts_sim.errors import ConfigError
from tts_sim.real.executor import GraphExecutor, request_seed
from tts_sim.real.profiling.banks import AnswerBanks
from tts_sim.tasks.graders import stop_sequences

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


def fusion_from_banks(backend: Backend, banks: AnswerBanks, models: Mapping[str, str], n_records: int, *,
                      max_inputs: int = 3, roles: Sequence[str] = ROLES, templates: PromptTemplates | None = None,
                      max_new_tokens: int = 256, temperature: float = 0.7, top_p: float = 1.0, seed: int = 0,
                      batch: int = 8, progress: Callable[[str], None] | None = None) -> list[FusionCall]:
    """``n_records`` single fusion calls whose inputs are bank replies (``models``: catalog -> backend name)."""
    if n_records < 0 or max_inputs < 1:
        raise ConfigError(f"need n_records >= 0 and max_inputs >= 1, got {n_records} and {max_inputs}")
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise ConfigError(f"fusion roles must be among {', '.join(ROLES)}, got {list(roles)!r}")
    missing = [m for m in models if m not in banks.models]
    if missing:
        raise ConfigError(f"model(s) {', '.join(missing)} have no answer bank to calibrate fusion with")
    grader = banks.index.grader
    templates = templates if templates is not None else templates_for(grader.task)
    rng = np.random.default_rng(seed)
    by_q = [banks.by_question(q) for q in range(len(banks.questions))]
    usable = [q for q, s in enumerate(by_q) if s]
    plans: dict[str, list[tuple[int, str, str, tuple]]] = {m: [] for m in models}
    names = sorted(models)
    for i in range(n_records):
        model = names[int(rng.integers(len(names)))]
        role = roles[int(rng.integers(len(roles)))]
        q = usable[int(rng.integers(len(usable)))]
        pool = by_q[q]
        d = int(rng.integers(1, max_inputs + 1))
        picks = rng.choice(len(pool), size=d, replace=d > len(pool))
        inputs = tuple(pool[int(j)] for j in picks)
        kind = prompt_kind(role, d, is_output=role == "assistant" and bool(rng.random() < 0.5))
        plans[model].append((i, role, kind, (q, inputs)))
    calls: dict[int, FusionCall] = {}
    for model, plan in plans.items():
        for start in range(0, len(plan), batch):
            chunk = plan[start:start + batch]
            requests = [GenerationRequest(
                node_messages(templates, kind, banks.questions[q].prompt, grader.instructions,
                              [s.text for s in inputs]),
                max_new_tokens, temperature, top_p, stop_sequences(grader),
                request_seed(seed, banks.questions[q].id, f"fusion/{i}"))
                for i, _, kind, (q, inputs) in chunk]
            gens = backend.generate(models[model], requests)
            if len(gens) != len(requests):
                raise ConfigError(f"backend returned {len(gens)} completions for {len(requests)} requests")
            for (i, role, kind, (q, inputs)), gen in zip(chunk, gens, strict=True):
                record = FusionRecord(model, role, q, tuple(s.answer_id for s in inputs),
                                      banks.index.id_of_text(q, gen.text), gen.prompt_tokens)
                calls[i] = FusionCall(record, kind, tuple(s.text for s in inputs), gen.text, gen.completion_tokens,
                                      tuple(s.completion_tokens for s in inputs))
            if progress is not None:
                progress(f"{model}: fusion {min(start + batch, len(plan))}/{len(plan)} calls")
    return [calls[i] for i in sorted(calls)]


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
                                       t.prompt_tokens)
                    out.append(FusionCall(rec, t.kind, texts, t.text, t.completion_tokens,
                                          tuple(run.trace[p].completion_tokens for p in t.predecessors)))
        if progress is not None:
            progress(f"fusion graph {g + 1}/{n_graphs}: {len(out)} records")
    return out
