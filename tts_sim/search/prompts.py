"""The agent's prompts, following the paper's structure: a system prompt with the graph semantics,
the role rules, the three insights and the design heuristics; a mix-selection prompt with the
single-model accuracies; and a feedback prompt per round carrying the last graph as text, its score
(and latency when the objective asks), the edge-probability table and two rounds of memory.
TextGrad-style prompts leave out the insights and heuristics."""

from __future__ import annotations

import json
from collections.abc import Mapping

from tts_sim.core.graph import Graph
from tts_sim.search.agent_api import MixRequest, ProposeRequest, Round
from tts_sim.search.space import OUTPUT_ID, edge_table_text

Messages = list[dict[str, str]]

SEMANTICS = """You design collaboration graphs of LLM calls for test-time scaling.
A graph is a DAG. Each node is one LLM call with a role and a model:
- assistant: with no predecessors it answers the question; with predecessors it reads their answers
  (some may be wrong), evaluates them critically and writes one refined answer;
- fuser: reviews, condenses and merges its predecessors' answers into one answer.
An edge u -> v appends u's answer to v's prompt. Rules: a fuser needs at least one assistant
predecessor; a fuser never feeds another fuser; the graph has at least one assistant. The output
node "out" (an assistant running {output_model}) gives the graph's answer; only nodes with a path
to it are executed. Cost is FLOPs: every executed node costs one call of its model, and every extra
predecessor lengthens its prompt, so in-degree costs compute. Budget: {budget:.1f} units (one unit =
one direct LLaMA-3.2-1B call); graphs over budget are cut down, smallest models first."""

INSIGHTS = """What is known about such graphs:
Insight 1: each task prefers its own model mix. On MATH several mid-size models beat one large model
at equal budget; on MMLU and HumanEval a single larger model wins.
Insight 2: width (parallel nodes) and depth (chain length) each have a task-dependent optimum; past
it, more compute lowers accuracy (long contexts hurt weak models, deep chains let later nodes
overwrite correct answers, too many weak models hurt).
Insight 3: width and depth interact: wider graphs move the best depth down, deeper graphs move the
best width down.
Heuristics: larger models tolerate long contexts and belong on nodes with many predecessors;
multi-input nodes do better with diverse predecessor models; grow the graph outward from the output
node. Raise an edge's probability only if the edge was used and helped; keep in-degree and depth
moderate."""

GRAPH_FORMAT = """Reply with one JSON object and nothing else:
{"reasoning": "<short>",
 "graph": {"nodes": [{"id": "n0", "role": "assistant", "model": "<model>"}, ...,
                     {"id": "out", "role": "assistant", "model": "<output model>"}],
           "edges": [["n0", "out"], ...], "output": "out"},
 "edge_probabilities": {"n0->out": 0.5, ...}}"""


def system_prompt(req: MixRequest | ProposeRequest, insights: bool = True) -> str:
    text = SEMANTICS.format(output_model=req.space.output_model, budget=req.space.budget)
    return text + ("\n\n" + INSIGHTS if insights else "")


def accuracy_table(req: MixRequest) -> str:
    """The prior's single-model accuracies (only under ``--prior published``)."""
    lines = [f"- {m}: {a * 100:.1f}%" if (a := req.prior.accuracy(m)) is not None else f"- {m}: unknown"
             for m in req.space.pool]
    return "\n".join(lines)


def task_line(req: MixRequest | ProposeRequest) -> str:
    """The task's name, and its kind when the search's prior includes it."""
    kind = f" ({req.prior.task_kind})" if req.prior.task_kind else ""
    return f"Task: {req.space.task.name}{kind}."


def mix_messages(req: MixRequest, max_listed: int = 40) -> Messages:
    listed = req.mixes[:max_listed]
    costs = ", ".join(f"{m}={c}" for m, c in req.unit_costs.items())
    mixes = "\n".join(f"{i}. {o.label()} (cost {o.units}, leftover {o.leftover})" for i, o in enumerate(listed))
    accuracies = (f"Published single-model accuracies on this task:\n{accuracy_table(req)}\n"
                  if req.prior.accuracies else "No single-model accuracies are known for this task.\n")
    user = (f"{task_line(req)} Objective: {req.objective}.\n{accuracies}"
            f"Integer cost units per call: {costs}; {req.available_units} units are left for worker nodes.\n"
            f"Candidate model mixes (each spends the budget):\n{mixes}\n\n"
            f"Using Insight 1, pick the {req.n_picks} most promising mixes for this task. Reply with JSON: "
            f'{{"reasoning": "<short>", "picks": [<mix numbers>]}}')
    return [{"role": "system", "content": system_prompt(req)}, {"role": "user", "content": user}]


