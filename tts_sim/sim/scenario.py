"""The default scenario: a synthetic profile calibrated to published single-model accuracies.

Nothing here was measured. The scenario is a clearly labelled stand-in for a profile that real
backends would write, so the simulator works out of the box:

* **Questions differ, and models disagree about which are hard.** Logistic item response:
  ``p(m, q) = c + (1 - c) * sigmoid(skill_m - difficulty_q - e_mq)`` (``c`` = chance level), a shared
  difficulty ~ Normal(0, ``difficulty_sd``) plus each model's own deviation ``e_mq`` ~ Normal(0,
  ``model_sd``), each model's skill solved so that its mean accuracy over the questions equals its
  published accuracy (to 1e-3). A wide spread makes questions mostly solved always or never by a
  model (greedy accuracy close to the sampled one), the per-model part sets the cross-model
  correlation of per-question success.
* **Wrong answers mostly differ.** Each question has a few distinct wrong answers with a shared
  Zipf-like popularity; weaker models concentrate more on the popular ones (a power ``> 1`` of the
  popularity), and each model multiplies it by its own log-normal taste (``spread``), so two models
  that are both wrong give the same wrong answer only sometimes. Multiple choice has exactly 3
  wrong options; code has many, nearly equally rare (wrong programs rarely coincide).
* **Per task kind** (``STRUCTURE``): math is calibrated to real models' GSM8K statistics
  (../shared/reference/real-answer-stats.md); ``python benchmarks/scenario_stats.py`` reports
  each task's figures next to the real ones (docs/scenario_stats.md); the other kinds' values are
  documented assumptions.
* **Fusion** follows ``tts_sim.sim.quality.fusion`` with the true coefficients ``TRUE_FUSION`` (by task
  kind), chosen so the paper's qualitative insights hold in the model fitted to the shipped profile
  (tests/test_scenario.py). The depth optimum is shallow: a chain of identical refiners is a
  time-homogeneous Markov chain on answer ids, which can only overshoot transiently.

``generate_profile`` samples answer banks (``samples`` answers per question per model, for every
catalog model with a published accuracy; many, so the fitted model is close to the true one) and
fusion-calibration records from random small graphs of the paper's pool, ``WIDE_FRACTION`` of them
one wide fan-in (12-64 inputs), so the context degradation is fitted from long contexts.
``python -m tts_sim.sim.scenario --out tts_sim/data/default_profile.json.gz --seed 0`` regenerates the
shipped file byte for byte; ``load_default_profile`` reads it and ``default_quality_model(task)``
fits (once per process) the quality model of a task to it.
"""

from __future__ import annotations

import argparse
import functools
import importlib.resources
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special

from tts_sim.core.edits import fix_roles
from tts_sim.core.graph import Graph, Node, Role
from tts_sim.core.models import DEFAULT_CATALOG, PAPER_POOL, ModelCatalog
from tts_sim.core.profile import FusionRecord, Profile, TaskProfile
from tts_sim.sim.quality.answers import AnswerTables
from tts_sim.sim.quality.fusion import FIND_OFF, PICK_OFF, FusionParams
from tts_sim.sim.quality.model import QualityModel
from tts_sim.tasks import TaskSpec, get_task

LABEL = "default scenario (synthetic, calibrated to published single-model accuracies; not measured)"
GENERATOR_VERSION = 2
QUESTIONS = {"math": 500, "mmlu": 500, "humaneval": 164, "gsm8k": 500}
WIDE_FRACTION = 0.15  # share of calibration graphs that are one wide fan-in (long contexts)
WIDE_INPUTS = (12, 64)  # their number of inputs (4,000+ extra context tokens on every task from ~35 on)
SAMPLES_PER_QUESTION = 256
RECORDS_PER_TASK = 8000
DEFAULT_PROFILE = "data/default_profile.json.gz"


@dataclass(frozen=True)
class WrongAnswers:
    """Shape of a task's wrong answers: how many distinct ones a question has, how skewed their
    shared popularity is (``weights ~ rank ** -zipf``), how much weak models favour popular ones,
    and how much each model has wrong answers of its own (``spread``: sd of a per-(model, question,
    answer) log-normal factor on the shared popularity; 0 = every model errs alike)."""

    count: tuple[int, int]  # inclusive range of distinct wrong answers per question
    zipf: tuple[float, float]  # range of the popularity exponent
    weak_focus: float  # a model with published accuracy p raises popularity to the power exp(-weak_focus * logit p)
    spread: float = 0.0


