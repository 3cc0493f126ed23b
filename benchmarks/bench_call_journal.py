"""Time the profiling journal (``CallJournal``): appending batches of calls and replaying a long journal.

Writes ``--calls`` generations (texts of ``--chars`` characters) in batches of ``--batch`` (one fsynced
line each), then reopens the file ``--repeat`` times and reports the best replay. CPU time
(``time.process_time``) for the replay, because the machine is shared; wall time for the appends
(fsync-bound). Compare with another version of the class by MODULE:CLASS, e.g. the one before it was
built on ``tts_sim.journal``:

    git show b94cbe4:tts_sim/real/profiling/journal.py > /tmp/orig/old_journal.py
    PYTHONPATH=$PWD:/tmp/orig nice -n 15 python benchmarks/bench_call_journal.py old_journal:CallJournal \
        tts_sim.real.profiling.journal:CallJournal
"""

from __future__ import annotations

import argparse
import importlib
import random
import tempfile
import time
from pathlib import Path

from tts_sim.core.backend import Generation


def bench(spec: str, calls: int, batch: int, chars: int, repeat: int) -> dict[str, float]:
    module, _, name = spec.partition(":")
    cls = getattr(importlib.import_module(module), name)
    rng = random.Random(0)
    fingerprint = {"task": "add", "seed": 3, "question_ids": [f"q{i}" for i in range(2000)]}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "j.jsonl"
        journal = cls(path, fingerprint)
        start = time.perf_counter()
        for b in range(0, calls, batch):
            journal.record([(f"bank/m/{i}/0", Generation("x" * chars, 100, rng.randrange(1, 64), rng.random(),
                                                         rng.random(), "stop"))
                            for i in range(b, min(b + batch, calls))])
        append_s = time.perf_counter() - start
        best = float("inf")
        for _ in range(repeat):
            start = time.process_time()
            again = cls(path, fingerprint)
            best = min(best, time.process_time() - start)
            assert again.replayed == calls
        return {"append_wall_s": append_s, "replay_cpu_s": best, "mib": path.stat().st_size / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("impl", nargs="*", default=["tts_sim.real.profiling.journal:CallJournal"])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--chars", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for spec in args.impl:
        r = bench(spec, args.calls, args.batch, args.chars, args.repeat)
        print(f"{spec}: {args.calls} calls in batches of {args.batch}: appends {r['append_wall_s']:.2f} s wall, "
              f"replay {r['replay_cpu_s']:.3f} s CPU (best of {args.repeat}), {r['mib']:.1f} MiB")


if __name__ == "__main__":
    main()
