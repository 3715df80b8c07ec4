"""The pieces of the Prefect layer, without a pipeline run: when a stage's outputs may be reused,
the cache key of embed and index, the comparison table, and the sweep's checks."""

import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from conftest import taskselect
from taskselect import stages
from taskselect.config import EmbedParams, IndexParams, Params
from taskselect.data import Benchmark
from taskselect.errors import TaskselectError
from taskselect.io import write_npy
from taskselect.report import comparison_caption, comparison_rows, metrics_tree, summarize


@pytest.fixture
def indexed(tmp_path):
    """A workspace whose pool embeddings (random unit vectors) are indexed with real faiss."""
    ws = stages.Workspace(tmp_path / "data")
    pool = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    write_npy(ws.embedding("pool"), pool / np.linalg.norm(pool, axis=1, keepdims=True))
    stages.index(IndexParams(), ws)
    return ws


def test_outputs_are_current_until_an_input_or_an_output_changes(indexed):
    ws, params = indexed, IndexParams()
    assert stages.outputs_current("index", params, ws)

    pool = np.load(ws.embedding("pool"))
    write_npy(ws.embedding("pool"), pool[::-1].copy())  # another run's embeddings
    assert not stages.outputs_current("index", params, ws)
    stages.index(params, ws)
    assert stages.outputs_current("index", params, ws)

    index = ws.index.read_bytes()
    ws.index.write_bytes(index[:-1] + bytes([index[-1] ^ 1]))  # e.g. `dvc checkout` of another version
    assert not stages.outputs_current("index", params, ws)
    ws.index.unlink()
    assert not stages.outputs_current("index", params, ws)
    stages.index(params, ws)
    ws.manifest("index").unlink()  # made by an older version, or by hand
    assert not stages.outputs_current("index", params, ws)


def test_new_code_for_a_stage_makes_its_outputs_stale(indexed, tmp_path, monkeypatch):
    from taskselect.codedeps import PACKAGE

    assert PACKAGE / "index.py" in stages.stage_code("index")
    code = tmp_path / "taskselect" / "index.py"  # a copy of the stage's code, to change
    code.parent.mkdir()
    shutil.copy(PACKAGE / "index.py", code)
    monkeypatch.setattr(stages, "stage_code", lambda stage: (code,))
    stages.index(IndexParams(), indexed)
    assert stages.outputs_current("index", IndexParams(), indexed)
    with open(code, "a") as fh:
        fh.write("# a changed index\n")
    assert not stages.outputs_current("index", IndexParams(), indexed)


def test_embeddings_are_current_only_for_the_parameters_they_were_made_with(tmp_path, embedding_cache):
    frame = lambda texts: pd.DataFrame({  # noqa: E731
        "id": [f"r{i}" for i in range(len(texts))], "text": texts, "label": "positive", "source": "airline"})
    tiny = Benchmark("tiny", frame(["great flight", "lost my bag", "what is the capital of Peru ?"]),
                     frame(["thanks @united"]), frame(["delayed again"]), ["positive"])
    ws, other = stages.Workspace(tmp_path / "data"), stages.Workspace(tmp_path / "other")
    for workspace in (ws, other):
        tiny.save(workspace.prepared)
    params = EmbedParams(cache_dir=str(embedding_cache))
    stages.embed(params, ws)
    assert stages.outputs_current("embed", params, ws)
    assert not stages.outputs_current("embed", params.model_copy(update={"max_seq_length": 64}), ws)
    # runtime parameters make the same vectors: another cache, batch size or shard size keeps them current
    runtime = params.model_copy(update={"cache_dir": str(tmp_path / "new-cache"), "batch_size": 2, "shard_rows": 2})
    assert stages.outputs_current("embed", runtime, ws)
    assert stages.embed(runtime, other)["embedded"] == 5  # made afresh in the new cache, in other batches
    for split in stages.SPLITS:
        assert np.load(other.embedding(split)).tobytes() == np.load(ws.embedding(split)).tobytes()


def stage_key(task, ws, params):
    from tasks.caching import StageInputs

    policy = task.cache_policy
    assert isinstance(policy, StageInputs)
    return policy.compute_key(SimpleNamespace(task=task), {"params": params, "ws": ws}, {})


def test_the_cache_key_is_the_content_of_the_inputs_and_the_parameters_not_the_path(indexed, tmp_path):
    from tasks import build_pool_index, embed_texts

    key = stage_key(build_pool_index, indexed, IndexParams())
    elsewhere = stages.Workspace(tmp_path / "copy")
    shutil.copytree(indexed.root, elsewhere.root)
    assert stage_key(build_pool_index, elsewhere, IndexParams()) == key
    pool = np.load(elsewhere.embedding("pool"))
    write_npy(elsewhere.embedding("pool"), pool[::-1].copy())
    assert stage_key(build_pool_index, elsewhere, IndexParams()) != key
    # embed reads other files, with other parameters; its runtime ones (batch size, cache) are not in the key
    embed_key = stage_key(embed_texts, indexed, EmbedParams())
    assert stage_key(embed_texts, indexed, EmbedParams(max_seq_length=64)) != embed_key
    assert stage_key(embed_texts, indexed, EmbedParams(batch_size=8, cache_dir=str(tmp_path / "cache"))) == embed_key


