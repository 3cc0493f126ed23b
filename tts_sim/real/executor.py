"""``GraphExecutor``: run a collaboration graph for real on a ``Backend``, on one question or a batch.

Executed nodes run level by level (``Graph.levels``): every node of a level has all its predecessors
done, so a level's nodes run concurrently. Nodes of one level that use the same backend model go to
the backend in **one** ``generate`` call (the backend batches them), across questions too with
``run_batch``; different models of one level run in a thread pool, one call each. A level starts when
the previous level's calls have all returned, which is the simulator's semantics for a static batch.

Each node's prompt comes from ``tts_sim.core.prompts`` (its role, its predecessors' full replies, the
grader's answer-format line). Sampling seeds derive from (seed, question id, node id), so a run is
reproducible and the nodes of a level do not share a random stream.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from tts_sim.core.backend import Backend, Generation, GenerationRequest
from tts_sim.core.graph import Graph
from tts_sim.core.prompts import PromptTemplates, node_messages, prompt_kind, templates_for
from tts_sim.errors import ConfigError
from tts_sim.tasks.graders import Grader, get_grader, grader_stop
from tts_sim.tasks.question import Question


@dataclass(frozen=True)
class NodeTrace:
    """What one node of one run did. Times are seconds; ``start_s``/``end_s`` are wall-clock offsets
    from the start of the query (``end_s``: when its ``generate`` call returned)."""

    node: str
    model: str  # catalog name in the graph
    backend_model: str  # name the backend served
    role: str
    kind: str  # prompt kind: direct | refine | fuse | synthesise
    level: int
    predecessors: tuple[str, ...]
    prompt_tokens: int
    completion_tokens: int
    prefill_s: float
    decode_s: float
    start_s: float
    end_s: float
    batch: int  # requests in its generate call
    text: str
    answer: str | None  # the grader's extraction of ``text``
    finish_reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GraphRun:
    """One run of a graph on one question."""

    question: Question
    answer: str | None  # the output node's extracted answer
    correct: bool
    wall_s: float  # query latency: from the first call's start to the output node's return
    nodes: tuple[NodeTrace, ...]  # executed nodes in topological order

    @property
    def trace(self) -> dict[str, NodeTrace]:
        return {t.node: t for t in self.nodes}

    @property
    def prompt_tokens(self) -> int:
        return sum(t.prompt_tokens for t in self.nodes)

    @property
    def completion_tokens(self) -> int:
        return sum(t.completion_tokens for t in self.nodes)

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question.id, "answer": self.answer, "correct": self.correct, "wall_s": self.wall_s,
                "nodes": [t.to_dict() for t in self.nodes]}


def request_seed(seed: int, question_id: str, node: str) -> int:
    """A stable 31-bit sampling seed for one node of one question."""
    return zlib.crc32(f"{seed}\x1f{question_id}\x1f{node}".encode()) & 0x7FFFFFFF


class GraphExecutor:
    """Runs graphs on ``backend``. ``model_map`` maps a graph's model names (catalog names) to the
    backend's names; unmapped names pass through. ``parallel_models`` runs the calls of different
    models of one level in threads (else one after another); by default, as the backend's
    ``concurrent_models`` says (True where it does not say: a server serves models side by side)."""

    def __init__(self, backend: Backend, task: str, *, grader: Grader | None = None,
                 templates: PromptTemplates | None = None, model_map: Mapping[str, str] | None = None,
                 max_new_tokens: int = 256, temperature: float = 0.7, top_p: float = 1.0,
                 stop: Sequence[str] | None = None, seed: int = 0, parallel_models: bool | None = None) -> None:
        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
        if not temperature >= 0:
            raise ConfigError(f"temperature must be >= 0, got {temperature!r}")
        self.backend = backend
        self.task = task
        self.grader = grader if grader is not None else get_grader(task)
        self.templates = templates if templates is not None else templates_for(task)
        self.model_map = dict(model_map or {})
        self.max_new_tokens, self.temperature, self.top_p = max_new_tokens, temperature, top_p
        self.stop = tuple(stop) if stop is not None else grader_stop(self.grader)  # default: the grader's
        self.seed = seed
        self.parallel_models = (bool(getattr(backend, "concurrent_models", True)) if parallel_models is None
                                else parallel_models)

    def backend_model(self, model: str) -> str:
        return self.model_map.get(model, model)

    def prime(self, graph: Graph) -> None:
        """Leave the backend as ``graph``'s own previous query would: one untimed one-token call of its
        output node's model. On a CPU serving several models a call right after another model's pays a
        switch; in a closed loop of one graph (what the simulator predicts) each query starts right after
        the previous one's output call, so time a query after this, not after another graph's."""
        model = self.backend_model(graph.node(graph.output).model)
        self.backend.generate(model, [GenerationRequest(({"role": "user", "content": "1"},), 1, 0.0)])

    def run(self, graph: Graph, question: Question, *, seed: int | None = None) -> GraphRun:
        """Run ``graph``'s executed nodes on ``question``; dead nodes never run."""
        return self.run_batch(graph, [question], seed=seed)[0]

    def run_batch(self, graph: Graph, questions: Sequence[Question], *, seed: int | None = None) -> list[GraphRun]:
        """Run ``graph`` on several questions together: level by level, the nodes of every question
        that use one backend model go to the backend in one ``generate`` call. Replies do not depend
        on how questions are batched (seeds are per question and node). A run's ``wall_s`` is from the
        batch's start to the return of the call holding its output node: what each of
        ``len(questions)`` queries arriving together waits."""
        seed = self.seed if seed is None else seed
        levels: dict[int, list[str]] = {}
        for node_id in graph.executed:
            levels.setdefault(graph.levels[node_id], []).append(node_id)
        texts: dict[tuple[int, str], str] = {}
        traces: dict[tuple[int, str], NodeTrace] = {}
        t0 = time.perf_counter()
        for level in sorted(levels):
            groups: dict[str, list[tuple[int, str]]] = {}
            for node_id in levels[level]:
                model = self.backend_model(graph.node(node_id).model)
                groups.setdefault(model, []).extend((qi, node_id) for qi in range(len(questions)))
            calls = [(model, keys, [self._request(graph, n, questions[qi], qi, texts, seed) for qi, n in keys])
                     for model, keys in groups.items()]
            if self.parallel_models and len(calls) > 1:
                with ThreadPoolExecutor(max_workers=len(calls)) as pool:
                    done = list(pool.map(lambda c: self._call(c[0], c[2], t0), calls))
            else:
                done = [self._call(model, reqs, t0) for model, _, reqs in calls]
            for (model, keys, _), (gens, start, end) in zip(calls, done, strict=True):
                for key, gen in zip(keys, gens, strict=True):
                    texts[key] = gen.text
                    traces[key] = self._trace(graph, key[1], model, level, gen, start, end, len(keys))
        runs = []
        for qi, question in enumerate(questions):
            out = traces[(qi, graph.output)]
            correct = bool(self.grader.is_correct(out.answer, question))
            runs.append(GraphRun(question, out.answer, correct, out.end_s,
                                 tuple(traces[(qi, n)] for n in graph.executed)))
        return runs

    # ----- internals ----------------------------------------------------------------------------
    def _request(self, graph: Graph, node_id: str, question: Question, qi: int,
                 texts: Mapping[tuple[int, str], str], seed: int) -> GenerationRequest:
        preds = graph.predecessors(node_id)
        kind = prompt_kind(graph.node(node_id).role, len(preds), node_id == graph.output)
        messages = node_messages(self.templates, kind, question.prompt, self.grader.instructions,
                                 [texts[(qi, p)] for p in preds])
        return GenerationRequest(messages, self.max_new_tokens, self.temperature, self.top_p, self.stop,
                                 request_seed(seed, question.id, node_id))

    def _call(self, model: str, requests: list[GenerationRequest], t0: float
              ) -> tuple[list[Generation], float, float]:
        start = time.perf_counter() - t0
        gens = list(self.backend.generate(model, requests))
        end = time.perf_counter() - t0
        if len(gens) != len(requests):
            raise ConfigError(f"backend {self.backend.name!r} returned {len(gens)} completions for "
                              f"{len(requests)} requests of model {model!r}")
        return gens, start, end

    def _trace(self, graph: Graph, node_id: str, model: str, level: int, gen: Generation, start: float,
               end: float, batch: int) -> NodeTrace:
        node = graph.node(node_id)
        preds = graph.predecessors(node_id)
        return NodeTrace(
            node=node_id, model=node.model, backend_model=model, role=node.role.value,
            kind=prompt_kind(node.role, len(preds), node_id == graph.output), level=level, predecessors=preds,
            prompt_tokens=gen.prompt_tokens, completion_tokens=gen.completion_tokens, prefill_s=gen.prefill_s,
            decode_s=gen.decode_s, start_s=start, end_s=end, batch=batch, text=gen.text,
            answer=self.grader.extract(gen.text), finish_reason=gen.finish_reason)
