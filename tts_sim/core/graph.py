"""Collaboration graphs: nodes are LLM calls (role + model), edges carry answers, one output node.

``Graph`` is immutable and hashable (searchers cache by it). ``Graph.build`` and
``Graph.from_dict`` validate and raise ``GraphError`` with one line naming the culprit. Only nodes
with a path to the output node are executed (the paper's rule); ``executed`` lists them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cached_property
from pathlib import Path

from tts_sim.core.models import DEFAULT_CATALOG, ModelCatalog
from tts_sim.errors import GraphError, shown

SCHEMA = "tts-sim/graph"
SCHEMA_VERSION = 1



class Role(StrEnum):
    ASSISTANT = "assistant"  # answers directly, or critically refines its predecessors' answers
    FUSER = "fuser"  # reviews, condenses and merges its predecessors' answers


@dataclass(frozen=True)
class Node:
    id: str
    role: Role
    model: str


@dataclass(frozen=True)
class Graph:
    """A validated DAG. Build with ``Graph.build`` (validates) rather than the constructor."""

    nodes: tuple[Node, ...]
    edges: frozenset[tuple[str, str]]
    output: str
    _index: dict[str, Node] = field(default=None, compare=False, hash=False, repr=False)  # type: ignore[arg-type]  # set in __post_init__

    # ----- construction -------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        nodes: Iterable[Node | tuple[str, str | Role, str]],
        edges: Iterable[tuple[str, str]],
        output: str,
        catalog: ModelCatalog | None = DEFAULT_CATALOG,
    ) -> Graph:
        """Validate and build. ``catalog=None`` skips the model-name check."""
        built: list[Node] = []
        for n in nodes:
            node_id, role, model = (n.id, n.role, n.model) if isinstance(n, Node) else n
            try:
                role = Role(role)
            except ValueError:
                raise GraphError(f"node {node_id!r}: unknown role {role!r} (expected assistant or fuser)") from None
            node_id = str(node_id)
            if not node_id or not node_id.isprintable():
                raise GraphError(f"node id {node_id!r}: must be non-empty printable text")
            built.append(Node(node_id, role, str(model)))
        pairs = frozenset((str(u), str(v)) for u, v in edges)
        for pair in pairs:
            if not all(end.isprintable() for end in pair):
                raise GraphError(f"edge {pair[0]!r}->{pair[1]!r}: node ids must be printable text")
        graph = cls(tuple(built), pairs, str(output))
        graph.validate(catalog)
        return graph

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {n.id: n for n in self.nodes})

    def validate(self, catalog: ModelCatalog | None = DEFAULT_CATALOG) -> None:
        """Raise ``GraphError`` naming the first problem found."""
        if not self.nodes:
            raise GraphError("graph has no nodes")
        if len(self._index) != len(self.nodes):
            seen: set[str] = set()
            for n in self.nodes:
                if n.id in seen:
                    raise GraphError(f"duplicate node id {n.id!r}")
                seen.add(n.id)
        if catalog is not None:
            for n in self.nodes:
                if n.model not in catalog:
                    raise GraphError(f"node {n.id!r}: unknown model {n.model!r} "
                                     f"(known: {', '.join(catalog.names())}; add yours with --models-file)")
        for u, v in sorted(self.edges):
            for end in (u, v):
                if end not in self._index:
                    raise GraphError(f"edge {u}->{v}: node {end!r} does not exist")
            if u == v:
                raise GraphError(f"edge {u}->{v}: a node cannot feed itself")
        cycle = self._find_cycle()
        if cycle:
            raise GraphError("cycle: " + " -> ".join(cycle))
        if self.output not in self._index:
            raise GraphError(f"output node {self.output!r} does not exist")
        if self.successors(self.output):
            raise GraphError(f"output node {self.output!r} must not feed other nodes "
                             f"(edge {self.output}->{self.successors(self.output)[0]})")
        if len(self.nodes) > 1 and not self.predecessors(self.output):
            raise GraphError(f"output node {self.output!r} is unreachable: no node feeds it")
        if not any(n.role is Role.ASSISTANT for n in self.nodes):
            raise GraphError("graph has no assistant node")
        for n in self.nodes:
            if n.role is not Role.FUSER:
                continue
            preds = [self._index[p] for p in self.predecessors(n.id)]
            for p in preds:
                if p.role is Role.FUSER:
                    raise GraphError(f"edge {p.id}->{n.id} joins two fusers (a fuser never feeds a fuser)")
            if not any(p.role is Role.ASSISTANT for p in preds):
                raise GraphError(f"node {n.id!r} (fuser) needs at least one assistant predecessor")

    def _find_cycle(self) -> list[str] | None:
        succ: dict[str, list[str]] = {n.id: [] for n in self.nodes}
        for u, v in sorted(self.edges):
            succ[u].append(v)
        state: dict[str, int] = {}
        for start in succ:
            if start in state:
                continue
            stack: list[tuple[str, int]] = [(start, 0)]
            path: list[str] = []
            while stack:
                node, i = stack.pop()
                if i == 0:
                    state[node] = 1
                    path.append(node)
                if i < len(succ[node]):
                    stack.append((node, i + 1))
                    nxt = succ[node][i]
                    if state.get(nxt) == 1:
                        return path[path.index(nxt):] + [nxt]
                    if nxt not in state:
                        stack.append((nxt, 0))
                else:
                    state[node] = 2
                    path.pop()
        return None

    # ----- structure ----------------------------------------------------------------------
    def node(self, node_id: str) -> Node:
        try:
            return self._index[node_id]
        except KeyError:
            raise GraphError(f"no node {node_id!r}") from None

    @cached_property
    def _adjacency(self) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
        order = {n.id: i for i, n in enumerate(self.nodes)}
        preds: dict[str, list[str]] = {n.id: [] for n in self.nodes}
        succs: dict[str, list[str]] = {n.id: [] for n in self.nodes}
        for u, v in self.edges:
            if u in preds and v in preds:
                preds[v].append(u)
                succs[u].append(v)
        key = order.__getitem__
        return ({k: tuple(sorted(v, key=key)) for k, v in preds.items()},
                {k: tuple(sorted(v, key=key)) for k, v in succs.items()})

    def predecessors(self, node_id: str) -> tuple[str, ...]:
        return self._adjacency[0].get(node_id, ())

    def successors(self, node_id: str) -> tuple[str, ...]:
        return self._adjacency[1].get(node_id, ())

    def in_degree(self, node_id: str) -> int:
        return len(self.predecessors(node_id))

    @cached_property
    def topological_order(self) -> tuple[str, ...]:
        """All node ids, predecessors first; ties keep declaration order (deterministic)."""
        indeg = {n.id: self.in_degree(n.id) for n in self.nodes}
        ready = [n.id for n in self.nodes if indeg[n.id] == 0]
        order: list[str] = []
        pos = {n.id: i for i, n in enumerate(self.nodes)}
        while ready:
            ready.sort(key=pos.__getitem__)
            u = ready.pop(0)
            order.append(u)
            for v in self.successors(u):
                indeg[v] -= 1
                if indeg[v] == 0:
                    ready.append(v)
        return tuple(order)

    @cached_property
    def executed(self) -> tuple[str, ...]:
        """Ids of nodes with a path to the output node (output included), in topological order."""
        live = {self.output}
        stack = [self.output]
        while stack:
            for p in self.predecessors(stack.pop()):
                if p not in live:
                    live.add(p)
                    stack.append(p)
        return tuple(n for n in self.topological_order if n in live)

    @cached_property
    def levels(self) -> dict[str, int]:
        """Level of each executed node: 0 for sources, else 1 + max level of its predecessors."""
        lvl: dict[str, int] = {}
        for n in self.executed:
            lvl[n] = 1 + max((lvl[p] for p in self.predecessors(n)), default=-1)
        return lvl

    @property
    def depth(self) -> int:
        """Longest chain of executed non-output nodes (0 for a lone output node)."""
        return self.levels[self.output]

    @property
    def width(self) -> int:
        """Most executed non-output nodes on one level."""
        counts: dict[int, int] = {}
        for n, lv in self.levels.items():
            if n != self.output:
                counts[lv] = counts.get(lv, 0) + 1
        return max(counts.values(), default=0)

    # ----- edits (each returns a new, validated graph) ------------------------------------
    def with_changes(
        self,
        add_nodes: Iterable[Node] = (),
        remove_nodes: Iterable[str] = (),
        add_edges: Iterable[tuple[str, str]] = (),
        remove_edges: Iterable[tuple[str, str]] = (),
        output: str | None = None,
        catalog: ModelCatalog | None = DEFAULT_CATALOG,
    ) -> Graph:
        gone = set(remove_nodes)
        nodes = [n for n in self.nodes if n.id not in gone] + list(add_nodes)
        drop = set(remove_edges)
        edges = {e for e in self.edges if e not in drop and e[0] not in gone and e[1] not in gone}
        edges |= set(add_edges)
        return Graph.build(nodes, edges, self.output if output is None else output, catalog)

    def with_node(self, node_id: str, *, role: Role | str | None = None, model: str | None = None,
                  catalog: ModelCatalog | None = DEFAULT_CATALOG) -> Graph:
        """The same graph with one node's role and/or model changed."""
        old = self.node(node_id)
        new = replace(old, role=Role(role) if role is not None else old.role, model=model or old.model)
        nodes = [new if n.id == node_id else n for n in self.nodes]
        return Graph.build(nodes, self.edges, self.output, catalog)

    # ----- exchange formats ---------------------------------------------------------------
    def to_dict(self) -> dict:
        order = {n.id: i for i, n in enumerate(self.nodes)}
        return {
            "schema": SCHEMA,
            "version": SCHEMA_VERSION,
            "nodes": [{"id": n.id, "role": n.role.value, "model": n.model} for n in self.nodes],
            "edges": [list(e) for e in sorted(self.edges, key=lambda e: (order[e[0]], order[e[1]]))],
            "output": self.output,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: Mapping, catalog: ModelCatalog | None = DEFAULT_CATALOG) -> Graph:
        if not isinstance(data, Mapping):
            raise GraphError("graph JSON must be an object")
        if data.get("schema", SCHEMA) != SCHEMA:
            raise GraphError(f"not a graph file: schema is {data.get('schema')!r}, expected {SCHEMA!r}")
        version = data.get("version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise GraphError(f"unsupported graph schema version {version!r} (this tts-sim reads {SCHEMA_VERSION})")
        for key in ("nodes", "edges", "output"):
            if key not in data:
                raise GraphError(f"graph JSON lacks the key {key!r}")
        if not isinstance(data["nodes"], list) or not isinstance(data["edges"], list):
            raise GraphError("graph JSON: 'nodes' and 'edges' must be lists")
        nodes = []
        for i, n in enumerate(data["nodes"]):
            if not isinstance(n, Mapping) or not {"id", "role", "model"} <= set(n):
                raise GraphError(f"node #{i}: needs 'id', 'role' and 'model'")
            for key in ("id", "role", "model"):
                if not isinstance(n[key], str):
                    raise GraphError(f"node #{i}: {key!r} must be a string, got {shown(n[key])}")
            nodes.append((n["id"], n["role"], n["model"]))
        edges = []
        for i, e in enumerate(data["edges"]):
            if not isinstance(e, (list, tuple)) or len(e) != 2 or not all(isinstance(end, str) for end in e):
                raise GraphError(f"edge #{i}: must be a pair of node ids [from, to], got {shown(e)}")
            edges.append((e[0], e[1]))
        if not isinstance(data["output"], str):
            raise GraphError(f"'output' must be a node id (a string), got {shown(data['output'])}")
        return cls.build(nodes, edges, data["output"], catalog)

    @classmethod
    def load(cls, path: str | Path, catalog: ModelCatalog | None = DEFAULT_CATALOG) -> Graph:
        from tts_sim.jsonio import read_json

        return cls.from_dict(read_json(path, "graph file", GraphError), catalog)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    def to_text(self) -> str:
        """One line per node: id, model, role, predecessors, successors (the agent's view)."""
        width = max(len(n.id) for n in self.nodes)
        mwidth = max(len(n.model) for n in self.nodes)
        lines = []
        for nid in self.topological_order:
            n = self._index[nid]
            tag = " (output)" if nid == self.output else ("" if nid in self.levels else " (not executed)")
            preds = ",".join(self.predecessors(nid)) or "-"
            succs = ",".join(self.successors(nid)) or "-"
            lines.append(f"{nid:<{width}}  {n.model:<{mwidth}}  {n.role.value:<9}  "
                         f"preds: {preds:<12} succs: {succs}{tag}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()
