"""Planned backend calls, run in batches and journaled so a killed profiling run resumes.

A profiling phase plans its calls up front (``PlannedCall``: a unique key, the catalog model, the
backend model and the request), in an order that does not depend on the batch size; ``run_calls``
sends the ones the journal does not hold yet, ``batch`` requests of one model per ``generate`` call,
and appends every finished batch to the ``CallJournal`` (one fsynced JSON line, ``tts_sim.journal``)
before the next. A restart with the same configuration replays the journal: the finished calls are
not sent again, and everything built from the results (answer ids included) comes out as before.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from tts_sim.core.backend import Backend, Generation, GenerationRequest
from tts_sim.core.profile import LatencyTable
from tts_sim.errors import ConfigError
from tts_sim.journal import Journal, config_differences

SCHEMA = "tts-sim/profile-journal"
SCHEMA_VERSION = 1
#: One journal line: latency tables by key and finished calls (key, generation).
Entry = tuple[dict[str, LatencyTable], list[tuple[str, Generation]]]


class ProgressBar(Protocol):
    """What ``run_calls`` updates (a ``tqdm`` bar fits)."""

    def update(self, n: int = 1) -> Any: ...


@dataclass(frozen=True)
class PlannedCall:
    key: str  # unique within one profiling run
    model: str  # catalog name
    backend_model: str
    request: GenerationRequest


class CallJournal:
    """Finished calls (and latency tables) of one profiling run, kept in memory and, given a ``path``,
    in a ``tts_sim.journal.Journal`` whose header's config is the run's ``fingerprint``.

    Opening an existing file replays it; a different fingerprint is a ``ConfigError`` naming the keys
    that differ. Crash safety is the journal's (a last line cut off by a kill is dropped)."""

    def __init__(self, path: str | Path | None, fingerprint: Mapping[str, Any]) -> None:
        self.path = Path(path) if path is not None else None
        self.fingerprint = json.loads(json.dumps(dict(fingerprint)))  # as it reads back from JSON
        self.results: dict[str, Generation] = {}
        self.tables: dict[str, LatencyTable] = {}
        self.replayed = 0
        self._journal: Journal | None = None
        if self.path is not None:
            self._journal = Journal(self.path, SCHEMA, SCHEMA_VERSION, what="profiling journal",
                                    kind="tts-sim profiling journal")
            self._replay(self._journal)
            self._journal.begin(self.fingerprint)

    def record(self, calls: Sequence[tuple[str, Generation]]) -> None:
        """Keep one finished batch (and append it to the file)."""
        self._append({"calls": [[k, g.text, g.prompt_tokens, g.completion_tokens, g.prefill_s, g.decode_s,
                                 g.finish_reason] for k, g in calls]})
        self.results.update(calls)

    def record_table(self, key: str, table: LatencyTable) -> None:
        self._append({"table": key, "data": asdict(table)})
        self.tables[key] = table

    def _append(self, entry: dict[str, Any]) -> None:
        if self._journal is not None:
            self._journal.append([entry])

    def _replay(self, journal: Journal) -> None:
        parsed: list[Entry] = []  # filled by load's check; a torn last line fails it and adds nothing
        loaded = journal.load(lambda entry, where: parsed.append(_parse_entry(entry, where)))
        if loaded is None:
            return
        diff = config_differences(loaded[0], self.fingerprint)
        if diff:
            raise ConfigError(f"{journal.path}: journal of a different profiling run (differs in: {', '.join(diff)}); "
                              "use the same options, or another --journal / output path")
        for tables, calls in parsed:
            self.tables.update(tables)
            for key, generation in calls:
                self.results.setdefault(key, generation)
        self.replayed = len(self.results)


def _parse_entry(entry: Any, where: str) -> Entry:
    """A journal line: a latency table ({"table": key, "data": ...}) or a batch of calls ({"calls": [...]})."""
    try:
        if not isinstance(entry, dict):
            raise TypeError
        if "table" in entry:
            d = entry["data"]
            return {str(entry["table"]): LatencyTable(
                d["model"], d["device"], d["backend"], d["quantization"], d["provider"],
                [tuple(r) for r in d["prefill"]], [tuple(r) for r in d["decode"]], float(d.get("switch_s", 0.0)))}, []
        return {}, [(str(k), Generation(str(text), int(pt), int(ct), float(pre), float(dec), str(fin)))
                    for k, text, pt, ct, pre, dec, fin in entry["calls"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: malformed entry ({type(exc).__name__})") from None


def run_calls(backend: Backend, calls: Sequence[PlannedCall], journal: CallJournal, *, batch: int,
              bar: ProgressBar | None = None) -> dict[str, Generation]:
    """The generations of ``calls`` by key: journaled ones replayed, the rest sent model by model in plan
    order, ``batch`` requests per ``generate`` call, each finished batch journaled."""
    if batch < 1:
        raise ConfigError(f"batch must be >= 1, got {batch}")
    keys = [c.key for c in calls]
    if len(set(keys)) != len(keys):
        raise ConfigError("planned calls need unique keys")
    todo: dict[str, list[PlannedCall]] = {}
    for c in calls:
        if c.key not in journal.results:
            todo.setdefault(c.backend_model, []).append(c)
    for backend_model, pending in todo.items():
        for start in range(0, len(pending), batch):
            chunk = pending[start:start + batch]
            gens = backend.generate(backend_model, [c.request for c in chunk])
            if len(gens) != len(chunk):
                raise ConfigError(f"backend returned {len(gens)} completions for {len(chunk)} requests")
            journal.record([(c.key, g) for c, g in zip(chunk, gens, strict=True)])
            if bar is not None:
                bar.update(len(chunk))
    return {k: journal.results[k] for k in keys}
