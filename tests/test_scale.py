"""Scale: a split read and embedded shard by shard, resumed after a kill, and the pipeline run on a
real Dask cluster (LocalCluster, worker processes) with the results of the in-process run."""

import os
import signal
import subprocess
import time

import numpy as np
import pandas as pd
import pytest

from conftest import BIN, ROOT, assert_one_line_error, small_profile, taskselect, untimed
from taskselect import stages
from taskselect.config import load_params
from taskselect.embedding import Embedder
from taskselect.errors import TaskselectError
from taskselect.io import read_json
from taskselect.shards import Shard, plan_shards, read_column, write_rows


def test_a_shard_reads_only_its_rows_across_row_groups(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"text": [f"t{i}" for i in range(25)]}).to_parquet(path, row_group_size=4)
    shards = plan_shards(path, "pool", 10)
    assert shards == [Shard("pool", 0, 10), Shard("pool", 10, 20), Shard("pool", 20, 25)]
    assert read_column(path, "text", 10, 20) == [f"t{i}" for i in range(10, 20)]
    assert read_column(path, "text", 22, 25) == ["t22", "t23", "t24"]
    with pytest.raises(TaskselectError, match="missing.parquet: not found"):
        plan_shards(tmp_path / "missing.parquet", "pool", 10)


def test_rows_are_written_part_after_part(tmp_path):
    parts = [np.full((2, 3), i, dtype=np.float32) for i in range(3)]
    write_rows(tmp_path / "x.npy", iter(parts), 6, 3)
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), np.concatenate(parts))
    with pytest.raises(ValueError, match="parts hold 6 rows, expected 7"):
        write_rows(tmp_path / "y.npy", iter(parts), 7, 3)
    assert not (tmp_path / "y.npy").exists()


def test_task_runner_options_are_checked():
    from flows.engine import task_runner

    with pytest.raises(TaskselectError, match="--cluster and --workers: give one"):
        task_runner("tcp://127.0.0.1:8786", 2)
    with pytest.raises(TaskselectError, match="--workers 0: expected at least 1"):
        task_runner(workers=0)


@pytest.mark.parametrize("args, api, message", [
    (["--methods", "random"], "http://127.0.0.1:9/api", "PREFECT_API_URL http://127.0.0.1:9/api: no Prefect server answers there"),
    (["--cluster", "tcp://127.0.0.1:9"], None, "--cluster: its workers report to the Prefect server of the run"),
])
def test_a_run_without_a_prefect_server_it_can_reach_is_refused_in_one_line(tmp_path, args, api, message):
    """Not Prefect's tracebacks once the first task is submitted (a cluster's workers cannot reach
    a temporary server of the command's own)."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | ({"PREFECT_API_URL": api} if api else {})
    result = taskselect("run", "--data-dir", str(tmp_path / "data"), *args, cwd=ROOT, env=env)
    assert_one_line_error(result, message)
    assert not (tmp_path / "data").exists()


def shard_files(cache):
    return list(cache.rglob("shards/*.npy"))


def test_a_killed_embedding_reruns_only_the_unfinished_shards(tmp_path):
    cache = tmp_path / "cache"
    profile = [f"embed.cache_dir={cache}", "data.cap_per_source=12", "data.n_query=10", "data.max_test=20",
               "embed.shard_rows=8"]
    params = load_params(None, profile)
    ws = stages.Workspace(tmp_path / "data")
    stages.prepare(params.data, ws)
    shards = stages.embed_shards(params.embed, ws)
    assert len(shards) > 10

    with open(tmp_path / "embed.log", "w") as log:
        proc = subprocess.Popen([str(BIN / "taskselect"), "embed", "--data-dir", str(ws.root),
                                 *[arg for o in profile for arg in ("-S", o)]],
                                cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while len(shard_files(cache)) < 3:
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "embed.log").read_text()[-2000:]
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finished = len(shard_files(cache))
    assert 3 <= finished < len(shards)
    assert not ws.embedding("pool").exists()

    facts = stages.embed(params.embed, ws)
    unfinished = len(shards) - finished
    assert (facts["shards"], facts["shards_embedded"]) == (len(shards), unfinished)
    assert 0 < facts["embedded"] <= sum(s.rows for s in shards[finished:])
    assert len(shard_files(cache)) == len(shards)
    # the splits are assembled from the shards in row order
    for split in stages.SPLITS:
        texts = pd.read_parquet(ws.prepared / f"{split}.parquet")["text"]
        vectors = np.load(ws.embedding(split))
        assert vectors.shape == (len(texts), 384)
        rows = [0, len(texts) // 2, len(texts) - 1]
        np.testing.assert_allclose(vectors[rows], Embedder().encode(texts.iloc[rows].tolist()), atol=1e-5)
    again = stages.embed(params.embed, ws)
    assert (again["shards_embedded"], again["embedded"]) == (0, 0)


@pytest.fixture(scope="module")
def cluster(prefect_api):
    """A real Dask cluster: two single-threaded worker processes reporting to the session's Prefect API."""
    from distributed import LocalCluster

    from flows.engine import api_url

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      env={"PREFECT_API_URL": api_url()}) as local:
        yield local


