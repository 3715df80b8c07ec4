"""MLflow end to end: the pipeline logs to a real `mlflow server`; checked through its REST API."""

import json
import shutil
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests

from conftest import BIN, assert_one_line_error, free_port, small_profile, stop, taskselect, wait_until_up
from taskselect.config import Params, load_params
from taskselect.metrics import classification_metrics
from taskselect.tracking import use_store

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
        wait_until_up(f"{url}/health", proc, tmp / "server.log")
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
    # the verdict on the parent: per method and baseline, the mean difference and the seeds it holds in
    parent_metrics = as_dict(parent["data"]["metrics"])
    for method, baseline in (("tsds", "random"), ("tsds", "full"), ("random", "full"), ("auto", "tsds")):
        mine, theirs = ([r for r in records if r["method"] == m] for m in (method, baseline))
        delta = np.mean([r["f1_macro"] for r in mine]) - np.mean([r["f1_macro"] for r in theirs])
        held = sum(low > 0 if delta >= 0 else high < 0 for r in mine for low, high in [r["delta_ci"][baseline]])
        assert parent_metrics[f"delta_{baseline}.{method}.10pct"] == pytest.approx(delta)
        assert parent_metrics[f"delta_{baseline}_holds.{method}.10pct"] == held
    assert "delta_random_holds.random.10pct" not in parent_metrics
    # the run page's description says the verdicts in words, one line a selection
    described = parent_tags["mlflow.note.content"].splitlines()
    for record in records:
        if record["method"] in ("tsds", "auto"):
            low, high = record["delta_ci"]["random"]
            said = "better" if low > 0 else "worse" if high < 0 else "undecided"
            assert any(line.startswith(f"- {record['slug']}: ") and f"[{low:+.4f}, {high:+.4f}] {said}" in line
                       for line in described), described
    assert sum(": chose **" in line for line in described) == 2  # auto's choice at each seed

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
        for baseline, (low, high) in record["delta_ci"].items():  # the paired interval against each baseline
            assert (metrics[f"delta_{baseline}_ci_low"], metrics[f"delta_{baseline}_ci_high"]) == pytest.approx((low, high))
        assert set(record["delta_ci"]) == {"random", "full", "tsds"} - {tags["method"]}  # tsds: report.against
        if tags["method"] == "auto":  # the choice, beside selection.json in the selection artifacts
            assert tags["auto.choice"] == record["select_info"]["choice"]
        if tags["method"] in ("tsds", "auto"):  # its lines of the parent's description, and only they
            assert {line for line in tags["mlflow.note.content"].splitlines()} == \
                {line for line in described if line.startswith(f"- {record['slug']}: ")}
        else:
            assert "mlflow.note.content" not in tags
        files = {f["path"] for f in api(server, "artifacts/list", run_id=child["info"]["run_id"])["files"]}
        assert {"selection", "evaluation"} <= files


def test_the_logged_model_reproduces_the_logged_f1(server, logged):
    tmp, _, _ = logged
    tsds = search(server, "tags.kind = 'selection' and tags.method = 'tsds' and tags.seed = '0'")[0]
    use_store(server)
    model = mlflow.pyfunc.load_model(f"runs:/{tsds['info']['run_id']}/model")
    test = pd.read_parquet(tmp / "data" / "prepared" / "test.parquet")
    predicted = model.predict(test["text"].to_numpy(dtype=str))  # text in: the head's model embeds it
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
        assert row["delta_tsds"] == pytest.approx(f1[method] - f1["tsds"])  # report.against
    assert rows["random"]["f1_macro_std"] == pytest.approx(np.std([r["f1_macro"] for r in records if r["method"] == "random"], ddof=1))
    for method, row in rows.items():  # the seeds whose logged paired interval lies above / below zero
        for baseline in {"random", "full", "tsds"} - {method}:
            intervals = [r["delta_ci"][baseline] for r in records if r["method"] == method]
            assert (row[f"n_paired_{baseline}"], row[f"n_above_{baseline}"], row[f"n_below_{baseline}"]) == (
                2, sum(low > 0 for low, _ in intervals), sum(high < 0 for _, high in intervals))
    table = taskselect("compare", "--tracking-uri", server, cwd=tmp_path)
    assert "(k/n): the Δ holds in k of n runs (seeds): its 95% paired bootstrap interval" in table.stdout
    markdown = taskselect("compare", "--tracking-uri", server, "--format", "markdown", cwd=tmp_path)
    assert markdown.stdout.splitlines()[0].startswith("| method")
    assert f"| {rows['tsds']['delta_random']:+.4f} (" in markdown.stdout and "(k/n): the Δ holds" in markdown.stdout

    # an experiment the store lacks (e.g. the target's, after a run of your own files) names those it holds
    assert_one_line_error(taskselect("compare", "--tracking-uri", server, "--experiment", "nope", cwd=tmp_path),
                          "experiment 'nope': not found", "it holds taskselect-airline_sentiment")
    # no store where the default one would be: said, not created empty. The run logged to the
    # server in this process, and did not make it the default of the commands this process starts
    assert_one_line_error(taskselect("compare", cwd=tmp_path), "sqlite:///mlflow.db: no such MLflow store")
    assert not (tmp_path / "mlflow.db").exists()


