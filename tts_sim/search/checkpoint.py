"""Search checkpoints: an append-only journal (JSON lines) of the run's config, every trial and
every agent reply. Resuming replays the searcher (deterministic given config and seed) and answers
its evaluations and agent calls from the journal, so nothing already paid for runs again.

Crash safety: the header line (schema, version, config) is written atomically when the journal is
created; every later record is appended as one line and fsynced. Replay only reads: a run killed
at any moment - during a fresh search or during a resume's replay - leaves every record it had
fsynced. A truncated last line (a kill mid-write) is dropped and cut off before the next append; a
bad line anywhere else is corruption and refused. A checkpoint of the old format (one JSON object,
rewritten after each record) is read and converted to a journal in one atomic replace.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tts_sim.errors import ConfigError, shown
from tts_sim.jsonio import loads

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
        self._good_end: int | None = None  # byte length of the complete lines, when a torn tail was seen
        self._legacy: CheckpointState | None = None

    # ----- reading ----------------------------------------------------------------------------
    def load(self) -> CheckpointState | None:
        """The saved state, or None when the file does not exist yet (or is empty)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(f"cannot read checkpoint {self.path}: {exc.strerror or exc}") from None
        if not raw.strip():
            return None
        lines = raw.split(b"\n")
        header = loads(lines[0], f"checkpoint {self.path}", stored=True)
        if isinstance(header, dict) and header.get("schema") == LEGACY_SCHEMA and len(lines) <= 2:
            self._legacy = _legacy_state(header, self.path)
            return self._legacy
        if not isinstance(header, dict) or header.get("schema") != SCHEMA:
            raise ConfigError(f"{self.path} is not a tts-sim search checkpoint")
        if header.get("version") != SCHEMA_VERSION:
            raise ConfigError(f"checkpoint {self.path}: version {shown(header.get('version'))} unsupported")
        if not isinstance(header.get("config"), dict):
            raise ConfigError(f"checkpoint {self.path} is malformed (its header has no config)")
        state = CheckpointState(dict(header["config"]))
        offset = len(lines[0]) + 1
        for i, line in enumerate(lines[1:], start=2):
            if line.strip():
                try:
                    record = loads(line, f"checkpoint {self.path} line {i}", stored=True)
                    _add_record(state, record, f"checkpoint {self.path} line {i}")
                except ConfigError:
                    if all(not rest.strip() for rest in lines[i:]):  # the last line, torn by a kill
                        self._good_end = offset
                        break
                    raise
            offset += len(line) + 1
        return state

    # ----- writing ----------------------------------------------------------------------------
    def begin(self, config: dict[str, Any]) -> None:
        """Make the file a journal ready for appends (call after ``load``)."""
        if self._legacy is not None:  # convert, keeping every record, in one atomic replace
            records: list[dict[str, Any]] = [{"trial": t} for t in self._legacy.trials]
            records += [{"agent": a} for a in self._legacy.agent_calls]
            if records:
                records[-1]["elapsed_s"] = self._legacy.elapsed_s
            self._write_atomically([_header(self._legacy.config), *records])
            self._legacy = None
        elif not self.path.exists() or not self.path.stat().st_size:
            self._write_atomically([_header(config)])
        elif self._good_end is not None:
            with self.path.open("r+b") as f:
                f.truncate(self._good_end)
                f.flush()
                os.fsync(f.fileno())
            self._good_end = None
        else:  # a complete last line lacking its newline
            with self.path.open("rb") as f:
                f.seek(-1, os.SEEK_END)
                complete = f.read(1) == b"\n"
            if not complete:
                self._append_bytes(b"\n")

    def add_trial(self, trial: dict[str, Any], elapsed_s: float) -> None:
        self._append({"trial": trial, "elapsed_s": round(elapsed_s, 6)})

    def add_agent_call(self, reply: dict[str, Any], elapsed_s: float) -> None:
        self._append({"agent": reply, "elapsed_s": round(elapsed_s, 6)})

    def _append(self, record: dict[str, Any]) -> None:
        self._append_bytes((json.dumps(record, separators=(",", ":")) + "\n").encode())

    def _append_bytes(self, data: bytes) -> None:
        with self.path.open("ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def _write_atomically(self, records: list[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(b"".join((json.dumps(r, separators=(",", ":")) + "\n").encode() for r in records))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(self.path.parent)


def _header(config: dict[str, Any]) -> dict[str, Any]:
    return {"schema": SCHEMA, "version": SCHEMA_VERSION, "config": config}


def _add_record(state: CheckpointState, record: Any, where: str) -> None:
    if not isinstance(record, dict) or len({"trial", "agent"} & set(record)) != 1:
        raise ConfigError(f"{where}: not a trial or agent record")
    body = record.get("trial", record.get("agent"))
    if not isinstance(body, dict):
        raise ConfigError(f"{where}: the record's body is not an object")
    (state.trials if "trial" in record else state.agent_calls).append(body)
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


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)



def config_mismatch(saved: dict[str, Any], current: dict[str, Any]) -> str | None:
    """The first key whose value differs (JSON-normalised), or None."""
    a, b = json.loads(json.dumps(saved)), json.loads(json.dumps(current))
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            return key
    return None
