import json

import pytest

from tts_sim.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_preset_check_show_draw(tmp_path, capsys):
    g = tmp_path / "g.json"
    assert run(capsys, "graph", "preset", "grid", "--width", "2", "--depth", "3", "-o", str(g))[0] == 0
    code, out, _ = run(capsys, "graph", "check", str(g), "--task", "math", "--budget", "18", "--json")
    data = json.loads(out)
    assert code == 0 and data["width"] == 2 and data["depth"] == 3 and data["executed"] == 7
    assert data["feasible"] is (data["budget_units"] <= 18)
    code, out, _ = run(capsys, "graph", "show", str(g))
    assert code == 0 and len(out.strip().splitlines()) == 7 and "(output)" in out
    png = tmp_path / "g.png"
    assert run(capsys, "graph", "draw", str(g), "-o", str(png))[0] == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_models_lists_the_catalog(capsys):
    code, out, _ = run(capsys, "models", "--json")
    names = {m["name"] for m in json.loads(out)}
    assert code == 0 and {"llama-3.2-1b", "gemma-7b", "smollm2-135m"} <= names


@pytest.mark.parametrize("argv,needle", [
    (["graph", "check", "/nonexistent.json"], "cannot read graph file"),
    (["graph", "preset", "grid", "--width", "0"], "expected an integer >= 1"),
    (["graph", "preset", "hexagon"], "invalid choice"),
    (["frobnicate"], "invalid choice"),
    (["graph", "check", "BADJSON"], "not valid JSON"),
    (["graph", "check", "CYCLE"], "cycle: a -> b -> a"),
    (["graph", "preset", "single", "--model", "gpt-9"], "unknown model 'gpt-9'"),
    (["graph", "check", "GOOD", "--task", "poetry"], "unknown task 'poetry'"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, needle):
    (tmp_path / "bad.json").write_text("{oops")
    cyc = {"nodes": [{"id": i, "role": "assistant", "model": "llama-3.2-1b"} for i in "abo"],
           "edges": [["a", "b"], ["b", "a"], ["b", "o"]], "output": "o"}
    (tmp_path / "cyc.json").write_text(json.dumps(cyc))
    run(capsys, "graph", "preset", "chain", "-o", str(tmp_path / "good.json"))
    subst = {"BADJSON": str(tmp_path / "bad.json"), "CYCLE": str(tmp_path / "cyc.json"),
             "GOOD": str(tmp_path / "good.json")}
    code, out, err = run(capsys, *[subst.get(a, a) for a in argv])
    assert code == 2
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err