def test_a_dead_tracking_server_loses_nothing_and_the_run_can_be_logged_later(server, logged):
    tmp, params, _ = logged
    dead = f"http://127.0.0.1:{free_port()}"
    overrides = [a for o in small_profile(tmp, tmp) + ["select.seeds=[0, 1]", f"track.tracking_uri={dead}"] for a in ("-S", o)]
    result = taskselect("report", "--data-dir", str(tmp / "data"), "--out", str(tmp / "later"), *overrides, cwd=tmp)
    assert result.returncode == 0, result.stderr
    # under the table, what auto chose in each run, as the Prefect results note says it
    chosen = [line for line in result.stdout.splitlines() if line.startswith("auto-0.1-") and ": chose " in line]
    assert [line.split(": chose ")[0] for line in chosen] == ["auto-0.1-0", "auto-0.1-1"]
    assert all("(soft_f1 on the held-out queries" in line and "random " in line for line in chosen)
    # and each selection against random and the full pool of its budget and seed, with the paired interval
    results = {r["slug"]: r for r in json.loads((tmp / "later" / "results.json").read_text())}
    tsds = results["tsds-0.1-1"]
    low, high = tsds["delta_ci"]["random"]
    delta = tsds["f1_macro"] - results["random-0.1-1"]["f1_macro"]
    said = "better" if low > 0 else "worse" if high < 0 else "undecided"  # what the interval shows, in a word
    assert f"tsds-0.1-1: {delta:+.4f} vs random [{low:+.4f}, {high:+.4f}] {said}, " in result.stdout
    assert "MLflow logging failed" in result.stderr
    assert f"taskselect track --data-dir {tmp / 'data'} --out {tmp / 'later'}" in result.stderr.replace("\n", " ")
    assert (tmp / "later" / "results.json").is_file()

    before = len(search(server, "tags.kind = 'pipeline'"))
    again = taskselect("track", "--data-dir", str(tmp / "data"), "--out", str(tmp / "later"), "--tracking-uri", server, cwd=tmp)
    assert again.returncode == 0, again.stderr
    assert len(search(server, "tags.kind = 'pipeline'")) == before + 1


def test_labels_mlflow_refuses_as_names_are_logged_and_compare_reads_only_complete_runs(logged, tmp_path):
    """Labels with ' ? ( $ (and two that clean up alike) log under keys MLflow takes, the real
    labels beside them; a pipeline run whose logging broke off is not compared as if complete."""
    tmp, _, records = logged
    out = tmp_path / "out"
    shutil.copytree(tmp / "out", out)
    renamed = {"negative": "don't (really)?", "neutral": "don't (really)$", "positive": "$5 or more?"}
    records = json.loads((out / "results.json").read_text())
    for record in records:
        record["f1_per_class"] = {renamed[label]: f1 for label, f1 in record["f1_per_class"].items()}
    (out / "results.json").write_text(json.dumps(records))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracked = taskselect("track", "--data-dir", str(tmp / "data"), "--out", str(out), "--tracking-uri", uri, cwd=tmp_path)
    assert tracked.returncode == 0, tracked.stderr

    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
    children = client.search_runs([experiment], "tags.kind = 'selection'")
    assert len(children) == len(records)
    for child in children:
        record = next(r for r in records if r["method"] == child.data.tags["method"] and str(r["seed"]) == child.data.tags["seed"])
        labels = json.loads(Path(client.download_artifacts(child.info.run_id, "f1_labels.json", str(tmp_path))).read_text())
        assert sorted(labels.values()) == sorted(record["f1_per_class"])  # one key per label, none shared
        assert {labels[k]: v for k, v in child.data.metrics.items() if k in labels} == record["f1_per_class"]

    logged_results = (out / "results.json").read_text()
    # a second run's logging breaks off after its first selection (the rest of its files are gone)
    broken = json.loads((out / "results.json").read_text())
    broken.insert(1, {**broken[0], "seed": 7, "slug": broken[0]["slug"].rsplit("-", 1)[0] + "-7"})
    (out / "results.json").write_text(json.dumps(broken))
    failed = taskselect("track", "--data-dir", str(tmp / "data"), "--out", str(out), "--tracking-uri", uri, cwd=tmp_path)
    assert failed.returncode != 0
    latest = client.search_runs([experiment], "tags.kind = 'pipeline'", order_by=["start_time DESC"])[0]
    assert latest.info.status == "FAILED"
    assert {r.info.status for r in client.search_runs([experiment], f"tags.mlflow.parentRunId = '{latest.info.run_id}'")} \
        == {"FINISHED", "FAILED"}
    for args in ([], ["--all"]):
        compared = taskselect("compare", "--tracking-uri", uri, "--format", "json", *args, cwd=tmp_path)
        assert compared.returncode == 0, compared.stderr
        assert {(r["method"], r["seeds"]) for r in json.loads(compared.stdout)} == {(m, 2) for m in Params().select.methods}
    refused = taskselect("compare", "--tracking-uri", uri, "--parent", latest.info.run_id, cwd=tmp_path)
    assert refused.returncode == 2 and "not a complete pipeline run" in refused.stderr
    assert_one_line_error(taskselect("compare", "--tracking-uri", uri, "--parent", "deadbeef", cwd=tmp_path),
                          f"--parent deadbeef: no pipeline run of experiment '{EXPERIMENT}' has this id")
    # the table names the run it compares: the complete one, not the newer run whose logging broke off
    (complete,) = [r for r in client.search_runs([experiment], "tags.kind = 'pipeline'") if r.info.status == "FINISHED"]
    table = taskselect("compare", "--tracking-uri", uri, cwd=tmp_path).stdout
    assert f"latest complete pipeline run {complete.info.run_id} (" in table and "; 1 in the experiment;" in table
    assert "data: target airline_sentiment" in table and "note:" not in table
    # results that run did not log (those of the run whose logging broke off): said under the table
    beside = taskselect("compare", "--tracking-uri", uri, "--out", str(out), cwd=tmp_path).stdout
    assert f"note: {out / 'results.json'} holds another run's results than this one: no complete pipeline run" in beside
    (out / "results.json").write_text(logged_results)  # the complete run's: nothing to say
    assert "note:" not in taskselect("compare", "--tracking-uri", uri, "--out", str(out), cwd=tmp_path).stdout


