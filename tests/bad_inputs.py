"""A corpus of malformed inputs for the one-line-error contract (tests/test_bad_inputs.py).

``write_files(folder)`` writes every bad file; ``CASES`` maps a case name to the CLI arguments that
feed it (``{d}`` stands for the folder). Every case must end with exit status 2 and one line on
stderr.
"""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path
from typing import Any

from tts_sim.core.profile import FusionRecord, LatencyTable, Profile, TaskProfile, _checksum

DEEP = "[" * 100_000 + "]" * 100_000
DEEP_DICT = '{"a":' * 5_000 + "1" + "}" * 5_000
GOOD_NODE = {"id": "a", "role": "assistant", "model": "llama-3.2-1b"}


def _graph(nodes: Any = None, edges: Any = None, output: Any = "o", **extra: Any) -> dict[str, Any]:
    if nodes is None:
        nodes = [GOOD_NODE, {"id": "o", "role": "assistant", "model": "llama-3.2-3b"}]
    return {"nodes": nodes, "edges": [["a", "o"]] if edges is None else edges, "output": output, **extra}


def _lone(node_id: Any) -> dict[str, Any]:
    return {"nodes": [{"id": node_id, "role": "assistant", "model": "llama-3.2-1b"}], "edges": [], "output": node_id}


A, OUT, F = "a", "o", "f"
GRAPHS: dict[str, Any] = {
    "id-null": _lone(None), "id-object": _lone({"k": 1}), "id-list": _lone([1, 2]), "id-true": _lone(True),
    "id-int": _lone(1), "id-float": _lone(1.5), "id-empty": _lone(""), "id-newline": _lone("a\nb"),
    "id-tab": _lone("a\tb"), "id-nul": _lone("a\x00b"),
    "role-unknown": _graph([{**GOOD_NODE, "role": "boss"}, {"id": OUT, "role": "assistant", "model": "llama-3.2-3b"}]),
    "role-number": _graph([{**GOOD_NODE, "role": 5}, {"id": OUT, "role": "assistant", "model": "llama-3.2-3b"}]),
    "model-unknown": _graph([{**GOOD_NODE, "model": "gpt-9"}, {"id": OUT, "role": "assistant", "model": "x"}]),
    "model-list": _graph([{**GOOD_NODE, "model": ["llama-3.2-1b"]}, {"id": OUT, "role": "assistant", "model": "x"}]),
    "model-newline": _graph([{**GOOD_NODE, "model": "llama\n3"}, {"id": OUT, "role": "assistant", "model": "x"}]),
    "node-missing-role": _graph([{"id": A, "model": "llama-3.2-1b"}]),
    "node-not-object": _graph(["a"]),
    "nodes-not-list": _graph({"a": GOOD_NODE}),
    "nodes-empty": _graph([], [], "o"),
    "edges-not-list": _graph(edges={"a": "o"}),
    "edge-triple": _graph(edges=[["a", "o", "x"]]),
    "edge-not-pair": _graph(edges=["ao"]),
    "edge-null-end": _graph(edges=[["a", None]]),
    "edge-list-end": _graph(edges=[[["a"], "o"]]),
    "edge-missing-node": _graph(edges=[["a", "o"], ["zz", "o"]]),
    "edge-newline-node": _graph(edges=[["a", "o"], ["z\nz", "o"]]),
    "self-edge": _graph(edges=[["a", "o"], ["a", "a"]]),
    "cycle": _graph([GOOD_NODE, {"id": "b", "role": "assistant", "model": "llama-3.2-1b"},
                     {"id": OUT, "role": "assistant", "model": "llama-3.2-3b"}], [["a", "b"], ["b", "a"], ["b", "o"]]),
    "duplicate-id": _graph([GOOD_NODE, GOOD_NODE, {"id": OUT, "role": "assistant", "model": "llama-3.2-3b"}]),
    "output-missing": _graph(output="zz"),
    "output-null": _graph(output=None),
    "output-list": _graph(output=["o"]),
    "output-feeds": _graph(edges=[["a", "o"], ["o", "a"]], output="o"),
    "output-unreachable": _graph(edges=[]),
    "fuser-feeds-fuser": _graph([GOOD_NODE, {"id": F, "role": "fuser", "model": "llama-3.2-1b"},
                                 {"id": "g", "role": "fuser", "model": "llama-3.2-1b"},
                                 {"id": OUT, "role": "assistant", "model": "llama-3.2-3b"}],
                                [["a", "f"], ["f", "g"], ["g", "o"]]),
    "fuser-without-assistant": _graph([{"id": F, "role": "fuser", "model": "llama-3.2-1b"},
                                       {"id": OUT, "role": "assistant", "model": "llama-3.2-3b"}], [["f", "o"]]),
    "no-assistant": _graph([{"id": OUT, "role": "fuser", "model": "llama-3.2-3b"}], [], "o"),
    "missing-nodes-key": {"edges": [], "output": "o"},
    "missing-output-key": {"nodes": [GOOD_NODE], "edges": []},
    "schema-other": _graph(schema="tts-sim/profile"),
    "schema-list": _graph(schema=["x"]),
    "version-2": _graph(version=2),
    "version-string": _graph(version="1"),
    "top-list": [GOOD_NODE],
    "top-number": 42,
    "top-string": "graph",
    "top-null": None,
}
GRAPH_TEXTS: dict[str, bytes] = {
    "deep-list": DEEP.encode(), "deep-dict": DEEP_DICT.encode(),
    "deep-in-id": json.dumps(_lone("x")).replace('"x"', "[" * 3000 + "]" * 3000, 2).encode(),
    "not-json": b"{nodes: [", "empty": b"", "binary": bytes(range(256)), "latin1": "{\"é\": 1}".encode("latin-1"),
    "nan": b'{"nodes": NaN}', "trailing": json.dumps(_graph()).encode() + b" x",
}


