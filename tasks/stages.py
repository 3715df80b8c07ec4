"""One Prefect task per pipeline stage; the work itself is in taskselect.stages."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from taskselect import stages, tracking, versioning
from taskselect.config import (
    DataParams, EmbedParams, FinetuneParams, IndexParams, Params, SelectParams,
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
def evaluate_model(run: Run, ws: Workspace) -> dict:
    return stages.evaluate(run, ws)


@task(name="report")
def write_report(params: Params, ws: Workspace, out_dir: Path) -> list[dict]:
    return stages.report(params, ws, out_dir)


@task(name="record-in-dvc")
def record_in_dvc(root: Path, params: Params, name: str) -> dict:
    return versioning.record_run(root, params, name)


@task(name="track")
def log_to_mlflow(ws: Workspace, out_dir: Path, tags: dict[str, str]) -> str | None:
    return tracking.log_pipeline_or_warn(ws.root, out_dir, tags)
