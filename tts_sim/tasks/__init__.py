"""Tasks: constants (``spec``) and, for real runs, loaders and graders."""

from tts_sim.tasks.graders import GRADERS, Grader, build_prompt, get_grader
from tts_sim.tasks.questions import LOADERS, Question, load_questions
from tts_sim.tasks.spec import TASKS, TaskSpec, get_task

__all__ = ["GRADERS", "LOADERS", "TASKS", "Grader", "Question", "TaskSpec", "build_prompt", "get_grader",
           "get_task", "load_questions"]
