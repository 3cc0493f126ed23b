"""Every prompt a graph node sends, per role and task, in one place.

A node's messages depend on its role, on whether it has predecessors and on whether it is the
output node (the paper's wording, paraphrased):

- **direct**: an assistant without predecessors answers the question itself;
- **refine**: an assistant with predecessors reads their responses (some may be wrong), evaluates
  them critically and writes one refined answer;
- **fuse**: a fuser reviews, condenses and merges its predecessors' reasoning and answers;
- **synthesise**: the output node (an assistant with predecessors) synthesises the responses it
  receives into the graph's final answer (the original code's fixed output prompt).

Each predecessor's full reply is appended to the prompt (edge u -> v: u's output goes into v's
prompt). The answer-format line (``{instructions}``) comes from the task's grader, so the same
templates serve every task; tasks whose replies are programs get wording of their own.
``PROMPTS_VERSION`` is recorded in profiles: change it when a template changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from tts_sim.core.graph import Role
from tts_sim.errors import ConfigError

PROMPTS_VERSION = 1

DIRECT, REFINE, FUSE, SYNTHESISE = "direct", "refine", "fuse", "synthesise"
KINDS = (DIRECT, REFINE, FUSE, SYNTHESISE)


@dataclass(frozen=True)
class PromptTemplates:
    """One task's templates. Fields are ``str.format`` templates: ``{question}``, ``{instructions}``,
    ``{responses}`` (the predecessors' replies, each rendered with ``response``) and ``{count}``."""

    system: str
    direct: str
    refine: str
    fuse: str
    synthesise: str
    response: str = "Response {index}:\n{text}"
    separator: str = "\n\n"
    empty_response: str = "(no response)"

    def template(self, kind: str) -> str:
        if kind not in KINDS:
            raise ConfigError(f"unknown prompt kind {kind!r} (expected one of {', '.join(KINDS)})")
        return getattr(self, kind)


DEFAULT_TEMPLATES = PromptTemplates(
    system="You are a helpful assistant who solves problems carefully.",
    direct="{question}\n\n{instructions}",
    refine=(
        "{question}\n\n"
        "Here are {count} response(s) from other assistants to this question. Some of them may be wrong.\n\n"
        "{responses}\n\n"
        "Evaluate these responses critically, then write your own refined answer to the question.\n"
        "{instructions}"
    ),
    fuse=(
        "{question}\n\n"
        "Here are {count} response(s) from other assistants to this question.\n\n"
        "{responses}\n\n"
        "Review, condense and merge their reasoning and answers into one answer.\n"
        "{instructions}"
    ),
    synthesise=(
        "{question}\n\n"
        "You have received {count} response(s) to this question.\n\n"
        "{responses}\n\n"
        "Synthesise these responses into a single, accurate final answer.\n"
        "{instructions}"
    ),
)

CODE_TEMPLATES = replace(
    DEFAULT_TEMPLATES,
    system="You are a helpful assistant who writes correct Python code.",
    refine=(
        "{question}\n\n"
        "Here are {count} solution(s) from other programmers. Some of them may be wrong.\n\n"
        "{responses}\n\n"
        "Check these solutions critically, then write your own corrected solution.\n"
        "{instructions}"
    ),
    fuse=(
        "{question}\n\n"
        "Here are {count} solution(s) from other programmers.\n\n"
        "{responses}\n\n"
        "Review them and merge their best ideas into one correct solution.\n"
        "{instructions}"
    ),
    synthesise=(
        "{question}\n\n"
        "You have received {count} solution(s) to this task.\n\n"
        "{responses}\n\n"
        "Synthesise them into a single correct final solution.\n"
        "{instructions}"
    ),
    response="Solution {index}:\n{text}",
)

#: Templates per task name; tasks not listed use ``DEFAULT_TEMPLATES``.
TASK_TEMPLATES: dict[str, PromptTemplates] = {"humaneval": CODE_TEMPLATES}


def templates_for(task: str) -> PromptTemplates:
    """The templates of ``task`` (the default ones unless the task has its own)."""
    return TASK_TEMPLATES.get(task, DEFAULT_TEMPLATES)


def prompt_kind(role: Role | str, n_predecessors: int, is_output: bool) -> str:
    """Which template a node uses: direct without predecessors, else fuse / synthesise / refine."""
    role = Role(role)
    if n_predecessors == 0:
        return DIRECT
    if role is Role.FUSER:
        return FUSE
    return SYNTHESISE if is_output else REFINE


def node_messages(templates: PromptTemplates, kind: str, question: str, instructions: str,
                  responses: Sequence[str] = ()) -> tuple[dict[str, str], ...]:
    """The chat messages (system + user) of one node call."""
    if kind == DIRECT and responses:
        raise ConfigError("a direct prompt takes no predecessor responses")
    if kind != DIRECT and not responses:
        raise ConfigError(f"a {kind} prompt needs at least one predecessor response")
    rendered = templates.separator.join(
        templates.response.format(index=i + 1, text=text.strip() or templates.empty_response)
        for i, text in enumerate(responses))
    user = templates.template(kind).format(question=question.strip(), instructions=instructions.strip(),
                                           responses=rendered, count=len(responses))
    return ({"role": "system", "content": templates.system}, {"role": "user", "content": user.strip()})
