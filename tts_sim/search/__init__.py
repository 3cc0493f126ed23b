"""Search: the space, the one driver every searcher uses, Agent-REINFORCE and its agents.

Entry point: ``run_search(name, space, evaluator, max_evals, seed, ...) -> SearchResult``.
Searchers by name: ``SEARCHERS`` (agent-reinforce, hybrid, random, informed-random, bo-gp, bo-forest,
tpe, textgrad, gptswarm); agents by name: ``AGENTS`` (insight, chat, offline-textgrad). What a
searcher knows about the task comes from ``SearchContext.prior`` (``tts_sim.search.prior``).
"""

from tts_sim.search.agent_api import AGENTS, Agent, AgentReply, CritiqueEditAgent
from tts_sim.search.context import SearchContext, SearchExhausted
from tts_sim.search.encoding import GraphEncoding
from tts_sim.search.enumerate import ExpectedScorer, enumerate_graphs, optimum, regret
from tts_sim.search.objectives import (
    Accuracy,
    LatencyLimit,
    Objective,
    WeightedAccuracyLatency,
    pareto_front,
    parse_objective,
)
from tts_sim.search.result import SearchCost, SearchResult, Trial
from tts_sim.search.searcher import SEARCHERS, BaseSearcher, Searcher, make_searcher, run_search
from tts_sim.search.space import ProbabilisticGraph, SearchSpace

__all__ = [
    "AGENTS", "SEARCHERS", "Accuracy", "Agent", "AgentReply", "BaseSearcher", "CritiqueEditAgent",
    "ExpectedScorer", "GraphEncoding", "LatencyLimit", "Objective", "ProbabilisticGraph", "SearchContext", "SearchCost",
    "SearchExhausted", "SearchResult", "SearchSpace", "Searcher", "Trial", "WeightedAccuracyLatency",
    "enumerate_graphs", "make_searcher", "optimum", "pareto_front", "parse_objective",
    "regret", "run_search",
]
