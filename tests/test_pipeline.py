"""End to end: the real Prefect flow on a small profile of the real data, real MiniLM, faiss, MLflow."""

import json
import os
import stat

import faiss
import mlflow
import numpy as np
import pandas as pd
import pytest

from conftest import small_profile, untimed
from taskselect.config import load_params
from taskselect.selectors import methods
from taskselect.tracking import use_store

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def flow_run(prefect_api, embedding_cache, tmp_path_factory):
    from flows.pipeline import pipeline

    tmp = tmp_path_factory.mktemp("flow")
    # mates' rounds and probes set its cost (a third of this run by default), not what is asserted here
    params = load_params(None, small_profile(tmp, embedding_cache) + [f"select.methods=[{','.join(methods())}]",
                                                                      "select.mates.rounds=2", "select.mates.probes=300"])
    records = pipeline(params=params, data_dir=str(tmp / "data"), out_dir=str(tmp / "out"))
    return tmp, params, records


def test_results_file_holds_a_record_per_method(flow_run):
    tmp, params, records = flow_run
    saved = json.loads((tmp / "out" / "results.json").read_text())
    assert saved == records
    by_method = {r["method"]: r for r in saved}
    assert set(by_method) == set(methods())
    pool_rows = len(pd.read_parquet(tmp / "data" / "prepared" / "pool.parquet"))
    budget = round(0.1 * pool_rows)
    for method in set(methods()) - {"full"}:  # distinct rows, the whole budget
        assert by_method[method]["n_selected"] == by_method[method]["n_unique"] == budget, method
    assert by_method["full"]["n_selected"] == pool_rows
    for r in saved:
        assert {"method", "budget", "seed", "n_selected", "n_unique", "f1_macro", "accuracy"} <= set(r)
        assert 0 < r["f1_macro"] <= 1 and 0 < r["accuracy"] <= 1
    # TSDS finds the task's rows among thirteen other sources; random cannot. Nor can the other
    # selectors that look near the queries' embeddings.
    for method in ("tsds", "knn", "knn-uniform", "knn-kde", "s2l", "loss"):
        assert by_method[method]["target_share"] > by_method["random"]["target_share"] + 0.2, method
    # kcenter spends the budget on the far edges of the queries' neighbourhood: diversity first
    assert by_method["kcenter"]["target_share"] > by_method["random"]["target_share"]
    # dsir reads n-grams only: it still finds the airline tweets (one source of 14) far above chance
    airline = {m: (pd.read_parquet(tmp / "data" / "selections" / f"{m}-0.1-0" / "selection.parquet")["source"]
                   == "airline").mean() for m in ("dsir", "random")}
    assert airline["dsir"] > 2 * airline["random"]
    for method in ("dsir", "s2l", "loss"):  # the scores they ranked by, one per pool row
        assert np.load(tmp / "data" / "selections" / f"{method}-0.1-0" / "scores.npy").shape == (pool_rows,)