def _tiny_profile() -> dict[str, Any]:
    p = Profile({"label": "tiny"},
                {"math": TaskProfile(2, {"llama-3.2-1b": [[3, 1], [0, 2, 2]]},
                                     [FusionRecord("llama-3.2-1b", "fuser", 1, (0, 1), 1, 500)])},
                [LatencyTable("llama-3.2-1b", "cpu", "onnxruntime", prefill=[(16, 1, 0.01)], decode=[(16, 1, 0.002)])])
    return p.to_dict()


def _resealed(edit) -> bytes:
    data = copy.deepcopy(_tiny_profile())
    edit(data)
    data["checksum"] = _checksum(data)
    return json.dumps(data).encode()


def _set(path: tuple, value: Any):
    def edit(data: dict) -> None:
        target = data
        for k in path[:-1]:
            target = target[k]
        target[path[-1]] = value
    return edit


_MATH = ("tasks", "math")
PROFILES: dict[str, bytes] = {
    "deep.json": DEEP.encode(), "deep.json.gz": gzip.compress(DEEP.encode()),
    "deep-dict.json.gz": gzip.compress(DEEP_DICT.encode()),
    "fusion-5-fields.json": _resealed(lambda d: d["tasks"]["math"].update(
        fusion_records=[r[:5] for r in d["tasks"]["math"]["fusion_records"]])),
    "fusion-8-fields.json": _resealed(lambda d: d["tasks"]["math"].update(
        fusion_records=[r + [1, 1] for r in d["tasks"]["math"]["fusion_records"]])),
    "fusion-level-negative.json": _resealed(lambda d: d["tasks"]["math"].update(
        fusion_records=[r + [-1] for r in d["tasks"]["math"]["fusion_records"]])),
    "fusion-inputs-int.json": _resealed(lambda d: d["tasks"]["math"]["fusion_records"][0].__setitem__(3, 7)),
    "fusion-record-string.json": _resealed(_set((*_MATH, "fusion_records"), ["abc"])),
    "fusion-question-out-of-range.json": _resealed(lambda d: d["tasks"]["math"]["fusion_records"][0].__setitem__(2, 9)),
    "fusion-question-float.json": _resealed(lambda d: d["tasks"]["math"]["fusion_records"][0].__setitem__(2, 0.5)),
    "tasks-list.json": _resealed(_set(("tasks",), [1, 2])),
    "task-not-object.json": _resealed(_set(_MATH, 3)),
    "n-questions-string.json": _resealed(_set((*_MATH, "n_questions"), "two")),
    "bank-wrong-rows.json": _resealed(_set((*_MATH, "n_questions"), 5)),
    "bank-negative.json": _resealed(lambda d: d["tasks"]["math"]["answer_banks"]["llama-3.2-1b"][0].__setitem__(0, -1)),
    "bank-not-dict.json": _resealed(_set((*_MATH, "answer_banks"), [1])),
    "latency-not-list.json": _resealed(_set(("latency",), {"a": 1})),
    "latency-row-short.json": _resealed(lambda d: d["latency"][0].update(prefill=[[16, 1]])),
    "latency-seconds-negative.json": _resealed(lambda d: d["latency"][0].update(decode=[[16, 1, -1.0]])),
    "latency-seconds-string.json": _resealed(lambda d: d["latency"][0].update(decode=[[16, 1, "fast"]])),
    "latency-missing-model.json": _resealed(lambda d: d["latency"][0].pop("model")),
    "metadata-string.json": _resealed(_set(("metadata",), "abc")),
    "token-stats-string.json": _resealed(lambda d: d["metadata"].update(token_stats="x")),
    "token-stats-task-list.json": _resealed(lambda d: d["metadata"].update(token_stats={"math": [1]})),
    "fusion-output-negative.json": _resealed(lambda d: d["tasks"]["math"]["fusion_records"][0].__setitem__(4, -3)),
    "latency-batch-zero.json": _resealed(lambda d: d["latency"][0].update(prefill=[[16, 0, 0.1]])),
    "n-questions-negative.json": _resealed(_set((*_MATH, "n_questions"), -2)),
    "checksum-mismatch.json": json.dumps({**_tiny_profile(), "metadata": {"label": "edited"}}).encode(),
    "schema-other.json": _resealed(_set(("schema",), "tts-sim/graph")),
    "version-9.json": _resealed(_set(("version",), 9)),
    "not-json.json": b"{profile", "not-gzip.json.gz": b"\x1f\x8b\x08\x00garbage",
    "truncated.json.gz": gzip.compress(json.dumps(_tiny_profile()).encode())[:40],
    "gz-binary.json.gz": gzip.compress(bytes(range(256))),
    "top-list.json": b"[]",
}


