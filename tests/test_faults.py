"""Faults: runs killed with SIGKILL part-way and run again, runs started at once on one workspace,
stage inputs left behind by another run, and the workspace lock that keeps runs apart."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import BIN, ROOT, taskselect, untimed
from taskselect.errors import TaskselectError
from taskselect.lock import LOCK_NAME, workspace_lock

pytestmark = pytest.mark.e2e

# A tiny profile of the real airline benchmark (about 560 pool rows, shards of 32 rows).
TINY = ["data.cap_per_source=40", "data.n_query=20", "data.max_test=60", "select.budgets=[0.1]",
        "select.tsds.max_k=200", "select.tsds.kde_k=100", "embed.shard_rows=32", "track.enabled=false"]


def overrides(*settings: str) -> list[str]:
    return [arg for setting in settings for arg in ("-S", setting)]


def start_run(workspace: Path, cache: Path, env: dict, *extra: str) -> subprocess.Popen:
    """`taskselect run` on the tiny profile in its own process group (killed as a whole)."""
    args = [str(BIN / "taskselect"), "run", "--data-dir", str(workspace / "data"), "--out", str(workspace / "out"),
            *overrides(*TINY, f"embed.cache_dir={cache}"), *extra]
    log = open(workspace / "run.log", "a")
    return subprocess.Popen(args, cwd=workspace, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def kill_when(proc: subprocess.Popen, ready, workspace: Path, timeout: float = 300) -> None:
    """SIGKILL the run (and its children) as soon as ready() holds."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"the run ended before it could be killed: {(workspace / 'run.log').read_text()[-3000:]}"
        assert time.monotonic() < deadline, "timed out waiting to kill the run"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def finished(proc: subprocess.Popen, workspace: Path) -> None:
    assert proc.wait(timeout=600) == 0, (workspace / "run.log").read_text()[-3000:]


def entries(directory: Path) -> list[Path]:
    return [p for p in directory.glob("*") if not p.name.startswith(".")] if directory.is_dir() else []


@pytest.fixture(scope="module")
def reference(api_env, tmp_path_factory):
    """An uninterrupted run, with an embedding cache of its own: like the killed runs, it embeds
    every text itself (a text's vector does not depend on its batch, test_embedding.py, so the
    runs must agree however the kills split the embedding)."""
    workspace = tmp_path_factory.mktemp("reference")
    finished(start_run(workspace, workspace / "cache", api_env), workspace)
    return json.loads((workspace / "out" / "results.json").read_text())


def test_runs_killed_in_embed_select_and_finetune_resume_to_the_uninterrupted_results(api_env, reference, tmp_path):
    cache, data = tmp_path / "cache", tmp_path / "data"
    shards = lambda: list(cache.rglob("shards/*.npy"))  # noqa: E731

    kill_when(start_run(tmp_path, cache, api_env), lambda: len(shards()) >= 3, tmp_path)  # in embed
    assert not (data / "embeddings").exists()
    kill_when(start_run(tmp_path, cache, api_env), lambda: entries(data / "selections"), tmp_path)  # in select
    embed = json.loads((data / "timings" / "embed.json").read_text())
    assert 0 < embed["shards_embedded"] < embed["shards"], embed  # the shards done before the kill were kept
    assert not (tmp_path / "out" / "results.json").exists()
    kill_when(start_run(tmp_path, cache, api_env), lambda: entries(data / "models"), tmp_path)  # in finetune
    assert not (tmp_path / "out" / "results.json").exists()

    embedded_at = (data / "embeddings" / "pool.npy").stat().st_mtime_ns
    finished(start_run(tmp_path, cache, api_env), tmp_path)
    assert untimed(json.loads((tmp_path / "out" / "results.json").read_text())) == untimed(reference)
    # embed and index were complete: the last runs took them as they were
    assert (data / "embeddings" / "pool.npy").stat().st_mtime_ns == embedded_at
    assert json.loads((data / "timings" / "embed.json").read_text()) == embed


