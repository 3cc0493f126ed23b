"""What every command shares: the parser class, value types with one-line messages, common options,
values built from options, and output (``--json`` or a table)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from tts_sim.errors import ConfigError
from tts_sim.text_table import table

if TYPE_CHECKING:
    from tts_sim.core.models import ModelCatalog
    from tts_sim.core.profile import Profile
    from tts_sim.sim.cluster.simulator import ClosedLoop, OpenLoop

__all__ = ["Parser", "UsageError", "add_cluster_options", "add_common", "add_quiet", "arrival_from", "catalog_from",
           "emit", "int_list", "non_negative_float", "non_negative_int", "number", "positive_float", "positive_int",
           "probability", "profile_from", "progress_printer", "sim_options", "load_text", "table", "tp_degree"]


def number(kind: type = float, low: float | None = None, high: float | None = None,
           low_open: bool = False) -> Callable[[str], float]:
    """A parser of ``kind`` values within [low, high] (``(low, high]`` when ``low_open``)."""
    name = "an integer" if kind is int else "a number"
    bound = ("" if low is None else (f" > {low:g}" if low_open else f" >= {low:g}")) + (
        "" if high is None else f"{' and' if low is not None else ''} <= {high:g}")

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {name}{bound}, got {text!r}") from None
        too_low = low is not None and (value <= low if low_open else value < low)
        if too_low or (high is not None and value > high) or not math.isfinite(value):
            finite = "a finite number" if value == value and not math.isfinite(value) else name
            raise argparse.ArgumentTypeError(f"expected {finite}{bound}, got {text!r}")
        return value

    parse.__name__ = f"{kind.__name__}{bound}".replace(" ", "")
    return parse


positive_int = number(int, 1)
non_negative_int = number(int, 0)
positive_float = number(float, 0, low_open=True)
non_negative_float = number(float, 0)
probability = number(float, 0, 1, low_open=True)


def tp_degree(text: str) -> int | str:
    """``auto`` or a positive integer: a tensor-parallel degree."""
    from tts_sim.errors import ClusterError
    from tts_sim.sim.cluster.tensor_parallel import parse_tp

    try:
        return parse_tp(text)
    except ClusterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def int_list(text: str) -> tuple[int, ...]:
    """Comma-separated positive integers, e.g. ``16,64,256``."""
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


# ----- parsers ---------------------------------------------------------------------------------
class UsageError(ConfigError):
    """A command-line usage error; ``prog`` is the (sub)command it belongs to."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog


