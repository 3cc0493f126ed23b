"""Fidelity: does the simulator predict what real runs measure, on graphs and questions its profile never saw?

``heldout`` picks the graphs (given, or drawn at random up to a width and depth) and the questions
(refusing any the profile was measured on); ``run`` measures them resumably and predicts them;
``report`` compares (rank correlation, mean absolute error, interval coverage, best-in-top-3,
latency errors) and writes JSON, Markdown and a PNG. ``tts-sim fidelity`` drives it.
"""

from tts_sim.real.fidelity.heldout import heldout_graphs, heldout_questions, random_graph
from tts_sim.real.fidelity.report import (
                                           SUMMARY_KEYS,
                                           TARGETS,
                                           FidelityReport,
                                           FidelityRow,
                                           best_in_top,
                                           if_exact,
                                           summary,
)
from tts_sim.real.fidelity.run import FidelityPlan, assemble, journal_path, measure, write_outputs

__all__ = ["SUMMARY_KEYS", "TARGETS", "FidelityPlan", "FidelityReport", "FidelityRow", "assemble", "best_in_top",
           "heldout_graphs", "heldout_questions", "if_exact", "journal_path", "measure", "random_graph", "summary",
           "write_outputs"]
