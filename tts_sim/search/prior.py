"""The prior knowledge a search is given: one object, built by the driver, the same for every searcher.

Two settings (``PRIOR_SETTINGS``):

- ``none``: the searcher knows the task's name, the budget, the model pool and the models' costs,
  nothing about how well any model does. ``Prior.accuracies`` is empty and ``Prior.task_kind`` None.
- ``published``: also the single-model accuracies published for the task
  (``TaskSpec.published_accuracy``) and the task's kind (``math``, ``multiple-choice``, ``code``).

Searchers and agents read prior knowledge only from ``SearchContext.prior`` (or the ``prior`` of an
agent request), never from the task spec. In the simulator the published accuracies are the numbers
the synthetic scenario is calibrated to, so ``published`` hands a searcher part of the answer:
``none`` is the default of ``run_search`` and ``tts-sim search`` (opt in with ``--prior published``),
and the bench runs both.

How a baseline without an agent uses a prior: ``mix_weights`` weights budget-spending model mixes
by the prior accuracy of their best model, ``exp((acc - max_acc) / temperature)``; under ``none``
the weights are uniform (None).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tts_sim.errors import ConfigError
from tts_sim.tasks import TaskSpec

NONE, PUBLISHED = "none", "published"
PRIOR_SETTINGS = (NONE, PUBLISHED)
DEFAULT_PRIOR_SETTING = NONE
#: Temperature (accuracy points) of ``mix_weights``: a mix whose best model is 5 points below the
#: best mix's is drawn e^-1 as often.
MIX_TEMPERATURE = 0.05


def check_setting(setting: Any) -> str:
    """``setting`` if it is a prior setting; one-line ``ConfigError`` otherwise."""
    if setting not in PRIOR_SETTINGS:
        raise ConfigError(f"unknown prior {setting!r} (choose from: {', '.join(PRIOR_SETTINGS)})")
    return str(setting)


@dataclass(frozen=True)
class Prior:
    """What a searcher may know besides the space. Empty (``setting="none"``) unless published."""

    setting: str = NONE
    accuracies: Mapping[str, float] = field(default_factory=dict)  # model -> single-model accuracy on the task
    task_kind: str | None = None

    def __post_init__(self) -> None:
        check_setting(self.setting)
        object.__setattr__(self, "accuracies", dict(self.accuracies))

    @property
    def informed(self) -> bool:
        return bool(self.accuracies) or self.task_kind is not None

    def accuracy(self, model: str) -> float | None:
        """The prior single-model accuracy of ``model``, or None when unknown."""
        return self.accuracies.get(model)

    def to_dict(self) -> dict[str, Any]:
        return {"setting": self.setting, "accuracies": dict(self.accuracies), "task_kind": self.task_kind}


NO_PRIOR = Prior()


def make_prior(setting: str | Prior | None, task: TaskSpec) -> Prior:
    """The prior of ``setting`` for ``task`` (a ``Prior`` is returned as it is; None = the default)."""
    if isinstance(setting, Prior):
        return setting
    setting = check_setting(DEFAULT_PRIOR_SETTING if setting is None else setting)
    if setting == NONE:
        return NO_PRIOR
    return Prior(PUBLISHED, dict(task.published_accuracy), task.kind)


def mix_accuracy(prior: Prior, models: Sequence[str]) -> float | None:
    """Prior accuracy of a mix: that of its best model with a known accuracy (None if none is known)."""
    known = [a for m in models if (a := prior.accuracy(m)) is not None]
    return max(known) if known else None


def mix_weights(prior: Prior, mixes: Sequence[Sequence[str]], temperature: float = MIX_TEMPERATURE
                ) -> np.ndarray | None:
    """Probabilities of drawing each mix: uniform (None) without prior accuracies; otherwise
    proportional to ``exp((acc - max_acc) / temperature)`` with ``acc`` the mix's ``mix_accuracy``
    (a mix without a known model gets the lowest accuracy of the other mixes)."""
    if not prior.accuracies or not mixes:
        return None
    if not temperature > 0:
        raise ConfigError(f"prior temperature must be positive, got {temperature!r}")
    accs = [mix_accuracy(prior, m) for m in mixes]
    known = [a for a in accs if a is not None]
    if not known:
        return None
    floor = min(known)
    values = np.array([floor if a is None else a for a in accs], dtype=float)
    w = np.exp((values - values.max()) / temperature)
    return w / w.sum()
