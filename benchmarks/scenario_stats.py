"""Report the default scenario's answer statistics next to real models' (GSM8K), per task kind.

Run: ``python benchmarks/scenario_stats.py [--seed 0] [--out docs/scenario_stats.md]``. The scenario
tasks are drawn exactly as ``generate_profile(seed)`` draws the shipped profile; the statistics are
those of ../shared/reference/real-answer-stats.md (see ``tts_sim.sim.scenario_stats``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tts_sim.sim.scenario import GENERATOR_VERSION, LABEL, STRUCTURE
from tts_sim.sim.scenario_stats import markdown, scenario_stats

HEADER = """# Default scenario vs real answer statistics

The default profile is **synthetic** ({label}, generator v{version}). This page compares, per task,
the statistics that decide how much sampling, voting and fusion can gain with the figures measured
on real open models (GSM8K test, 1,319 questions: Llama-3.2-1B/3B and Llama-3.1-8B greedy runs,
and 10 samples per question of 7 models; `shared/reference/real-answer-stats.md`).

Only GSM8K has real figures here, so every task is compared with GSM8K's. The math kind (`math`,
`gsm8k`) is calibrated to them; multiple choice (`mmlu`) and code (`humaneval`) use the same
spread of difficulty and disagreement between models (an assumption: those figures describe the
models more than the task) and their own wrong-answer shapes (assumed: multiple-choice distractors
are mildly shared, both-wrong agreement a little above the 1/3 of random options, and no chance
floor per question; wrong programs rarely coincide). Single-model mean accuracies stay calibrated
to the published ones (`tts_sim.tasks`). "Greedy" = the scenario's most likely answer;
"never"/"in between" = P(0/10) and P(neither 0/10 nor 10/10 correct) in 10 samples, for models of
mean accuracy 0.35-0.75 (the real models' range).

Structure parameters per kind (`tts_sim.sim.scenario.STRUCTURE`):

| kind | difficulty sd | per-model sd | wrong answers | Zipf exponent | weak focus | wrong spread | chance floor |
|---|---|---|---|---|---|---|---|
{rows}

Regenerate: `{command}`

"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="write the Markdown report here (else print it)")
    args = ap.parse_args()
    rows = "\n".join(f"| {k} | {s.difficulty_sd} | {s.model_sd} | {s.wrong.count[0]}-{s.wrong.count[1]} | "
                     f"{s.wrong.zipf[0]}-{s.wrong.zipf[1]} | {s.wrong.weak_focus} | {s.wrong.spread} | "
                     f"{'yes' if s.chance_floor else 'no'} |"
                     for k, s in STRUCTURE.items())
    command = f"python benchmarks/scenario_stats.py --seed {args.seed} --out docs/scenario_stats.md"
    text = HEADER.format(label=LABEL, version=GENERATOR_VERSION, rows=rows, command=command)
    text += markdown(scenario_stats(args.seed))
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")
    else:
        print(text)


if __name__ == "__main__":
    main()
