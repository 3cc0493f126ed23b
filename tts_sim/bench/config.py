"""``BenchConfig``: one typed dataclass for the whole bench; its field metadata is also the source
of the CLI's flags, help and defaults (``tts_sim.cli.bench``).

A bench runs every searcher on every *cell* (task x budget x space) with every seed. Cells of the
``main`` space use ``max_nodes`` slots and the model ``pool``; cells of the ``small`` space
(``regret_budgets``) use ``regret_max_nodes`` slots and ``regret_pool``, small enough to enumerate,
so that regret to the exhaustive optimum is computable there. Regret is also computed for main
cells whose space is small enough (``enumerate.raw_count`` at most ``regret_limit``).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from tts_sim.core.models import DEFAULT_OUTPUT_MODEL, PAPER_POOL
from tts_sim.errors import ConfigError, shown
from tts_sim.search.breakeven import DEFAULT_AGENT_COST_MODEL
from tts_sim.search.prior import PRIOR_SETTINGS, check_setting

#: Searchers only ``--full`` benches: BO with the forest surrogate took 37% of the default bench's CPU time
#: and had a lower mean than its GP twin on 15 of 18 main cell x prior pairs (docs/bench/README.md, stop 17).
FULL_ONLY_SEARCHERS = ("bo-forest",)
#: Worlds ``--full`` benches: the default and an ensemble of 5 around it.
FULL_WORLDS = ("default", "ensemble:5")


def builtin_searchers() -> tuple[str, ...]:
    """Every searcher tts-sim itself declares (entry points), Agent-REINFORCE first."""
    from tts_sim.search.searcher import SEARCHERS

    names = SEARCHERS.builtin_names()
    return tuple(sorted(names, key=lambda n: (n != "agent-reinforce", n)))


def default_searchers() -> tuple[str, ...]:
    """The built-in searchers but ``FULL_ONLY_SEARCHERS``."""
    return tuple(n for n in builtin_searchers() if n not in FULL_ONLY_SEARCHERS)


MAIN, SMALL = "main", "small"
DEFAULT_WORLD = "default"
MAX_SEEDS = 100_000

#: Settings every result row depends on: a bench folder refuses to resume under different ones.
RESULT_SETTINGS = ("evals", "search_questions", "heldout_questions", "split_seed", "max_nodes", "pool",
                   "regret_max_nodes", "regret_pool", "profile", "cluster", "objective")


def _opt(help: str) -> dict[str, Any]:
    return {"help": help}


@dataclass(frozen=True)
class BenchConfig:
    """What a bench runs, where it writes, and how it hands out the work."""

    searchers: tuple[str, ...] = field(default_factory=default_searchers, metadata=_opt(
        "searchers to compare (names of the searcher registry; default: every built-in searcher but bo-forest, "
        "which --full adds)"))
    priors: tuple[str, ...] = field(default=PRIOR_SETTINGS, metadata=_opt(
        "prior settings every searcher is run under (none, published); a searcher that cannot use a prior "
        "runs once, under none (which must then be given); a searcher that can is reported as NAME[prior=SETTING]"))
    agent_cost_model: str = field(default=DEFAULT_AGENT_COST_MODEL, metadata=_opt(
        "model whose FLOPs (2 x params per token) price agent tokens in the search cost and break-even"))
    searcher_options: tuple[str, ...] = field(default=(), metadata=_opt(
        "searcher options as SEARCHER.KEY=VALUE (e.g. random.edge_p=0.5), checked against the searcher's config"))
    tasks: tuple[str, ...] = field(default=("math", "mmlu", "humaneval"), metadata=_opt("tasks"))
    budgets: tuple[float, ...] = field(default=(18.0, 42.0, 80.0), metadata=_opt(
        "FLOPs budgets in units (multiples of one direct LLaMA-1B call)"))
    seeds: tuple[int, ...] = field(default=tuple(range(10)), metadata=_opt(
        "seeds: a count N (0..N-1), a range A-B, or a list 0,3,7"))
    evals: int = field(default=30, metadata=_opt("evaluations per search (the searchers' budget)"))
    search_questions: int = field(default=100, metadata=_opt(
        "questions of the search split (noisy evaluate() during the search)"))
    heldout_questions: int = field(default=100, metadata=_opt(
        "questions of the held-out split (expected accuracy; fewer if the task's pool is smaller)"))
    split_seed: int = field(default=0, metadata=_opt("seed of the search / held-out split (same for all)"))
    max_nodes: int = field(default=8, metadata=_opt("worker slots of the main search space"))
    pool: tuple[str, ...] = field(default=PAPER_POOL, metadata=_opt("model pool of the main space"))
    regret_budgets: tuple[float, ...] = field(default=(18.0,), metadata=_opt(
        "budgets of extra cells on the small, enumerable space (regret to the optimum); 'none' for none"))
    regret_max_nodes: int = field(default=3, metadata=_opt("worker slots of the small space"))
    regret_pool: tuple[str, ...] = field(default=("llama-3.2-1b", "llama-3.1-8b"), metadata=_opt(
        "model pool of the small space"))
    output_model: str = field(default=DEFAULT_OUTPUT_MODEL, metadata=_opt(
        "model of the output node in both spaces (e.g. a measured profile's model)"))
    regret_limit: int = field(default=300_000, metadata=_opt(
        "largest space (labelled combinations) enumerated for regret"))
    profile: str | None = field(default=None, metadata=_opt(
        "profile: a file, scenario or measured:TASK (default: the embedded scenario)"))
    worlds: tuple[str, ...] = field(default=(DEFAULT_WORLD,), metadata=_opt(
        "worlds the bench runs over: default (the --profile, else the embedded scenario), ensemble:N (N scenario "
        "worlds sampled around the default, tts_sim.sim.worlds; cached), or profile file paths (measured "
        "profiles); the first is the world of the main report"))
    reference_evals: int = field(default=1000, metadata=_opt(
        "distinct graphs the reference optimum of a main cell scores (hill climbing with restarts on expected "
        "accuracy; cached on disk; 0: no reference)"))
    cluster: str | None = field(default=None, metadata=_opt("cluster for latency (needed by latency objectives)"))
    objective: str = field(default="accuracy", metadata=_opt("search objective: accuracy, weighted:W, p95<=S"))
    executor: str = field(default="process", metadata=_opt(
        "process | thread | inline | ray | MODULE:FACTORY (a callable returning an Executor or a Pool)"))
    ray_address: str | None = field(default=None, metadata=_opt(
        "with --executor ray: the Ray cluster to use (HOST:PORT, auto, any ray.init address; default: "
        "$RAY_ADDRESS, else a local Ray of --workers CPUs started and stopped by the bench)"))
    workers: int = field(default=2, metadata=_opt(
        "parallel workers (with --executor ray on a cluster: how many of its CPUs the bench keeps busy)"))
    out: str = field(default="runs/bench", metadata=_opt("output folder (results.jsonl, report.md, PNGs)"))

    def __post_init__(self) -> None:
        for name in ("searchers", "priors", "searcher_options", "tasks", "budgets", "seeds", "pool",
                     "regret_budgets", "regret_pool", "worlds"):
            value = getattr(self, name)
            if isinstance(value, (str, int, float)):
                value = (value,)
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"bench: {name} must be a list, got {type(value).__name__}")
            names = ("searchers", "tasks", "pool", "regret_pool", "worlds")
            if name in names and not all(isinstance(v, str) for v in value):
                raise ConfigError(f"bench: {name} must be names (text), got {shown(value)}")
            object.__setattr__(self, name, tuple(value))
        for name in ("objective", "executor", "out", "profile", "cluster", "ray_address", "output_model"):
            value = getattr(self, name)
            if not (isinstance(value, str) or (value is None and name in ("profile", "cluster", "ray_address"))):
                raise ConfigError(f"bench: {name} must be text, got {shown(value)}")
        if self.ray_address is not None and self.executor != "ray":
            raise ConfigError(f"bench: --ray-address needs --executor ray (executor is {self.executor!r})")
        object.__setattr__(self, "budgets", tuple(_budget(b) for b in self.budgets))
        object.__setattr__(self, "regret_budgets", tuple(_budget(b) for b in self.regret_budgets))
        object.__setattr__(self, "seeds", tuple(_seed(s) for s in self.seeds))
        for p in self.priors:
            check_setting(p)
        self.world_specs()  # one-line error on a malformed or empty world
        for name in ("searchers", "priors", "tasks", "budgets", "seeds", "worlds"):
            if not getattr(self, name):
                raise ConfigError(f"bench: no {name} given")
            dup = _duplicate(getattr(self, name))
            if dup is not None:
                raise ConfigError(f"bench: {name} lists {dup!r} twice")
        for name in ("evals", "search_questions", "heldout_questions", "max_nodes", "regret_max_nodes",
                     "regret_limit", "workers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"bench: {name} must be a positive integer, got {value!r}")
        if isinstance(self.reference_evals, bool) or not isinstance(self.reference_evals, int) \
                or self.reference_evals < 0:
            raise ConfigError(f"bench: reference_evals must be a non-negative integer, got {self.reference_evals!r}")
        if isinstance(self.split_seed, bool) or not isinstance(self.split_seed, int) or self.split_seed < 0:
            raise ConfigError(f"bench: split_seed must be a non-negative integer, got {self.split_seed!r}")

    # ----- derived ------------------------------------------------------------------------
    def cells(self) -> list[tuple[str, float, str]]:
        """(task, budget, space) of every cell, main space first."""
        main = [(t, b, MAIN) for t in self.tasks for b in self.budgets]
        small = [(t, b, SMALL) for t in self.tasks for b in self.regret_budgets]
        return main + small

    def world_specs(self) -> list[tuple[str, Any]]:
        """(name, source) of every world: ``("default", None)``; for ``ensemble:N`` the ``World``s of
        ``tts_sim.sim.worlds.ensemble(N)`` named e0..e{N-1}; for a path (``name`` its file name, source the path)."""
        out: list[tuple[str, Any]] = []
        for item in self.worlds:
            if item == DEFAULT_WORLD:
                out.append((DEFAULT_WORLD, None))
            elif item.startswith("ensemble:"):
                from tts_sim.sim.worlds import ensemble

                try:
                    n = int(item.split(":", 1)[1])
                except ValueError:
                    raise ConfigError(f"bench: world {item!r} is not ensemble:N") from None
                if n < 1:
                    raise ConfigError(f"bench: the scenario ensemble {item!r} is empty (give ensemble:N, N >= 1)")
                out += [(w.name.split(":")[0], w) for w in ensemble(n)]
            else:
                out.append((Path(item).name if ":" not in item else item.replace(":", "-"), item))
        dup = _duplicate(tuple(name for name, _ in out))
        if dup is not None:
            raise ConfigError(f"bench: worlds name {dup!r} twice")
        return out

    def world_names(self) -> list[str]:
        return [name for name, _ in self.world_specs()]

    def space_options(self, space: str) -> dict[str, Any]:
        """``SearchSpace`` keyword arguments of the ``main`` or ``small`` space."""
        if space == MAIN:
            return {"max_nodes": self.max_nodes, "pool": tuple(self.pool), "output_model": self.output_model}
        if space == SMALL:
            return {"max_nodes": self.regret_max_nodes, "pool": tuple(self.regret_pool),
                    "output_model": self.output_model}
        raise ConfigError(f"bench: unknown space {space!r} (main or small)")

    def runs(self) -> list[tuple[str, str, str]]:
        """(label, searcher, prior) of every searcher run per cell and seed: a searcher that uses a
        prior (``uses_prior``) once per prior setting, labelled ``NAME[prior=SETTING]`` when several
        settings are benched (``NAME`` otherwise); one that does not once, with prior ``""`` (it runs
        under ``none``), labelled ``NAME``; a one-line error if ``none`` is not among the settings."""
        from tts_sim.search.prior import NONE
        from tts_sim.search.searcher import SEARCHERS, uses_prior

        out = []
        for name in self.searchers:
            if uses_prior(SEARCHERS.get(name)):
                out += [(run_label(name, p) if len(self.priors) > 1 else name, name, p) for p in self.priors]
            elif NONE in self.priors:
                out.append((name, name, ""))
            else:
                raise ConfigError(f"bench: searcher {name!r} does not use a prior, and --priors "
                                  f"{' '.join(self.priors)} leaves it no setting to run under (add none, or "
                                  f"leave it out of --searchers)")
        return out

    def labels(self) -> list[str]:
        return [label for label, _, _ in self.runs()]

    def options_for(self) -> dict[str, dict[str, str]]:
        """``searcher_options`` as {searcher: {key: value}}; one-line error on a malformed item."""
        from tts_sim.registry import parse_set_options

        out: dict[str, dict[str, str]] = {}
        for item in self.searcher_options:
            name, dot, rest = item.partition(".")
            if not dot or "=" not in rest:
                raise ConfigError(f"bench: searcher option {item!r} is not SEARCHER.KEY=VALUE")
            if name not in self.searchers:
                raise ConfigError(f"bench: searcher option {item!r} names {name!r}, which is not benched")
            out.setdefault(name, {}).update(parse_set_options([rest]))
        return out

    def settings(self) -> dict[str, Any]:
        """The settings every result depends on (see ``RESULT_SETTINGS``); searcher options and the output
        model only when given (not the default), so benches without them keep their fingerprint."""
        from tts_sim.bench.jobs import ROW_VERSION

        data = asdict(self)
        out = {k: (list(data[k]) if isinstance(data[k], tuple) else data[k]) for k in RESULT_SETTINGS}
        out["row_version"] = ROW_VERSION  # rows of an older meaning are not mixed with new ones
        if self.searcher_options:
            out["searcher_options"] = self.options_for()
        if self.output_model != DEFAULT_OUTPUT_MODEL:
            out["output_model"] = self.output_model
        return out

    def fingerprint(self) -> str:
        text = json.dumps(self.settings(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"bench config: unknown field {unknown[0]!r}")
        return cls(**data)


def run_label(searcher: str, prior: str) -> str:
    return f"{searcher}[prior={prior}]"


def label_parts(label: str) -> tuple[str, str | None]:
    """``"random[prior=none]"`` -> ``("random", "none")``; a plain name -> ``(name, None)``."""
    name, bracket, rest = label.partition("[prior=")
    return (name, rest.rstrip("]")) if bracket else (label, None)


def _budget(value: Any) -> float:
    try:
        b = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"bench: budget {value!r} is not a number") from None
    if not math.isfinite(b) or b <= 0:
        raise ConfigError(f"bench: budget must be a positive number of units, got {value!r}")
    return b


def _seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"bench: seeds must be non-negative integers, got {value!r}")
    return value


def _duplicate(values: tuple) -> Any:
    seen: set = set()
    for v in values:
        if v in seen:
            return v
        seen.add(v)
    return None


def parse_seeds(text: str) -> tuple[int, ...]:
    """``10`` -> 0..9; ``5-14`` -> 5..14; ``0,3,7`` -> those."""
    t = text.strip()
    try:
        if "," in t:
            return tuple(int(s) for s in t.split(",") if s.strip())
        if "-" in t[1:]:
            a, b = t.split("-", 1)
            lo, hi = int(a), int(b)
            if hi < lo:
                raise ConfigError(f"bench: seed range {text!r} is empty")
            if hi - lo >= MAX_SEEDS:
                raise ConfigError(f"bench: seed range {text!r} holds more than {MAX_SEEDS} seeds")
            return tuple(range(lo, hi + 1))
        n = int(t)
    except ValueError:
        raise ConfigError(f"bench: cannot read seeds {text!r} (a count, A-B, or a list 0,3,7)") from None
    if not 1 <= n <= MAX_SEEDS:
        raise ConfigError(f"bench: seed count must be 1 to {MAX_SEEDS}, got {text!r}")
    return tuple(range(n))