def test_each_selection_is_set_against_the_baselines_on_the_same_test_resamples(flow_run):
    """results.json: every run's macro-F1 minus random's and the full pool's (same budget and
    seed) with a paired bootstrap interval, computed from the evaluations' saved predictions."""
    from taskselect.metrics import classification_metrics, macro_f1_resamples, percentile_interval, stratified_draws

    tmp, params, records = flow_run
    by_method = {r["method"]: r for r in records}
    truth = pd.read_parquet(tmp / "data" / "prepared" / "test.parquet")["label"].to_numpy(dtype=str)
    predicted = {m: pd.read_parquet(tmp / "data" / "evaluations" / f"{m}-0.1-0" / "predictions.parquet")["predicted"]
                 .to_numpy(dtype=str) for m in by_method}
    labels = sorted(set(truth))
    for method, r in by_method.items():  # the saved predictions are the ones scored
        assert classification_metrics(truth, predicted[method], labels)["f1_macro"] == pytest.approx(r["f1_macro"])
        assert set(r["delta_ci"]) == {"random", "full", *params.report.against} - {method}  # against: tsds
        for baseline, (low, high) in r["delta_ci"].items():
            delta = r["f1_macro"] - by_method[baseline]["f1_macro"]
            assert low <= delta <= high, (method, baseline)
    # the resamples are those of each run's own interval (evaluate's n_boot and seed), scored on both runs
    draws = stratified_draws(truth, params.evaluate.n_boot, np.random.default_rng(params.evaluate.seed))
    scored = {m: macro_f1_resamples(truth, predicted[m], labels, draws) for m in ("tsds", "random")}
    assert list(percentile_interval(scored["tsds"], params.evaluate.confidence)) == pytest.approx(by_method["tsds"]["f1_macro_ci"])
    assert list(percentile_interval(scored["tsds"] - scored["random"], params.evaluate.confidence)) == pytest.approx(
        by_method["tsds"]["delta_ci"]["random"])
    auto = macro_f1_resamples(truth, predicted["auto"], labels, draws)  # and against report.against's tsds alike
    assert list(percentile_interval(auto - scored["tsds"], params.evaluate.confidence)) == pytest.approx(
        by_method["auto"]["delta_ci"]["tsds"])
    # full against random is random against full, turned round
    assert by_method["full"]["delta_ci"]["random"] == pytest.approx([-h for h in reversed(by_method["random"]["delta_ci"]["full"])])


def test_artifacts_are_consistent(flow_run):
    tmp, _, _ = flow_run
    data = tmp / "data"
    pool = pd.read_parquet(data / "prepared" / "pool.parquet")
    assert pool["id"].is_unique and pool["source"].nunique() >= 10
    for split in ("pool", "query", "test"):
        rows = len(pd.read_parquet(data / "prepared" / f"{split}.parquet"))
        emb = np.load(data / "embeddings" / f"{split}.npy")
        assert emb.shape == (rows, 384) and emb.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-4)
    assert faiss.read_index(str(data / "index" / "pool.faiss")).ntotal == len(pool)
    selection = pd.read_parquet(data / "selections" / "tsds-0.1-0" / "selection.parquet")
    assert selection["id"].isin(pool["id"]).all()
    assert (pool["id"].iloc[selection["pool_row"]].to_numpy() == selection["id"].to_numpy()).all()
    probs = np.load(data / "selections" / "tsds-0.1-0" / "probs.npy")
    assert probs.shape == (len(pool),) and probs.sum() == pytest.approx(1)
    assert (data / "models" / "tsds-0.1-0" / "head.joblib").is_file()
    metrics = json.loads((data / "evaluations" / "tsds-0.1-0" / "metrics.json").read_text())
    assert set(metrics["f1_per_class"]) == {"negative", "neutral", "positive"}
    low, high = metrics["f1_macro_ci"]
    assert low < metrics["f1_macro"] < high and high - low < 0.3
    assert np.sum(metrics["confusion"]) == metrics["n_test"]
    assert (data / "evaluations" / "tsds-0.1-0" / "confusion.png").read_bytes().startswith(b"\x89PNG")
    # readable by the group and others under the usual umask (a cluster's workers, other users)
    assert all(p.stat().st_mode & 0o044 == 0o044 for p in data.rglob("*") if not p.name.startswith("."))


@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)],
                         ids=["umask-022", "umask-077"])
def test_artifacts_are_created_with_the_modes_the_umask_gives(tmp_path, umask, file_mode, dir_mode):
    from taskselect.io import atomic_dir, write_json

    previous = os.umask(umask)
    try:
        write_json(tmp_path / "a.json", {})
        with atomic_dir(tmp_path / "d") as out:
            write_json(out / "b.json", {})
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == file_mode
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == dir_mode
    assert stat.S_IMODE((tmp_path / "d" / "b.json").stat().st_mode) == file_mode


