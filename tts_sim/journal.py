"""Append-only journals: JSON lines after a header naming the schema, its version and the run's config.

The one home of the crash-safe file pattern long runs resume from (the search checkpoint, the
fidelity report, the profiling journal). The header is written atomically when the journal is
created; every later batch of records is appended with one write and fsynced, so a kill at any moment
leaves every record that was fsynced. A truncated last line (a kill mid-write) is dropped on reading
and cut off before the next append - a lone truncated header too (a file holding only the start of
one, as a writer that appends its header leaves it), which is replaced; a bad line anywhere else is
corruption and refused with one line.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tts_sim.errors import ConfigError, shown
from tts_sim.jsonio import loads

#: Checks one record (``record``, ``where``) and raises ``ConfigError`` when it is malformed.
RecordCheck = Callable[[Any, str], None]


class Journal:
    """A journal at ``path`` of ``schema`` (``version``); ``what`` names it in errors (e.g. "checkpoint").

    ``load`` reads it, ``begin`` prepares it for appending (creates it with its header, cuts a torn
    last line), ``append`` adds records."""

    def __init__(self, path: str | Path, schema: str, version: int = 1, *, what: str = "journal",
                 kind: str | None = None) -> None:
        self.path = Path(path)
        self.schema, self.version, self.what = schema, version, what
        self.kind = kind or schema  # "is not a KIND"
        self._good_end: int | None = None  # byte length of the complete lines, when a torn tail was seen

    def read_bytes(self) -> bytes | None:
        """The file's bytes, None when it does not exist."""
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(f"cannot read {self.what} {self.path}: {exc.strerror or exc}") from None

    def load(self, check: RecordCheck | None = None, raw: bytes | None = None
             ) -> tuple[dict[str, Any], list[Any]] | None:
        """(header config, records), or None when the file does not exist yet (or is empty).
        ``check`` validates each record; a failing last line counts as torn and is dropped."""
        raw = self.read_bytes() if raw is None else raw
        if raw is None or not raw.strip():
            return None
        lines = raw.split(b"\n")
        try:
            header = loads(lines[0], f"{self.path} is not a {self.kind}: its first line")
        except ConfigError:
            if len(lines) == 1 and b'{"schema"'.startswith(raw[:9]):  # only a torn header: nothing journaled
                self._good_end = 0
                return None
            raise
        if not isinstance(header, dict) or header.get("schema") != self.schema:
            raise ConfigError(f"{self.path} is not a {self.kind}")
        if header.get("version") != self.version:
            raise ConfigError(f"{self.what} {self.path}: version {shown(header.get('version'))} unsupported")
        if not isinstance(header.get("config"), dict):
            raise ConfigError(f"{self.what} {self.path} is malformed (its header has no config)")
        records: list[Any] = []
        offset = len(lines[0]) + 1
        for i, line in enumerate(lines[1:], start=2):
            if line.strip():
                where = f"{self.what} {self.path} line {i}"
                try:
                    record = loads(line, where, stored=True)
                    if check is not None:
                        check(record, where)
                except ConfigError:
                    if all(not rest.strip() for rest in lines[i:]):  # the last line, torn by a kill
                        self._good_end = offset
                        break
                    raise
                records.append(record)
            offset += len(line) + 1
        return dict(header["config"]), records

    def begin(self, config: dict[str, Any]) -> None:
        """Make the file a journal ready for appends (call after ``load``)."""
        if self._good_end == 0 or not self.path.exists() or not self.path.stat().st_size:
            self.write_atomically([self.header(config)])
            self._good_end = None
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

    def header(self, config: dict[str, Any]) -> dict[str, Any]:
        return {"schema": self.schema, "version": self.version, "config": config}

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        """Append ``records`` with one write, fsynced."""
        data = b"".join(_line(r) for r in records)
        if data:
            self._append_bytes(data)

    def _append_bytes(self, data: bytes) -> None:
        with self.path.open("ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def write_atomically(self, records: list[dict[str, Any]]) -> None:
        """Replace the file with ``records`` (header first) in one atomic rename."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(b"".join(_line(r) for r in records))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(self.path.parent)


def _line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, separators=(",", ":")) + "\n").encode()


def config_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The keys whose values differ (JSON-normalised), sorted."""
    a, b = json.loads(json.dumps(saved)), json.loads(json.dumps(current))
    return [key for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]


def config_mismatch(saved: dict[str, Any], current: dict[str, Any]) -> str | None:
    """The first key whose value differs (JSON-normalised), or None."""
    return next(iter(config_differences(saved, current)), None)


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
