"""``tts-sim tasks``: the registered tasks (built-in and third-party), with their kind and token counts."""

from __future__ import annotations

import argparse

from tts_sim.cli.options import emit, table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tasks", help="list the registered tasks")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_tasks)


def cmd_tasks(args: argparse.Namespace) -> None:
    from tts_sim.tasks import TASKS

    specs = [TASKS.get(name) for name in TASKS.names()]
    rows = [(s.name, s.kind, f"{s.prompt_tokens:g}", f"{s.answer_tokens:g}", f"{s.chance:.3g}", s.source)
            for s in specs]
    emit(args, [{"name": s.name, "kind": s.kind, "prompt_tokens": s.prompt_tokens, "answer_tokens": s.answer_tokens,
                 "chance": s.chance, "source": s.source} for s in specs],
         table(["task", "kind", "A (prompt)", "B (answer)", "chance", "source"], rows))
