"""Profile the real SmolLM2-135M on a handful of ``add`` questions (about a minute; run with ``-m slow``)."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("onnxruntime")

from tts_sim.backends.onnxruntime import OnnxRuntimeBackend, cpu_name, prepare_model  # noqa: E402
from tts_sim.core.models import DEFAULT_CATALOG  # noqa: E402
from tts_sim.core.profile import Profile  # noqa: E402
from tts_sim.real.profiling import ProfileConfig, measured_task_spec, run_profile  # noqa: E402
from tts_sim.sim.cluster import TablePredictor, fit_roofline, get_device  # noqa: E402
from tts_sim.sim.quality import QualityModel  # noqa: E402

pytestmark = pytest.mark.slow
MODEL = "smollm2-135m"


def test_profile_smollm2_on_add(tmp_path):
    prepare_model(MODEL, "fp32", progress=lambda _: None)
    backend = OnnxRuntimeBackend(threads=2, max_batch=8, progress=lambda _: None)
    cfg = ProfileConfig(task="add", models={MODEL: MODEL}, questions=4, samples=4, fusion_records=6,
                        max_new_tokens=24, prompt_lengths=(16, 64, 128), batch_sizes=(1, 2), contexts=(32, 128),
                        repeats=2, steps=4, seed=0)
    run = run_profile(backend, cfg)
    path = tmp_path / "smollm2-add.json.gz"
    run.profile.save(path)
    p = Profile.load(path)

    meta = p.metadata
    assert meta["provider"] == "CPUExecutionProvider" and meta["device"] == cpu_name()
    assert meta["quantization"] == "fp32" and meta["backend"] == "onnxruntime" and meta["backend_version"]
    tp = p.task("add")
    assert tp.n_questions == 4 and all(sum(row) == 4 for row in tp.answer_banks[MODEL])
    assert len(tp.fusion_records) == 6
    stats = meta["token_stats"]["add"]
    assert 20 < stats["prompt_tokens"] < 120 and 1 <= stats["answer_tokens"] <= 24

    [table] = p.latency
    assert table.device == "cpu" and len(table.prefill) == 6 and len(table.decode) == 4
    pre = {(n, b): s for n, b, s in table.prefill}
    assert pre[(128, 2)] > pre[(16, 1)]  # more tokens take longer
    pred = TablePredictor(p.latency, fit_roofline(p.latency))
    spec, cpu = DEFAULT_CATALOG[MODEL], get_device("cpu")
    assert pred.source(spec, cpu) == "profile-table"
    assert pred.decode_step_s(spec, cpu, 64, 1) == pytest.approx(
        math.exp((math.log({(c, b): s for c, b, s in table.decode}[(32, 1)])
                  + math.log({(c, b): s for c, b, s in table.decode}[(128, 1)])) / 2))  # log-log midpoint

    qm = QualityModel.from_profile(p, measured_task_spec(p, "add"))
    assert qm.params.n_records == 6 and math.isfinite(qm.log_likelihood)
    assert 0 <= qm.answers.accuracy[0] <= 1
