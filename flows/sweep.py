"""The sweep flow: the pipeline for every target (each over methods x budgets x seeds), one table."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger

from flows.pipeline import pipeline
from taskselect.config import TARGETS, Params, Target
from taskselect.errors import TaskselectError
from tasks import publish_sweep


@flow(name="taskselect-sweep")
def sweep(targets: list[Target] = list(TARGETS), params: Params = Params(), root: str = "data/sweeps") -> dict[str, list[dict]]:
    """Run the pipeline once per target, each as a subflow, and compare them in one table.

    Args:
        targets: Packaged benchmark targets, one pipeline run each.
        params: Parameters of every run; data.target is replaced by each target in turn, and
            select.methods x select.budgets x select.seeds span the selections of each run.
        root: Target T's artifacts go to ROOT/T and its results to ROOT/T/results, never to the
            project's DVC workspace.
    """
    if not targets:
        raise TaskselectError("targets: expected at least one target")
    if len(set(targets)) < len(targets):
        raise TaskselectError(f"targets: {targets} names a target twice")
    if params.data.custom:
        raise TaskselectError("params.data.pool/query/test: a sweep runs the packaged targets; leave them empty")
    logger = get_run_logger()
    records_by_target = {}
    for done, target in enumerate(targets, 1):
        run_params = params.model_copy(deep=True)
        run_params.data.target = target
        workspace = Path(root) / target
        records_by_target[target] = pipeline.with_options(flow_run_name=f"sweep-{target}")(
            params=run_params, data_dir=str(workspace), out_dir=str(workspace / "results")
        )
        logger.info("%d/%d targets done: %s", done, len(targets), target)
    publish_sweep(records_by_target)
    return records_by_target
