"""The ``tts-sim`` command line: the root parser, logging, and the one-line-error contract.

Each command lives in its own module of this package with a ``register(subparsers)``; shared options
are in ``tts_sim.cli.options``. Every command takes ``--json``; bad input gives one line on stderr and
exit status 2."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from tts_sim.cli import bench, fidelity, graph, models, profile, search, simulate, sweep, tasks, validate
from tts_sim.cli.options import Parser, UsageError
from tts_sim.errors import TtsSimError, one_line
from tts_sim.extras import missing_extra

COMMANDS = (models, tasks, graph, simulate, sweep, search, bench, profile, validate, fidelity)


def build_parser() -> Parser:
    parser = Parser(prog="tts-sim", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log progress (-v: info, -vv: debug) to stderr")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS:
        command.register(sub)
    return parser


def configure_logging(verbosity: int) -> None:
    """Warnings always; info with -v; debug with -vv. One line per record on stderr."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="tts-sim: %(message)s", stream=sys.stderr, force=True)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)  # the command as given (reports record it)
        configure_logging(args.verbose)
        args.func(args)
    except UsageError as exc:
        return _fail(f"{exc.prog}: error: {exc}")
    except TtsSimError as exc:
        return _fail(f"tts-sim: error: {exc}")
    except ModuleNotFoundError as exc:
        hint = missing_extra(exc)
        if hint is None or os.environ.get("TTS_SIM_DEBUG"):
            raise
        return _fail(f"tts-sim: error: {hint}")
    except (OSError, ValueError, RecursionError) as exc:  # unreadable files, bad values deep inside a library
        if os.environ.get("TTS_SIM_DEBUG"):
            raise
        return _fail(f"tts-sim: error: {type(exc).__name__}: {exc}")
    except KeyboardInterrupt:
        print("tts-sim: interrupted", file=sys.stderr)
        return 130
    return 0


def _fail(message: str) -> int:
    print(one_line(message), file=sys.stderr)  # one line, whatever the message held
    return 2


if __name__ == "__main__":
    sys.exit(main())