def _model(**change: Any) -> dict[str, Any]:
    base = {"name": "m1", "family": "llama", "params": 1e9, "layers": 16, "hidden": 2048, "heads": 32,
            "kv_heads": 8, "head_dim": 64, "vocab": 128256}
    base.update(change)
    return {k: v for k, v in base.items() if v is not ...}


MODELS: dict[str, bytes] = {
    "params-inf.json": b'[{"name": "m1", "family": "llama", "params": Infinity, "layers": 16, "hidden": 2048, '
                       b'"heads": 32, "kv_heads": 8, "head_dim": 64, "vocab": 128256}]',
    "params-nan.json": b'[{"name": "m1", "family": "llama", "params": NaN, "layers": 16, "hidden": 2048, '
                       b'"heads": 32, "kv_heads": 8, "head_dim": 64, "vocab": 128256}]',
    "params-negative.json": json.dumps([_model(params=-1)]).encode(),
    "params-string.json": json.dumps([_model(params="big")]).encode(),
    "params-bool.json": json.dumps([_model(params=True)]).encode(),
    "name-int.json": json.dumps([_model(name=5)]).encode(),
    "name-empty.json": json.dumps([_model(name="")]).encode(),
    "name-null.json": json.dumps([_model(name=None)]).encode(),
    "name-newline.json": json.dumps([_model(name="m\n1")]).encode(),
    "family-list.json": json.dumps([_model(family=["llama"])]).encode(),
    "layers-float.json": json.dumps([_model(layers=1.5)]).encode(),
    "layers-string.json": json.dumps([_model(layers="16")]).encode(),
    "layers-zero.json": json.dumps([_model(layers=0)]).encode(),
    "vocab-huge-float.json": json.dumps([_model(vocab=1e300)]).encode(),
    "heads-not-multiple.json": json.dumps([_model(heads=30, kv_heads=8)]).encode(),
    "bytes-inf.json": b'[{"name": "m1", "family": "llama", "params": 1e9, "layers": 16, "hidden": 2048, '
                      b'"heads": 32, "kv_heads": 8, "head_dim": 64, "vocab": 128256, "bytes_per_param": -Infinity}]',
    "flops-params-string.json": json.dumps([_model(flops_params="1e9")]).encode(),
    "missing-field.json": json.dumps([_model(vocab=...)]).encode(),
    "unknown-field.json": json.dumps([_model(wings=2)]).encode(),
    "entry-not-object.json": b"[1, 2]",
    "top-number.json": b"7",
    "deep.json": DEEP.encode(),
    "not-json.json": b"[{name",
    "deep.toml": b"a = " + b"[" * 5000 + b"]" * 5000,
    "garbage.toml": b"[[model]\nname=",
    "no-models.toml": b'title = "x"\n',
    "model-not-table.toml": b'model = 5\n',
    "layers-float.toml": b'[[model]]\nname="x"\nfamily="llama"\nparams=2e9\nlayers=1.5\nhidden=1\nheads=1\n'
                         b'kv_heads=1\nhead_dim=1\nvocab=1\n',
    "params-inf.toml": b'[[model]]\nname="x"\nfamily="llama"\nparams=inf\nlayers=2\nhidden=1\nheads=1\n'
                       b'kv_heads=1\nhead_dim=1\nvocab=1\n',
    "latin1.toml": "name = 'é'".encode("latin-1"),
}

