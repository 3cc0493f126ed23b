"""tts-sim: find compute-optimal multi-LLM collaboration graphs for test-time scaling."""

from tts_sim.core.evaluation import Evaluation, Evaluator, LatencyStats, split_questions
from tts_sim.core.graph import Graph, Node, Role
from tts_sim.core.models import DEFAULT_CATALOG, ModelCatalog, ModelSpec
from tts_sim.errors import TtsSimError
from tts_sim.tasks import TaskSpec, get_task

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_CATALOG", "Evaluation", "Evaluator", "Graph", "LatencyStats", "ModelCatalog", "ModelSpec",
    "Node", "Role", "TaskSpec", "TtsSimError", "get_task", "split_questions", "__version__",
]