@dataclass(frozen=True)
class Structure:
    """How a task kind's questions and models differ (see the module docstring).

    ``difficulty_sd``: sd of the question difficulty shared by all models (logit units);
    ``model_sd``: sd of each (model, question)'s own deviation from it, so models disagree about
    which questions are hard (cross-model correlation falls as ``model_sd`` grows); together they
    set how "solved always or never" questions are. ``wrong``: the shape of wrong answers."""

    difficulty_sd: float
    model_sd: float
    wrong: WrongAnswers
    chance_floor: bool = True  # p >= chance on every question (False: a model can be reliably wrong on one)


#: Per task kind. Math: calibrated to the GSM8K statistics of real models
#: (../shared/reference/real-answer-stats.md; benchmarks/scenario_stats.py reports the match): 0.38-0.58
#: of questions solved sometimes but not always in 10 samples, cross-model correlation of per-question
#: success 0.54, the same wrong answer when two models are both wrong 0.14-0.34, greedy accuracy close to
#: the sampled one. Multiple choice and code: no real per-question data here; ASSUMED the same spread of
#: difficulty and the same disagreement between models as math (the figures describe models, not GSM8K);
#: multiple choice has 3 wrong options with mildly shared distractors (agreement when both are wrong a
#: little above the 1/3 of independent guesses) and no chance floor per question (a model can be
#: reliably wrong on a question, as greedy scoring of real models is: greedy accuracy stays close to the
#: published, greedy, one); code has many wrong programs, rarely the same.
STRUCTURE = {
    "math": Structure(4.3, 2.1, WrongAnswers((9, 16), (0.7, 2.0), 0.2, 1.5)),
    "multiple-choice": Structure(4.3, 2.1, WrongAnswers((3, 3), (0.0, 1.0), 0.0, 1.0), chance_floor=False),
    "code": Structure(4.3, 2.1, WrongAnswers((15, 25), (0.0, 0.3), 0.2, 1.0)),
}
#: Kept for readers of the old name: the wrong-answer shapes by task kind.
WRONG_ANSWERS = {kind: st.wrong for kind, st in STRUCTURE.items()}


def structure(task: TaskSpec, world: World | None = None) -> Structure:
    """The scenario's structure of a task (by its kind; math-like by default) in ``world`` (default: the
    shipped scenario)."""
    table = STRUCTURE if world is None else world.structure
    return table.get(task.kind, table["math"])


#: True fusion coefficients of the scenario by task kind (see ``tts_sim.sim.quality.fusion``). Math:
#: checking a derivation is easier than producing one (a correct input is recognised, rho > 0, and
#: multi-input nodes sharpen their own belief, tau > 1). Since v2 (wrong answers mostly differ across
#: models, questions mostly solved always or never) the multi-input assistant recognises a correct
#: input more (rho0 2.2 -> 4.0) and follows mere agreement less (beta0 3.9 -> 2.0, tau 2.5 -> 2.0):
#: otherwise fusing small models no longer beats them on MATH as the paper found; multiple choice:
#: recognising the right option is no easier than answering (small rho), fusion gains come from
#: plurality only; code: agreement between programs is hard to see by reading them (small beta
#: and rho), so fusing weak coders helps little. No role finds the correct answer beyond its own judgement
#: (``FIND_OFF``): the scenario predates that term, and no real measurement of it exists on these tasks;
#: and every node weighs its inputs (``PICK_OFF``): the scenario predates the pick term too.
TRUE_FUSION = {
    "math": FusionParams({
        "refine.tau": 1.5, "refine.beta0": 1.75, "refine.beta1": 0.0, "refine.rho0": 0.15, "refine.rho1": 0.0,
        "assistant.tau": 2.0, "assistant.beta0": 2.0, "assistant.beta1": 0.0, "assistant.rho0": 4.0,
        "assistant.rho1": 0.3,
        "fuser.tau": 1.5, "fuser.beta0": 2.5, "fuser.beta1": 0.0, "fuser.rho0": 1.5, "fuser.rho1": 0.3,
        **FIND_OFF, **PICK_OFF, "dilution": 0.0, "gamma0": -2.9, "gamma1": -1.0,
    }),
    "multiple-choice": FusionParams({
        "refine.tau": 1.2, "refine.beta0": 1.5, "refine.beta1": 0.0, "refine.rho0": 0.2, "refine.rho1": 0.3,
        "assistant.tau": 1.2, "assistant.beta0": 1.2, "assistant.beta1": 0.0, "assistant.rho0": 0.3,
        "assistant.rho1": 0.3,
        "fuser.tau": 1.0, "fuser.beta0": 1.4, "fuser.beta1": 0.0, "fuser.rho0": 0.2, "fuser.rho1": 0.3,
        **FIND_OFF, **PICK_OFF, "dilution": 0.0, "gamma0": math.log(0.1), "gamma1": -1.0,
    }),
    "code": FusionParams({
        "refine.tau": 1.0, "refine.beta0": 0.5, "refine.beta1": 0.0, "refine.rho0": 0.4, "refine.rho1": 0.4,
        "assistant.tau": 1.0, "assistant.beta0": 0.4, "assistant.beta1": 0.0, "assistant.rho0": 0.4,
        "assistant.rho1": 0.4,
        "fuser.tau": 1.0, "fuser.beta0": 0.5, "fuser.beta1": 0.0, "fuser.rho0": 0.4, "fuser.rho1": 0.4,
        **FIND_OFF, **PICK_OFF, "dilution": 0.0, "gamma0": math.log(0.1), "gamma1": -1.0,
    }),
}


