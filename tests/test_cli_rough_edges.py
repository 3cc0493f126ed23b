"""The rough edges a new user hit (issue 7), one test each: missing extras, unmet latency limits,
which constraint bound a search, resume messages, graph draw overwrites, legends, heat-map scales,
sweep JSON, defaults in --help, single error prefixes, unknown models listing the known ones."""

from __future__ import annotations

import builtins
import json
import sys
from pathlib import Path

import pytest

from tests.test_cli_graph import run


def test_a_missing_optional_extra_names_the_extra(monkeypatch, capsys, tmp_path):
    real_import = builtins.__import__

    def no_onnxruntime(name, *args, **kwargs):
        if name.split(".")[0] == "onnxruntime":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    for name in list(sys.modules):  # as on a machine without the extra: nothing of it imported yet
        if name.split(".")[0] == "onnxruntime" or name.startswith("tts_sim.backends.onnxruntime"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    code, _, err = run(capsys, "models", "prepare", "smollm2-135m", "--cache-dir", str(tmp_path))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "pip install 'tts-sim[" in err and "onnxruntime" in err


def test_an_unmet_latency_limit_is_said_out_loud(capsys, tmp_path):
    code, out, err = run(capsys, "search", "--task", "math", "--budget", "42", "--cluster", "1xH100", "--evals", "6",
                         "--objective", "p95<=0.5", "--out", str(tmp_path / "s"), "--quiet", "--json")
    data = json.loads(out)
    assert code == 0 and data["constraints"]["latency_met"] is False
    assert data["constraints"]["latency_value_s"] > 0.5 and data["constraints"]["any_trial_met"] is False
    assert "latency limit p95 <= 0.5 s was missed" in err


def test_the_summary_names_the_binding_constraint(capsys, tmp_path):
    code, out, _ = run(capsys, "search", "--task", "math", "--budget", "980", "--evals", "6", "--max-nodes", "2",
                       "--out", str(tmp_path / "s"), "--quiet")
    assert code == 0 and "--max-nodes bound the search" in out
    code, out, _ = run(capsys, "search", "--task", "math", "--budget", "6", "--evals", "6",
                       "--out", str(tmp_path / "t"), "--quiet", "--json")
    assert code == 0 and "budget" in json.loads(out)["constraints"]["binding"]


def test_a_resumed_search_says_so(capsys, tmp_path):
    argv = ["search", "--task", "math", "--budget", "18", "--evals", "4", "--out", str(tmp_path / "s"), "--json"]
    assert run(capsys, *argv)[0] == 0
    code, _, err = run(capsys, *argv)
    assert code == 0 and "resuming from" in err


def test_graph_draw_never_overwrites_silently(capsys, tmp_path):
    g = tmp_path / "best_graph.json"
    assert run(capsys, "graph", "preset", "chain", "-o", str(g))[0] == 0
    png = g.with_suffix(".png")
    png.write_bytes(b"the search's picture")
    code, _, err = run(capsys, "graph", "draw", str(g))
    assert code == 2 and "exists" in err and png.read_bytes() == b"the search's picture"
    assert run(capsys, "graph", "draw", str(g), "--force")[0] == 0 and png.read_bytes()[:4] == b"\x89PNG"


def test_graph_pictures_have_a_legend(tmp_path):
    import matplotlib.pyplot as plt

    from tts_sim.core import draw
    from tts_sim.core.presets import grid

    seen: list[list[str]] = []
    real_savefig = plt.Figure.savefig

    def spy(fig, *args, **kwargs):
        seen.append([t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()])
        return real_savefig(fig, *args, **kwargs)

    pytest.MonkeyPatch().context()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plt.Figure, "savefig", spy)
        draw.draw_graph(grid(2, 1, "llama-3.2-1b", "gemma-3-1b"), tmp_path / "g.png", title="custom title")
    labels = seen[0]
    assert "llama model" in labels and "gemma model" in labels and "square box: fuser" in labels


