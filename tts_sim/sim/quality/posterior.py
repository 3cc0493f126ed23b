"""Fusion coefficients drawn from the records' likelihood: the fit uncertainty of the prediction intervals.

The maximum-likelihood fit's asymptotic normal (mean the fit, covariance the inverse observed
information) describes the likelihood only where it is nearly quadratic. Where coefficients trade off
(two models of nearly the same skill: a skill slope and its intercept; the pick term and the pull) it
is not: draws from that normal, clipped to the bounds, fell a median of 52 log-likelihood units below
the fit on the word-addition profile, where a quadratic likelihood puts them ~k/2 = 10 below
(``benchmarks/interval_draws.py``), and they made its intervals twice as wide as the records allow.

So the draws come from the likelihood itself, times a flat prior on the fit's bounds (``BOUNDS``):
the No-U-Turn sampler (mici's dynamic multinomial HMC, step size adapted by dual averaging) on the
coefficients the fit left free and inside their bounds (those in ``params.stderr``); the others keep
their fitted or prior values, as in the covariance. Coordinates: each coefficient mapped to the real
line by the logit of its position between its bounds (the Jacobian enters the density), then whitened
by the inverse information there (its uninformed directions floored), starting at the fit. A single
chain, seeded, so the draws are deterministic; ``THIN`` iterations apart.

Sampling takes seconds to a minute (it evaluates the likelihood and its gradient thousands of times),
so draws are cached like the fit: on disk under ``$TTS_SIM_CACHE/draws``, and shipped in the package
(``tts_sim/data/draws``) for the packaged profiles. Cached draws are used only while they are draws of
the current likelihood (``matching_draws``); ``python -m
tts_sim.sim.quality.ship_draws`` regenerates the shipped ones.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import json
import logging
import os

import mici
import numpy as np
from scipy import special

from tts_sim.cache import cache_root
from tts_sim.errors import TtsSimError
from tts_sim.jsonio import loads
from tts_sim.sim.quality.fusion import BOUNDS, COEF_NAMES, FusionParams, RecordArrays, negative_log_likelihood

DRAWS = 32  # draws kept (the prediction intervals' default)
WARM_UP = 150  # adaptive iterations (step size), discarded
THIN = 8  # iterations between kept draws
MAX_TREE_DEPTH = 5  # at most 2**5 - 1 leapfrog steps per iteration
SEED = 0
STALE_SE = 0.5  # cached draws belong to a fit no farther than this many standard errors from the current one
CHECKED = 4  # cached draws whose log-likelihood is recomputed before they are used
FLOOR = 1e-6  # relative floor of the whitening covariance's eigenvalues (uninformed directions still move)
SHIPPED_DIR = "data/draws"

log = logging.getLogger(__name__)


def likelihood_draws(params: FusionParams, rec: RecordArrays, n: int = DRAWS, seed: int = SEED) -> np.ndarray | None:
    """(n, len(COEF_NAMES)) coefficient vectors drawn from the records' likelihood (see the module
    docstring); None when the fit has no free coefficient (nothing fitted, or all on their bounds)."""
    names = [c for c in COEF_NAMES if c in params.stderr]
    cov = np.asarray(params.covariance, dtype=float)
    if not names or cov.shape != (len(names), len(names)) or not np.isfinite(cov).all():
        return None
    idx = np.array([COEF_NAMES.index(c) for c in names])
    lo, hi = np.array(BOUNDS, dtype=float)[idx].T
    fit = params.vector.copy()
    share = np.clip((fit[idx] - lo) / (hi - lo), 1e-9, 1 - 1e-9)
    centre = special.logit(share)
    slope = (hi - lo) * share * (1 - share)  # dx/dz at the fit
    cov_z = cov / np.outer(slope, slope)
    vals, vecs = np.linalg.eigh((cov_z + cov_z.T) / 2)
    vals = np.clip(vals, FLOOR * max(float(vals.max()), 1e-12), None)
    root = vecs * np.sqrt(vals)

    def coefficients(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = centre + root @ u
        s = special.expit(z)
        x = fit.copy()
        x[idx] = np.clip(lo + (hi - lo) * s, lo, hi)
        return x, z

    def energy(u: np.ndarray) -> tuple[np.ndarray, float]:
        x, z = coefficients(u)
        f, g = negative_log_likelihood(x, rec)
        if not np.isfinite(f) or not np.isfinite(g).all():
            return np.zeros_like(u), float("inf")  # outside what the likelihood can weigh: rejected
        s = special.expit(z)
        log_jacobian = np.log(hi - lo) - np.logaddexp(0, z) - np.logaddexp(0, -z)
        grad_z = g[idx] * (hi - lo) * s * (1 - s) - (1 - 2 * s)
        return root.T @ grad_z, float(f - log_jacobian.sum())

    system = mici.systems.EuclideanMetricSystem(neg_log_dens=lambda u: energy(u)[1], grad_neg_log_dens=energy)
    sampler = mici.samplers.DynamicMultinomialHMC(system, mici.integrators.LeapfrogIntegrator(system),
                                                  np.random.default_rng(seed), max_tree_depth=MAX_TREE_DEPTH)
    out = sampler.sample_chains(WARM_UP, n * THIN, [np.zeros(len(idx))],
                                trace_funcs=[lambda state: {"x": coefficients(state.pos)[0]}],
                                adapters=[mici.adapters.DualAveragingStepSizeAdapter(0.8)], display_progress=False)
    return np.asarray(out.traces["x"][0])[THIN - 1::THIN]


def draws_key(checksum: str, task: str) -> str:
    return f"{checksum.removeprefix('sha256:')[:24]}-{task}.json"


def matching_draws(text: str, params: FusionParams, rec: RecordArrays, n: int) -> np.ndarray | None:
    """The first ``n`` draws of a cache file, if they are draws of this likelihood: the same free
    coefficients, the fixed ones at the same values, the fit within ``STALE_SE`` standard errors of the
    one they were drawn around (a fit cached by another environment of this machine differed from a
    fresh one by up to 0.021 standard errors, along the likelihood's flat directions), and the records'
    log-likelihood at ``CHECKED`` of the draws as recorded. None otherwise (missing, unreadable, too few
    draws, stale)."""
    try:
        data = loads(text, "cached likelihood draws")
        fit = np.asarray(data["fit"], dtype=float)
        draws = np.asarray(data["draws"], dtype=float)
        free = [str(c) for c in data["free"]]
        recorded = np.asarray(data["log_likelihood"], dtype=float)
    except (ValueError, KeyError, TypeError, TtsSimError):
        return None
    names = [c for c in COEF_NAMES if c in params.stderr]
    if (fit.shape != params.vector.shape or draws.ndim != 2 or draws.shape[1] != fit.size or len(draws) < n
            or recorded.shape != (len(draws),) or free != names or not np.isfinite(draws).all()):
        return None
    is_free = np.isin(np.array(COEF_NAMES), names)
    se = np.array([params.stderr.get(c, 0.0) for c in COEF_NAMES])
    moved = np.abs(fit - params.vector)
    if (moved[~is_free] > 1e-9).any() or (moved[is_free] > STALE_SE * se[is_free]).any():
        return None
    for i in np.linspace(0, len(draws) - 1, CHECKED).astype(int):
        if not np.isclose(-negative_log_likelihood(draws[i], rec)[0], recorded[i], rtol=1e-9, atol=1e-6):
            return None
    return draws[:n]


def draws_payload(params: FusionParams, rec: RecordArrays, draws: np.ndarray) -> str:
    """A cache file's text: the draws with what ``matching_draws`` checks them by."""
    version = importlib.metadata.version("mici")
    return json.dumps({"coefficients": list(COEF_NAMES), "free": [c for c in COEF_NAMES if c in params.stderr],
                       "fit": params.vector.tolist(),
                       "sampler": f"mici {version} NUTS, warm-up {WARM_UP}, thin {THIN}, seed {SEED}",
                       "draws": draws.tolist(),
                       "log_likelihood": [-negative_log_likelihood(v, rec)[0] for v in draws]})


def cached_likelihood_draws(checksum: str, task: str, params: FusionParams, rec: RecordArrays,
                            n: int = DRAWS) -> np.ndarray | None:
    """``likelihood_draws``, looked up first in the disk cache and the package's shipped draws (keyed
    by the profile's checksum and the task, used only if ``matching_draws``), sampled and cached
    otherwise. Without a checksum nothing is cached."""
    if not params.stderr:
        return None
    if checksum:
        key = draws_key(checksum, task)
        shipped = importlib.resources.files("tts_sim").joinpath(f"{SHIPPED_DIR}/{key}")
        for source in (cache_root() / "draws" / key, shipped):
            try:
                found = matching_draws(source.read_text(), params, rec, n)
            except OSError:
                continue
            if found is not None:
                return found
    log.info("drawing %d fusion-coefficient vectors from the likelihood of %d records (cached afterwards)",
             n, len(rec.role))
    draws = likelihood_draws(params, rec, n)
    if draws is None or not checksum:
        return draws
    try:
        path = cache_root() / "draws" / draws_key(checksum, task)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(draws_payload(params, rec, draws))
        tmp.replace(path)
    except OSError:
        pass
    return draws
