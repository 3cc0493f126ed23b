"""The core vocabulary: graphs (and their canonical key), edits, models, devices, FLOPs and budgets,
prompts, profiles and the evaluation protocol. Imports nothing from sim, real, search or cli."""
