"""Cost of the input guards: ``jsonio.loads`` (JSON with a nesting limit) against plain ``json.loads``
on the shipped 1.8 MB profile, and the search checkpoint journal (one fsynced line per record).

    python benchmarks/bench_input_guards.py [--repeat 15] [--records 200]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import tempfile
import time
from pathlib import Path

from tts_sim.jsonio import loads, nesting_depth
from tts_sim.search.checkpoint import Checkpoint
from tts_sim.sim.scenario import DEFAULT_PROFILE


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--records", type=int, default=200)
    args = ap.parse_args()

    raw = gzip.decompress((Path(__file__).resolve().parents[1] / "tts_sim" / DEFAULT_PROFILE).read_bytes())
    plain, guarded, depth = [], [], []
    for _ in range(args.repeat):  # interleaved, so that load changes hit both alike
        plain.append(_median_ms(lambda: json.loads(raw), 1))
        guarded.append(_median_ms(lambda: loads(raw, "profile"), 1))
        depth.append(_median_ms(lambda: nesting_depth(raw), 1))
    p, g, d = (statistics.median(x) for x in (plain, guarded, depth))
    print(f"shipped profile ({len(raw) / 1e6:.1f} MB of JSON), medians of {args.repeat}: json.loads {p:.1f} ms, "
          f"jsonio.loads {g:.1f} ms (x{g / p:.2f}); the nesting check alone {d:.1f} ms")

    trial = {"index": 0, "graph": {"nodes": [{"id": "n0", "role": "assistant", "model": "llama-3.2-1b"}] * 6,
                                   "edges": [["n0", "out"]] * 6, "output": "out"}, "score": 0.5, "accuracy": 0.5}
    with tempfile.TemporaryDirectory() as d:
        ckpt = Checkpoint(Path(d) / "c.jsonl")
        ckpt.begin({"seed": 0})
        t0 = time.perf_counter()
        for i in range(args.records):
            ckpt.add_trial({**trial, "index": i}, float(i))
        per = 1000 * (time.perf_counter() - t0) / args.records
        t0 = time.perf_counter()
        state = Checkpoint(Path(d) / "c.jsonl").load()
        load_ms = 1000 * (time.perf_counter() - t0)
    print(f"checkpoint journal: {per:.2f} ms per appended (fsynced) trial; reading {len(state.trials)} trials "
          f"{load_ms:.1f} ms")


if __name__ == "__main__":
    main()