def true_fusion(task: TaskSpec, world: World | None = None) -> FusionParams:
    """The scenario's true fusion coefficients for a task (by its kind; math-like by default) in
    ``world`` (default: the shipped scenario)."""
    table = TRUE_FUSION if world is None else world.fusion
    return table.get(task.kind, table["math"])


@dataclass(frozen=True)
class World:
    """The parameters a scenario is generated from: the structure of questions and wrong answers and
    the true fusion coefficients, by task kind. The default is the shipped scenario;
    ``tts_sim.sim.worlds`` samples perturbed ones (an ensemble of worlds for robustness)."""

    name: str = "default"
    structure: Mapping[str, Structure] = field(default_factory=lambda: dict(STRUCTURE))
    fusion: Mapping[str, FusionParams] = field(default_factory=lambda: dict(TRUE_FUSION))

    @property
    def is_default(self) -> bool:
        return self.name == "default" and dict(self.structure) == STRUCTURE and \
            all(self.fusion[k].coef == p.coef for k, p in TRUE_FUSION.items())

    def describe(self) -> dict:
        """JSON-ready parameters (the profile's metadata)."""
        return {
            "structure": {kind: {"difficulty_sd": st.difficulty_sd, "model_sd": st.model_sd,
                                 "wrong": {"count": list(st.wrong.count), "zipf": list(st.wrong.zipf),
                                           "weak_focus": st.wrong.weak_focus, "spread": st.wrong.spread},
                                 "chance_floor": st.chance_floor}
                          for kind, st in self.structure.items()},
            "true_fusion": {kind: dict(p.coef) for kind, p in self.fusion.items()},
        }


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


@dataclass(frozen=True)
class ScenarioTask:
    """The true answer distributions of one task."""

    task: TaskSpec
    models: tuple[str, ...]
    skill: np.ndarray  # (M,) item-response skill
    difficulty: np.ndarray  # (Q,)
    probs: np.ndarray  # (M, Q, K)
    valid: np.ndarray  # (Q, K)
    fusion: FusionParams | None = None  # the world's true fusion coefficients (None: ``true_fusion(task)``)

    def answer_tables(self) -> AnswerTables:
        """The true distributions, in the form the quality model uses (no sample counts)."""
        return AnswerTables(self.models, self.probs, self.valid, np.zeros(len(self.models)))

    def quality_model(self, params: FusionParams | None = None, catalog: ModelCatalog = DEFAULT_CATALOG
                      ) -> QualityModel:
        """The scenario's true quality model (no sampling noise; ``true_fusion`` unless ``params``)."""
        if params is None:
            params = true_fusion(self.task) if self.fusion is None else self.fusion
        tables = self.answer_tables()
        skills = dict(zip(self.models, tables.skill.tolist(), strict=True))
        return QualityModel(self.task, tables, FusionParams(params.coef, skills=skills),
                            label=f"{LABEL} [true model]", catalog=catalog)


