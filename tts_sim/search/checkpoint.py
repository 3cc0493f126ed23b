"""Search checkpoints: the run's config, every trial and every agent reply, rewritten atomically
after each one. Resuming replays the searcher (deterministic given config and seed) and answers
its evaluations and agent calls from the file, so nothing already paid for runs again."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tts_sim.errors import ConfigError
from tts_sim.jsonio import read_json

SCHEMA = "tts-sim/search-checkpoint"
SCHEMA_VERSION = 1


@dataclass
class CheckpointState:
    config: dict[str, Any]
    trials: list[dict[str, Any]] = field(default_factory=list)
    agent_calls: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0


class Checkpoint:
    """A checkpoint file at ``path`` (JSON)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> CheckpointState | None:
        """The saved state, or None when the file does not exist yet."""
        if not self.path.exists():
            return None
        data = read_json(self.path, "checkpoint")
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise ConfigError(f"{self.path} is not a tts-sim search checkpoint")
        if data.get("version") != SCHEMA_VERSION:
            raise ConfigError(f"checkpoint {self.path}: version {data.get('version')!r} unsupported")
        try:
            return CheckpointState(dict(data["config"]), list(data["trials"]), list(data["agent_calls"]),
                                   float(data.get("elapsed_s", 0.0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"checkpoint {self.path} is malformed ({type(exc).__name__}: {exc})") from None

    def save(self, state: CheckpointState) -> None:
        body = {"schema": SCHEMA, "version": SCHEMA_VERSION, "config": state.config, "trials": state.trials,
                "agent_calls": state.agent_calls, "elapsed_s": state.elapsed_s}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(body, f, separators=(",", ":"))
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def config_mismatch(saved: dict[str, Any], current: dict[str, Any]) -> str | None:
    """The first key whose value differs (JSON-normalised), or None."""
    a, b = json.loads(json.dumps(saved)), json.loads(json.dumps(current))
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            return key
    return None
