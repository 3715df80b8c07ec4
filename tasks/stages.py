"""One Prefect task per pipeline stage; the work itself is in taskselect.stages."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from taskselect import stages, tracking
from taskselect.config import (
    DataParams, EmbedParams, EvaluateParams, FinetuneParams, IndexParams, Params, SelectParams,
)
from taskselect.stages import Run, Workspace


@task(name="prepare")
def prepare_data(params: DataParams, ws: Workspace) -> dict:
    return stages.prepare(params, ws)


@task(name="embed")
def embed_texts(params: EmbedParams, ws: Workspace) -> dict:
    return stages.embed(params, ws)


@task(name="index")
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
def write_report(runs: list[Run], ws: Workspace, out_dir: Path) -> list[dict]:
    return stages.report(runs, ws, out_dir)


@task(name="track", retries=2, retry_delay_seconds=5)
def log_to_mlflow(params: Params, records: list[dict], results_file: Path, tags: dict[str, str]) -> str:
    return tracking.log_pipeline(params, records, results_file, tags)
