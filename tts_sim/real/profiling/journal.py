"""Planned backend calls, run in batches and journaled so a killed profiling run resumes.

A profiling phase plans its calls up front (``PlannedCall``: a unique key, the catalog model, the
backend model and the request), in an order that does not depend on the batch size; ``run_calls``
sends the ones the journal does not hold yet, ``batch`` requests of one model per ``generate`` call,
and appends every finished batch to the ``CallJournal`` (one JSON line, flushed and fsynced) before
the next. A restart with the same configuration replays the journal: the finished calls are not sent
again, and everything built from the results (answer ids included) comes out as before.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from tts_sim.core.backend import Backend, Generation, GenerationRequest
from tts_sim.core.profile import LatencyTable
from tts_sim.errors import ConfigError

SCHEMA = "tts-sim/profile-journal"
SCHEMA_VERSION = 1


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
    in an append-only JSONL file whose first line is the run's ``fingerprint``.

    Opening an existing file replays it; a different fingerprint is a ``ConfigError``. A last line cut
    off by a kill is dropped (the file is truncated to its last complete line)."""

    def __init__(self, path: str | Path | None, fingerprint: Mapping[str, Any]) -> None:
        self.path = Path(path) if path is not None else None
        self.fingerprint = json.loads(json.dumps(dict(fingerprint)))  # as it reads back from JSON
        self.results: dict[str, Generation] = {}
        self.tables: dict[str, LatencyTable] = {}
        self.replayed = 0
        if self.path is not None and not self._replay(self.path):
            self._append({"schema": SCHEMA, "version": SCHEMA_VERSION, "fingerprint": self.fingerprint})

    def record(self, calls: Sequence[tuple[str, Generation]]) -> None:
        """Keep one finished batch (and append it to the file)."""
        self._append({"calls": [[k, g.text, g.prompt_tokens, g.completion_tokens, g.prefill_s, g.decode_s,
                                 g.finish_reason] for k, g in calls]})
        self.results.update(calls)

    def record_table(self, key: str, table: LatencyTable) -> None:
        self._append({"table": key, "data": asdict(table)})
        self.tables[key] = table

    def _append(self, entry: dict[str, Any]) -> None:
        if self.path is None:
            return
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry, separators=(",", ":")) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _replay(self, path: Path) -> bool:
        """Read the journal at ``path``; False when there is none yet (no complete first line)."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise ConfigError(f"cannot read journal {path}: {exc.strerror or exc}") from None
        complete = data[:data.rfind(b"\n") + 1]
        if len(complete) < len(data):  # killed while writing the last line
            with path.open("r+b") as f:
                f.truncate(len(complete))
        lines = complete.decode("utf-8", errors="replace").splitlines()
        if not lines:
            return False
        try:
            head = json.loads(lines[0])
        except json.JSONDecodeError:
            head = None
        if not isinstance(head, dict) or head.get("schema") != SCHEMA or head.get("version") != SCHEMA_VERSION:
            raise ConfigError(f"{path}: not a tts-sim profiling journal ({SCHEMA} version {SCHEMA_VERSION})")
        if head.get("fingerprint") != self.fingerprint:
            diff = sorted(k for k in {*head.get("fingerprint", {}), *self.fingerprint}
                          if head.get("fingerprint", {}).get(k) != self.fingerprint.get(k))
            raise ConfigError(f"{path}: journal of a different profiling run (differs in: {', '.join(diff)}); "
                              "use the same options, or another --journal / output path")
        for n, line in enumerate(lines[1:], start=2):
            try:
                entry = json.loads(line)
                if "table" in entry:
                    d = entry["data"]
                    self.tables[str(entry["table"])] = LatencyTable(
                        d["model"], d["device"], d["backend"], d["quantization"], d["provider"],
                        [tuple(r) for r in d["prefill"]], [tuple(r) for r in d["decode"]])
                    continue
                for k, text, pt, ct, pre, dec, fin in entry["calls"]:
                    self.results.setdefault(str(k), Generation(str(text), int(pt), int(ct), float(pre), float(dec),
                                                               str(fin)))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ConfigError(f"{path}:{n}: malformed journal line ({type(exc).__name__})") from None
        self.replayed = len(self.results)
        return True


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