def test_mlflow_has_a_parent_run_and_a_child_per_selection(flow_run):
    tmp, params, records = flow_run
    use_store(params.track.tracking_uri)
    runs = mlflow.search_runs(experiment_names=["taskselect-airline_sentiment"], output_format="list")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == len(methods())
    assert parents[0].data.params["select.tsds.alpha"] == str(params.select.tsds.alpha)
    logged = {c.data.params["method"]: c.data.metrics["f1_macro"] for c in children}
    assert logged == pytest.approx({r["method"]: r["f1_macro"] for r in records})


def test_a_second_run_recomputes_overwritten_embeddings_and_reproduces_the_results(flow_run):
    """The embed task is cached by its inputs; its outputs were changed behind its back (as another
    run or `dvc checkout` would), so the rerun must not take the cache hit."""
    from flows.pipeline import pipeline
    from taskselect import stages

    tmp, params, records = flow_run
    ws = stages.Workspace(tmp / "data")
    test = np.load(ws.embedding("test"))
    np.save(ws.embedding("test"), test[::-1].copy())
    assert not stages.outputs_current("embed", params.embed, ws)

    # the baselines, a selector whose randomness is Gumbel noise (dsir) and the ones that train a
    # proxy model and cluster (s2l, loss), while the runner executes tasks side by side: the same
    # seed gives the same selection and scores
    methods = ["tsds", "random", "full", "dsir", "s2l", "loss"]
    selected = {m: ws.selection(stages.Run(m, 0.1, 0)) / "selection.parquet" for m in methods}
    first = {m: pd.read_parquet(path) for m, path in selected.items()}
    scored = {m: np.load(path.with_name("scores.npy")) for m, path in selected.items() if m in ("dsir", "s2l", "loss")}
    rerun = params.model_copy(update={"select": params.select.model_copy(update={"methods": methods})})
    again = pipeline(params=rerun, data_dir=str(tmp / "data"), out_dir=str(tmp / "out2"))
    assert untimed(again) == untimed([r for r in records if r["method"] in methods])
    np.testing.assert_array_equal(np.load(ws.embedding("test")), test)
    for method, path in selected.items():
        pd.testing.assert_frame_equal(pd.read_parquet(path), first[method], obj=method)
    for method, scores in scored.items():
        np.testing.assert_array_equal(np.load(selected[method].with_name("scores.npy")), scores, err_msg=method)
    assert stages.outputs_current("embed", params.embed, ws) and stages.outputs_current("index", params.index, ws)
    assert stages.embed(params.embed, ws)["embedded"] == 0  # every text came from the embedding cache


def test_the_full_pool_at_several_budgets_is_trained_once(flow_run):
    """full uses no budget: its finetune at a later budget waits for the first budget's (the task
    run's wait_for, plan.after) and copies that model, rather than train the same model beside it."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.pipeline import pipeline
    from taskselect import stages

    tmp, params, _ = flow_run
    select = params.select.model_copy(update={"methods": ["full"], "budgets": [0.2, 0.3], "seeds": [1]})
    state = pipeline(params=params.model_copy(update={"select": select}), data_dir=str(tmp / "data"),
                     out_dir=str(tmp / "out-full"), return_state=True)
    records = state.result()
    with get_client(sync_client=True) as client:
        task_runs = {r.name: r for r in client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))}
    waits_for = {i.id for i in task_runs["finetune-full-0.3-1"].task_inputs["wait_for"]}
    assert task_runs["finetune-full-0.2-1"].id in waits_for and task_runs["select-full-0.3-1"].id in waits_for
    ws = stages.Workspace(tmp / "data")
    assert "copied_from" not in json.loads(ws.timing("finetune-full-0.2-1").read_text())
    assert json.loads(ws.timing("finetune-full-0.3-1").read_text())["copied_from"] == "full-0.2-1"
    assert records[0]["f1_macro"] == records[1]["f1_macro"]