def test_a_second_run_on_a_workspace_in_use_is_refused_and_a_run_elsewhere_keeps_its_own_data(
        api_env, tmp_path, embedding_cache):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    # a cache of its own: the run embeds, so it is still running while the others start
    first = start_run(tmp_path / "a", tmp_path / "a" / "cache", api_env, "--target", "airline_sentiment")
    lock = tmp_path / "a" / "data" / LOCK_NAME
    deadline = time.monotonic() + 120
    while not (lock.is_file() and lock.read_text()):
        assert first.poll() is None and time.monotonic() < deadline, (tmp_path / "a" / "run.log").read_text()[-3000:]
        time.sleep(0.05)
    elsewhere = start_run(tmp_path / "b", embedding_cache, api_env, "--target", "trec")

    # The first run is stopped (SIGSTOP, lock held) while the second tries: on an idle machine the
    # tiny run could otherwise finish before the second one gets to the lock.
    os.killpg(first.pid, signal.SIGSTOP)
    try:
        refused = taskselect("run", "--data-dir", str(tmp_path / "a" / "data"), "--out", str(tmp_path / "a" / "other"),
                             "--target", "trec", *overrides(*TINY, f"embed.cache_dir={embedding_cache}"),
                             cwd=tmp_path, env=api_env)
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    assert refused.returncode == 2
    line, = refused.stderr.strip().splitlines()
    assert line.startswith(f"error: {tmp_path / 'a' / 'data'}: in use by pid {first.pid} on ")
    assert "taskselect run --data-dir" in line and "--target airline_sentiment" in line

    finished(first, tmp_path / "a")
    finished(elsewhere, tmp_path / "b")
    assert not (tmp_path / "a" / "other").exists() and not lock.exists()
    labels = {}
    for name, task in (("a", "airline_sentiment"), ("b", "trec")):
        assert json.loads((tmp_path / name / "out" / "run.json").read_text())["task"] == task
        assert json.loads((tmp_path / name / "data" / "prepared" / "benchmark.json").read_text())["task"] == task
        records = json.loads((tmp_path / name / "out" / "results.json").read_text())
        labels[task] = {label for r in records for label in r["f1_per_class"]}
    assert labels["airline_sentiment"] == {"negative", "neutral", "positive"}
    assert labels["trec"] and all(label.startswith("trec:") for label in labels["trec"])


HOLD = """
import sys, time
from taskselect.lock import workspace_lock
with workspace_lock(sys.argv[1], "a test holding the lock"):
    print("held", flush=True)
    time.sleep(600)
"""


def test_the_lock_names_its_holder_nests_in_its_process_and_dies_with_it(tmp_path):
    data = tmp_path / "data"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(data)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(TaskselectError, match=rf"{data}: in use by pid {holder.pid} on .* since .* \(a test holding the lock\)"):
            with workspace_lock(data):
                pass
        stage = taskselect("select", "--data-dir", str(data), cwd=tmp_path)  # a stage command, as `dvc repro` runs it
        line, = stage.stderr.strip().splitlines()
        assert stage.returncode == 2 and line.startswith(f"error: {data}: in use by pid {holder.pid} on ")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # the OS released it with the process: no stale lock, though the file it wrote is still there
    assert (data / LOCK_NAME).is_file()
    with workspace_lock(data, "outer"):
        with workspace_lock(data, "inner"):  # the same process: nests
            assert json.loads((data / LOCK_NAME).read_text())["command"] == "outer"
        assert (data / LOCK_NAME).is_file()
    assert not (data / LOCK_NAME).exists()
    with workspace_lock(tmp_path / "new"):
        pass
    assert not (tmp_path / "new").exists()  # a run refused before writing leaves no trace