CLUSTERS = ["2x", "", " ", "x", "0xH100", "-1xH100", "1.5xH100", "2xnope", "H100,", ",", "2x2xH100",
            "99999xH100", "H100\nL4", "H100;L4", "ÄxH100"]
BUDGETS = ["abc", "-5", "0", "nan", "inf", "1e999", "$x", "$-1", "ref:0", "ref:99999999", "5gpu-s", "18 bananas", ""]
OBJECTIVES = ["bogus", "weighted:x", "weighted:0.1:p77", "p95<=", "p95<=-1", "p101<=5", "p95<=nan", "weighted:nan",
              "weighted:-inf", "p95<=inf", "p95<=0"]


def write_files(d: Path) -> None:
    (d / "graphs").mkdir()
    for name, data in GRAPHS.items():
        (d / "graphs" / f"{name}.json").write_text(json.dumps(data))
    for name, raw in GRAPH_TEXTS.items():
        (d / "graphs" / f"{name}.json").write_bytes(raw)
    (d / "graphs" / "good.json").write_text(json.dumps(_graph()))
    (d / "profiles").mkdir()
    for name, raw in PROFILES.items():
        (d / "profiles" / name).write_bytes(raw)
    (d / "profiles" / "good.json").write_bytes(json.dumps(_tiny_profile()).encode())
    (d / "models").mkdir()
    for name, raw in MODELS.items():
        (d / "models" / name).write_bytes(raw)
    (d / "dir.json").mkdir()
    (d / "candidates-list.json").write_text(json.dumps([{"graph": GRAPHS["id-null"]}]))
    (d / "candidates-items.json").write_text(json.dumps({"trials": [1, 2]}))
    (d / "result-garbage.json").write_text(json.dumps({"schema": "tts-sim/search-result", "version": 1,
                                                       "config": [1], "heldout": "x"}))