def test_the_comparison_lists_each_budget_tsds_first_with_mean_std_and_deltas():
    records = [
        {"method": m, "budget": 0.1, "budget_label": "10%", "seed": s, "n_selected": 10, "f1_macro": f, "accuracy": f}
        for m, s, f in [("full", 0, 0.7), ("random", 0, 0.5), ("random", 1, 0.6), ("tsds", 0, 0.8), ("tsds", 1, 0.6)]
    ]
    rows = comparison_rows(summarize(records))
    assert [r["method"] for r in rows] == ["tsds", "random", "full"]
    assert rows[0] == {"method": "tsds", "budget": "10%", "seeds": "2", "macro-F1 (mean ± std)": "0.7000 ± 0.1414",
                       "Δ vs random": "+0.1500", "Δ vs full": "+0.0000"}
    assert rows[2]["seeds"] == "1" and rows[2]["macro-F1 (mean ± std)"] == "0.7000 ± 0.0000"
    assert comparison_caption(summarize(records)) is None  # runs without paired intervals: no (k/n)


def test_the_comparison_counts_the_seeds_whose_paired_interval_clears_zero():
    def run(method, seed, f1, **delta_ci):
        return {"method": method, "budget": 0.1, "budget_label": "10%", "seed": seed, "n_selected": 10,
                "f1_macro": f1, "accuracy": f1, "confidence": 0.9, "delta_ci": delta_ci}
    records = [run("full", 0, 0.7, random=[0.1, 0.3]), run("full", 1, 0.7, random=[-0.05, 0.2]),
               run("random", 0, 0.5, full=[-0.3, -0.1]), run("random", 1, 0.6, full=[-0.2, 0.05]),
               run("tsds", 0, 0.8, random=[0.2, 0.4], full=[0.02, 0.2]),  # above both
               run("tsds", 1, 0.55, random=[-0.1, 0.02], full=[-0.25, -0.05])]  # across random's zero, below full's
    summary = summarize(records)
    tsds = summary.set_index("method").loc["tsds"]
    assert (tsds["n_paired_random"], tsds["n_above_random"], tsds["n_below_random"]) == (2, 1, 0)
    assert (tsds["n_paired_full"], tsds["n_above_full"], tsds["n_below_full"]) == (2, 1, 1)
    rows = {r["method"]: r for r in comparison_rows(summary)}
    assert rows["tsds"]["Δ vs random"] == "+0.1250 (1/2)"  # mean 0.675 - 0.55
    assert rows["tsds"]["Δ vs full"] == "-0.0250 (1/2)"  # negative: the seeds whose interval is below zero
    assert rows["random"]["Δ vs full"] == "-0.1500 (1/2)" and rows["full"]["Δ vs random"] == "+0.1500 (1/2)"
    assert rows["random"]["Δ vs random"] == "+0.0000"  # the baseline against itself: no interval
    assert comparison_caption(summary).startswith("(k/n): the Δ holds in k of n runs (seeds): its 90% paired")
    # what `dvc metrics show` lists: the same differences and counts, as numbers; none against itself
    tree = metrics_tree(summary)
    assert tree["tsds"]["10%"] == {"seeds": 2, "f1_macro": 0.675, "f1_macro_std": 0.1768, "accuracy": 0.675,
                                   "delta_random": 0.125, "delta_random_holds": 1,
                                   "delta_full": -0.025, "delta_full_holds": 1}
    assert "delta_random" not in tree["random"]["10%"] and tree["random"]["10%"]["delta_full_holds"] == 1
    plain = metrics_tree(summarize([{k: v for k, v in r.items() if k not in ("delta_ci", "confidence")} for r in records]))
    assert plain["tsds"]["10%"]["delta_random"] == 0.125 and "delta_random_holds" not in plain["tsds"]["10%"]


def test_a_selector_report_against_names_gets_its_column_where_the_runs_were_paired_with_it():
    """report.against (tsds by default): auto's runs paired with tsds's get a Δ vs tsds column with
    its (k/n), after the baselines'; records without such intervals get no column."""
    def run(method, seed, f1, **delta_ci):
        return {"method": method, "budget": 0.1, "budget_label": "10%", "seed": seed, "n_selected": 10,
                "f1_macro": f1, "accuracy": f1, "confidence": 0.95, "delta_ci": delta_ci}
    records = [run("tsds", 0, 0.8, random=[0.1, 0.3]), run("tsds", 1, 0.7, random=[0.05, 0.2]),
               run("random", 0, 0.6, tsds=[-0.3, -0.1]), run("random", 1, 0.55, tsds=[-0.2, -0.1]),
               run("auto", 0, 0.7, random=[0.0, 0.2], tsds=[-0.15, -0.05]),  # below tsds
               run("auto", 1, 0.72, random=[0.1, 0.3], tsds=[-0.01, 0.05])]  # across zero
    summary = summarize(records)
    rows = {r["method"]: r for r in comparison_rows(summary)}
    # the full pool did not run: no column of blanks for it
    assert list(rows["auto"]) == ["method", "budget", "seeds", "macro-F1 (mean ± std)", "Δ vs random", "Δ vs tsds"]
    assert rows["auto"]["Δ vs tsds"] == "-0.0400 (1/2)" and rows["random"]["Δ vs tsds"] == "-0.1750 (2/2)"
    assert metrics_tree(summary)["auto"]["10%"]["delta_tsds"] == -0.04
    assert metrics_tree(summary)["auto"]["10%"]["delta_tsds_holds"] == 1
    unpaired = comparison_rows(summarize([r | {"delta_ci": {"random": r["delta_ci"].get("random", [0, 1])}} for r in records]))
    assert "Δ vs tsds" not in unpaired[0]