@pytest.mark.e2e
def test_the_pipeline_on_a_dask_cluster_gives_the_in_process_results(cluster, tmp_path):
    from distributed import Client, get_task_stream

    from flows.engine import DaskRunner
    from flows.pipeline import pipeline

    # each run embeds every text itself (a cache of its own), in shards of 64 rows
    profile = small_profile(tmp_path, tmp_path) + [
        "data.cap_per_source=25", "data.max_test=60", "embed.shard_rows=64", "select.methods=[tsds,random]",
        "track.enabled=false",
    ]
    runs = {}
    for name in ("threads", "dask"):
        params = load_params(None, profile + [f"embed.cache_dir={tmp_path / name / 'cache'}"])
        run = pipeline if name == "threads" else pipeline.with_options(task_runner=DaskRunner(address=cluster.scheduler_address))
        with Client(cluster) as client, get_task_stream(client) as stream:
            records = run(params=params, data_dir=str(tmp_path / name / "data"), out_dir=str(tmp_path / name / "out"))
        runs[name] = (stages.Workspace(tmp_path / name / "data"), records, stream.data)
        n_shards = len(stages.embed_shards(params.embed, runs[name][0]))

    (threads, in_process, no_tasks), (dask, on_dask, tasks) = runs["threads"], runs["dask"]
    assert n_shards >= 6 and not no_tasks
    # every task ran on the cluster, on both workers: the shards, then select, finetune and evaluate per run
    assert len(tasks) >= n_shards + 3 * len(on_dask) and len({t["worker"] for t in tasks}) == 2
    assert len(shard_files(tmp_path / "dask" / "cache")) == n_shards
    for ws in (threads, dask):  # the shards were embedded by tasks of their own, and counted
        timing = read_json(ws.timing("embed"))
        assert (timing["shards"], timing["shards_embedded"]) == (n_shards, n_shards) and timing["embedded"] > 0
    for split in stages.SPLITS:
        np.testing.assert_array_equal(np.load(dask.embedding(split)), np.load(threads.embedding(split)))
    assert untimed(on_dask) == untimed(in_process)
    for run in (stages.Run(m, 0.1, 0) for m in ("tsds", "random")):
        pd.testing.assert_frame_equal(pd.read_parquet(dask.selection(run) / "selection.parquet"),
                                      pd.read_parquet(threads.selection(run) / "selection.parquet"))
    np.testing.assert_array_equal(np.load(dask.selection(stages.Run("tsds", 0.1, 0)) / "probs.npy"),
                                  np.load(threads.selection(stages.Run("tsds", 0.1, 0)) / "probs.npy"))


def test_training_in_a_dask_worker_gives_the_in_process_model_byte_for_byte(cluster, tmp_path):
    """A Dask worker has one BLAS thread, this process as many as it has cores; a logistic
    regression on 20 labels sums in another order with two threads. The numeric stages run with
    a fixed number of threads, so where a model is trained does not change it."""
    import joblib
    from distributed import Client

    from taskselect.config import FinetuneParams
    from taskselect.data import Benchmark
    from taskselect.io import write_npy, write_parquet

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(2000, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = np.argmax(vectors @ rng.normal(size=(384, 20)) + 0.5 * rng.gumbel(size=(2000, 20)), axis=1)
    pool = pd.DataFrame({"id": [f"r{i}" for i in range(2000)], "text": "t", "label": [f"l{c}" for c in labels],
                         "source": "s"})
    run = stages.Run("full", 1.0, 0)
    workspaces = {}
    for name in ("here", "worker"):
        ws = workspaces[name] = stages.Workspace(tmp_path / name)
        Benchmark("synthetic", pool, pool.head(10), pool.tail(10), sorted(pool["label"].unique())).save(ws.prepared)
        for split, rows in (("pool", slice(None)), ("query", slice(0, 10)), ("test", slice(-10, None))):
            write_npy(ws.embedding(split), vectors[rows])
        write_parquet(ws.selection(run) / "selection.parquet",
                      pd.DataFrame({"pool_row": np.arange(2000), "label": pool["label"], "count": 1}))

    stages.finetune(FinetuneParams(), run, workspaces["here"])
    with Client(cluster) as client:
        client.submit(stages.finetune, FinetuneParams(), run, workspaces["worker"], pure=False).result()
    here, there = (workspaces[name].model(run) / "head.joblib" for name in ("here", "worker"))
    if here.read_bytes() != there.read_bytes():  # say where they differ: the fit, or only the file
        models = [joblib.load(path) for path in (here, there)]
        assert models[0].history_ == models[1].history_
        np.testing.assert_array_equal(models[0]._model.coef_, models[1]._model.coef_)
        for ours, theirs in ((models[0], models[1]), (models[0]._model, models[1]._model)):
            assert sorted(vars(ours)) == sorted(vars(theirs))  # no attribute set on one side only
    assert here.read_bytes() == there.read_bytes()


def test_a_task_on_a_dask_worker_uses_the_workers_threads_not_the_machines_cores(cluster):
    """auto cross-validates its candidates in usable_cores() threads (select.auto.workers 0): on a
    single-threaded worker that is one, whatever the cores of the machine; here, every core."""
    import os

    from distributed import Client

    from taskselect.threads import usable_cores

    with Client(cluster) as client:
        assert client.submit(usable_cores, pure=False).result() == 1
    assert usable_cores() == len(os.sched_getaffinity(0))