def solve_skill(target: float, difficulty: np.ndarray, chance: float = 0.0) -> float:
    """Skill whose mean accuracy over ``difficulty`` (per question, or per (model, question)
    deviation included) equals ``target`` (clipped inside (chance, 1))."""
    lo_acc, hi_acc = chance + 5e-4, 1 - 5e-4
    target = min(max(target, lo_acc), hi_acc)

    def gap(s: float) -> float:
        return float(np.mean(chance + (1 - chance) * special.expit(s - difficulty))) - target

    return float(optimize.brentq(gap, -60.0, 60.0, xtol=1e-10))


def scenario_task(task: str | TaskSpec, n_questions: int, rng: np.random.Generator,
                  catalog: ModelCatalog = DEFAULT_CATALOG, world: World | None = None) -> ScenarioTask:
    """Draw difficulties (shared and per model) and wrong-answer popularity (shared and per model);
    solve skills to the published accuracies (``world``: default the shipped scenario)."""
    spec = get_task(task) if isinstance(task, str) else task
    st = structure(spec, world)
    shape = st.wrong
    models = tuple(m for m in catalog.names() if m in spec.published_accuracy)
    difficulty = rng.normal(0.0, st.difficulty_sd, n_questions)
    own = difficulty[None, :] + rng.normal(0.0, st.model_sd, (len(models), n_questions))  # (M, Q)
    floor = spec.chance if st.chance_floor else 0.0
    skill = np.array([solve_skill(max(spec.published_accuracy[m], spec.chance + 5e-4), own[i], floor)
                      for i, m in enumerate(models)])
    n_wrong = rng.integers(shape.count[0], shape.count[1] + 1, n_questions)
    zipf = rng.uniform(*shape.zipf, n_questions)
    k = 1 + int(n_wrong.max())
    rank = np.arange(1, k, dtype=float)
    valid = np.zeros((n_questions, k), dtype=bool)
    valid[:, 0] = True
    valid[:, 1:] = rank[None, :] <= n_wrong[:, None]
    popularity = np.where(valid[:, 1:], rank[None, :] ** -zipf[:, None], 0.0)
    p_correct = floor + (1 - floor) * special.expit(skill[:, None] - own)
    taste = np.exp(shape.spread * rng.normal(0.0, 1.0, (len(models), n_questions, k - 1)))
    probs = np.zeros((len(models), n_questions, k))
    for i, m in enumerate(models):
        focus = math.exp(-shape.weak_focus * _logit(min(max(spec.published_accuracy[m], 0.01), 0.99)))
        w = popularity**focus * taste[i]
        w = w / w.sum(axis=1, keepdims=True)
        probs[i, :, 0] = p_correct[i]
        probs[i, :, 1:] = (1 - p_correct[i])[:, None] * w
    return ScenarioTask(spec, models, skill, difficulty, probs, valid,
                        None if world is None else true_fusion(spec, world))


def _wide_graph(rng: np.random.Generator, models: Sequence[str]) -> Graph:
    """A fan-in of WIDE_INPUTS sources into one node: the long-context records the degradation is fitted from."""
    n_src = int(rng.integers(WIDE_INPUTS[0], WIDE_INPUTS[1] + 1))
    nodes = [Node(f"s{i}", Role.ASSISTANT, str(rng.choice(models))) for i in range(n_src)]
    out = Node("out", Role(str(rng.choice(["assistant", "fuser"]))), str(rng.choice(models)))
    return Graph.build([*nodes, out], {(f"s{i}", "out") for i in range(n_src)}, "out", catalog=None)


def _random_graph(rng: np.random.Generator, models: Sequence[str]) -> Graph:
    """A small random graph with varied in-degrees, roles and models (a wide fan-in with
    probability WIDE_FRACTION)."""
    if rng.random() < WIDE_FRACTION:
        return _wide_graph(rng, models)
    n_src = int(rng.integers(1, 9))
    n_mid = int(rng.integers(0, 3))
    nodes = [Node(f"s{i}", Role.ASSISTANT, str(rng.choice(models))) for i in range(n_src)]
    edges: set[tuple[str, str]] = set()
    for j in range(n_mid):
        prev = [n.id for n in nodes]
        k = int(rng.integers(1, len(prev) + 1))
        ids = [str(x) for x in rng.choice(prev, size=k, replace=False)]
        nodes.append(Node(f"m{j}", Role(str(rng.choice(["assistant", "fuser"]))), str(rng.choice(models))))
        edges |= {(u, f"m{j}") for u in ids}
    out = Node("out", Role(str(rng.choice(["assistant", "fuser"]))), str(rng.choice(models)))
    sinks = [n.id for n in nodes if not any(u == n.id for u, _ in edges)]
    edges |= {(s, "out") for s in sinks}
    fixed = fix_roles([*nodes, out], edges)  # may drop fuser->fuser edges
    if not any(v == "out" for _, v in edges):
        edges |= {(s, "out") for s in sinks}
        fixed = [*fixed[:-1], Node("out", Role.ASSISTANT, out.model)]
    return Graph.build(fixed, edges, "out", catalog=None)