class HelpFormatter(argparse.HelpFormatter):
    """Appends each option's default to its help (unless it has none or already says it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or "default:" in text or any(action.default is v for v in (None, False, True)) \
                or action.default == argparse.SUPPRESS:
            return text
        if not action.option_strings and action.nargs not in ("?", "*"):
            return text
        default = action.default
        shown = ",".join(str(v) for v in default) if isinstance(default, (tuple, list)) else "%(default)s"
        return f"{text} (default: {shown})"


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump), exit status 2 and defaults in ``--help``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(self.prog, message)


# ----- shared options ----------------------------------------------------------------------------
def add_common(p: argparse.ArgumentParser, task: bool = True) -> None:
    """``--json``, ``--models-file`` and (optionally) ``--task``."""
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--models-file", metavar="FILE", help="TOML/JSON file of extra models")
    if task:
        p.add_argument("--task", default="math", help="task name (see `tts-sim tasks`)")


def add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bar or progress messages")


def progress_printer(args: argparse.Namespace) -> Callable[[str], None]:
    """Progress messages to stderr, or nowhere with ``--quiet``."""
    if getattr(args, "quiet", False):
        return lambda message: None
    return lambda message: print(message, file=sys.stderr)


def add_cluster_options(p: argparse.ArgumentParser, default_cluster: str | None = None) -> None:
    """Cluster, load (open or closed loop) and profile options of the simulator."""
    p.add_argument("--cluster", default=default_cluster, help="e.g. 2xH100, 1xA100-80GB,2xL4, cpu")
    load = p.add_mutually_exclusive_group()
    load.add_argument("--qps", type=positive_float, default=1.0, help="open-loop Poisson arrival rate")
    load.add_argument("--concurrency", type=positive_int, help="closed loop: queries in flight")
    p.add_argument("--queries", type=positive_int, default=1000, help="queries to simulate")
    p.add_argument("--profile", metavar="PROFILE",
                   help="a profile file, 'scenario' (the embedded synthetic default) or a shipped measured "
                        "profile 'measured:TASK' (default: scenario)")
    p.add_argument("--scheduler", default="auto",
                   help="batching policy: a registered scheduler, static (padded batches, as the CPU engine) or "
                        "continuous (iteration-level, vLLM-style), or auto: continuous on GPUs, static with a CPU")
    p.add_argument("--kv-block-size", type=int, metavar="TOKENS",
                   help="continuous: KV-cache block size in tokens (default 16)")
    p.add_argument("--no-prefix-caching", action="store_true",
                   help="continuous: prefill the question prompt again for every node of a query")
    p.add_argument("--chunked-prefill", type=int, metavar="TOKENS",
                   help="continuous: token budget per step, prompts prefilled in chunks alongside decodes")
    p.add_argument("--tp", type=tp_degree, default=1, metavar="auto|K",
                   help="tensor parallelism: each replica spans K GPUs of a node (weights, KV cache and compute "
                        "split K ways, an all-reduce per layer over NVLink/PCIe); auto: the smallest K whose GPUs "
                        "hold each model")
    p.add_argument("--latency-predictor", metavar="NAME",
                   help="a registered latency predictor, e.g. roofline or profile-table (default: the profile's "
                        "tables where it has them)")


def sim_options(args: argparse.Namespace) -> dict[str, Any]:
    """SimulatedEvaluator keywords from the cluster options: scheduler (+ its options), predictor.

    Scheduler options are checked against the scheduler's config dataclass, before any work is done."""
    from tts_sim.sim.cluster import SCHEDULERS, build_scheduler, parse_cluster
    from tts_sim.sim.cluster.schedulers import resolve_auto

    kinds = [d.kind for d in parse_cluster(args.cluster).devices] if getattr(args, "cluster", None) else ["gpu"]
    scheduler = str(resolve_auto(args.scheduler, kinds))
    flags = {"block_size": ("--kv-block-size", args.kv_block_size),
             "prefix_caching": ("--no-prefix-caching", False if args.no_prefix_caching else None),
             "chunked_prefill": ("--chunked-prefill", args.chunked_prefill)}
    known = SCHEDULERS.options(scheduler.strip().lower()) if scheduler.strip().lower() in SCHEDULERS else {}
    for key, (flag, value) in flags.items():
        if value is not None and known and key not in known:
            picked = " (auto picks static with a CPU device; pass --scheduler continuous)" \
                if scheduler != args.scheduler.strip().lower() else ""
            raise ConfigError(f"{flag} does not apply to --scheduler {scheduler}{picked}")
    options = {key: value for key, (_, value) in flags.items()}
    build_scheduler(scheduler, options)  # bad names and values fail here, before any work
    if args.tp != 1:
        if not args.cluster:
            raise ConfigError("--tp needs --cluster (tensor parallelism splits a model over a node's GPUs)")
        if isinstance(args.tp, int):  # a degree the cluster cannot take fails here too
            from tts_sim.sim.cluster import parse_cluster, tp_cluster

            tp_cluster(parse_cluster(args.cluster), args.tp)
    return {"scheduler": scheduler, "scheduler_options": options, "predictor": args.latency_predictor,
            "tp": args.tp}


def load_text(lat: Any) -> str:
    """The load a latency result assumed, and how many queries it simulated."""
    return f"{lat.load}, {lat.n_queries} queries simulated"


# ----- values from options -----------------------------------------------------------------------
def catalog_from(args: argparse.Namespace) -> ModelCatalog:
    from tts_sim.core.models import DEFAULT_CATALOG, ModelCatalog, load_models

    path = getattr(args, "models_file", None)
    return load_models(path, ModelCatalog()) if path else DEFAULT_CATALOG


def profile_from(args: argparse.Namespace) -> Profile | None:
    """The ``--profile`` a user named (``scenario``, ``measured:TASK`` or a file), None when not given."""
    from tts_sim.sim.profiles import load_profile

    spec = getattr(args, "profile", None)
    return load_profile(spec) if spec else None


def arrival_from(args: argparse.Namespace) -> OpenLoop | ClosedLoop:
    from tts_sim.sim.cluster import ClosedLoop, OpenLoop

    if getattr(args, "concurrency", None):
        return ClosedLoop(args.concurrency)
    return OpenLoop(args.qps)


# ----- output ------------------------------------------------------------------------------------
def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """Print ``data`` as JSON with ``--json``, else ``text``."""
    print(json.dumps(data, indent=2, default=_json_default) if getattr(args, "json", False) else text)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
