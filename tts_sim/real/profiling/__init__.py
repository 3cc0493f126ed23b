"""Profiling real backends into the Profile the simulator reads: latency tables (``latency``), answer
banks (``banks``), fusion calibration (``fusion``), the whole run (``run``) and the ``profile`` command
(``cli``)."""

from tts_sim.real.profiling.banks import NO_ANSWER, AnswerBanks, AnswerIndex, BankSample, collect_answer_banks
from tts_sim.real.profiling.fusion import FusionCall, fusion_from_banks, fusion_from_graphs, random_small_graph
from tts_sim.real.profiling.latency import (
    StepTimer,
    device_key,
    measure_latency_table,
    measure_switch_costs,
    step_timer,
)
from tts_sim.real.profiling.run import ProfileConfig, ProfileRun, measured_task_spec, profile_questions, run_profile

__all__ = ["NO_ANSWER", "AnswerBanks", "AnswerIndex", "BankSample", "FusionCall", "ProfileConfig", "ProfileRun",
           "StepTimer", "collect_answer_banks", "device_key", "fusion_from_banks", "fusion_from_graphs",
           "measure_latency_table", "measure_switch_costs", "measured_task_spec", "profile_questions",
           "random_small_graph", "run_profile", "step_timer"]
