"""An unlabelled pool (which of my texts to annotate): selected from and exported through the real
CLI on real packaged texts, finetune and evaluate skipped with a note, label-reading selectors
refused in one line, the registry's declarations honest."""

import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from conftest import assert_one_line_error, taskselect
from taskselect.config import SelectParams
from taskselect.data import SOURCES, load_custom_benchmark
from taskselect.errors import TaskselectError
from taskselect.selectors import REGISTRY, Corpus, make_selector
from taskselect.stages import UNLABELLED
from taskselect.tracking import use_store
from taskselect.validate import check_unlabelled

BUDGET = 40
# Small and real: 100 airline tweets among 100 SMS and 100 TREC questions, the task shown by 20
# other airline tweets; TSDS's search capped to the pool's size.
SMALL = ["-S", "select.tsds.max_k=100", "-S", "select.tsds.kde_k=50"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """pool.csv (text, source; no label column), query.jsonl (text only), the same query with its
    labels, and the labels the pool would have had, to build the bad cases from."""
    tmp = tmp_path_factory.mktemp("unlabelled-files")
    airline = SOURCES["airline"].load().sample(120, random_state=1)
    pool = pd.concat([airline.iloc[:100].assign(source="airline"),
                      SOURCES["sms"].load().head(100).assign(source="sms"),
                      SOURCES["trec"].load().head(100).assign(source="trec")], ignore_index=True)
    pool[["text", "source"]].to_csv(tmp / "pool.csv", index=False)
    airline.iloc[100:][["text"]].to_json(tmp / "query.jsonl", orient="records", lines=True)
    airline.iloc[100:][["text", "label"]].to_json(tmp / "query_labelled.jsonl", orient="records", lines=True)
    pool[["text", "label"]].to_csv(tmp / "labelled.csv", index=False)
    return tmp


@pytest.fixture(scope="module")
def run(files, embedding_cache, api_env, tmp_path_factory):
    """`taskselect run` on the unlabelled pool: tsds and random, one budget, the real Prefect flow
    (on the session's API) and an MLflow store of its own."""
    tmp = tmp_path_factory.mktemp("unlabelled-run")
    result = taskselect(
        "run", "--data-dir", str(tmp / "data"), "--out", str(tmp / "results"),
        "--pool", str(files / "pool.csv"), "--query", str(files / "query.jsonl"),
        "--methods", "tsds,random", "--budgets", str(BUDGET), *SMALL,
        "-S", f"embed.cache_dir={embedding_cache}", "-S", f"track.tracking_uri=sqlite:///{tmp / 'mlflow.db'}",
        cwd=tmp, env=api_env)
    assert result.returncode == 0, result.stdout + result.stderr
    return tmp, result


@pytest.mark.e2e
def test_the_exported_rows_are_exactly_the_selected_pool_rows_without_labels(run, files):
    tmp, _ = run
    data = tmp / "data"
    exported = {}
    for method in ("tsds", "random"):
        result = taskselect("export", "--data-dir", str(data), "--method", method, "--out",
                            str(tmp / f"{method}.csv"), cwd=tmp)
        assert result.returncode == 0, result.stderr
        exported[method] = pd.read_csv(tmp / f"{method}.csv", dtype={"id": str}, keep_default_na=False)
        selection = pd.read_parquet(data / "selections" / f"{method}-{BUDGET}-0" / "selection.parquet")
        facts = json.loads((data / "selections" / f"{method}-{BUDGET}-0" / "selection.json").read_text())
        pool = pd.read_csv(files / "pool.csv", keep_default_na=False)
        rows = exported[method]["pool_row"].to_numpy()
        assert rows.tolist() == selection["pool_row"].tolist()
        assert exported[method]["text"].tolist() == pool["text"].iloc[rows].str.strip().tolist()
        assert exported[method]["source"].tolist() == pool["source"].iloc[rows].tolist()
        assert exported[method]["id"].tolist() == [f"pool:{r + 1}" for r in rows]
        assert "label" not in exported[method] and "label" not in selection
        assert exported[method]["count"].sum() == facts["n_selected"] == BUDGET
        assert facts["n_on_task"] is None and facts["target_share"] is None
    # the selection is of the task the query shows (airline tweets), as random's is not
    share = {m: (frame["source"] == "airline").mean() for m, frame in exported.items()}
    assert share["tsds"] > 0.8 and share["tsds"] > share["random"] + 0.3, share


@pytest.mark.e2e
def test_finetune_and_evaluate_are_skipped_with_a_note_everywhere_the_run_is_read(run):
    tmp, result = run
    data, slug = tmp / "data", f"tsds-{BUDGET}-0"
    assert json.loads((data / "models" / slug / "model.json").read_text()) == {"trainer": None, "skipped": UNLABELLED}
    assert json.loads((data / "evaluations" / slug / "metrics.json").read_text()) == {"skipped": UNLABELLED}
    assert sorted(p.name for p in (data / "models" / slug).iterdir()) == ["made_from.json", "model.json"]
    assert UNLABELLED in result.stdout and "not trained (no labels)" in result.stdout and "0.0000" not in result.stdout

    records = json.loads((tmp / "results" / "results.json").read_text())
    assert {r["method"] for r in records} == {"tsds", "random"}
    assert all(r["skipped"] == UNLABELLED and "f1_macro" not in r for r in records)
    metrics = json.loads((tmp / "results" / "metrics.json").read_text())
    assert metrics["note"] == UNLABELLED and metrics["tsds"][str(BUDGET)]["n_selected"] == BUDGET

    # MLflow records the selections, and says why there is nothing else
    use_store(f"sqlite:///{tmp / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["taskselect-custom"], filter_string="tags.kind = 'selection'")
    assert sorted(runs["params.method"]) == ["random", "tsds"]
    assert (runs["tags.note"] == UNLABELLED).all() and (runs["metrics.n_selected"] == BUDGET).all()
    assert "metrics.f1_macro" not in runs
    artifacts = mlflow.MlflowClient().list_artifacts(runs["run_id"].iloc[0], "selection")
    assert {"selection/selection.parquet", "selection/selection.json"} <= {a.path for a in artifacts}

    # the stage command DVC runs does the same as the flow's task
    before = (data / "models" / slug / "model.json").read_bytes()
    stage = taskselect("finetune", "--data-dir", str(data), "--method", "tsds", "--budget", str(BUDGET), "--seed", "0",
                       "-S", "select.methods=[tsds,random]", *SMALL, cwd=tmp)
    assert stage.returncode == 0 and UNLABELLED in stage.stderr, stage.stderr
    assert (data / "models" / slug / "model.json").read_bytes() == before


@pytest.mark.e2e
def test_a_selector_that_reads_labels_is_refused_in_one_line_before_anything_is_written(files, tmp_path):
    result = taskselect("run", "--data-dir", str(tmp_path / "data"), "--pool", str(files / "pool.csv"),
                        "--query", str(files / "query.jsonl"), "--methods", "tsds,mates", cwd=tmp_path)
    assert_one_line_error(result, "select.methods", "'mates'", "reads the pool's labels", "data.pool has none")
    assert not (tmp_path / "data").exists()


def test_exactly_the_selectors_registered_to_read_a_corpus_are_refused_and_the_rest_select_without_labels():
    rng = np.random.default_rng(0)
    pool = rng.normal(size=(200, 8)).astype(np.float32)
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    texts = [f"text {i % 17} word {i % 5}" for i in range(200)]
    corpus = Corpus(texts, (), texts[:6])  # no pool labels, no query labels
    refused = set()
    for method, spec in REGISTRY.items():
        try:
            check_unlabelled(SelectParams(methods=[method]), "data.pool")
        except TaskselectError as exc:
            assert str(exc).startswith(f"select.methods: {method!r} reads the pool's labels"), exc
            refused.add(method)
            continue
        # what is allowed must really select with no label anywhere
        selection = make_selector(method, SelectParams()).select(pool[:6], pool, 20, seed=0, corpus=corpus)
        assert selection.n_selected >= 20
    assert refused == {m for m, spec in REGISTRY.items() if spec.reads == "corpus"}
    assert {"auto", "mates", "negcliploss", "s2l", "loss"} <= refused and "dsir" not in refused
    with pytest.raises(TaskselectError, match="select.filter.method: 'negcliploss' scores the pool's text-label pairs"):
        check_unlabelled(SelectParams(methods=["tsds"], filter={"method": "negcliploss"}), "data.pool")


def test_a_half_labelled_pool_and_a_test_set_without_pool_labels_are_errors(files, tmp_path):
    labelled = pd.read_csv(files / "labelled.csv", keep_default_na=False)
    labelled.loc[7, "label"] = ""
    labelled.to_csv(tmp_path / "half.csv", index=False)
    with pytest.raises(TaskselectError, match=r"half.csv: column 'label', row 8: .*an empty cell \(a pool without "
                                              r"labels has no label column at all\)"):
        load_custom_benchmark(tmp_path / "half.csv", files / "query.jsonl", None)
    with pytest.raises(TaskselectError, match=r"pool.csv: no column 'label'; columns are text, source \(a pool without "
                                              r"labels is for selection only: leave data.test out\)"):
        load_custom_benchmark(files / "pool.csv", files / "query.jsonl", files / "labelled.csv")
    with pytest.raises(TaskselectError, match=r"data.test: missing; .*labelled.csv has labels"):
        load_custom_benchmark(files / "labelled.csv", files / "query.jsonl", None)
    benchmark = load_custom_benchmark(files / "pool.csv", files / "query.jsonl", None)
    assert not benchmark.pool_labelled and benchmark.test.empty and benchmark.target_labels == []
    assert len(benchmark.pool) == 300 and "label" not in benchmark.query
    # a query with labels names the task's labels, though nothing is scored
    with_labels = load_custom_benchmark(files / "pool.csv", files / "query_labelled.jsonl", None)
    assert not with_labels.pool_labelled
    assert with_labels.target_labels == sorted(pd.read_json(files / "query_labelled.jsonl", lines=True)["label"].unique())
