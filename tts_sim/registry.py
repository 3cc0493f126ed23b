"""One registry per plug-in family (searchers, agents, tasks, backends, latency predictors, schedulers,
devices).

A family maps a name to a plug-in. Configurable families register a *config dataclass* whose fields
are the plug-in's options and whose ``build()`` returns the plug-in; data families (tasks, devices)
register a frozen spec. Built-ins and third parties alike are declared as entry points in the group
``tts_sim.<family>`` (see pyproject.toml); an entry point is imported only when its name is looked up.
``register`` adds entries at run time (tests, notebooks).
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar

from tts_sim.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps a name to a plug-in; entry points of group ``tts_sim.<family>`` are loaded on lookup."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._items: dict[str, T] = {}
        self._entry_points: dict[str, EntryPoint] | None = None

    @property
    def _kind(self) -> str:
        return self.family[:-1] if self.family.endswith("s") else self.family

    def register(self, name: str, item: T) -> T:
        """Register ``item`` under ``name`` (replacing an entry point of that name)."""
        self._items[name] = item
        return item

    def _declared(self) -> dict[str, EntryPoint]:
        if self._entry_points is None:
            self._entry_points = {ep.name: ep for ep in entry_points(group=f"tts_sim.{self.family}")}
        return self._entry_points

    def get(self, name: str) -> T:
        """The plug-in called ``name``; one-line ``ConfigError`` listing the known names if unknown."""
        if name in self._items:
            return self._items[name]
        ep = self._declared().get(name)
        if ep is None:
            known = ", ".join(self.names()) or "none (is tts-sim installed? pip install -e .)"
            raise ConfigError(f"unknown {self._kind} {name!r} (known: {known})")
        try:
            item: T = ep.load()
        except Exception as exc:  # a broken third-party plug-in must not take the whole CLI down
            raise ConfigError(f"{self._kind} {name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}") \
                from exc
        self._items[name] = item
        return item

    def names(self) -> list[str]:
        return sorted(set(self._items) | set(self._declared()))

    def builtin_names(self) -> list[str]:
        """Names declared by tts-sim itself (not by third-party packages), sorted."""
        return sorted(name for name, ep in self._declared().items()
                      if ep.dist is not None and ep.dist.name.replace("_", "-").lower() == "tts-sim")

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._items or name in self._declared())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def build(self, name: str, options: Mapping[str, Any] | None = None) -> Any:
        """``config(**options).build()`` for the config dataclass registered as ``name``; options are
        checked against its fields (strings, as from ``--set key=value``, are converted to the field type)."""
        config_cls = self.get(name)
        return make_config(config_cls, options or {}, f"{self._kind} {name!r}").build()

    def options(self, name: str) -> dict[str, tuple[str, Any]]:
        """Option name -> (type as text, default) of plug-in ``name``'s config dataclass."""
        cls = self.get(name)
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            return {}
        hints = typing.get_type_hints(cls)
        out = {}
        for f in dataclasses.fields(cls):
            if not f.init or f.name.startswith("_") or f.metadata.get("runtime"):
                continue
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            out[f.name] = (_type_name(hints.get(f.name, Any)), default)
        return out


# ----- options ----------------------------------------------------------------------------------
def make_config(config_cls: Any, options: Mapping[str, Any], what: str) -> Any:
    """``config_cls(**options)`` after checking names and converting string values to the field types."""
    if not (isinstance(config_cls, type) and dataclasses.is_dataclass(config_cls)):
        if options:
            raise ConfigError(f"{what} takes no options (got {', '.join(sorted(options))})")
        return config_cls() if isinstance(config_cls, type) else config_cls
    hints = typing.get_type_hints(config_cls)
    fields = {f.name: f for f in dataclasses.fields(config_cls) if f.init and not f.name.startswith("_")}
    values: dict[str, Any] = {}
    for key, value in options.items():
        if key not in fields:
            raise ConfigError(f"{what} has no option {key!r} (options: {', '.join(sorted(fields)) or 'none'})")
        values[key] = convert(value, hints.get(key, Any), f"{what} option {key}") if isinstance(value, str) else value
    try:
        return config_cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what}: {exc}") from None


def parse_set_options(items: list[str] | None) -> dict[str, str]:
    """``["a=1", "b=x"]`` (from repeated ``--set``) -> ``{"a": "1", "b": "x"}``."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


def convert(text: str, hint: Any, what: str) -> Any:
    """``text`` converted to the type ``hint`` (int, float, bool, str, Literal, tuples, unions with None)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is str:
        return text
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null", "") and type(None) in args:
            return None
        last: ConfigError | None = None
        for arg in (a for a in args if a is not type(None)):
            try:
                return convert(text, arg, what)
            except ConfigError as exc:
                last = exc
        raise last or ConfigError(f"{what}: cannot read {text!r}")
    if origin is typing.Literal:
        if text in [str(a) for a in args]:
            return next(a for a in args if str(a) == text)
        raise ConfigError(f"{what}: expected one of {', '.join(map(str, args))}, got {text!r}")
    if origin in (tuple, list):
        item = args[0] if args else str
        parts = [p.strip() for p in text.split(",") if p.strip()]
        values = [convert(p, item, what) for p in parts]
        return tuple(values) if origin is tuple else values
    if hint is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{what}: expected true or false, got {text!r}")
    if hint in (int, float):
        try:
            value = hint(text)
        except ValueError:
            raise ConfigError(f"{what}: expected {'an integer' if hint is int else 'a number'}, got {text!r}") \
                from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{what}: expected a finite number, got {text!r}")
        return value
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(text)
        except ValueError:
            raise ConfigError(f"{what}: expected one of {', '.join(m.value for m in hint)}, got {text!r}") from None
    raise ConfigError(f"{what}: cannot be set from the command line (type {_type_name(hint)})")


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