def fusion_records(truth: ScenarioTask, n_records: int, rng: np.random.Generator,
                   questions_per_graph: int = 10) -> list[FusionRecord]:
    """Records of every node with predecessors in random small graphs run under the true model."""
    qm = truth.quality_model()
    spec = truth.task
    records: list[FusionRecord] = []
    while len(records) < n_records:
        graph = _random_graph(rng, [m for m in truth.models if m in PAPER_POOL])
        qs = rng.choice(truth.probs.shape[1], size=questions_per_graph, replace=False)
        ids = qm.simulate(graph, qs, rng)
        for n in graph.executed:
            preds = graph.predecessors(n)
            if not preds:
                continue
            node = graph.node(n)
            tokens = int(round(spec.prompt_tokens + len(preds) * spec.answer_tokens))
            for i, q in enumerate(qs):
                records.append(FusionRecord(node.model, node.role.value, int(q),
                                            tuple(int(ids[p][i, 0]) for p in preds), int(ids[n][i, 0]), tokens))
    return records[:n_records]


def answer_banks(truth: ScenarioTask, samples: int, rng: np.random.Generator) -> dict[str, list[list[int]]]:
    """``samples`` answers per question per model, as count rows with trailing zeros trimmed."""
    banks: dict[str, list[list[int]]] = {}
    for i, m in enumerate(truth.models):
        counts = rng.multinomial(samples, truth.probs[i])
        rows = []
        for row in counts.tolist():
            while len(row) > 1 and row[-1] == 0:
                row.pop()
            rows.append(row)
        banks[m] = rows
    return banks


def generate_profile(seed: int = 0, *, samples: int = SAMPLES_PER_QUESTION, records: int = RECORDS_PER_TASK,
                     questions: dict[str, int] | None = None, catalog: ModelCatalog = DEFAULT_CATALOG,
                     world: World | None = None) -> Profile:
    """The synthetic default profile (deterministic in ``seed``); ``world`` generates another world of
    the scenario (other structure and fusion coefficients, ``tts_sim.sim.worlds``)."""
    world = World() if world is None else world
    questions = dict(QUESTIONS if questions is None else questions)
    tasks: dict[str, TaskProfile] = {}
    for name, child in zip(questions, np.random.SeedSequence(seed).spawn(len(questions)), strict=True):
        rng = np.random.default_rng(child)
        truth = scenario_task(name, questions[name], rng, catalog, world)
        tasks[name] = TaskProfile(questions[name], answer_banks(truth, samples, rng),
                                  fusion_records(truth, records, rng))
    metadata = {
        "label": LABEL if world.is_default else f"{LABEL} [world {world.name}]", "scenario": True, "seed": seed,
        "generator": f"tts_sim.scenario v{GENERATOR_VERSION}", "samples_per_question": samples,
        **world.describe(),
    }
    if not world.is_default:
        metadata["world"] = world.name
    return Profile(metadata, tasks, [])


def load_default_profile() -> Profile:
    """The shipped default scenario profile (checksum verified on load)."""
    ref = importlib.resources.files("tts_sim").joinpath(DEFAULT_PROFILE)
    with importlib.resources.as_file(ref) as path:
        return Profile.load(path)


@functools.lru_cache(maxsize=8)
def default_quality_model(task: str) -> QualityModel:
    """The quality model fitted to the shipped default profile for ``task`` (cached per process)."""
    return QualityModel.from_profile(load_default_profile(), task)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m tts_sim.sim.scenario", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="where to write the profile (.json or .json.gz)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--samples", type=int, default=SAMPLES_PER_QUESTION, help="answers per question per model")
    ap.add_argument("--records", type=int, default=RECORDS_PER_TASK, help="fusion records per task")
    args = ap.parse_args(argv)
    generate_profile(args.seed, samples=args.samples, records=args.records).save(args.out)


if __name__ == "__main__":
    main()