def cases() -> dict[str, list[str]]:
    """Case name -> argv ({d}: the folder written by ``write_files``)."""
    out: dict[str, list[str]] = {}
    for name in [*GRAPHS, *GRAPH_TEXTS]:
        out[f"graph-check-{name}"] = ["graph", "check", f"{{d}}/graphs/{name}.json"]
    for name in ("deep-list", "deep-dict", "id-null", "id-newline", "edge-newline-node", "cycle", "not-json"):
        out[f"graph-show-{name}"] = ["graph", "show", f"{{d}}/graphs/{name}.json"]
        out[f"simulate-{name}"] = ["simulate", f"{{d}}/graphs/{name}.json", "--questions", "5"]
    out["graph-missing-file"] = ["graph", "check", "{d}/nope.json"]
    out["graph-directory"] = ["graph", "check", "{d}/dir.json"]
    for name in PROFILES:
        out[f"profile-{name}"] = ["simulate", "{d}/graphs/good.json", "--profile", f"{{d}}/profiles/{name}",
                                  "--questions", "2"]
    out["profile-missing-file"] = ["simulate", "{d}/graphs/good.json", "--profile", "{d}/nope.json.gz"]
    out["profile-missing-task"] = ["simulate", "{d}/graphs/good.json", "--profile", "{d}/profiles/good.json",
                                   "--task", "mmlu"]
    for name in MODELS:
        out[f"models-{name}"] = ["models", "--models-file", f"{{d}}/models/{name}"]
    out["models-missing-file"] = ["models", "--models-file", "{d}/nope.toml"]
    out["graph-check-with-bad-models"] = ["graph", "check", "{d}/graphs/good.json", "--models-file",
                                          "{d}/models/params-inf.json"]
    for i, spec in enumerate(CLUSTERS):
        out[f"cluster-{i}-{spec.strip() or 'blank'}"] = ["simulate", "{d}/graphs/good.json", "--cluster", spec,
                                                         "--questions", "2", "--queries", "5"]
    for i, (cluster, tp) in enumerate([("2xH100", "4"), ("2xH100", "0"), ("2xH100", "1.5"), ("2xH100", "x"),
                                        ("3xH100", "2"), ("2xcpu", "2")]):
        out[f"tp-{i}-{cluster}-{tp}"] = ["simulate", "{d}/graphs/good.json", "--cluster", cluster, "--tp", tp,
                                         "--questions", "2", "--queries", "5"]
    out["tp-without-cluster"] = ["simulate", "{d}/graphs/good.json", "--tp", "2", "--questions", "2"]
    out["bench-cluster-2x"] = ["bench", "--cluster", "2x", "--searchers", "random", "--tasks", "math", "--budgets",
                               "18", "--seeds", "1", "--evals", "2", "--regret-budgets", "none", "--out",
                               "{d}/bench", "--quiet"]
    for i, budget in enumerate(BUDGETS):
        out[f"search-budget-{i}-{budget or 'empty'}"] = ["search", "--budget", budget, "--evals", "2", "--quiet",
                                                         "--out", "{d}/search"]
    for i, budget in enumerate(["-1", "0", "nan", "inf", "abc"]):
        out[f"graph-check-budget-{i}-{budget}"] = ["graph", "check", "{d}/graphs/good.json", "--budget", budget]
    for i, objective in enumerate(OBJECTIVES):
        out[f"search-objective-{i}-{objective}"] = ["search", "--objective", objective, "--cluster", "1xH100",
                                                    "--evals", "2", "--quiet", "--out", "{d}/search"]
    bench = ["bench", "--searchers", "random", "--tasks", "math", "--regret-budgets", "none", "--evals", "2",
             "--out", "{d}/bench", "--quiet"]
    for i, extra in enumerate([["--budgets", "abc"], ["--budgets", "-1"], ["--budgets", "nan"], ["--seeds", "x"],
                               ["--seeds", "5-2"], ["--seeds", "0"], ["--workers", "0"], ["--executor", "nope"],
                               ["--executor", "os:nope"], ["--searchers", "nope"], ["--tasks", "nope"],
                               ["--objective", "bogus"], ["--objective", "p95<=5"], ["--pool", "gpt-9"],
                               ["--profile", "{d}/nope.json"], ["--profile", "{d}/profiles/deep.json"],
                               ["--budgets", "0.001"], ["--search-questions", "100000"], ["--priors", "oracle"],
                               ["--priors", ""], ["--agent-cost-model", "gpt-9"],
                               ["--searcher-options", "random.nope=1"], ["--worlds", "ensemble:0"],
                               ["--searchers", "gptswarm", "--priors", "published"],
                               ["--ray-address", "127.0.0.1:6379"]]):
        out[f"bench-{i}-{'-'.join(extra).replace('{d}/', '')}"] = bench + extra
    argv_cases = {
        "no-command": [], "unknown-command": ["frobnicate"], "graph-no-subcommand": ["graph"],
        "graph-check-no-file": ["graph", "check"], "simulate-qps-zero": ["simulate", "{d}/graphs/good.json",
                                                                         "--qps", "0"],
        "simulate-queries-negative": ["simulate", "{d}/graphs/good.json", "--queries", "-1"],
        "simulate-seed-text": ["simulate", "{d}/graphs/good.json", "--seed", "x"],
        "simulate-concurrency-zero": ["simulate", "{d}/graphs/good.json", "--concurrency", "0"],
        "simulate-qps-and-concurrency": ["simulate", "{d}/graphs/good.json", "--qps", "1", "--concurrency", "2"],
        "simulate-unknown-task": ["simulate", "{d}/graphs/good.json", "--task", "nope"],
        "preset-width-zero": ["graph", "preset", "grid", "--width", "0"],
        "preset-unknown-model": ["graph", "preset", "single", "--model", "gpt-9"],
        "preset-unknown-shape": ["graph", "preset", "star"],
        "sweep-unknown-kind": ["sweep", "depth-width"],
        "search-evals-zero": ["search", "--evals", "0"], "search-unknown-searcher": ["search", "--searcher", "nope"],
        "search-unknown-pool-model": ["search", "--pool", "gpt-9", "--evals", "2", "--quiet", "--out", "{d}/search"],
        "search-max-nodes-zero": ["search", "--max-nodes", "0"],
        "search-unknown-flag": ["search", "--frobnicate"],
        "search-unknown-prior": ["search", "--prior", "oracle", "--evals", "2", "--quiet", "--out", "{d}/search"],
        "search-unknown-agent-cost-model": ["search", "--agent-cost-model", "gpt-9", "--evals", "2", "--quiet",
                                            "--out", "{d}/search"],
        "search-unknown-searcher-option": ["search", "--set", "nope=1", "--evals", "2", "--quiet",
                                           "--out", "{d}/search"],
        "search-prior-unsupported": ["search", "--searcher", "textgrad", "--prior", "published", "--evals", "2",
                                     "--quiet", "--out", "{d}/search"],
        "validate-missing-file": ["validate", "{d}/nope.json"],
        "validate-not-json": ["validate", "{d}/graphs/not-json.json", "--task", "math"],
        "validate-deep": ["validate", "{d}/graphs/deep-list.json", "--task", "math"],
        "validate-bad-graph": ["validate", "{d}/graphs/id-null.json", "--task", "math"],
        "validate-bad-candidate-list": ["validate", "{d}/candidates-list.json", "--task", "math"],
        "validate-bad-candidate-items": ["validate", "{d}/candidates-items.json", "--task", "math"],
        "validate-garbage-result": ["validate", "{d}/result-garbage.json"],
        "validate-top-k-zero": ["validate", "{d}/graphs/good.json", "--top-k", "0"],
        "preset-huge-grid": ["graph", "preset", "grid", "--width", "100000", "--depth", "100000"],
        "sweep-huge": ["sweep", "width-depth", "--max-width", "100000", "--max-depth", "1000"],
        "search-huge-space": ["search", "--max-nodes", "100000", "--evals", "2", "--quiet", "--out", "{d}/search"],
        "bench-huge-space": ["bench", "--max-nodes", "100000", "--searchers", "random", "--tasks", "math",
                             "--regret-budgets", "none", "--out", "{d}/bench", "--no-progress"],
        "bench-huge-seed-count": ["bench", "--seeds", "9999999999", "--out", "{d}/bench", "--no-progress"],
        "search-model-too-big-for-cluster": ["search", "--cluster", "cpu", "--pool", "llama-3.1-70b", "--budget",
                                             "5000", "--evals", "2", "--out", "{d}/search70"],  # fails mid-search
        "profile-unknown-task": ["profile", "--model", "smollm2-135m", "--task", "nope"],  # before any timing
        "profile-missing-data": ["profile", "--model", "smollm2-135m", "--task", "math", "--data", "{d}/nope.jsonl"],
        "profile-deep-data": ["profile", "--model", "smollm2-135m", "--task", "math", "--data",
                              "{d}/graphs/deep-list.json"],
        "profile-unknown-model": ["profile", "--model", "nope"],
        "validate-bad-model-map": ["validate", "{d}/graphs/good.json", "--task", "math", "--model-map", "garbage"],
        "graph-check-budget-huge-ref": ["search", "--budget", "ref:99999999", "--quiet", "--out", "{d}/search"],
    }
    fidelity = ["fidelity", "--generate", "2", "--out", "{d}/fidelity", "--quiet"]
    for i, extra in enumerate([["--profile", "{d}/profiles/good.json"],  # names no questions: nothing is held out
                               ["--profile", "{d}/profiles/not-json.json"], ["--profile", "{d}/nope.json.gz"],
                               ["--profile", "{d}/profiles/good.json", "--task", "nope"],
                               ["--profile", "{d}/profiles/good.json", "--generate", "-1"],
                               ["--profile", "{d}/profiles/good.json", "--max-width", "0"],
                               ["--profile", "{d}/profiles/good.json", "--batch", "0"],
                               ["--profile", "{d}/profiles/good.json", "--questions", "x"], []]):
        argv_cases[f"fidelity-{i}-{'-'.join(extra).replace('{d}/', '')}"] = fidelity + extra
    out.update(argv_cases)
    return out


CASES = cases()