@pytest.mark.parametrize("targets, params, message", [
    ([], Params(), "targets: expected at least one target"),
    (["trec", "trec"], Params(), "names a target twice"),
    (["trec"], Params.model_validate({"data": {"pool": "pool.csv"}}), "a sweep runs the packaged targets"),
])
def test_a_sweep_refuses_what_it_cannot_run_before_running_anything(prefect_api, tmp_path, targets, params, message):
    from flows.sweep import sweep

    with pytest.raises(TaskselectError, match=message):
        sweep(targets=targets, params=params, root=str(tmp_path / "sweeps"))
    assert not (tmp_path / "sweeps").exists()


def test_a_child_started_inside_output_to_writes_to_the_log_after_the_block(tmp_path, capfd):
    """How the temporary Prefect server's output is kept out of the command's terminal, also
    when it writes as it stops, after its start."""
    from flows.engine import output_to

    log = tmp_path / "server.log"
    log.write_text("earlier\n")
    child = "import sys, time; print('out', flush=True); time.sleep(0.5); print('late', file=sys.stderr)"
    with output_to(log):
        process = subprocess.Popen([sys.executable, "-c", child])
    print("ours")
    assert process.wait(timeout=30) == 0
    captured = capfd.readouterr()
    assert (captured.out, captured.err) == ("ours\n", "")
    assert log.read_text().split() == ["earlier", "out", "late"]


def test_serve_without_a_server_says_how_to_start_one(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | {"PREFECT_HOME": str(tmp_path / "home")}
    result = taskselect("serve", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("error: PREFECT_API_URL is not set: start a server (`prefect server start`)")


def test_the_run_form_offers_every_method_and_each_selectors_section():
    from prefect.utilities.callables import parameter_schema

    from flows.pipeline import pipeline
    from taskselect.selectors import methods

    definitions = parameter_schema(pipeline.fn).model_dump()["definitions"]
    select = definitions["SelectParams"]["properties"]
    assert select["methods"]["items"]["enum"] == list(methods())
    for section in ("knn", "knn_uniform", "knn_kde", "dsir", "kcenter", "s2l", "loss"):
        model = definitions[select[section]["$ref"].rsplit("/", 1)[-1]]
        assert model["description"] and all(field["description"] for field in model["properties"].values())


def test_a_step_waits_for_its_run_stage_before_and_the_full_pool_for_its_first_model(tmp_path):
    """plan.after: select first, then finetune, then evaluate; the full pool's finetune at a later
    budget also waits for the first budget's (same seed), whose model it copies."""
    from taskselect.plan import plan_run

    params = Params.model_validate({"select": {"methods": ["tsds", "full"], "budgets": [0.02, 0.05], "seeds": [0, 1]}})
    plan = plan_run(params, tmp_path / "data")
    tsds, full_first, full_later = stages.Run("tsds", 0.05, 0), stages.Run("full", 0.02, 1), stages.Run("full", 0.05, 1)
    assert plan.after("select", tsds) == [] and plan.after("evaluate", tsds) == [("finetune", tsds)]
    assert plan.after("finetune", tsds) == [("select", tsds)]
    assert plan.after("finetune", full_first) == [("select", full_first)]
    assert plan.after("finetune", full_later) == [("select", full_later), ("finetune", full_first)]
    steps = plan.steps()  # each step comes after every step it waits for
    assert all(steps.index(before) < steps.index(step) for step in steps for before in plan.after(*step))


def test_the_pipeline_flow_refuses_a_model_not_on_disk_before_it_prepares_anything(prefect_api, tmp_path):
    """The Prefect form's parameters get the checks `taskselect run` makes (validate.check_params),
    not a failure at the finetune stage after minutes of embedding and selection."""
    from flows.pipeline import pipeline

    params = Params.model_validate({"finetune": {"trainer": "transformer", "transformer": {"model": str(tmp_path / "no-model")}}})
    with pytest.raises(TaskselectError, match="finetune.transformer.model"):
        pipeline(params=params, data_dir=str(tmp_path / "data"))
    assert not (tmp_path / "data").exists()
