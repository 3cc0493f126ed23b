"""Tasks: one ``TaskSpec`` per task (constants + lazily imported loader and grader), one registry."""

from tts_sim.tasks.graders import Grader, build_prompt, get_grader
from tts_sim.tasks.question import Question
from tts_sim.tasks.questions import load_questions
from tts_sim.tasks.spec import TASKS, TaskSpec, get_task

__all__ = ["TASKS", "Grader", "Question", "TaskSpec", "build_prompt", "get_grader", "get_task", "load_questions"]
