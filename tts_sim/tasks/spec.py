"""One ``TaskSpec`` per task: its constants (used by FLOPs, the quality model and priors) and, for real
runs, its loader and grader, named as import targets and imported only when used (so importing the
simulator never imports a sandbox or a LaTeX normaliser). ``TASKS`` is the one task registry; the
built-ins below are declared as entry points (group ``tts_sim.tasks``) in pyproject.toml, exactly as a
third party declares its own.

``prompt_tokens`` (A) and ``answer_tokens`` (B) are average token counts; ``published_accuracy``
are single-model accuracies (fractions) that the paper's agent is given as prior knowledge and
that the default scenario is calibrated to. LLaMA figures come from the paper; Gemma figures from
the Gemma model cards and technical reports; entries marked in ``assumed`` are our assumptions.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tts_sim.errors import ConfigError
from tts_sim.registry import Registry

if TYPE_CHECKING:
    from tts_sim.tasks.graders import Grader
    from tts_sim.tasks.question import Loader


@dataclass(frozen=True)
class TaskSpec:
    name: str
    kind: str  # "math" | "multiple-choice" | "code"
    prompt_tokens: float  # A
    answer_tokens: float  # B
    published_accuracy: dict[str, float] = field(default_factory=dict)
    chance: float = 0.0  # accuracy of a random guess (1/4 for 4-way multiple choice)
    assumed: tuple[str, ...] = ()  # models whose accuracy is an assumption, not a publication
    source: str = ""
    loader: str = ""  # "module:function" (path | None) -> Iterator[Question]; "" = simulation only
    grader: str = ""  # "module:Class" implementing tts_sim.tasks.graders.Grader; "" = simulation only

    def loader_function(self) -> Loader:
        """The task's question loader (imported now)."""
        return _import(self.loader, f"task {self.name!r} has no question loader (simulation only)")

    def make_grader(self) -> Grader:
        """A new instance of the task's grader (imported now)."""
        return _import(self.grader, f"task {self.name!r} has no grader (simulation only)")()


def _import(target: str, missing: str) -> Any:
    if not target:
        raise ConfigError(missing)
    module, _, attr = target.partition(":")
    obj: Callable[..., Any] = getattr(importlib.import_module(module), attr)
    return obj


_SMALL = {"smollm2-135m": 0.01, "gemma-3-270m": 0.01}

TASKS: Registry[TaskSpec] = Registry("tasks")

MATH = TaskSpec(
    "math", "math", 202, 275,
    {"llama-3.2-1b": 0.31, "llama-3.2-3b": 0.40, "llama-3.1-8b": 0.485, "llama-3.1-70b": 0.68,
     "gemma-3-1b": 0.48, "gemma-2b": 0.118, "gemma-7b": 0.243, **_SMALL},
    assumed=("smollm2-135m", "gemma-3-270m"),
    source="A, B and LLaMA accuracies: paper-facts.md; Gemma: model cards (MATH)",
    loader="tts_sim.tasks.math_answers:load_math",
    grader="tts_sim.tasks.math_answers:MathGrader",
)
MMLU = TaskSpec(
    "mmlu", "multiple-choice", 213, 215,
    {"llama-3.2-1b": 0.31, "llama-3.2-3b": 0.43, "llama-3.1-8b": 0.665, "llama-3.1-70b": 0.84,
     "gemma-3-1b": 0.38, "gemma-2b": 0.423, "gemma-7b": 0.643,
     "smollm2-135m": 0.25, "gemma-3-270m": 0.25},
    chance=0.25,
    assumed=("gemma-3-1b", "smollm2-135m", "gemma-3-270m"),
    source="A, B and LLaMA accuracies: paper-facts.md; Gemma v1: technical report (MMLU 5-shot)",
    loader="tts_sim.tasks.mmlu:load_mmlu",
    grader="tts_sim.tasks.mmlu:MmluGrader",
)
HUMANEVAL = TaskSpec(
    "humaneval", "code", 180, 115,
    {"llama-3.2-1b": 0.31, "llama-3.2-3b": 0.49, "llama-3.1-8b": 0.60, "llama-3.1-70b": 0.68,
     "gemma-3-1b": 0.415, "gemma-2b": 0.22, "gemma-7b": 0.323, "smollm2-135m": 0.0, "gemma-3-270m": 0.0},
    assumed=("smollm2-135m", "gemma-3-270m"),
    source="A, B and LLaMA accuracies: paper-facts.md; Gemma: model cards (HumanEval pass@1)",
    loader="tts_sim.tasks.humaneval:load_humaneval",
    grader="tts_sim.tasks.humaneval:HumanEvalGrader",
)
GSM8K = TaskSpec(
    "gsm8k", "math", 120, 180,
    {"llama-3.2-1b": 0.444, "llama-3.2-3b": 0.777, "llama-3.1-8b": 0.845, "llama-3.1-70b": 0.951,
     "gemma-3-1b": 0.628, "gemma-2b": 0.177, "gemma-7b": 0.464, "smollm2-135m": 0.02, "gemma-3-270m": 0.02},
    assumed=("smollm2-135m", "gemma-3-270m"),
    source="A, B: our estimate; accuracies: Llama 3.x and Gemma model cards (GSM8K CoT)",
    loader="tts_sim.tasks.gsm8k:load_gsm8k",
    grader="tts_sim.tasks.gsm8k:Gsm8kGrader",
)