def test_compare_all_pools_only_runs_of_one_setting_on_the_same_data(logged, tmp_path):
    """`compare --all` pools the selection runs of several pipeline runs: runs that differ only in
    runtime parameters (a cache directory, the seeds planned) are one setting; runs with another
    TSDS alpha, or scored on other rows, are refused by name, and --filter keeps one setting."""
    from taskselect.config import TrackParams
    from taskselect.errors import TaskselectError
    from taskselect.tracking import compare, log_pipeline

    tmp, _, records = logged
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = tmp_path / "out"
    shutil.copytree(tmp / "out", out)
    kept = [r for r in records if r["method"] == "random"]  # two child runs to log, not eight
    (out / "results.json").write_text(json.dumps(kept))
    run_json = json.loads((out / "run.json").read_text())
    assert len(run_json["data_digest"]) == 16

    def log(**changes):  # the run logged again, with these keys of its run.json changed
        changed = json.loads(json.dumps(run_json))
        for key, value in changes.items():
            *path, last = key.split(".")
            node = changed
            for part in path:
                node = node[part]
            node[last] = value
        (out / "run.json").write_text(json.dumps(changed))
        return log_pipeline(tmp / "data", out, uri=uri)

    def pooled(filter_string="", runs=2, complete=2):
        summary, which = compare(TrackParams(tracking_uri=uri), EXPERIMENT, filter_string=filter_string, all_parents=True)
        assert which.startswith(f"{runs} complete pipeline run{'s' if runs > 1 else ''} pooled (the newest ") and \
            f"; {complete} in the experiment); data: target airline_sentiment" in which
        return summary

    first = log()
    log(**{"params.embed.cache_dir": str(tmp_path / "elsewhere"), "params.select.seeds": [0, 1, 2]})
    one_setting = pooled(runs=1)  # the same two seeds again: the newest run of each seed is read
    (row,) = one_setting.itertuples()
    assert (row.method, row.seeds) == ("random", 2)
    assert row.f1_macro == pytest.approx(np.mean([r["f1_macro"] for r in kept]))
    below = sum(r["delta_ci"]["full"][1] < 0 for r in kept)  # the paired verdicts count each seed's run once
    assert (row.n_paired_full, row.n_below_full) == (2, below)

    alpha = run_json["params"]["select"]["tsds"]["alpha"]
    log(**{"params.select.tsds.alpha": 0.5})
    refused = taskselect("compare", "--tracking-uri", uri, "--all", cwd=tmp_path)
    assert_one_line_error(refused, f"--all: the random 10% runs of experiment '{EXPERIMENT}' differ in "
                          f"select.tsds.alpha ({', '.join(sorted(['0.5', str(alpha)]))}); keep one setting with --filter")
    kept_filter = f"params.`select.tsds.alpha` = '{alpha}'"
    pd.testing.assert_frame_equal(pooled(kept_filter, runs=1, complete=3), one_setting)
    older = taskselect("compare", "--tracking-uri", uri, "--parent", first, cwd=tmp_path).stdout
    assert f"pipeline run {first} (" in older and "; 3 complete in the experiment); data: target airline_sentiment" in older

    log(**{"data_digest": "0" * 16})  # the same parameters, other rows
    with pytest.raises(TaskselectError, match="were scored on different data .*0000000000000000: target airline_sentiment.*"
                                              "tags.data_digest"):
        pooled(kept_filter)

    # a run of your own files is named by them (in taskselect-custom, as `taskselect run --pool` logs it)
    own = {f"params.data.{kind}": f"/x/{kind}.csv" for kind in ("pool", "query", "test")}
    mine = log(**own)
    named = mlflow.MlflowClient(uri).get_run(mine).info.run_name  # runs on other pools differ in the runs list
    assert named.split(" · ")[0].endswith(" pool.csv"), named
    _, which = compare(TrackParams(tracking_uri=uri), "taskselect-custom")
    assert which.startswith(f"latest complete pipeline run {mine} (") and which.endswith(
        "; data: pool /x/pool.csv, query /x/query.csv, test /x/test.csv")

    # the CLI compares the last run in DATA_DIR (its results' run.json): its experiment and store
    recorded = json.loads((out / "run.json").read_text())
    recorded["params"]["track"]["tracking_uri"] = uri
    (out / "run.json").write_text(json.dumps(recorded))
    last = taskselect("compare", "--out", str(out), cwd=tmp_path)
    assert last.returncode == 0, last.stderr
    assert "taskselect-custom" in last.stdout and f"latest complete pipeline run {mine} (" in last.stdout
    assert "not logged to MLflow" not in last.stderr
    # a last run that was not logged: the table is an earlier run's, and compare says so
    recorded["params"]["track"]["enabled"] = False
    (out / "run.json").write_text(json.dumps(recorded))
    unlogged = taskselect("compare", "--out", str(out), cwd=tmp_path)
    assert unlogged.returncode == 0, unlogged.stderr
    assert f"note: the last run ({out / 'run.json'}) was not logged to MLflow" in unlogged.stderr
    assert f"latest complete pipeline run {mine} (" in unlogged.stdout
    # parameters given to compare name the experiment instead (here params.yaml's defaults: the target's)
    given = taskselect("compare", "--out", str(out), "-S", f"track.tracking_uri={uri}", cwd=tmp_path)
    assert given.returncode == 0, given.stderr
    assert "data: target airline_sentiment" in given.stdout
    (out / "run.json").write_text("{")
    assert_one_line_error(taskselect("compare", "--out", str(out), cwd=tmp_path),
                          f"{out / 'run.json'}: expected a JSON object with the run's params")


