"""One Prefect task per pipeline stage; the work itself is in taskselect.stages.

embed and index are cached (tasks/caching.py), and embed's shards fan out over the task runner
(embed_in_shards); the steps that talk to other services (DVC's lock, an MLflow server) retry,
and raise once their retries are spent.
"""

from __future__ import annotations

import time
from pathlib import Path

from prefect import get_run_logger, task
from prefect.futures import PrefectFuture
from prefect.utilities.annotations import quote

from taskselect import stages, tracking, versioning
from taskselect.config import (
    DataParams, EmbedParams, EvaluateParams, FinetuneParams, IndexParams, Params, SelectParams,
)
from taskselect.shards import Shard
from taskselect.stages import Run, Workspace
from tasks.caching import StageInputs, run_cached


@task(name="prepare")
def prepare_data(params: DataParams, ws: Workspace) -> dict:
    return stages.prepare(params, ws)


@task(name="embed-shard", task_run_name="embed-{shard.name}")
def embed_shard(params: EmbedParams, ws: Workspace, shard: Shard) -> dict:
    return stages.embed_shard(params, ws, shard)


@task(name="embed", cache_policy=StageInputs(stage="embed"))
def embed_texts(params: EmbedParams, ws: Workspace, fanned_out: dict | None = None) -> dict:
    return stages.embed(params, ws, fanned_out)


def embed_in_shards(params: EmbedParams, ws: Workspace, upstream: PrefectFuture) -> PrefectFuture:
    """The embed stage with its shards fanned out over the flow's task runner (the workers of a
    Dask cluster, or threads): each shard is embedded into the cache by its own task, then the
    cached `embed` task assembles the splits. Skipped, like `embed`, while its outputs are current.
    """
    logger = get_run_logger()
    fanned_out = None
    if not stages.outputs_current("embed", params, ws):
        started = time.perf_counter()
        shards = stages.embed_shards(params, ws)
        futures = [embed_shard.submit(quote(params), ws, quote(shard), wait_for=[upstream]) for shard in shards]
        done = [future.result() for future in futures]
        fanned_out = {"shards_embedded": sum(d["embedded"] for d in done), "embedded": sum(d["texts"] for d in done),
                      "seconds": time.perf_counter() - started}
        logger.info("embed: %d of %d shards embedded now (%d texts), the rest were cached",
                    fanned_out["shards_embedded"], len(shards), fanned_out["embedded"])
    return run_cached(embed_texts, params, ws, upstream=upstream, fanned_out=fanned_out)


@task(name="index", cache_policy=StageInputs(stage="index"))
def build_pool_index(params: IndexParams, ws: Workspace) -> dict:
    return stages.index(params, ws)


@task(name="select", task_run_name="select-{run.slug}")
def select_rows(params: SelectParams, run: Run, ws: Workspace) -> dict:
    return stages.select(params, run, ws)


@task(name="finetune", task_run_name="finetune-{run.slug}")
def train_model(params: FinetuneParams, run: Run, ws: Workspace) -> dict:
    return stages.finetune(params, run, ws)


@task(name="evaluate", task_run_name="evaluate-{run.slug}")
def evaluate_model(params: EvaluateParams, run: Run, ws: Workspace) -> dict:
    return stages.evaluate(params, run, ws)


@task(name="report")
def write_report(params: Params, ws: Workspace, out_dir: Path) -> list[dict]:
    return stages.report(params, ws, out_dir)


@task(name="record-in-dvc", retries=2, retry_delay_seconds=5)
def record_in_dvc(root: Path, params: Params, name: str) -> dict:
    return versioning.record_run(root, params, name)


@task(name="track", retries=2, retry_delay_seconds=5)
def log_to_mlflow(ws: Workspace, out_dir: Path, tags: dict[str, str], uri: str) -> dict:
    """Log the run to MLflow; returns the parent run's id and where to look at it."""
    run_id = tracking.log_pipeline(ws.root, out_dir, tags, uri=uri)
    return {"run_id": run_id, "link": tracking.run_link(uri, run_id)}