# Generated single-digit addition (tts_sim.tasks.simple), the task the small real models do better than chance.
# A, B: SmolLM2-135M-Instruct with its ChatML template, greedy, max 64 new tokens, 50 questions
# (benchmarks/easy_task_accuracy.py). smollm2-135m: measured there (30/50 = 0.60, 95% CI 0.46-0.72).
# Every other figure is a scenario assumption (no publication reports this task).
ADD = TaskSpec(
    "add", "math", 46, 24,
    {"llama-3.2-1b": 0.95, "llama-3.2-3b": 0.98, "llama-3.1-8b": 0.99, "llama-3.1-70b": 0.995,
     "gemma-3-1b": 0.95, "gemma-2b": 0.90, "gemma-7b": 0.97, "smollm2-135m": 0.60, "gemma-3-270m": 0.50},
    chance=1 / 17,
    assumed=("llama-3.2-1b", "llama-3.2-3b", "llama-3.1-8b", "llama-3.1-70b", "gemma-3-1b", "gemma-2b",
             "gemma-7b", "gemma-3-270m"),
    source="A, B and smollm2-135m: measured (benchmarks/easy_task_accuracy.py, n=50); others: scenario assumptions",
    loader="tts_sim.tasks.simple:load_add",
    grader="tts_sim.tasks.simple:AdditionGrader",
)


# Generated arithmetic in several wordings (tts_sim.tasks.arithmetic), the tasks on which both real small models
# are mid-range. A, B and the two real models' accuracies: measured (docs/tasks.md: genai int8 engine,
# temperature 0.7, top-p 0.9, one-line answers); every other figure is a scenario assumption.
_LARGE_ARITH = {"llama-3.2-1b": 0.95, "llama-3.2-3b": 0.98, "llama-3.1-8b": 0.99, "llama-3.1-70b": 0.995,
                "gemma-3-1b": 0.95, "gemma-2b": 0.90, "gemma-7b": 0.97}
ADD_WORDS = TaskSpec(
    "add-words", "math", 36, 10, {**_LARGE_ARITH, "smollm2-135m": 0.247, "gemma-3-270m": 0.222},
    chance=1 / 17, assumed=tuple(_LARGE_ARITH),
    source="A, B, smollm2-135m, gemma-3-270m: measured (docs/tasks.md); others: scenario assumptions",
    loader="tts_sim.tasks.arithmetic:load_add_words",
    grader="tts_sim.tasks.arithmetic:AddWordsGrader",
)
MUL_WORDS = TaskSpec(
    "mul-words", "math", 36, 10, {**_LARGE_ARITH, "smollm2-135m": 0.367, "gemma-3-270m": 0.216},
    chance=1 / 25, assumed=tuple(_LARGE_ARITH),
    source="A, B, smollm2-135m, gemma-3-270m: measured (docs/tasks.md); others: scenario assumptions",
    loader="tts_sim.tasks.arithmetic:load_mul_words",
    grader="tts_sim.tasks.arithmetic:MulWordsGrader",
)


def get_task(name: str) -> TaskSpec:
    """The registered ``TaskSpec`` called ``name`` (one-line error if unknown)."""
    return TASKS.get(name)
