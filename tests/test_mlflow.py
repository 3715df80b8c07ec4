"""MLflow end to end: the pipeline logs to a real `mlflow server`; checked through its REST API."""

import json
import subprocess

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests

from conftest import BIN, free_port, small_profile, stop, taskselect, wait_until_up
from taskselect.config import load_params
from taskselect.metrics import classification_metrics

pytestmark = pytest.mark.e2e

EXPERIMENT = "taskselect-airline_sentiment"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mlflow-server")
    url = f"http://127.0.0.1:{free_port()}"
    with open(tmp / "server.log", "w") as log:
        proc = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1],
             "--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}", "--artifacts-destination", str(tmp / "artifacts")],
            stdout=log, stderr=subprocess.STDOUT,
        )
        wait_until_up(f"{url}/health", proc, tmp / "server.log", timeout=120)
        yield url
        stop(proc)


@pytest.fixture(scope="module")
def logged(server, prefect_api, embedding_cache, tmp_path_factory):
    from flows.pipeline import pipeline

    tmp = tmp_path_factory.mktemp("mlflow-run")
    params = load_params(None, small_profile(tmp, embedding_cache) + ["select.seeds=[0, 1]", f"track.tracking_uri={server}"])
    records = pipeline(params=params, data_dir=str(tmp / "data"), out_dir=str(tmp / "out"))
    return tmp, params, records


def api(server, path, **query):
    response = requests.get(f"{server}/api/2.0/mlflow/{path}", params=query, timeout=30)
    response.raise_for_status()
    return response.json()


def search(server, filter_string):
    experiment = api(server, "experiments/get-by-name", experiment_name=EXPERIMENT)["experiment"]
    body = {"experiment_ids": [experiment["experiment_id"]], "filter": filter_string, "max_results": 1000}
    response = requests.post(f"{server}/api/2.0/mlflow/runs/search", json=body, timeout=30)
    response.raise_for_status()
    return response.json().get("runs", [])


def as_dict(items):
    return {item["key"]: item["value"] for item in items}


def test_parent_and_child_runs_hold_params_metrics_tags_and_artifacts(server, logged):
    tmp, params, records = logged
    parents = search(server, "tags.kind = 'pipeline'")
    assert len(parents) == 1
    parent = parents[0]
    assert as_dict(parent["data"]["params"])["select.tsds.alpha"] == str(params.select.tsds.alpha)
    parent_tags = as_dict(parent["data"]["tags"])
    assert parent_tags["prefect_flow_run_id"] and parent_tags["git_commit"]
    parent_files = {f["path"] for f in api(server, "artifacts/list", run_id=parent["info"]["run_id"])["files"]}
    assert {"results.json", "summary.csv", "metrics.json", "f1_vs_budget.png"} <= parent_files

    children = search(server, f"tags.mlflow.parentRunId = '{parent['info']['run_id']}'")
    assert len(children) == len(records) == 8
    for child in children:
        tags, metrics = as_dict(child["data"]["tags"]), as_dict(child["data"]["metrics"])
        record = next(r for r in records if r["method"] == tags["method"] and str(r["seed"]) == tags["seed"])
        assert tags["budget"] == "10%"
        assert metrics["f1_macro"] == pytest.approx(record["f1_macro"])
        assert {"f1_micro", "accuracy", "n_selected", "n_unique", "target_share", "select_seconds",
                "finetune_seconds", "f1.negative", "f1.neutral", "f1.positive"} <= set(metrics)
        assert as_dict(child["data"]["params"])["data.cap_per_source"] == "150"
        if tags["method"] == "auto":  # the choice, beside selection.json in the selection artifacts
            assert tags["auto.choice"] == record["select_info"]["choice"]
        files = {f["path"] for f in api(server, "artifacts/list", run_id=child["info"]["run_id"])["files"]}
        assert {"selection", "evaluation"} <= files


def test_the_logged_model_reproduces_the_logged_f1(server, logged):
    tmp, _, _ = logged
    tsds = search(server, "tags.kind = 'selection' and tags.method = 'tsds' and tags.seed = '0'")[0]
    mlflow.set_tracking_uri(server)
    model = mlflow.pyfunc.load_model(f"runs:/{tsds['info']['run_id']}/model")
    test = pd.read_parquet(tmp / "data" / "prepared" / "test.parquet")
    predicted = model.predict(np.load(tmp / "data" / "embeddings" / "test.npy"))
    f1 = classification_metrics(test["label"], predicted, ["negative", "neutral", "positive"])["f1_macro"]
    assert f1 == pytest.approx(as_dict(tsds["data"]["metrics"])["f1_macro"], abs=1e-12)


def test_compare_prints_mean_std_and_deltas(server, logged, tmp_path):
    _, _, records = logged
    result = taskselect("compare", "--tracking-uri", server, "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {r["method"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {"tsds", "auto", "random", "full"} and all(r["seeds"] == 2 for r in rows.values())
    f1 = {m: np.mean([r["f1_macro"] for r in records if r["method"] == m]) for m in rows}
    for method, row in rows.items():
        assert row["budget"] == "10%"
        assert row["f1_macro"] == pytest.approx(f1[method])
        assert row["delta_random"] == pytest.approx(f1[method] - f1["random"])
        assert row["delta_full"] == pytest.approx(f1[method] - f1["full"])
    assert rows["random"]["f1_macro_std"] == pytest.approx(np.std([r["f1_macro"] for r in records if r["method"] == "random"], ddof=1))
    markdown = taskselect("compare", "--tracking-uri", server, "--format", "markdown", cwd=tmp_path)
    assert markdown.stdout.splitlines()[0].startswith("| method")


def test_a_dead_tracking_server_loses_nothing_and_the_run_can_be_logged_later(server, logged):
    tmp, params, _ = logged
    dead = f"http://127.0.0.1:{free_port()}"
    overrides = [a for o in small_profile(tmp, tmp) + ["select.seeds=[0, 1]", f"track.tracking_uri={dead}"] for a in ("-S", o)]
    result = taskselect("report", "--data-dir", str(tmp / "data"), "--out", str(tmp / "later"), *overrides, cwd=tmp)
    assert result.returncode == 0, result.stderr
    assert "MLflow logging failed" in result.stderr
    assert f"taskselect track --data-dir {tmp / 'data'} --out {tmp / 'later'}" in result.stderr.replace("\n", " ")
    assert (tmp / "later" / "results.json").is_file()

    before = len(search(server, "tags.kind = 'pipeline'"))
    again = taskselect("track", "--data-dir", str(tmp / "data"), "--out", str(tmp / "later"), "--tracking-uri", server, cwd=tmp)
    assert again.returncode == 0, again.stderr
    assert len(search(server, "tags.kind = 'pipeline'")) == before + 1