def test_a_dvc_stage_logs_to_the_projects_store_not_to_dvcs_temporary_copy(monkeypatch, tmp_path):
    from taskselect.config import TrackParams
    from taskselect.tracking import tracking_uri

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    assert tracking_uri(TrackParams()) == "sqlite:///mlflow.db"
    # `dvc exp run --temp` runs the stages in a copy under .dvc/tmp/exps; DVC_ROOT names the project
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    assert tracking_uri(TrackParams()) == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert tracking_uri(TrackParams(tracking_uri="sqlite:////srv/runs.db")) == "sqlite:////srv/runs.db"
    assert tracking_uri(TrackParams(tracking_uri="http://127.0.0.1:5000")) == "http://127.0.0.1:5000"


def test_the_runs_list_names_what_a_parent_run_compared():
    """The run name says the data, methods, budgets, the filter in front of the selectors and the
    DVC experiment: runs of other settings read apart in the MLflow UI's list."""
    from taskselect.tracking import pipeline_run_name

    plain = Params.model_validate({"select": {"methods": ["tsds", "random"], "budgets": [0.02, 500]}})
    assert pipeline_run_name("trec", plain) == "trec · tsds,random · 2%,500"
    cleaned = Params.model_validate({"data": {"pool": "own/pool.csv", "query": "own/q.csv", "test": "own/t.csv"},
                                     "select": {"methods": ["tsds"], "budgets": [0.05],
                                                "filter": {"method": "negcliploss", "keep": 0.7}}})
    assert pipeline_run_name("custom", cleaned, "milky-newt") == "custom pool.csv · tsds · 5% · filter negcliploss 0.7 · milky-newt"
    unfiltered = cleaned.model_copy(update={"select": cleaned.select.model_copy(update={"methods": ["full"]})})
    assert pipeline_run_name("custom", unfiltered) == "custom pool.csv · full · 5%"  # the filter never applies to full
