"""Profiles: what backends measured, in the one format the simulator reads.

A profile holds, per task, **answer banks** (per model, per question, how often each answer came
out: answer id 0 is the correct answer, ids >= 1 are that question's distinct wrong answers, shared
across models so that agreement among wrong answers is visible) and **fusion records** (a node of
some model and role saw these input answers and produced this answer); and **latency tables** per
(model, device, backend). Files are JSON (optionally gzipped) with a schema name, version and a
SHA-256 checksum of their content; a corrupted or mismatched file is refused with one line.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import statistics
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tts_sim.errors import ProfileError, shown
from tts_sim.jsonio import loads

SCHEMA = "tts-sim/profile"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class FusionRecord:
    """One observed call of a node with predecessors."""

    model: str
    role: str  # "assistant" | "fuser"
    question: int
    inputs: tuple[int, ...]  # answer ids of its predecessors
    output: int  # answer id it produced
    prompt_tokens: int = 0  # context length it saw
    level: int = 0  # the node's level in its graph (1: reads sources only); 0: not recorded


@dataclass
class TaskProfile:
    n_questions: int
    answer_banks: dict[str, list[list[int]]] = field(default_factory=dict)  # model -> [q][answer id] -> count
    fusion_records: list[FusionRecord] = field(default_factory=list)
    question_ids: list[str] = field(default_factory=list)  # the data set's ids, when known


@dataclass
class LatencyTable:
    """Measured service times of one model on one device and backend.

    ``prefill`` rows: (prompt tokens, batch size, seconds for the whole batch's prefill).
    ``decode`` rows: (context tokens, batch size, seconds per decode step, one token per sequence).
    ``switch_s``: what a call of this model costs beyond them when the device's previous call was
    another model's (measured on a CPU shared by two models: ~20 ms; 0 where not measured).
    """

    model: str
    device: str
    backend: str
    quantization: str = ""
    provider: str = ""
    prefill: list[tuple[int, int, float]] = field(default_factory=list)
    decode: list[tuple[int, int, float]] = field(default_factory=list)
    switch_s: float = 0.0


@dataclass
class Profile:
    metadata: dict[str, Any] = field(default_factory=dict)
    tasks: dict[str, TaskProfile] = field(default_factory=dict)
    latency: list[LatencyTable] = field(default_factory=list)
    #: The checksum this profile was loaded with ("" for one built or merged in code): a content key
    #: for caches of what is derived from it (e.g. fitted quality-model parameters).
    checksum: str = field(default="", compare=False)

    # ----- queries -------------------------------------------------------------------------
    @property
    def label(self) -> str:
        return str(self.metadata.get("label", "unlabelled profile"))

    def task(self, name: str) -> TaskProfile:
        try:
            return self.tasks[name]
        except KeyError:
            raise ProfileError(f"profile {self.label!r} has no data for task {name!r} "
                               f"(it has: {', '.join(sorted(self.tasks)) or 'none'})") from None

    def latency_table(self, model: str, device: str, backend: str | None = None) -> LatencyTable | None:
        for t in self.latency:
            if t.model == model and t.device == device and (backend is None or t.backend == backend):
                return t
        return None

    def merge(self, other: Profile) -> Profile:
        """A new profile with ``other``'s tasks and tables added (``other`` wins on clashes)."""
        keys = {(t.model, t.device, t.backend, t.quantization) for t in other.latency}
        latency = [t for t in self.latency if (t.model, t.device, t.backend, t.quantization) not in keys]
        return Profile({**self.metadata, **other.metadata}, {**self.tasks, **other.tasks}, latency + other.latency)

    def retimed(self, tables: Profile) -> Profile:
        """This profile with its latency tables replaced by the same tables timed again (``tables``: a
        profile of them alone, ``tts-sim profile --no-banks``): the same (model, device, backend,
        quantisation) keys, or a ``ProfileError`` naming the difference. The metadata records the new
        tables' command and how each table moved (median new/old seconds over the rows both time)."""
        fresh = {_table_key(t): t for t in tables.latency}
        old = {_table_key(t): t for t in self.latency}
        if set(fresh) != set(old):
            raise ProfileError(f"the new latency tables ({_keys_text(fresh)}) are not this profile's "
                               f"({_keys_text(old)}): time the same models with the same backend")
        moved = {f"{m} on {d}": _row_ratios(old[(m, d, b, q)], t) for (m, d, b, q), t in fresh.items()}
        where = tables.metadata.get("device", "another run")
        meta = {**self.metadata, "label": f"{self.label}; latency tables retimed on {where}",
                "tables_retimed": {"command": tables.metadata.get("command", ""), "device": where,
                                   "median_ratio_new_over_old": moved}}
        return Profile(meta, dict(self.tasks), [fresh[_table_key(t)] for t in self.latency])

    # ----- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        body = {
            "schema": SCHEMA,
            "version": SCHEMA_VERSION,
            "metadata": self.metadata,
            "tasks": {
                name: {
                    "n_questions": tp.n_questions,
                    "question_ids": tp.question_ids,
                    "answer_banks": tp.answer_banks,
                    "fusion_records": [
                        [r.model, r.role, r.question, list(r.inputs), r.output, r.prompt_tokens,
                         *([r.level] if r.level else [])]
                        for r in tp.fusion_records
                    ],
                }
                for name, tp in self.tasks.items()
            },
            "latency": [asdict(t) for t in self.latency],
        }
        body["checksum"] = _checksum(body)
        return body

    def save(self, path: str | Path) -> None:
        data = json.dumps(self.to_dict(), separators=(",", ":")).encode()
        path = Path(path)
        path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)

    @classmethod
    def from_dict(cls, data: Any, origin: str = "profile") -> Profile:
        if not isinstance(data, dict):
            raise ProfileError(f"{origin}: not a profile (expected a JSON object)")
        if data.get("schema") != SCHEMA:
            raise ProfileError(f"{origin}: not a tts-sim profile (schema {data.get('schema')!r})")
        if data.get("version") != SCHEMA_VERSION:
            raise ProfileError(f"{origin}: profile schema version {data.get('version')!r} is not supported "
                               f"(this tts-sim reads {SCHEMA_VERSION})")
        stored = data.get("checksum")
        if stored != _checksum(data):
            raise ProfileError(f"{origin}: checksum mismatch: the profile is corrupted or was edited by hand")
        try:
            tasks = {}
            for name, t in data["tasks"].items():
                n = _int(t["n_questions"], f"{origin}: task {name!r}: n_questions")
                banks = {m: [list(row) for row in rows] for m, rows in t["answer_banks"].items()}
                for m, rows in banks.items():
                    if len(rows) != n:
                        raise ProfileError(f"{origin}: task {name!r}, model {m!r}: answer bank has {len(rows)} "
                                           f"questions, expected {n}")
                    bad = next((c for row in rows for c in row
                                if isinstance(c, bool) or not isinstance(c, int) or c < 0), None)
                    if bad is not None:  # a float (1.5, inf, nan) or a negative count: never truncated silently
                        raise ProfileError(f"{origin}: task {name!r}, model {m!r}: answer count {shown(bad)} is "
                                           "not an integer >= 0")
                records = [_fusion_record(r, f"{origin}: task {name!r}: fusion record #{i}")
                           for i, r in enumerate(t["fusion_records"])]
                for r in records:
                    if not 0 <= r.question < n:
                        raise ProfileError(f"{origin}: task {name!r}: fusion record for question {r.question} "
                                           f"outside 0..{n - 1}")
                tasks[name] = TaskProfile(n, banks, records, [str(q) for q in t.get("question_ids", [])])
            latency = [
                LatencyTable(
                    str(t["model"]), str(t["device"]), str(t["backend"]), str(t.get("quantization", "")),
                    str(t.get("provider", "")),
                    [_latency_row(row, f"{origin}: latency table #{i} prefill") for row in t.get("prefill", [])],
                    [_latency_row(row, f"{origin}: latency table #{i} decode") for row in t.get("decode", [])],
                    _seconds(t.get("switch_s", 0.0), f"{origin}: latency table #{i} switch_s"),
                )
                for i, t in enumerate(data["latency"])
            ]
            metadata = data.get("metadata", {})
            if not isinstance(metadata, dict):
                raise ProfileError(f"{origin}: metadata must be an object, got {type(metadata).__name__}")
            stats = metadata.get("token_stats", {})
            if not isinstance(stats, dict) or not all(isinstance(v, dict) for v in stats.values()):
                raise ProfileError(f"{origin}: metadata.token_stats must map each task to an object")
            metadata = dict(metadata)
        except ProfileError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise ProfileError(f"{origin}: malformed profile ({type(exc).__name__}: {exc!r:.200})") from None
        return cls(metadata, tasks, latency, checksum=str(stored))

    @classmethod
    def load(cls, path: str | Path) -> Profile:
        path = Path(path)
        try:
            raw = path.read_bytes()
            if raw[:2] == b"\x1f\x8b":
                raw = gzip.decompress(raw)
        except OSError as exc:
            if isinstance(exc, gzip.BadGzipFile) or not exc.strerror:
                raise ProfileError(f"profile {path} is corrupted (not valid gzip: {exc})") from None
            raise ProfileError(f"cannot read profile {path}: {exc.strerror}") from None
        except (ValueError, EOFError, zlib.error) as exc:
            raise ProfileError(f"profile {path} is corrupted (not valid gzip: {exc})") from None
        data = loads(raw, f"profile {path}", ProfileError, stored=True)
        return cls.from_dict(data, origin=str(path))