def test_sweep_writes_json_and_uses_zero_based_scales(capsys, tmp_path, monkeypatch):
    from tts_sim.sim import sweep

    limits: list[tuple[float, float]] = []
    real_imshow = __import__("matplotlib.axes", fromlist=["Axes"]).Axes.imshow

    def spy(ax, values, *args, **kwargs):
        limits.append((kwargs.get("vmin"), kwargs.get("vmax")))
        return real_imshow(ax, values, *args, **kwargs)

    monkeypatch.setattr(__import__("matplotlib.axes", fromlist=["Axes"]).Axes, "imshow", spy)
    code, out, _ = run(capsys, "sweep", "width-depth", "--task", "math", "--max-width", "2", "--max-depth", "2",
                       "-o", str(tmp_path), "--json")
    data = json.loads(out)
    assert code == 0 and Path(data["json"]).is_file()
    assert json.loads(Path(data["json"]).read_text())["accuracy"] == data["accuracy"]
    assert limits[0] == (0.0, 1.0) and limits[1][0] == 0.0
    assert sweep.SweepResult  # the module the CLI used


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        run(capsys, "search", "--help")
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: 30)" in out and "(default: 0)" in out and "(default: agent-reinforce)" in out


def test_errors_carry_one_prefix(capsys):
    code, _, err = run(capsys, "search", "--evals", "zero")
    assert code == 2 and err.startswith("tts-sim search: error: ") and err.count("error:") == 1


def test_an_unknown_model_lists_the_known_ones(capsys, tmp_path):
    g = tmp_path / "g.json"
    g.write_text(json.dumps({"nodes": [{"id": "out", "role": "assistant", "model": "llama-9b"}], "edges": [],
                             "output": "out"}))
    code, _, err = run(capsys, "graph", "check", str(g))
    assert code == 2 and "unknown model 'llama-9b'" in err and "llama-3.2-1b" in err and err.count("\n") == 1


def test_a_resumed_progress_bar_starts_at_the_recorded_evaluations(capsys, tmp_path, monkeypatch):
    import tqdm

    starts: list[int] = []
    real_init = tqdm.tqdm.__init__

    def spy(self, *args, **kwargs):
        starts.append(kwargs.get("initial", 0))
        kwargs["disable"] = False
        return real_init(self, *args, **kwargs)

    monkeypatch.setattr(tqdm.tqdm, "__init__", spy)
    argv = ["search", "--task", "math", "--budget", "18", "--evals", "5", "--out", str(tmp_path / "s")]
    assert run(capsys, *argv)[0] == 0
    journal = tmp_path / "s" / "checkpoint.jsonl"
    lines = journal.read_text().splitlines()
    trial_lines = [i for i, line in enumerate(lines) if '"trial"' in line]
    journal.write_text("\n".join(lines[: trial_lines[2] + 1]) + "\n")  # as if killed after 3 evaluations
    assert run(capsys, *argv)[0] == 0
    assert starts == [0, 3]


@pytest.mark.parametrize("searcher", ["gptswarm", "textgrad"])
def test_a_prior_a_searcher_cannot_use_is_refused_not_ignored(capsys, tmp_path, searcher):
    code, _, err = run(capsys, "search", "--searcher", searcher, "--prior", "published", "--evals", "2",
                       "--out", str(tmp_path / "s"), "--quiet")
    assert code == 2 and err.count("\n") == 1 and f"searcher {searcher!r} does not use a prior" in err, err
    assert not (tmp_path / "s" / "result.json").exists()
    bench = ["bench", "--tasks", "math", "--budgets", "18", "--seeds", "1", "--evals", "2", "--regret-budgets", "none",
             "--reference-evals", "0", "--executor", "inline", "--out", str(tmp_path / "b"), "--quiet"]
    code, _, err = run(capsys, *bench, "--searchers", "random", searcher, "--priors", "published")
    assert code == 2 and err.count("\n") == 1 and "leaves it no setting to run under" in err, err
    assert not (tmp_path / "b" / "results.jsonl").exists()
    code, _, err = run(capsys, *bench, "--searchers", searcher, "--priors", "none", "published", "--json")
    assert code == 0, err  # with none among the settings it runs once, under none


def test_run_search_refuses_a_prior_for_a_searcher_that_ignores_it():
    from tts_sim.errors import ConfigError
    from tts_sim.search import SearchSpace, run_search
    from tts_sim.sim.evaluator import SimulatedEvaluator

    space = SearchSpace("math", 18.0)
    with pytest.raises(ConfigError, match="searcher 'gptswarm' does not use a prior"):
        run_search("gptswarm", space, SimulatedEvaluator("math"), 2, prior="published")


def test_the_cli_offers_exactly_the_engines_quantisations():
    pytest.importorskip("onnxruntime")
    from tts_sim.backends.onnxruntime.manifest import ENGINE_QUANTIZATIONS
    from tts_sim.cli.models import QUANTIZATIONS

    assert set(QUANTIZATIONS) == {q for qs in ENGINE_QUANTIZATIONS.values() for q in qs}
