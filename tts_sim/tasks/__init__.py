"""Tasks: constants (``spec``) and, for real runs, loaders and graders."""

from tts_sim.tasks.spec import TASKS, TaskSpec, get_task

__all__ = ["TASKS", "TaskSpec", "get_task"]
