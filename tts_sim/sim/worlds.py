"""An ensemble of scenario worlds around the default, for checking that a searcher's lead is robust.

``ensemble(n, seed)`` returns ``n`` ``World``s (``tts_sim.sim.scenario``), deterministic in ``seed``:

* world ``e0`` is one where the paper's insights fail: on math, fused nodes are *misled* by their
  inputs (negative recognition ``rho0`` for every role, agreement ``beta0`` halved, own judgement no
  sharper than alone, ``tau`` 1) and read long contexts worse (``gamma0`` +1.5), so fusing small models
  hurts math instead of helping;
* the others perturb every task kind around the default: fusion strengths (``beta0``, ``rho0`` of every
  role times a log-normal factor, sd ``FUSION_SD``), difficulty spread (``difficulty_sd`` times a
  log-normal factor, sd ``DIFFICULTY_SD``) and wrong-answer agreement (``spread``, the per-model taste
  on the shared popularity, times a log-normal factor, sd ``AGREEMENT_SD``: a smaller spread means two
  wrong models agree more often).

``world_profile(world, seed)`` generates a world's profile (``ENSEMBLE_SAMPLES`` answers per question,
``ENSEMBLE_RECORDS`` fusion records per task: smaller than the shipped profile, to generate in seconds)
and caches it under ``cache_root()/worlds`` (``$TTS_SIM_CACHE``, default ``~/.cache/tts-sim``), keyed by
the world's parameters, the seed and the generator version.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from tts_sim.cache import cache_root
from tts_sim.errors import ConfigError
from tts_sim.sim.quality.fusion import FusionParams
from tts_sim.sim.scenario import GENERATOR_VERSION, STRUCTURE, TRUE_FUSION, World, generate_profile

FUSION_SD, DIFFICULTY_SD, AGREEMENT_SD = 0.4, 0.25, 0.5
ENSEMBLE_SAMPLES, ENSEMBLE_RECORDS = 64, 3000
ROLES = ("refine", "assistant", "fuser")


def fusion_hurts_math() -> World:
    """The default world with math fusion that misleads (see the module docstring)."""
    coef = dict(TRUE_FUSION["math"].coef)
    for r in ROLES:
        coef[f"{r}.rho0"] = -1.5
        coef[f"{r}.rho1"] = 0.0
        coef[f"{r}.beta0"] = coef[f"{r}.beta0"] / 2
        coef[f"{r}.tau"] = 1.0
    coef["gamma0"] = coef["gamma0"] + 1.5
    return World("e0:fusion-hurts-math", dict(STRUCTURE), {**TRUE_FUSION, "math": FusionParams(coef)})


def perturbed(name: str, rng: np.random.Generator) -> World:
    """The default world with fusion strengths, difficulty spread and wrong-answer agreement of every
    task kind scaled by log-normal factors drawn from ``rng``."""
    structure, fusion = {}, {}
    for kind, st in STRUCTURE.items():
        d = math.exp(rng.normal(0.0, DIFFICULTY_SD))
        a = math.exp(rng.normal(0.0, AGREEMENT_SD))
        structure[kind] = replace(st, difficulty_sd=round(st.difficulty_sd * d, 3),
                                  wrong=replace(st.wrong, spread=round(st.wrong.spread * a, 3)))
        coef = dict(TRUE_FUSION[kind].coef)
        for r in ROLES:
            for p in ("beta0", "rho0"):
                coef[f"{r}.{p}"] = round(coef[f"{r}.{p}"] * math.exp(rng.normal(0.0, FUSION_SD)), 3)
        fusion[kind] = FusionParams(coef)
    return World(name, structure, fusion)


def ensemble(n: int, seed: int = 0) -> list[World]:
    """``n`` worlds (deterministic in ``seed``): the fusion-hurts-math world, then perturbed ones."""
    if n < 1:
        raise ConfigError(f"scenario ensemble: needs at least one world, got {n}")
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]
    return [fusion_hurts_math(), *(perturbed(f"e{i}", rngs[i]) for i in range(1, n))]


def world_key(world: World, seed: int) -> str:
    text = json.dumps({"world": world.describe(), "name": world.name, "seed": seed, "v": GENERATOR_VERSION,
                       "samples": ENSEMBLE_SAMPLES, "records": ENSEMBLE_RECORDS}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def world_profile(world: World, seed: int = 0, cache: Path | None = None) -> Path:
    """Path of the cached profile of ``world`` (generated on first use)."""
    folder = (cache or cache_root()) / "worlds"
    path = folder / f"{world.name.split(':')[0]}-{world_key(world, seed)}.json.gz"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}.gz")
        generate_profile(seed, samples=ENSEMBLE_SAMPLES, records=ENSEMBLE_RECORDS, world=world).save(tmp)
        tmp.replace(path)
    return path
