from tts_sim.sim.quality import QualityModel
from tts_sim.sim.quality import fusion as fusion_module
from tts_sim.sim.scenario import load_default_profile


def test_fitted_parameters_are_cached_by_profile_checksum(tmp_path, monkeypatch):
    monkeypatch.setenv("TTS_SIM_CACHE", str(tmp_path))
    profile = load_default_profile()
    assert profile.checksum.startswith("sha256:")
    calls = []
    real_fit = fusion_module.fit_fusion

    def counting_fit(*args, **kwargs):
        calls.append(1)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr("tts_sim.sim.quality.model.fit_fusion", counting_fit)
    first = QualityModel.from_profile(profile, "humaneval")
    second = QualityModel.from_profile(profile, "humaneval")
    assert len(calls) == 1 and dict(first.params.coef) == dict(second.params.coef)
    assert second.params.widest == first.params.widest == max(len(r.inputs) for r in
                                                              profile.task("humaneval").fusion_records)
    (cached,) = (tmp_path / "fits").iterdir()
    cached.write_text("{garbage")  # a corrupted cache entry is refitted, not trusted
    third = QualityModel.from_profile(profile, "humaneval")
    assert len(calls) == 2 and dict(third.params.coef) == dict(first.params.coef)
    profile.checksum = ""  # a profile built in code has no content key: never cached
    QualityModel.from_profile(profile, "humaneval")
    assert len(calls) == 3


def test_the_cache_root_has_one_setting_with_an_older_name(tmp_path, monkeypatch):
    """``$TTS_SIM_CACHE`` names the root (fits, worlds, reference optima); ``$TTS_SIM_CACHE_HOME`` is
    read only when it is unset."""
    from tts_sim.cache import cache_root

    monkeypatch.delenv("TTS_SIM_CACHE", raising=False)
    monkeypatch.setenv("TTS_SIM_CACHE_HOME", str(tmp_path / "old"))
    assert cache_root() == tmp_path / "old"
    monkeypatch.setenv("TTS_SIM_CACHE", str(tmp_path / "new"))
    assert cache_root() == tmp_path / "new"
