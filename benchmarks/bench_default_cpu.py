"""CPU seconds of the default ``tts-sim bench``, measured on one seed of its grid (issue 8, Performance).

On a machine other programs load, a full default bench measures the load, not the bench. This runs
in one process, one BLAS thread, every job of the bench for one seed (every searcher label x cell)
plus its reference and optimum jobs, times each with ``time.process_time``, and prints the CPU
seconds per searcher and the estimated wall time of the whole bench on W busy workers:

    (W x setup + n_seeds x sum(search jobs of the seed) + sum(reference and optimum jobs)) / W

where setup is fitting the evaluators, which every worker does once. Not counted: the report at the
end, and the reference optima when they are already cached (``cached`` in the output says so; a
cold reference costs 40-90 s of CPU per main cell).

    PYTHONPATH=$PWD python benchmarks/bench_default_cpu.py [--seed 0] [--workers 2] [--json FILE] [bench flags]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict


def main(argv: list[str]) -> dict:
    from threadpoolctl import threadpool_limits

    from tts_sim.bench.jobs import evaluator_for, execute
    from tts_sim.bench.runner import plan_jobs, settings_for
    from tts_sim.cli.app import build_parser
    from tts_sim.cli.bench import config_from_args

    ours = argparse.ArgumentParser(add_help=False)
    ours.add_argument("--seed", type=int, default=0)
    ours.add_argument("--json", dest="json_out")
    mine, rest = ours.parse_known_args(argv)
    config = config_from_args(build_parser().parse_args(["bench", *rest]))
    workers = config.workers
    threadpool_limits(1)
    jobs = plan_jobs(config)
    settings = settings_for(config)
    sample = [j for j in jobs if j.kind != "search" or j.seed == mine.seed]

    t0 = time.process_time()
    for world in {j.world for j in jobs}:
        for task in config.tasks:
            evaluator_for(task, settings, world)
    setup = time.process_time() - t0

    per_label: dict[str, float] = defaultdict(float)
    search_cpu = other_cpu = 0.0
    cached = []
    per_job: dict[str, float] = {}
    for job in sample:
        t = time.process_time()
        row = execute(job, settings)
        dt = time.process_time() - t
        per_job[job.key] = round(dt, 3)
        if job.kind == "search":
            search_cpu += dt
            per_label[job.name] += dt
        else:
            other_cpu += dt
            if job.kind == "reference":
                cached.append(bool(row.get("cached")))
    n_seeds = len(config.seeds)
    total = workers * setup + n_seeds * search_cpu + other_cpu
    out = {
        "jobs": len(jobs), "sampled_jobs": len(sample), "seed": mine.seed, "seeds": n_seeds, "workers": workers,
        "setup_cpu_s": round(setup, 2), "search_cpu_s_one_seed": round(search_cpu, 2),
        "reference_optimum_cpu_s": round(other_cpu, 2), "references_cached": cached,
        "estimated_cpu_s": round(total, 1), "estimated_wall_s": round(total / workers, 1),
        "per_label_cpu_s_one_seed": {k: round(v, 2) for k, v in sorted(per_label.items(), key=lambda kv: -kv[1])},
        "per_job_cpu_s": per_job,
    }
    if mine.json_out:
        with open(mine.json_out, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    result = main(sys.argv[1:])
    print(json.dumps(result, indent=1))
    print(f"estimated default-bench wall on {result['workers']} workers: {result['estimated_wall_s'] / 60:.1f} min "
          f"({result['jobs']} jobs; from {result['sampled_jobs']} jobs of seed {result['seed']})")
