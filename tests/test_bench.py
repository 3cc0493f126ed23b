"""``tts-sim bench``: a tiny bench runs, streams JSONL, resumes, survives a torn last line, writes the
report and PNGs, runs on any executor, and rejects bad options in one line."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tts_sim.bench import BenchConfig, make_executor, read_rows, run_bench
from tts_sim.bench.executors import InlineExecutor, PoolExecutor
from tts_sim.bench.jobs import evaluator_for, execute, splits
from tts_sim.bench.runner import RESULTS, settings_for
from tts_sim.cli import main
from tts_sim.core.graph import Graph
from tts_sim.errors import BudgetError, ConfigError, ProfileError

PNG = b"\x89PNG\r\n\x1a\n"


def tiny(tmp_path: Path, **kw) -> BenchConfig:
    """2 searchers x 1 task x 1 budget x 2 seeds x 4 evals (no small-space cell unless asked)."""
    base = dict(searchers=("agent-reinforce", "random"), priors=("none",), tasks=("math",), budgets=(18.0,),
                seeds=(0, 1), evals=4, reference_evals=0,
                search_questions=20, heldout_questions=20, regret_budgets=(), executor="inline",
                out=str(tmp_path / "bench"))
    base.update(kw)
    return BenchConfig(**base)


class Counter:
    """A job function that counts (and can interrupt) executions."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.keys: list[str] = []
        self.stop_after = stop_after

    def __call__(self, job, settings):
        if self.stop_after is not None and len(self.keys) >= self.stop_after:
            raise KeyboardInterrupt
        self.keys.append(job.key)
        return execute(job, settings)


def lines(cfg: BenchConfig) -> list[dict]:
    return [json.loads(x) for x in (Path(cfg.out) / RESULTS).read_text().splitlines()]


def test_tiny_bench_streams_rows_with_expected_heldout_accuracy_and_curves(tmp_path):
    cfg = tiny(tmp_path)
    run = run_bench(cfg, progress=False)
    assert run.ran == 4 and run.skipped == 0 and not run.failed
    rows = lines(cfg)
    assert sorted((r["searcher"], r["seed"]) for r in rows) == [("agent-reinforce", 0), ("agent-reinforce", 1),
                                                                ("random", 0), ("random", 1)]
    settings = settings_for(cfg)
    ev = evaluator_for("math", settings)
    search_qs, heldout_qs = splits(ev.n_questions, settings)
    assert len(heldout_qs) == 20 and not set(search_qs) & set(heldout_qs)
    for r in rows:
        assert r["heldout_n"] == 20 and r["search_n"] == 20 and len(r["curve"]) == 4
        assert 1 <= r["evaluations"] <= 4
        # the held-out figure is the noise-free expected accuracy of the returned graph on the held-out split
        best = Graph.from_dict(r["best_graph"])
        assert r["heldout_expected"] == pytest.approx(ev.expected(best, heldout_qs).accuracy)
        assert r["curve"][-1] == pytest.approx(r["heldout_expected"])
        assert r["best_units"] <= 18.0 + 1e-9
    assert len({r["key"] for r in rows}) == 4


