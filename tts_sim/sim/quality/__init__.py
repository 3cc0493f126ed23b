"""Quality model: a graph's per-question accuracy on a task, replayed from a profile.

The generative model, in three parts (each module documents its own):

1. ``answers`` - every (model, question) has an answer distribution over answer ids (0 = correct,
   >= 1 = that question's distinct wrong answers, shared across models), estimated from the profile's
   answer banks and smoothed across models (Rasch prior for the correct answer, pooled prior for
   the wrong ones). A node without predecessors samples its answer from it.
2. ``fusion`` - a node with predecessors weighs each candidate answer by its own (context-degraded)
   belief times ``exp(lam * (beta * agreeing inputs + rho * [correct and present]))``: it adopts its
   inputs' majority, recognises a correct minority, falls back on its own answer distribution, and
   reads long contexts worse if it is a weak model. Parameters depend on the role and the model's
   skill and are fitted by maximum likelihood to the profile's fusion records.
3. ``model`` - ``QualityModel`` runs a graph node by node in topological order, vectorised over
   questions x replicates; ``predict`` gives one realised run (0/1 per question), ``expected`` the
   per-question probability of a correct final answer, ``ceiling`` the documented bound of the latter.
4. ``interval`` - prediction intervals that carry the fusion fit's coefficient uncertainty
   (coefficients drawn from the fitted records' likelihood: ``posterior``) as well as the run's own noise.
"""

from tts_sim.sim.quality.answers import AnswerTables, smooth_answer_banks
from tts_sim.sim.quality.fusion import ROLES, FusionParams, fit_fusion
from tts_sim.sim.quality.interval import PredictionInterval, prediction_interval
from tts_sim.sim.quality.model import AccuracyEstimate, QualityModel

__all__ = ["ROLES", "AccuracyEstimate", "AnswerTables", "FusionParams", "PredictionInterval", "QualityModel",
           "fit_fusion", "prediction_interval", "smooth_answer_banks"]
