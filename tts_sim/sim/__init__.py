"""The simulator: SimPy cluster (entities, schedulers, latency predictors), the quality model, synthetic
scenarios, and the ``SimulatedEvaluator`` that joins them."""
