import json

import pytest

from tts_sim.cli import main
from tts_sim.core.graph import Graph
from tts_sim.search import SEARCHERS
from tts_sim.search.result import SearchResult


def test_search_writes_graph_png_and_result_and_resumes(tmp_path, capsys):
    out = tmp_path / "s"
    argv = ["search", "--task", "mmlu", "--budget", "18", "--searcher", "random", "--evals", "6", "--seed", "1",
            "--out", str(out), "--json", "--quiet"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    best = Graph.load(out / "best_graph.json")
    assert (out / "best_graph.png").read_bytes()[:4] == b"\x89PNG"
    result = SearchResult.load(out / "result.json")
    assert result.best == best and data["heldout"]["n_questions"] == result.heldout.n_questions > 0
    assert data["cost"]["evaluations"] <= 6 and result.heldout.budget_units <= 18 + 1e-9
    # a second run over the same folder resumes from the checkpoint: same answer, no new evaluations
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["best"] == data["best"] and again["heldout"]["accuracy"] == data["heldout"]["accuracy"]


def test_search_with_latency_objective_and_dollar_budget(tmp_path, capsys):
    argv = ["search", "--task", "math", "--budget", "$0.002", "--price-per-hour", "3", "--cluster", "1xH100",
            "--objective", "p95<=20", "--searcher", "agent-reinforce", "--evals", "5", "--queries", "50",
            "--out", str(tmp_path / "s"), "--json", "--quiet"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["heldout"]["latency"]["p95_s"] > 0


@pytest.mark.parametrize("searcher", SEARCHERS.names())
def test_every_registered_searcher_runs_from_the_cli(tmp_path, capsys, searcher):
    argv = ["search", "--task", "gsm8k", "--budget", "18", "--searcher", searcher, "--evals", "4",
            "--out", str(tmp_path / searcher), "--json", "--quiet"]
    assert main(argv) == 0, capsys.readouterr().err
    data = json.loads(capsys.readouterr().out)
    assert data["searcher"] == searcher and 1 <= data["cost"]["evaluations"] <= 4


def test_search_bad_input_is_one_line(tmp_path, capsys):
    for argv, needle in [
        (["search", "--searcher", "simulated-annealing"], "unknown searcher"),
        (["search", "--budget", "0.5"], "below the cheapest valid graph"),
        (["search", "--budget", "1gpu-s"], "needs a cluster"),
        (["search", "--budget", "lots"], "cannot read budget"),
        (["search", "--objective", "p95<=5"], "give --cluster"),
        (["search", "--searcher", "random", "--agent", "chat"], "--agent applies to"),
        (["search", "--searcher", "textgrad", "--agent", "insight"], "textgrad needs an agent with critique and edit"),
        (["search", "--agent-url", "http://127.0.0.1:9"], "need --agent chat"),
    ]:
        code = main([*argv, "--out", str(tmp_path / "x"), "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and needle in err and err.count("\n") == 1, (argv, err)


def test_search_prior_switch_cost_and_break_even_in_summary_and_json(tmp_path, capsys):
    base = ["search", "--task", "math", "--budget", "18", "--searcher", "random", "--evals", "4", "--seed", "0",
            "--quiet"]
    assert main([*base, "--prior", "published", "--out", str(tmp_path / "a")]) == 0
    text = capsys.readouterr().out
    assert "random / 0 / published" in text and "break-even" in text and "search cost (FLOPs)" in text
    assert main([*base, "--json", "--agent-cost-model", "llama-3.2-1b", "--out", str(tmp_path / "b")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["config"]["prior"] == "none"  # the default
    assert data["breakeven"]["verdict"] in ("queries", "never", "none")
    assert data["breakeven"]["cost"]["agent_model"] == "llama-3.2-1b"
    for bad, needle in ((["--prior", "oracle"], "unknown prior 'oracle' (choose from: none, published)"),
                        (["--agent-cost-model", "gpt-9"], "agent cost model: unknown model 'gpt-9'")):
        assert main([*base, *bad, "--out", str(tmp_path / "c")]) == 2
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1
