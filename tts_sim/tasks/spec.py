"""Task constants used by FLOPs, the quality model and the agent's prior knowledge.

``prompt_tokens`` (A) and ``answer_tokens`` (B) are average token counts; ``published_accuracy``
are single-model accuracies (fractions) that the paper's agent is given as prior knowledge and
that the default scenario is calibrated to. LLaMA figures come from the paper; Gemma figures from
the Gemma model cards and technical reports; entries marked in ``assumed`` are our assumptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tts_sim.registry import Registry


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


_SMALL = {"smollm2-135m": 0.01, "gemma-3-270m": 0.01}

TASKS: Registry[TaskSpec] = Registry("tasks")

TASKS.register("math", TaskSpec(
    "math", "math", 202, 275,
    {"llama-3.2-1b": 0.31, "llama-3.2-3b": 0.40, "llama-3.1-8b": 0.485, "llama-3.1-70b": 0.68,
     "gemma-3-1b": 0.48, "gemma-2b": 0.118, "gemma-7b": 0.243, **_SMALL},
    assumed=("smollm2-135m", "gemma-3-270m"),
    source="A, B and LLaMA accuracies: paper-facts.md; Gemma: model cards (MATH)",
))
TASKS.register("mmlu", TaskSpec(
    "mmlu", "multiple-choice", 213, 215,
    {"llama-3.2-1b": 0.31, "llama-3.2-3b": 0.43, "llama-3.1-8b": 0.665, "llama-3.1-70b": 0.84,
     "gemma-3-1b": 0.38, "gemma-2b": 0.423, "gemma-7b": 0.643,
     "smollm2-135m": 0.25, "gemma-3-270m": 0.25},
    chance=0.25,
    assumed=("gemma-3-1b", "smollm2-135m", "gemma-3-270m"),
    source="A, B and LLaMA accuracies: paper-facts.md; Gemma v1: technical report (MMLU 5-shot)",
))
TASKS.register("humaneval", TaskSpec(
    "humaneval", "code", 180, 115,
    {"llama-3.2-1b": 0.31, "llama-3.2-3b": 0.49, "llama-3.1-8b": 0.60, "llama-3.1-70b": 0.68,
     "gemma-3-1b": 0.415, "gemma-2b": 0.22, "gemma-7b": 0.323, "smollm2-135m": 0.0, "gemma-3-270m": 0.0},
    assumed=("smollm2-135m", "gemma-3-270m"),
    source="A, B and LLaMA accuracies: paper-facts.md; Gemma: model cards (HumanEval pass@1)",
))
TASKS.register("gsm8k", TaskSpec(
    "gsm8k", "math", 120, 180,
    {"llama-3.2-1b": 0.444, "llama-3.2-3b": 0.777, "llama-3.1-8b": 0.845, "llama-3.1-70b": 0.951,
     "gemma-3-1b": 0.628, "gemma-2b": 0.177, "gemma-7b": 0.464, "smollm2-135m": 0.02, "gemma-3-270m": 0.02},
    assumed=("smollm2-135m", "gemma-3-270m"),
    source="A, B: our estimate; accuracies: Llama 3.x and Gemma model cards (GSM8K CoT)",
))

# Generated single-digit addition (tts_sim.tasks.simple), the task the small real models do better than chance.
# A, B: SmolLM2-135M-Instruct with its ChatML template, greedy, max 64 new tokens, 50 questions
# (benchmarks/easy_task_accuracy.py). smollm2-135m: measured there (30/50 = 0.60, 95% CI 0.46-0.72).
# Every other figure is a scenario assumption (no publication reports this task).
TASKS.register("add", TaskSpec(
    "add", "math", 46, 24,
    {"llama-3.2-1b": 0.95, "llama-3.2-3b": 0.98, "llama-3.1-8b": 0.99, "llama-3.1-70b": 0.995,
     "gemma-3-1b": 0.95, "gemma-2b": 0.90, "gemma-7b": 0.97, "smollm2-135m": 0.60, "gemma-3-270m": 0.50},
    chance=1 / 17,
    assumed=("llama-3.2-1b", "llama-3.2-3b", "llama-3.1-8b", "llama-3.1-70b", "gemma-3-1b", "gemma-2b",
             "gemma-7b", "gemma-3-270m"),
    source="A, B and smollm2-135m: measured (benchmarks/easy_task_accuracy.py, n=50); others: scenario assumptions",
))


def get_task(name: str) -> TaskSpec:
    """The registered ``TaskSpec`` called ``name`` (one-line error if unknown)."""
    return TASKS.get(name)