def test_report_and_pngs_are_written(tmp_path, capsys):
    cfg = tiny(tmp_path)
    code = main(["bench", "--searchers", "agent-reinforce,random", "--tasks", "math", "--budgets", "18",
                 "--seeds", "2", "--evals", "4", "--search-questions", "20", "--heldout-questions", "20",
                 "--regret-budgets", "none", "--reference-evals", "0", "--executor", "inline", "--out", cfg.out,
                 "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "math @ 18" in out and "8 jobs (8 run, 0 already done)" in out  # default: both prior settings
    folder = Path(cfg.out)
    report = (folder / "report.md").read_text()
    assert "| math @ 18 |" in report and "held-out split** (math: 20 questions)" in report
    assert "## Paired tests: agent-reinforce[prior=none] minus each searcher" in report
    assert "## Paired tests: agent-reinforce[prior=published] minus each searcher" in report
    assert "## Search cost and break-even" in report and "llama-3.1-70b" in report
    assert "No cell's space is small enough to enumerate" in report
    for name in ("anytime.png", "final.png"):
        data = (folder / name).read_bytes()
        assert data[:8] == PNG and len(data) < 1_000_000
        assert f"]({name})" in report
    # a second invocation runs nothing and says so; --report-only rebuilds without running
    assert main(["bench", "--searchers", "agent-reinforce", "random", "--tasks", "math", "--budgets", "18",
                 "--seeds", "0-1", "--evals", "4", "--search-questions", "20", "--heldout-questions", "20",
                 "--regret-budgets", "none", "--reference-evals", "0", "--executor", "inline", "--out", cfg.out,
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ran"] == 0 and data["skipped"] == 8 and len(data["cells"]) == 4
    assert main(["bench", "--report-only", "--tasks", "math", "--budgets", "18", "--seeds", "2", "--evals", "4",
                 "--searchers", "random", "--search-questions", "20", "--heldout-questions", "20",
                 "--regret-budgets", "none", "--out", cfg.out, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    last = json.loads((folder / "runs.jsonl").read_text().splitlines()[-1])
    assert data["wall_s"] == pytest.approx(last["wall_s"]) and data["ran"] == 0
    assert sorted(c["searcher"] for c in data["cells"]) == ["random[prior=none]", "random[prior=published]"]
    # a report of other settings than the folder's is refused
    assert main(["bench", "--report-only", "--tasks", "math", "--budgets", "18", "--evals", "5", "--out", cfg.out,
                 "--search-questions", "20", "--heldout-questions", "20", "--regret-budgets", "none"]) == 2
    assert "another evals" in capsys.readouterr().err


def test_resume_runs_only_missing_jobs(tmp_path):
    first = Counter()
    run_bench(tiny(tmp_path, seeds=(0,)), progress=False, job_fn=first)
    assert sorted(first.keys) == ["search|agent-reinforce|math|18|main|0|prior=none",
                                  "search|random|math|18|main|0|prior=none"]
    before = (Path(tiny(tmp_path).out) / RESULTS).read_text()
    second = Counter()
    run = run_bench(tiny(tmp_path), progress=False, job_fn=second)
    assert sorted(second.keys) == ["search|agent-reinforce|math|18|main|1|prior=none",
                                   "search|random|math|18|main|1|prior=none"]
    assert run.skipped == 2 and run.ran == 2 and len(run.rows) == 4
    assert (Path(tiny(tmp_path).out) / RESULTS).read_text().startswith(before)  # old rows untouched
    third = Counter()
    assert run_bench(tiny(tmp_path), progress=False, job_fn=third).ran == 0 and third.keys == []


def test_interrupted_bench_keeps_finished_rows_and_resumes(tmp_path):
    cfg = tiny(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run_bench(cfg, progress=False, job_fn=Counter(stop_after=3))
    assert len(lines(cfg)) == 3
    again = Counter()
    run = run_bench(cfg, progress=False, job_fn=again)
    assert len(again.keys) == 1 and run.ran == 1 and len(lines(cfg)) == 4
    runs = [json.loads(x) for x in (Path(cfg.out) / "runs.jsonl").read_text().splitlines()]
    assert [r["interrupted"] for r in runs] == [True, False]


def test_truncated_last_line_is_tolerated_and_its_job_reruns(tmp_path):
    cfg = tiny(tmp_path)
    run_bench(cfg, progress=False)
    path = Path(cfg.out) / RESULTS
    text = path.read_text()
    last = text.rstrip("\n").rsplit("\n", 1)[1]
    lost_key = json.loads(last)["key"]
    path.write_text(text[: len(text) - len(last) // 2 - 1])  # crash in the middle of the last row
    rows, dropped = read_rows(path)
    assert dropped and len(rows) == 3
    counter = Counter()
    run = run_bench(cfg, progress=False, job_fn=counter)
    assert run.dropped_partial_line and counter.keys == [lost_key]
    assert len(lines(cfg)) == 4  # every line parses again


def test_a_corrupted_middle_line_is_an_error(tmp_path):
    cfg = tiny(tmp_path, seeds=(0,))
    run_bench(cfg, progress=False)
    path = Path(cfg.out) / RESULTS
    good = path.read_text().splitlines()
    path.write_text(good[0] + "\n{garbage\n" + good[1] + "\n")
    with pytest.raises(ConfigError, match="line 2 is not a result row"):
        run_bench(cfg, progress=False)


def test_a_bench_folder_refuses_other_settings_unless_started_afresh(tmp_path):
    run_bench(tiny(tmp_path, seeds=(0,)), progress=False)
    with pytest.raises(ConfigError, match="another evals"):
        run_bench(tiny(tmp_path, seeds=(0,), evals=5), progress=False)
    run = run_bench(tiny(tmp_path, seeds=(0,), evals=5), resume=False, progress=False)
    assert run.ran == 2 and all(len(r["curve"]) == 5 for r in lines(tiny(tmp_path)))


def test_regret_cells_have_an_optimum_row_and_nonnegative_regret(tmp_path):
    from tts_sim.bench import analyse

    cfg = tiny(tmp_path, budgets=(18.0,), regret_budgets=(18.0,), seeds=(0,))
    run = run_bench(cfg, progress=False)
    opt = [r for r in run.rows if r["kind"] == "optimum"]
    assert len(opt) == 1 and opt[0]["space"] == "small" and opt[0]["n_graphs"] > 10
    small = [r for r in run.rows if r["kind"] == "search" and r["space"] == "small"]
    assert len(small) == 2
    for r in small:
        assert opt[0]["heldout_expected"] - r["heldout_expected"] >= -5e-3
    analysis = analyse(run.rows, cfg.searchers, cfg.cells())
    cell = ("math", 18.0, "small")
    assert set(analysis.optimum) == {cell}  # the 8-slot main space is not enumerable: no regret there
    st = analysis.get(cell, "random")
    assert st.regret[0] == pytest.approx(opt[0]["heldout_expected"] - st.final[0])
    assert analysis.get(("math", 18.0, "main"), "random").regret is None


def test_executor_factories(tmp_path):
    assert isinstance(make_executor("inline", 2), InlineExecutor)
    pool = make_executor("multiprocessing.dummy:Pool", 2)  # a Pool (apply_async), like ray.util.multiprocessing
    assert isinstance(pool, PoolExecutor)
    run = run_bench(tiny(tmp_path, seeds=(0,)), executor=pool, progress=False)
    pool.shutdown()
    assert run.ran == 2
    with ThreadPoolExecutor(2) as ex:
        assert run_bench(tiny(tmp_path, seeds=(0, 1)), executor=ex, progress=False).ran == 2


def test_cli_with_a_custom_executor_factory(tmp_path, capsys):
    out = str(tmp_path / "b")
    code = main(["bench", "--searchers", "random", "gptswarm", "--tasks", "math", "--budgets", "18", "--seeds", "2",
                 "--evals", "4", "--search-questions", "20", "--heldout-questions", "20", "--regret-budgets", "none",
                 "--reference-evals", "0", "--executor", "concurrent.futures:ThreadPoolExecutor", "--workers", "2",
                 "--out", out, "--json"])
    data = json.loads(capsys.readouterr().out)
    # random runs under both prior settings, gptswarm (which uses no prior) once: (2 + 1) x 2 seeds
    assert code == 0 and data["ran"] == 6 and data["config"]["executor"] == "concurrent.futures:ThreadPoolExecutor"


def test_default_process_pool_runs_jobs_in_other_processes(tmp_path):
    import os

    run = run_bench(tiny(tmp_path, searchers=("random",), executor="process", workers=2), progress=False)
    assert run.ran == 2 and all(r["pid"] != os.getpid() for r in run.rows)


@pytest.mark.parametrize("argv,needle", [
    (["--searchers", "oracle"], "unknown searcher 'oracle'"),
    (["--tasks", "chess"], "unknown task 'chess'"),
    (["--budgets", "abc"], "budget 'abc' is not a number"),
    (["--budgets", "0.5"], "below the cheapest valid graph"),
    (["--seeds", "x"], "cannot read seeds 'x'"),
    (["--seeds", "0,0"], "seeds lists 0 twice"),
    (["--evals", "0"], "argument --evals"),
    (["--search-questions", "500"], "leaves no held-out question of math's 500"),
    (["--executor", "nowhere"], "expected process, thread, inline, ray or MODULE:FACTORY"),
    (["--executor", "no_such_module_x:Pool"], "cannot import 'no_such_module_x'"),
    (["--executor", "os:no_such_factory"], "module 'os' has no 'no_such_factory'"),
    (["--objective", "fastest"], "unknown objective"),
    (["--objective", "p95<=5"], "needs latency: give a --cluster"),
    (["--regret-max-nodes", "6"], "too large to enumerate"),
    (["--priors", "oracle"], "unknown prior 'oracle' (choose from: none, published)"),
    (["--priors", "none", "none"], "priors lists 'none' twice"),
    (["--agent-cost-model", "gpt-9"], "agent cost model: unknown model 'gpt-9'"),
    (["--worlds", "ensemble:0"], "the scenario ensemble 'ensemble:0' is empty"),
    (["--output-model", "nosuch"], "unknown model 'nosuch'"),
    (["--worlds", "ensemble:many"], "world 'ensemble:many' is not ensemble:N"),
    (["--worlds", "default", "no/such/profile.json"], "cannot read profile no/such/profile.json: no such file"),
    (["--reference-evals", "-1"], "reference_evals must be a non-negative integer"),
])
def test_bad_options_give_one_line_errors(tmp_path, capsys, argv, needle):
    code = main(["bench", "--tasks", "math", "--budgets", "18", "--seeds", "1", "--evals", "2", "--quiet",
                 "--out", str(tmp_path / "b"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err


def test_config_validation_errors_are_typed():
    with pytest.raises(ConfigError, match="no searchers"):
        BenchConfig(searchers=())
    with pytest.raises(ConfigError, match="workers must be a positive integer"):
        BenchConfig(workers=0)
    with pytest.raises(ProfileError):
        from tts_sim.bench import plan_jobs

        plan_jobs(BenchConfig(tasks=("add",), regret_budgets=()))
    with pytest.raises(BudgetError):
        from tts_sim.bench import plan_jobs

        plan_jobs(BenchConfig(budgets=(0.5,), regret_budgets=()))


def test_progress_bar_counts_jobs_on_stderr(tmp_path, capsys):
    run_bench(tiny(tmp_path, seeds=(0,)), progress=True)
    err = capsys.readouterr().err
    assert "bench" in err and "2/2" in err


def test_searcher_options_reach_the_searcher_and_are_checked(tmp_path, capsys):
    base = ["bench", "--searchers", "random", "--tasks", "math", "--budgets", "18", "--seeds", "1", "--evals", "3",
            "--search-questions", "20", "--heldout-questions", "20", "--regret-budgets", "none", "--priors", "none",
            "--reference-evals", "0", "--executor", "inline", "--quiet", "--json"]
    code = main([*base, "--searcher-options", "random.edge_p=0.9", "--out", str(tmp_path / "a")])
    assert code == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in (tmp_path / "a" / "results.jsonl").read_text().splitlines()]
    assert json.loads(capsys.readouterr().out)["config"]["searcher_options"] == ["random.edge_p=0.9"]
    from tts_sim.bench.config import BenchConfig

    with_options = BenchConfig(searchers=("random",), searcher_options=("random.edge_p=0.9",))
    assert with_options.fingerprint() != BenchConfig(searchers=("random",)).fingerprint()  # a result setting
    assert len(rows) == 1
    assert with_options.options_for() == {"random": {"edge_p": "0.9"}}
    for bad, words in (("random.colour=red", "has no option 'colour'"), ("random.edge_p=x", "expected a number"),
                       ("random.prior_temperature=0", "prior_temperature must be positive"),
                       ("tpe.n_initial=3", "which is not benched"), ("random", "not SEARCHER.KEY=VALUE")):
        code = main([*base, "--searcher-options", bad, "--out", str(tmp_path / "b")])
        err = capsys.readouterr().err
        assert code == 2 and words in err and err.count("\n") == 1, (bad, err)


def test_the_default_searchers_are_the_builtin_ones_but_bo_forest_which_full_adds():
    import argparse

    from tts_sim.bench.config import BenchConfig
    from tts_sim.cli.bench import config_from_args, register

    searchers = BenchConfig().searchers
    released = {"agent-reinforce", "random", "bo-gp", "tpe", "textgrad", "gptswarm", "hybrid"}
    # informed-random is declared in pyproject.toml; it is a default searcher once the package is reinstalled
    assert searchers[0] == "agent-reinforce" and released <= set(searchers) <= released | {"informed-random"}
    assert "bo-forest" not in searchers
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    full = config_from_args(parser.parse_args(["bench", "--full"]))
    assert set(full.searchers) == set(searchers) | {"bo-forest"} and full.worlds == ("default", "ensemble:5")
    mine = config_from_args(parser.parse_args(["bench", "--full", "--searchers", "random", "--worlds", "default"]))
    assert mine.searchers == ("random",) and mine.worlds == ("default",)  # explicit flags win over --full


def test_a_bench_adds_a_prior_setting_without_rerunning_the_other(tmp_path, capsys):
    first = Counter()
    run_bench(tiny(tmp_path, seeds=(0,)), progress=False, job_fn=first)
    assert sorted(first.keys) == ["search|agent-reinforce|math|18|main|0|prior=none",
                                  "search|random|math|18|main|0|prior=none"]
    both = tiny(tmp_path, seeds=(0,), priors=("none", "published"), searchers=("agent-reinforce", "gptswarm"))
    second = Counter()
    run_bench(both, progress=False, job_fn=second)
    assert sorted(second.keys) == ["search|agent-reinforce|math|18|main|0|prior=published",
                                   "search|gptswarm|math|18|main|0"]  # gptswarm uses no prior: one run
    # the report labels the reused row by this bench's settings
    assert main(["bench", "--report-only", "--searchers", "agent-reinforce", "gptswarm", "--tasks", "math",
                 "--budgets", "18", "--seeds", "1", "--evals", "4", "--search-questions", "20",
                 "--heldout-questions", "20", "--regret-budgets", "none", "--out", both.out, "--json"]) == 0
    cells = json.loads(capsys.readouterr().out)["cells"]
    assert sorted(c["searcher"] for c in cells) == ["agent-reinforce[prior=none]", "agent-reinforce[prior=published]",
                                                    "gptswarm"]
    report = (Path(both.out) / "report.md").read_text()
    assert "| math @ 18 | agent-reinforce[prior=published] | 1 |" in report  # AR compared across priors


def test_a_measured_profile_is_benched_with_its_own_pool_and_output_model(tmp_path):
    cfg = tiny(tmp_path, profile="measured:mul-words", tasks=("mul-words",), budgets=(1.0,),
               pool=("smollm2-135m", "gemma-3-270m"), output_model="smollm2-135m")
    run = run_bench(cfg, progress=False)
    assert run.ran == 4 and not run.failed
    for row in lines(cfg):
        graph = Graph.from_dict(row["best_graph"])
        assert graph.node(graph.output).model == "smollm2-135m"
        assert {n.model for n in graph.nodes} <= {"smollm2-135m", "gemma-3-270m"}
    # the output model is a result setting: a folder of another output model is not resumed into
    with pytest.raises(ConfigError, match="output_model"):
        run_bench(tiny(tmp_path, profile="measured:mul-words", tasks=("mul-words",), budgets=(1.0,),
                       pool=("smollm2-135m", "gemma-3-270m"), output_model="gemma-3-270m"), progress=False)


def test_the_default_output_model_leaves_the_settings_and_their_fingerprint_as_before(tmp_path):
    default = tiny(tmp_path)
    assert "output_model" not in default.settings()  # benches from before the option resume as they were
    other = tiny(tmp_path, output_model="llama-3.1-8b")
    assert other.settings()["output_model"] == "llama-3.1-8b" and other.fingerprint() != default.fingerprint()
    run_bench(tiny(tmp_path, seeds=(0,), searchers=("random",)), progress=False)
    with pytest.raises(ConfigError, match="another output_model \\(None there, 'llama-3.1-8b' now\\)"):
        run_bench(tiny(tmp_path, seeds=(0,), searchers=("random",), output_model="llama-3.1-8b"), progress=False)
