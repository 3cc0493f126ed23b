"""Fidelity journals as fusion records: does the fusion model describe the held-out graphs' own nodes?

A fidelity journal (``tts-sim fidelity``, per-node answers kept since stop 22) holds, for every
(graph, question), each executed node's answer. Its source nodes are plain samples of their model on
the question (the profile's own sampling settings), so together they are an answer bank for the
held-out questions (tens of samples per question over the graphs); every fusing node is then one
fusion record (its model, role, its inputs' answer ids, its output id). This script builds both and
asks:

1. the fits on the nodes: P(correct) against the observed rate, by role, in-degree and share of
   correct inputs (the record-level form of ``fidelity_nodes.py``'s third table, free of the
   question-population difference). Fits: "no pick" (the profile's records, the pick term held at 0:
   the model before stop 23), "shipped" (the profile's records, as the package fits them), "nodes fit"
   (the nodes themselves) and "both fit" (profile records and nodes together);
2. the negative log-likelihood per node and per profile record of each fit: "no pick" and "shipped"
   never saw the nodes, so their node column is a held-out test;
3. P(correct) by level, and each fit's coefficient table.

    python benchmarks/fusion_nodes_fit.py mul-words docs/fidelity/seed4/fidelity_mul-words.journal.jsonl.gz
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fidelity_nodes import NO_ANSWER, read_journal  # noqa: E402

from benchmarks.fusion_calibration import subset  # noqa: E402
from tts_sim.core.graph import Graph  # noqa: E402
from tts_sim.core.profile import FusionRecord  # noqa: E402
from tts_sim.errors import TtsSimError  # noqa: E402
from tts_sim.sim.profiles import load_profile  # noqa: E402
from tts_sim.sim.quality import fusion as F  # noqa: E402
from tts_sim.sim.quality.answers import AnswerTables, smooth_answer_banks  # noqa: E402
from tts_sim.sim.quality.model import fit_inputs  # noqa: E402
from tts_sim.tasks import TaskSpec, get_task  # noqa: E402
from tts_sim.tasks.graders import get_grader  # noqa: E402


def node_records(task: TaskSpec, journals: Sequence[Path]
                 ) -> tuple[dict[str, list[list[int]]], list[FusionRecord], list[int]]:
    """Answer banks from the journals' source nodes, one fusion record per fusing node, and each
    record's level. Questions are renumbered densely (the journals' question keys, merged)."""
    grader = get_grader(task.name)
    qindex: dict[object, int] = {}
    wrong: list[dict[str, int]] = []
    samples: list[tuple[str, int, int]] = []
    records: list[FusionRecord] = []
    levels: list[int] = []
    for path in journals:
        config, recs = read_journal(path)
        if config["task"] != task.name:
            raise ValueError(f"{path}: a journal of task {config['task']!r}, not {task.name!r}")
        graphs = [Graph.from_dict(g) for g in config["graphs"]]
        for r in recs:
            key = r["question"]
            if key not in qindex:
                qindex[key] = len(qindex)
                wrong.append({})
            q = qindex[key]

            def answer_id(answer: str | None, correct: bool, q: int = q) -> int:
                if correct:
                    return 0
                canon = NO_ANSWER if answer is None else grader.canonical(answer)
                return wrong[q].setdefault(canon, len(wrong[q]) + 1)

            g = graphs[r["graph"]]
            ids = {n: answer_id(a, bool(c)) for n, (a, c) in r["nodes"].items()}
            for n in g.executed:
                preds = g.predecessors(n)
                node = g.node(n)
                if not preds:
                    samples.append((node.model, q, ids[n]))
                else:
                    records.append(FusionRecord(node.model, node.role.value, q, tuple(ids[p] for p in preds), ids[n]))
                    levels.append(g.levels[n])
    if not samples or not records:
        raise ValueError("the journals hold no source nodes or no fusing nodes: nothing to fit")
    nq = len(qindex)
    banks: dict[str, list[list[int]]] = defaultdict(lambda: [[] for _ in range(nq)])
    for model, q, a in samples:
        row = banks[model][q]
        row.extend([0] * (a + 1 - len(row)))
        row[a] += 1
    return dict(banks), records, levels


def tables(task: TaskSpec, banks: dict[str, list[list[int]]], records: Sequence[FusionRecord]
           ) -> tuple[AnswerTables, F.RecordArrays]:
    nq = len(next(iter(banks.values())))
    k = max([2] + [max((*r.inputs, r.output)) + 1 for r in records])
    extra = np.zeros((nq, k), dtype=bool)
    for r in records:
        extra[r.question, [*r.inputs, r.output]] = True
    answers = smooth_answer_banks(banks, nq, chance=task.chance, extra_ids=extra, origin="journal sources")
    return answers, F.record_arrays(records, answers, task)


@dataclasses.dataclass(frozen=True)
class Inputs:
    """A profile's fit inputs and journals' nodes as records (with the profile's skills)."""

    answers: AnswerTables  # the profile's banks
    prof_rec: F.RecordArrays
    skills: dict[str, float]
    banks: dict[str, list[list[int]]]  # the journals' source nodes: answer counts per question
    node_answers: AnswerTables  # those banks, smoothed
    rec: F.RecordArrays
    records: list[FusionRecord]
    levels: list[int]


def load_inputs(task: TaskSpec, profile: str | None, journals: Sequence[Path]) -> Inputs:
    """The profile's fit inputs (``measured:TASK`` by default) and the journals' nodes as records, each node
    with its model's skill on the profile's questions (as the package fits them)."""
    prof = load_profile(profile or f"measured:{task.name}")
    answers, prof_rec, skills = fit_inputs(prof.task(task.name), task)
    banks, records, levels = node_records(task, journals)
    node_answers, rec = tables(task, banks, records)
    rec = dataclasses.replace(rec, skill=np.array([skills[m] for m in node_answers.models])[
        [node_answers.index(r.model) for r in records]])
    return Inputs(answers, prof_rec, skills, banks, node_answers, rec, records, levels)


def join(a: F.RecordArrays, b: F.RecordArrays) -> F.RecordArrays:
    k = max(a.probs.shape[1], b.probs.shape[1])

    def pad(x: np.ndarray) -> np.ndarray:
        return np.pad(x, ((0, 0), (0, k - x.shape[1])))

    return F.RecordArrays(np.concatenate([a.role, b.role]), np.concatenate([a.skill, b.skill]),
                          np.concatenate([pad(a.probs), pad(b.probs)]), np.concatenate([pad(a.counts), pad(b.counts)]),
                          np.concatenate([a.output, b.output]), np.concatenate([a.excess, b.excess]),
                          np.concatenate([pad(a.base), pad(b.base)]))


def nll(params: F.FusionParams, rec: F.RecordArrays) -> float:
    """The records' negative log-likelihood under ``params`` (its pull limited beyond its widest records)."""
    return F.negative_log_likelihood(params.vector, rec, params.widest)[0]


def calibration(rec: F.RecordArrays, fits: dict[str, F.FusionParams]) -> None:
    share = rec.counts[:, 0] / rec.degree
    y = (rec.output == 0).astype(float)
    ps = {name: F.p_correct(p, rec) for name, p in fits.items()}
    head = f"{'role':<10}{'inputs':>7}{'correct share':>15}{'nodes':>7}{'observed':>14}" + "".join(
        f"{name[:12]:>13}" for name in fits)
    print(head)
    for r, role in enumerate(F.ROLES):
        for dlabel, dlo, dhi in (("1", 1, 1), ("2", 2, 2), ("3-4", 3, 4), ("5-6", 5, 6), ("7+", 7, 99)):
            for slabel, lo, hi in (("none", 0, 0), ("<half", 1e-9, 0.5 - 1e-9), (">=half", 0.5, 1 - 1e-9),
                                   ("all", 1, 1)):
                m = (rec.role == r) & (rec.degree >= dlo) & (rec.degree <= dhi) & (share >= lo) & (share <= hi)
                if m.sum() < 10:
                    continue
                o = y[m].mean()
                se = np.sqrt(max(o * (1 - o), 0.01) / m.sum())
                print(f"{role:<10}{dlabel:>7}{slabel:>15}{int(m.sum()):>7}{o:>9.3f}±{se:.3f}"
                      + "".join(f"{ps[n][m].mean():>13.3f}" for n in fits))
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("task")
    ap.add_argument("journals", nargs="+", type=Path)
    ap.add_argument("--profile", help="default: measured:TASK")
    args = ap.parse_args()
    threadpool_limits(1)
    try:
        task = get_task(args.task)
        inputs = load_inputs(task, args.profile, args.journals)
    except (TtsSimError, ValueError, OSError, KeyError) as exc:
        print(f"fusion_nodes_fit: {exc}", file=sys.stderr)
        sys.exit(2)
    prof_rec, skills, answers, rec = inputs.prof_rec, inputs.skills, inputs.node_answers, inputs.rec
    records, levels = inputs.records, inputs.levels
    no_pick = F.fit_fusion(prof_rec, skills, hold=F.PICK_OFF)
    shipped = F.fit_fusion(prof_rec, skills)
    nodes_fit = F.fit_fusion(rec, skills)
    both = F.fit_fusion(join(prof_rec, rec), skills)
    samples = {m: int(np.sum([sum(row) for row in rows])) for m, rows in inputs.banks.items()}
    print(f"{args.task}: {len(records)} fusing nodes on {answers.n_questions} questions; source samples "
          + ", ".join(f"{m} {n} ({n / answers.n_questions:.1f}/question)" for m, n in samples.items())
          + "; accuracy of the sources "
          + ", ".join(f"{m} {a:.3f}" for m, a in zip(answers.models, answers.accuracy, strict=True)))
    print(f"profile records {len(prof_rec.role)}, widest in-degree {prof_rec.widest}; nodes widest {rec.widest}\n")
    fits = {"no pick": no_pick, "shipped": shipped, "nodes fit": nodes_fit, "both fit": both}
    calibration(rec, fits)
    print("negative log-likelihood per record (nodes | profile records):")
    for name, p in fits.items():
        print(f"  {name:<12} {nll(p, rec) / len(rec.role):.4f} | {nll(p, prof_rec) / len(prof_rec.role):.4f}")
    print()
    lv = np.array(levels)
    for L in sorted(set(levels)):
        m = lv == L
        print(f"level {L}: {int(m.sum())} nodes, observed {np.mean(rec.output[m] == 0):.3f}, "
              + ", ".join(f"{n} {F.p_correct(p, subset(rec, m)).mean():.3f}" for n, p in fits.items()))
    print()
    for name, p in fits.items():
        print(f"--- {name}\n{p.table()}\n")


if __name__ == "__main__":
    main()