def test_a_stage_refuses_inputs_left_by_another_run_and_names_the_command_that_remakes_them(tmp_path, embedding_cache):
    """An interrupted run left a new, larger data/prepared (prepare finished) beside the old
    embeddings (embed did not): selecting would map the old vectors onto the new rows."""
    from taskselect import stages
    from taskselect.config import load_params

    ws = stages.Workspace(tmp_path / "data")
    params = load_params(None, [*TINY, f"embed.cache_dir={embedding_cache}", "data.cap_per_source=30"])
    stages.prepare(params.data, ws)
    stages.embed(params.embed, ws)
    stages.index(params.index, ws)
    stages.prepare(params.data.model_copy(update={"cap_per_source": 40}), ws)  # then killed before embed

    refused = taskselect("select", "--data-dir", str(ws.root), *overrides(*TINY), cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr
    line, = refused.stderr.strip().splitlines()
    assert line.startswith(f"error: {ws.embeddings}: made from another {ws.prepared / 'pool.parquet'} than the one there now")
    assert line.endswith(f"remake it: taskselect embed --data-dir {ws.root}")
    assert not (ws.root / "selections").exists()
    # embeddings without a record (an older taskselect, or made by hand) are held to their row counts
    (ws.embeddings / "made_from.json").unlink()
    rows = len(np.load(ws.embedding("pool"), mmap_mode="r")), len(pd.read_parquet(ws.prepared / "pool.parquet"))
    with pytest.raises(TaskselectError, match=f"pool.npy: {rows[0]} rows, but .*pool.parquet has {rows[1]}"):
        stages.index(params.index, ws)

    stages.embed(params.embed, ws)
    run = stages.Run("tsds", 0.1, 0)
    with pytest.raises(TaskselectError, match=f"{ws.index.parent}: made from another .*pool.npy.*taskselect index"):
        stages.select(params.select, run, ws)  # the index is the old embeddings'
    stages.index(params.index, ws)
    stages.select(params.select, run, ws)
    stages.finetune(params.finetune, run, ws)
    stages.select(params.select.model_copy(update={"tsds": params.select.tsds.model_copy(update={"alpha": 0.5})}), run, ws)
    with pytest.raises(TaskselectError, match=f"{ws.model(run)}: made from another .*selection.parquet.*"
                                              f"taskselect finetune --method tsds --budget 0.1 --seed 0"):
        stages.evaluate(params.evaluate, run, ws)  # the model was trained on the previous selection
    stages.finetune(params.finetune, run, ws)
    # `dvc repro --force` removes a stage's outputs before running it: a prepare that then fails
    # leaves the later stages without data/prepared, and each names the command that remakes it
    shutil.move(ws.prepared, tmp_path / "prepared")
    for stage in (lambda: stages.evaluate(params.evaluate, run, ws), lambda: stages.report(params, ws, tmp_path / "out")):
        with pytest.raises(TaskselectError, match=rf"{ws.prepared / 'benchmark.json'}: not found; run `taskselect prepare` first"):
            stage()
    # an evaluation whose selection was removed since
    shutil.move(tmp_path / "prepared", ws.prepared)
    stages.evaluate(params.evaluate, run, ws)
    shutil.rmtree(ws.selection(run))
    with pytest.raises(TaskselectError, match=rf"{ws.selection(run) / 'selection.json'}: selection not found; run `taskselect select`"):
        stages.report(params, ws, tmp_path / "out", runs=[run])
    # a pool whose labels alone changed (benchmarks/label_noise.py) has the same texts: its
    # embeddings and index, refused until recorded as made from it, are then accepted
    pool = pd.read_parquet(ws.prepared / "pool.parquet")
    pool.assign(label=pool["label"].to_numpy()[::-1]).to_parquet(ws.prepared / "pool.parquet")
    with pytest.raises(TaskselectError, match=f"{ws.embeddings}: made from another"):
        stages.check_made_from("embeddings", ws)
    for kind in ("embeddings", "index"):
        stages.record_made_from(kind, ws)
        stages.check_made_from(kind, ws)


def test_ctrl_c_stops_a_run_when_its_steps_end_and_a_second_ctrl_c_at_once(api_env, tmp_path):
    """Ctrl-C while a long step runs (one embedding shard of 2,800 texts, tens of seconds): one
    line says the run stops when its running steps end; a second Ctrl-C stops it at once, exit
    code 130, with nothing half-written and the workspace free for the next run."""
    proc = start_run(tmp_path, tmp_path / "cache", api_env, "-S", "data.cap_per_source=200", "-S", "embed.shard_rows=100000")
    log = tmp_path / "run.log"
    deadline = time.monotonic() + 300
    while "embedding pool" not in log.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGINT)
    while "interrupted: the run stops when its running steps end" not in log.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)
    assert proc.poll() is None  # the shard is still being embedded
    os.kill(proc.pid, signal.SIGINT)
    stopped = time.monotonic()
    assert proc.wait(timeout=60) == 130, log.read_text()[-3000:]
    assert time.monotonic() - stopped < 10, "the second Ctrl-C did not stop the run at once"
    assert log.read_text().count("interrupted:") == 1
    assert not (tmp_path / "data" / "embeddings").exists() and not (tmp_path / "out" / "results.json").exists()
    with workspace_lock(tmp_path / "data", "the next run"):
        pass
