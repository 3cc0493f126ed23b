"""Fusion coefficients drawn from the records' likelihood (``tts_sim.sim.quality.posterior``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tts_sim.sim.profiles import load_profile, profile_names
from tts_sim.sim.quality import QualityModel
from tts_sim.sim.quality import posterior as P
from tts_sim.sim.quality.fusion import BOUNDS, COEF_NAMES, negative_log_likelihood
from tts_sim.sim.scenario import generate_profile


@pytest.fixture(scope="module")
def small() -> QualityModel:
    """A model fitted to 1,500 records: sampling its likelihood takes a few seconds."""
    return QualityModel.from_profile(generate_profile(5, samples=128, records=1500, questions={"math": 200}), "math")


@pytest.fixture(scope="module")
def small_draws(small: QualityModel) -> np.ndarray:
    assert small.records is not None
    x = P.likelihood_draws(small.params, small.records, 48)
    assert x is not None
    return x


def test_draws_move_only_the_free_coefficients_and_stay_in_bounds(small: QualityModel, small_draws) -> None:
    x = small_draws
    assert x.shape == (48, len(COEF_NAMES))
    lo, hi = np.array(BOUNDS).T
    assert ((x >= lo) & (x <= hi)).all()
    free = np.array([c in small.params.stderr for c in COEF_NAMES])
    assert (x[:, ~free] == small.params.vector[~free]).all()  # fixed (prior, held, on a bound): as fitted
    assert (x[:, free].std(axis=0) > 0).all()
    assert small.records is not None
    again = P.likelihood_draws(small.params, small.records, 4)  # seeded: the same chain, cut shorter
    assert again is not None and np.array_equal(again, x[:4])


def test_draws_lie_where_the_likelihood_is(small: QualityModel, small_draws) -> None:
    """Near a quadratic maximum a draw's log-likelihood lies below the fit's by half a chi-square with k
    degrees of freedom (median ~k/2); and the well-determined coefficients spread like their errors."""
    assert small.records is not None
    k = len(small.params.stderr)
    ll0 = -negative_log_likelihood(small.params.vector, small.records)[0]
    drops = np.array([ll0 + negative_log_likelihood(v, small.records)[0] for v in small_draws])
    assert (drops > -1e-6).all()  # the fit is the maximum
    assert 0.5 * k / 2 < np.median(drops) < 1.6 * k / 2
    names = [c for c in COEF_NAMES if c in small.params.stderr]
    se = np.array([small.params.stderr[c] for c in names])
    sd = small_draws[:, [COEF_NAMES.index(c) for c in names]].std(axis=0)
    well = se < 0.3  # far from the bounds: the likelihood is close to its quadratic approximation there
    assert well.sum() >= 5 and np.median(sd[well] / se[well]) == pytest.approx(1.0, abs=0.35)


def test_the_sampler_follows_the_likelihood_not_the_covariance_it_starts_from(small: QualityModel, monkeypatch) -> None:
    """Given a covariance four times too wide, the draws still have the likelihood's spread: here a
    normal likelihood of known centre and spread substituted for the records'."""
    names = [c for c in COEF_NAMES if c in small.params.stderr]
    idx = np.array([COEF_NAMES.index(c) for c in names])
    centre = small.params.vector.copy()
    sd = np.full(len(COEF_NAMES), 0.05)

    def normal(x: np.ndarray, rec: object) -> tuple[float, np.ndarray]:
        r = (x - centre) / sd
        return 0.5 * float((r[idx] ** 2).sum()), np.where(np.isin(np.arange(len(x)), idx), r / sd, 0.0)

    monkeypatch.setattr(P, "negative_log_likelihood", normal)
    wide = replace(small.params, covariance=tuple(tuple(v) for v in (np.eye(len(idx)) * (4 * 0.05) ** 2).tolist()))
    assert small.records is not None
    x = P.likelihood_draws(wide, small.records, 96)
    assert x is not None
    spread = x[:, idx].std(axis=0)
    assert np.median(spread) == pytest.approx(0.05, rel=0.2)
    assert np.abs(x[:, idx].mean(axis=0) - centre[idx]).max() < 4 * 0.05 / np.sqrt(96 / 4)


