"""Baseline searchers, one module each, on the same ``Searcher`` protocol and driver as
Agent-REINFORCE (``tts_sim.search.run_search``): random search, Bayesian optimisation with
scikit-optimize (GP and random forest), Optuna TPE, a TextGrad-style critic/editor loop, and
GPTSwarm-style REINFORCE. They register by name in ``tts_sim.search.SEARCHERS``."""
