import gzip
import json

import pytest

from tts_sim.core.models import DEFAULT_CATALOG, PAPER_POOL, load_models
from tts_sim.core.profile import FusionRecord, LatencyTable, Profile, TaskProfile
from tts_sim.errors import ConfigError, ProfileError


def test_catalog_has_the_paper_pool_and_the_real_small_models():
    for name in (*PAPER_POOL, "smollm2-135m", "gemma-3-270m"):
        assert name in DEFAULT_CATALOG
    g1 = DEFAULT_CATALOG["gemma-3-1b"]
    assert (g1.layers, g1.hidden, g1.heads, g1.kv_heads, g1.head_dim) == (26, 1152, 4, 1, 256)
    l8 = DEFAULT_CATALOG["llama-3.1-8b"]
    assert l8.kv_bytes_per_token == 2 * 32 * 8 * 128 * 2 and l8.m_flops == 8e9


def test_user_models_from_toml_and_bad_files(tmp_path):
    f = tmp_path / "m.toml"
    f.write_text('[[model]]\nname="mine-2b"\nfamily="llama"\nparams=2e9\nlayers=20\nhidden=2048\n'
                 'heads=16\nkv_heads=4\nhead_dim=128\nvocab=32000\n')
    cat = load_models(f)
    assert cat["mine-2b"].params == 2e9 and "llama-3.2-1b" in cat
    f.write_text('[[model]]\nname="x"\nfamily="llama"\nparams=2e9\nlayers=0\nhidden=1\nheads=1\n'
                 'kv_heads=1\nhead_dim=1\nvocab=1\n')
    with pytest.raises(ConfigError, match="layers must be positive"):
        load_models(f)
    f.write_text('[[model]]\nname="x"\nwings=2\n')
    with pytest.raises(ConfigError, match="unknown field"):
        load_models(f)
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        DEFAULT_CATALOG["nope"]


def _profile() -> Profile:
    return Profile(
        {"label": "t"},
        {"math": TaskProfile(2, {"m": [[3, 1], [0, 2, 2]]}, [FusionRecord("m", "fuser", 1, (0, 1), 1, 500)])},
        [LatencyTable("m", "cpu", "onnxruntime", prefill=[(16, 1, 0.01)], decode=[(16, 1, 0.002)])],
    )


def test_profile_round_trip(tmp_path):
    for name in ("p.json", "p.json.gz"):
        _profile().save(tmp_path / name)
        again = Profile.load(tmp_path / name)
        assert again.to_dict() == _profile().to_dict()
        assert again.task("math").fusion_records[0].inputs == (0, 1)


def test_corrupted_or_mismatched_profiles_are_refused(tmp_path):
    p = tmp_path / "p.json"
    _profile().save(p)
    data = json.loads(p.read_text())
    data["tasks"]["math"]["answer_banks"]["m"][0][0] = 99  # edited by hand
    p.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match="checksum mismatch"):
        Profile.load(p)
    p.write_bytes(gzip.compress(b"{not json"))
    with pytest.raises(ProfileError, match="corrupted"):
        Profile.load(p)
    p.write_text(json.dumps({"schema": "tts-sim/graph"}))
    with pytest.raises(ProfileError, match="not a tts-sim profile"):
        Profile.load(p)
    with pytest.raises(ProfileError, match="no data for task 'mmlu'"):
        _profile().task("mmlu")