def _table_key(t: LatencyTable) -> tuple[str, str, str, str]:
    return t.model, t.device, t.backend, t.quantization


def _keys_text(tables: dict[tuple[str, str, str, str], LatencyTable]) -> str:
    return ", ".join(f"{m} on {d} ({b} {q})".replace(" )", ")") for m, d, b, q in sorted(tables)) or "none"


def _row_ratios(old: LatencyTable, new: LatencyTable) -> dict[str, float | None]:
    """Median new/old seconds over the (tokens, batch) rows both tables time, prefill and decode apart,
    and the switch cost's ratio (None where undefined)."""
    out: dict[str, float | None] = {}
    for name in ("prefill", "decode"):
        before = {(a, b): sec for a, b, sec in getattr(old, name)}
        ratios = [sec / before[(a, b)] for a, b, sec in getattr(new, name) if before.get((a, b), 0) > 0]
        out[name] = statistics.median(ratios) if ratios else None
    out["switch"] = new.switch_s / old.switch_s if old.switch_s > 0 else None
    return out


def _fusion_record(r: Any, where: str) -> FusionRecord:
    """A ``[model, role, question, [inputs...], output, prompt_tokens(, level)]`` row as a record."""
    if not isinstance(r, list) or len(r) not in (6, 7) or not isinstance(r[3], list):
        raise ProfileError(f"{where}: expected [model, role, question, [inputs], output, prompt_tokens(, level)], "
                           f"got {len(r) if isinstance(r, list) else type(r).__name__} fields")
    return FusionRecord(str(r[0]), str(r[1]), _int(r[2], where), tuple(_int(x, where) for x in r[3]),
                        _int(r[4], where), _int(r[5], where),  # answer ids and token counts are >= 0
                        _int(r[6], where) if len(r) == 7 else 0)


def _latency_row(row: Any, where: str) -> tuple[int, int, float]:
    """A ``[tokens, batch, seconds]`` row: positive integers and a finite non-negative time."""
    if not isinstance(row, list) or len(row) != 3:
        raise ProfileError(f"{where}: a row must be [tokens, batch, seconds], got {shown(row)}")
    return _int(row[0], where, low=1), _int(row[1], where, low=1), _seconds(row[2], where)


def _seconds(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        raise ProfileError(f"{where}: seconds must be a finite number >= 0, got {shown(value)}")
    return float(value)


def _int(value: Any, where: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ProfileError(f"{where}: expected an integer >= {low}, got {shown(value)}")
    return value


def _checksum(body: dict[str, Any]) -> str:
    content = {k: v for k, v in body.items() if k != "checksum"}
    canon = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(canon).hexdigest()
