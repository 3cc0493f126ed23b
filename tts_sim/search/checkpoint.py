"""Search checkpoints: an append-only journal (JSON lines, ``tts_sim.journal``) of the run's config,
every trial and every agent reply. Resuming replays the searcher (deterministic given config and
seed) and answers its evaluations and agent calls from the journal, so nothing already paid for runs
again.

Crash safety is the journal's (header written atomically, each record appended and fsynced, a torn
last line dropped and cut off before the next append, a bad line anywhere else refused). Replay only
reads: a run killed at any moment - during a fresh search or during a resume's replay - leaves every
record it had fsynced. A checkpoint of the old format (one JSON object, rewritten after each record)
is read and converted to a journal in one atomic replace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tts_sim.errors import ConfigError, shown
from tts_sim.journal import Journal, config_mismatch
from tts_sim.jsonio import loads

__all__ = ["LEGACY_SCHEMA", "SCHEMA", "SCHEMA_VERSION", "Checkpoint", "CheckpointState", "config_mismatch"]

SCHEMA = "tts-sim/search-journal"
SCHEMA_VERSION = 1
LEGACY_SCHEMA = "tts-sim/search-checkpoint"  # version 1: one JSON object holding everything


@dataclass
class CheckpointState:
    config: dict[str, Any]
    trials: list[dict[str, Any]] = field(default_factory=list)
    agent_calls: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0


class Checkpoint:
    """A journal at ``path``. ``load`` reads it, ``begin`` prepares it for appending (creates it,
    converts an old-format file, cuts a truncated last line), ``add_trial``/``add_agent_call`` append."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._journal = Journal(self.path, SCHEMA, SCHEMA_VERSION, what="checkpoint",
                                kind="tts-sim search checkpoint")
        self._legacy: CheckpointState | None = None

    # ----- reading ----------------------------------------------------------------------------
    def load(self) -> CheckpointState | None:
        """The saved state, or None when the file does not exist yet (or is empty)."""
        raw = self._journal.read_bytes()
        if raw is None or not raw.strip():
            return None
        lines = raw.split(b"\n")
        header = loads(lines[0], f"checkpoint {self.path}", stored=True)
        if isinstance(header, dict) and header.get("schema") == LEGACY_SCHEMA and len(lines) <= 2:
            self._legacy = _legacy_state(header, self.path)
            return self._legacy
        loaded = self._journal.load(_check_record, raw)
        assert loaded is not None  # the file is not empty
        config, records = loaded
        state = CheckpointState(config)
        for record in records:
            _add_record(state, record)
        return state

    # ----- writing ----------------------------------------------------------------------------
    def begin(self, config: dict[str, Any]) -> None:
        """Make the file a journal ready for appends (call after ``load``)."""
        if self._legacy is not None:  # convert, keeping every record, in one atomic replace
            records: list[dict[str, Any]] = [{"trial": t} for t in self._legacy.trials]
            records += [{"agent": a} for a in self._legacy.agent_calls]
            if records:
                records[-1]["elapsed_s"] = self._legacy.elapsed_s
            self._journal.write_atomically([self._journal.header(self._legacy.config), *records])
            self._legacy = None
        else:
            self._journal.begin(config)

    def add_trial(self, trial: dict[str, Any], elapsed_s: float) -> None:
        self._journal.append([{"trial": trial, "elapsed_s": round(elapsed_s, 6)}])

    def add_agent_call(self, reply: dict[str, Any], elapsed_s: float) -> None:
        self._journal.append([{"agent": reply, "elapsed_s": round(elapsed_s, 6)}])


def _check_record(record: Any, where: str) -> None:
    if not isinstance(record, dict) or len({"trial", "agent"} & set(record)) != 1:
        raise ConfigError(f"{where}: not a trial or agent record")
    if not isinstance(record.get("trial", record.get("agent")), dict):
        raise ConfigError(f"{where}: the record's body is not an object")


def _add_record(state: CheckpointState, record: dict[str, Any]) -> None:
    if "trial" in record:
        state.trials.append(record["trial"])
    else:
        state.agent_calls.append(record["agent"])
    elapsed = record.get("elapsed_s")
    if isinstance(elapsed, (int, float)) and not isinstance(elapsed, bool) and 0 <= elapsed < float("inf"):
        state.elapsed_s = float(elapsed)


def _legacy_state(data: dict[str, Any], path: Path) -> CheckpointState:
    if data.get("version") != 1:
        raise ConfigError(f"checkpoint {path}: version {shown(data.get('version'))} unsupported")
    config, trials, calls = data.get("config"), data.get("trials"), data.get("agent_calls")
    if not (isinstance(config, dict) and isinstance(trials, list) and isinstance(calls, list)
            and all(isinstance(x, dict) for x in trials + calls)):
        raise ConfigError(f"checkpoint {path} is malformed (old format without config, trials or agent_calls)")
    elapsed = data.get("elapsed_s", 0.0)
    ok = isinstance(elapsed, (int, float)) and not isinstance(elapsed, bool) and 0 <= elapsed < float("inf")
    return CheckpointState(dict(config), list(trials), list(calls), float(elapsed) if ok else 0.0)
