"""Would graph nodes as fusion records make better predictions of graphs nobody fitted?

The profiles' fusion records come from small graphs whose inputs are sampled source answers (width 1-4,
depth 1-2). A fidelity journal's fusing nodes (``fusion_nodes_fit.py``) are records of the kind the
simulator is asked about: wider, deeper, reading other fusing nodes' outputs. This script fits the
fusion model to the profile's records plus the nodes of ``--train`` journals (and to those nodes alone),
then predicts the graphs of ``--test`` reports whose journals it did not read, next to the shipped fit
(the profile's records only). Predictions use the profile's answer banks, as the package does; the
held-out questions' banks only turn nodes into records. Where a test report's journal lies beside it,
the shipped fit is also run on that journal's own source answers ("shipped, own banks"): the sources are
then predicted from the very runs, so what is left of the error is the fusion model's and the run's noise.

    python benchmarks/nodes_refit.py mul-words --train docs/fidelity/seed4/fidelity_mul-words.journal.jsonl.gz \
        --test docs/fidelity/seed5/fidelity_mul-words.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fusion_nodes_fit import join, load_inputs, node_records, tables  # noqa: E402

from benchmarks.fusion_ablation import print_repredictions, read_reports, summary  # noqa: E402
from tts_sim.errors import TtsSimError  # noqa: E402
from tts_sim.sim.quality import fusion as F  # noqa: E402
from tts_sim.sim.quality.model import QualityModel  # noqa: E402
from tts_sim.tasks import get_task  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("task")
    ap.add_argument("--train", nargs="+", type=Path, required=True, help="fidelity journals whose nodes are fitted")
    ap.add_argument("--test", nargs="+", type=Path, required=True, help="fidelity reports to predict")
    ap.add_argument("--profile", help="default: measured:TASK")
    args = ap.parse_args()
    threadpool_limits(1)
    try:
        task = get_task(args.task)
        inputs = load_inputs(task, args.profile, args.train)
        reports = read_reports(args.test, task.name)
        tested = {str(p.resolve()).removesuffix(".json") for p in args.test}
        for journal in args.train:
            if str(journal.resolve()).removesuffix(".journal.jsonl.gz") in tested:
                raise ValueError(f"{journal} is the journal of a --test report: not a held-out test")
    except (TtsSimError, ValueError, OSError, KeyError) as exc:
        print(f"nodes_refit: {exc}", file=sys.stderr)
        sys.exit(2)
    answers, prof_rec, skills, rec = inputs.answers, inputs.prof_rec, inputs.skills, inputs.rec
    fits: dict[str, F.FusionParams] = {"shipped": F.fit_fusion(prof_rec, skills)}
    for label, data in (("profile+nodes", join(prof_rec, rec)), ("nodes only", rec)):
        t0 = time.perf_counter()
        fits[label] = F.fit_fusion(data, skills)
        print(f"{label}: {len(data.role)} records, fitted in {time.perf_counter() - t0:.1f} s")
    print(f"{args.task}: profile records {len(prof_rec.role)}, train nodes {len(inputs.records)} "
          f"({', '.join(str(p) for p in args.train)})\n")
    models = {label: QualityModel(task, answers, params) for label, params in fits.items()}
    print_repredictions(args.test, reports, models)
    for path, report in zip(args.test, reports, strict=True):
        journal = path.with_name(path.name.removesuffix(".json") + ".journal.jsonl.gz")
        if not journal.exists():
            continue
        own, _ = tables(task, *node_records(task, [journal])[:2])
        qm = QualityModel(task, own, fits["shipped"])
        measured = np.array([r.measured for r in report.rows])
        predicted = np.array([qm.expected(r.graph).mean() for r in report.rows])
        print(f"{path}, shipped, own banks ({own.n_questions} questions): {summary(predicted, measured)}")


if __name__ == "__main__":
    main()