def describe_round(r: Round, show_latency: bool) -> str:
    lat = f", latency {r.latency_s:.2f} s" if show_latency and r.latency_s is not None else ""
    return f"score {r.score:.4f} (accuracy {r.accuracy:.4f}{lat}, cost {r.units:.1f} units)"


def propose_messages(req: ProposeRequest, insights: bool = True) -> Messages:
    nodes = "\n".join(f"- {nid}: {model}" for nid, model in req.nodes.items())
    memory = "\n\n".join(f"{len(req.memory) - i} round(s) before the last: {describe_round(r, req.show_latency)}"
                         f"{' | ' + r.note if r.note else ''}\n{r.graph.to_text()}"
                         for i, r in enumerate(req.memory))
    latency_ask = ("\nAlso lower the latency while preserving accuracy: nodes on one level run in parallel, "
                   "so depth and slow models on the critical path add latency.") if req.show_latency else ""
    user = (f"Round {req.step}. Objective: {req.objective}.{latency_ask}\n"
            f"Nodes you may use (id: model):\n{nodes}\n- {OUTPUT_ID}: {req.space.output_model} (output)\n\n"
            f"Last graph ({describe_round(req.last, req.show_latency)}):\n{req.last.graph.to_text()}\n\n"
            f"Best so far: {describe_round(req.best, req.show_latency)}.\n\n"
            f"Edge probabilities:\n{edge_table_text(req.edge_table)}\n\n"
            + (f"Memory of earlier rounds:\n{memory}\n\n" if memory else "")
            + "Propose the next graph and the updated edge-probability table.\n" + GRAPH_FORMAT)
    return [{"role": "system", "content": system_prompt(req, insights)}, {"role": "user", "content": user}]


def critique_messages(req: ProposeRequest) -> Messages:
    """TextGrad's loss step: feedback on the last graph, without the insights."""
    prev = f"The graph before it scored {req.memory[-1].score:.4f}.\n" if req.memory else ""
    user = (f"Objective: {req.objective}.\nThis graph scored {describe_round(req.last, req.show_latency)}:\n"
            f"{req.last.graph.to_text()}\n{prev}"
            f"Write concise feedback: what should change in this graph to raise the score?")
    return [{"role": "system", "content": system_prompt(req, insights=False)}, {"role": "user", "content": user}]


def edit_messages(req: ProposeRequest, feedback: str) -> Messages:
    """TextGrad's update step: apply the feedback to the last graph."""
    nodes = ", ".join(f"{nid} ({m})" for nid, m in req.nodes.items())
    user = (f"Current graph:\n{req.last.graph.to_text()}\n\nFeedback:\n{feedback}\n\n"
            f"Apply the feedback. Models you may use: {', '.join(req.space.pool)}; node ids like {nodes or 'n0'}; "
            f"at most {req.space.max_nodes} worker nodes.\n" + GRAPH_FORMAT)
    return [{"role": "system", "content": system_prompt(req, insights=False)}, {"role": "user", "content": user}]


def retry_message(error: str) -> dict[str, str]:
    return {"role": "user", "content": f"Your reply could not be used: {error}. Reply again with exactly one "
                                       f"JSON object in the requested format."}


def render(messages: Messages) -> str:
    return "\n\n".join(m["content"] for m in messages)


def graph_reply_json(graph: Graph, table: Mapping[str, float] | None, reasoning: str) -> str:
    """A well-formed reply (what a model should send; used for token estimates and tests)."""
    body: dict = {"reasoning": reasoning, "graph": graph.to_dict()}
    if table is not None:
        body["edge_probabilities"] = {k: round(v, 3) for k, v in table.items()}
    return json.dumps(body)
