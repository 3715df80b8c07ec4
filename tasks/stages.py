"""One Prefect task per pipeline stage; the work itself is in taskselect.stages, and what a run
does after index is its plan's (taskselect.plan).

embed and index are cached (tasks/caching.py), and embed's shards fan out over the task runner
(embed_in_shards); recording the run (DVC's lock, an MLflow server) retries, and raises once its
retries are spent.
"""

from __future__ import annotations

import time

from prefect import get_run_logger, task
from prefect.futures import PrefectFuture
from prefect.utilities.annotations import quote

from taskselect import plan as run_plan
from taskselect import stages
from taskselect.config import DataParams, EmbedParams, IndexParams, SelectParams
from taskselect.plan import RunPlan
from taskselect.shards import Shard
from taskselect.stages import Run, Workspace
from tasks.caching import StageInputs, run_cached


@task(name="prepare")
def prepare_data(params: DataParams, ws: Workspace, select: SelectParams | None = None) -> dict:
    return stages.prepare(params, ws, select)


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


@task(task_run_name="{stage}-{run.slug}")
def run_step(plan: RunPlan, stage: str, run: Run) -> dict:
    """One (stage, run) step of the plan; submitted under the stage's name (select, finetune, evaluate)."""
    return run_plan.run_stage(plan, stage, run)


@task(name="report")
def write_report(plan: RunPlan) -> list[dict]:
    return run_plan.report(plan)


@task(name="record-in-dvc", retries=2, retry_delay_seconds=5)
def record_in_dvc(plan: RunPlan, experiment: str) -> dict[str, str]:
    """The run's DVC tags, saved as DVC experiment `experiment` (taskselect.plan.dvc_tags)."""
    return run_plan.dvc_tags(plan, experiment)


@task(name="track", retries=2, retry_delay_seconds=5)
def log_to_mlflow(plan: RunPlan, tags: dict[str, str]) -> dict:
    """Log the run to MLflow (taskselect.plan.track); returns the parent run's id and where to look at it."""
    return run_plan.track(plan, tags)
