"""The pipeline flow: prepare -> embed -> index -> (select -> finetune -> evaluate) per run -> report."""

from __future__ import annotations

from pathlib import Path

import tasks  # noqa: F401  (first: it configures Prefect's logging before prefect is imported)
from prefect import flow
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from taskselect.config import Params
from taskselect.stages import Workspace, plan_runs
from tasks import (
    build_pool_index, embed_texts, evaluate_model, log_to_mlflow, prepare_data, select_rows,
    train_model, write_report,
)


@flow(name="taskselect-pipeline", task_runner=ThreadPoolTaskRunner(max_workers=2))
def pipeline(params: Params = Params(), data_dir: str = "data", out_dir: str = "data/results") -> list[dict]:
    """Select training data for a task with each method, train on it, and compare macro-F1."""
    ws = Workspace(Path(data_dir))
    prepared = prepare_data(params.data, ws)
    embedded = embed_texts(params.embed, ws, wait_for=[prepared])
    indexed = build_pool_index(params.index, ws, wait_for=[embedded])

    runs = plan_runs(params.select)
    evaluated = []
    for run in runs:
        selected = select_rows.submit(params.select, run, ws, wait_for=[indexed])
        trained = train_model.submit(params.finetune, run, ws, wait_for=[selected])
        evaluated.append(evaluate_model.submit(params.evaluate, run, ws, wait_for=[trained]))

    records = write_report(runs, ws, Path(out_dir), wait_for=evaluated)
    if params.track.enabled:
        log_to_mlflow(params, records, Path(out_dir) / "results.json", {"prefect_flow_run_id": str(flow_run.id)})
    return records
