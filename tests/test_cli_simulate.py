import json

from .test_cli_graph import run


def test_simulate_reports_accuracy_flops_and_latency(tmp_path, capsys):
    g = tmp_path / "g.json"
    run(capsys, "graph", "preset", "parallel", "--width", "3", "--model", "llama-3.2-1b", "-o", str(g))
    code, out, _ = run(capsys, "simulate", str(g), "--task", "math", "--cluster", "2xH100", "--qps", "2",
                       "--queries", "200", "--json")
    data = json.loads(out)
    assert code == 0 and data["n_questions"] == 500 and 0 <= data["ci_low"] <= data["accuracy"] <= data["ci_high"]
    lat = data["latency"]
    assert lat["n_queries"] == 200 and 0 < lat["p50_s"] <= lat["p95_s"] <= lat["p99_s"]
    assert lat["predictor"] == "roofline" and set(lat["utilisation"]) == {"H100:0", "H100:1"}
    assert data["budget_units"] > 3  # three 1B calls plus a 3B output node with 3 inputs
    code, text, _ = run(capsys, "simulate", str(g), "--task", "math", "--questions", "50")
    assert code == 0 and "accuracy (expected)" in text and "latency" not in text  # no cluster: no latency


def test_closed_loop_load_and_more_load_is_slower(tmp_path, capsys):
    g = tmp_path / "g.json"
    run(capsys, "graph", "preset", "chain", "--depth", "2", "-o", str(g))
    p50 = {}
    for conc in ("1", "32"):
        code, out, _ = run(capsys, "simulate", str(g), "--cluster", "1xL4", "--concurrency", conc, "--queries", "100",
                           "--json")
        assert code == 0
        p50[conc] = json.loads(out)["latency"]["p50_s"]
    assert p50["32"] > p50["1"]


def test_sweep_prints_grid_and_writes_png(tmp_path, capsys):
    code, out, _ = run(capsys, "sweep", "width-depth", "--task", "math", "--model", "llama-3.2-1b",
                       "--max-width", "3", "--max-depth", "2", "--out", str(tmp_path), "--json")
    data = json.loads(out)
    assert code == 0 and len(data["accuracy"]) == 2 and len(data["accuracy"][0]) == 3
    units = data["budget_units"]
    assert units[0][0] < units[0][2] and units[0][0] < units[1][0]  # more nodes cost more
    assert (tmp_path / "sweep_math_llama-3.2-1b.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_cluster_and_profile_are_one_line_errors(tmp_path, capsys):
    g = tmp_path / "g.json"
    run(capsys, "graph", "preset", "single", "-o", str(g))
    bad_profile = tmp_path / "p.json"
    bad_profile.write_text('{"schema": "tts-sim/profile", "version": 1, "checksum": "sha256:0"}')
    for argv, needle in [
        (["--cluster", "3xTPU"], "TPU"),
        (["--cluster", "0xH100"], "0xH100"),
        (["--cluster", "1xL4", "--qps", "-2"], "expected a number > 0"),
        (["--profile", str(bad_profile)], "checksum mismatch"),
        (["--profile", str(tmp_path / "none.json")], "cannot read profile"),
        (["--cluster", "1xL4", "--qps", "1", "--concurrency", "2"], "not allowed with"),
    ]:
        code, _, err = run(capsys, "simulate", str(g), *argv)
        assert code == 2 and needle in err and err.count("\n") == 1, (argv, err)


def test_model_that_does_not_fit_the_cluster(tmp_path, capsys):
    g = tmp_path / "g.json"
    run(capsys, "graph", "preset", "single", "--model", "llama-3.1-70b", "-o", str(g))
    code, _, err = run(capsys, "simulate", str(g), "--cluster", "1xL4")
    assert code == 2 and "llama-3.1-70b" in err and err.count("\n") == 1