def test_draws_are_cached_and_a_moved_fit_is_not_served_stale_draws(small: QualityModel, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TTS_SIM_CACHE", str(tmp_path))
    assert small.records is not None
    first = P.cached_likelihood_draws("sha256:abc", "math", small.params, small.records, 8)
    assert first is not None and (tmp_path / "draws" / P.draws_key("sha256:abc", "math")).exists()

    def no_sampling(*_: object) -> None:
        raise AssertionError("sampled again")

    monkeypatch.setattr(P, "likelihood_draws", no_sampling)
    assert np.array_equal(P.cached_likelihood_draws("sha256:abc", "math", small.params, small.records, 8), first)
    assert np.array_equal(P.cached_likelihood_draws("sha256:abc", "math", small.params, small.records, 4), first[:4])
    name = next(iter(small.params.stderr))
    moved = replace(small.params, coef={**small.params.coef, name: small.params.coef[name] + small.params.stderr[name]})
    with pytest.raises(AssertionError, match="sampled again"):
        P.cached_likelihood_draws("sha256:abc", "math", moved, small.records, 8)
    with pytest.raises(AssertionError, match="sampled again"):  # more draws than cached
        P.cached_likelihood_draws("sha256:abc", "math", small.params, small.records, 16)
    other = replace(small.records, output=np.where(small.records.output == 0, 1, 0))  # other records
    with pytest.raises(AssertionError, match="sampled again"):  # the same fit, another likelihood
        P.cached_likelihood_draws("sha256:abc", "math", small.params, other, 8)
    (tmp_path / "draws" / P.draws_key("sha256:abc", "math")).write_text("{not json")
    with pytest.raises(AssertionError, match="sampled again"):  # an unreadable cache: sampled again
        P.cached_likelihood_draws("sha256:abc", "math", small.params, small.records, 8)


@pytest.mark.parametrize("name", profile_names())
def test_every_packaged_profile_ships_draws_of_its_current_fit(name: str, tmp_path, monkeypatch) -> None:
    """A change to the fusion model or a packaged profile needs ``python -m tts_sim.sim.quality.ship_draws``:
    the shipped draws are served only while they are draws of the current likelihood."""
    monkeypatch.setenv("TTS_SIM_CACHE", str(tmp_path))  # nothing cached: only the package's own files
    monkeypatch.setattr(P, "likelihood_draws", lambda *_: pytest.fail(
        f"{name}: shipped draws missing or stale; run python -m tts_sim.sim.quality.ship_draws"))
    profile = load_profile(name)
    for task in sorted(profile.tasks):
        qm = QualityModel.from_profile(profile, task)
        x = qm.coefficient_draws(P.DRAWS)
        assert x is not None and x.shape == (P.DRAWS, len(COEF_NAMES))
        assert qm.records is not None
        ll0 = -negative_log_likelihood(qm.params.vector, qm.records)[0]
        drops = [ll0 + negative_log_likelihood(v, qm.records)[0] for v in x[:8]]
        assert np.median(drops) < 2 * len(qm.params.stderr), (name, task)  # where the likelihood is


def test_a_model_samples_its_draws_once_even_without_a_checksum(small: QualityModel, monkeypatch) -> None:
    """A profile built in code has no checksum (no disk cache): the model keeps its draws itself, so a
    fidelity report's dozen intervals sample once, not once per graph."""
    calls = []

    def counted(params: object, rec: object, n: int) -> np.ndarray:
        calls.append(n)
        return np.repeat(small.params.vector[None], n, axis=0)

    monkeypatch.setattr(P, "likelihood_draws", counted)
    qm = QualityModel(small.task, small.answers, small.params, records=small.records)
    assert qm.checksum == ""
    first = qm.coefficient_draws(8)
    assert first is not None and qm.coefficient_draws(8) is first and calls == [8]
