"""Real execution: the graph executor, the real evaluator, profiling real backends, and validation."""
