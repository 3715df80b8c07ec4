"""The pipeline flow: prepare -> embed -> index -> (select -> finetune -> evaluate) per run -> report,
then the run is recorded in DVC and MLflow and its comparison published as Prefect artifacts."""

from __future__ import annotations

from pathlib import Path

import tasks  # noqa: F401  (first: it configures Prefect's logging before prefect is imported)
from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.utilities.annotations import quote

from flows.engine import task_runner
from taskselect import tracking
from taskselect.config import Params
from taskselect.lock import workspace_lock
from taskselect.stages import Workspace, plan_runs
from taskselect.versioning import dvc_project
from tasks import (
    build_pool_index, embed_in_shards, evaluate_model, log_to_mlflow, prepare_data, publish_results, record_in_dvc,
    run_cached, select_rows, train_model, write_report,
)


@flow(name="taskselect-pipeline", task_runner=task_runner())
def pipeline(params: Params = Params(), data_dir: str = "data", out_dir: str = "data/results") -> list[dict]:
    """Select training data for a task with each method, train on it, and compare macro-F1.

    Args:
        params: Every parameter of the run, one section per stage; select.methods x select.budgets
            x select.seeds are the selections made and scored.
        data_dir: Root of the artifacts, relative to where the flow runs. 'data' is the project's
            DVC workspace: a run there is also recorded as a DVC experiment.
        out_dir: Where results.json, summary.csv, metrics.json and f1_vs_budget.png are written.
    """
    logger = get_run_logger()
    # absolute: the tasks may run in other processes (Dask workers)
    ws, out = Workspace(Path(data_dir).resolve()), Path(out_dir).resolve()
    runs = plan_runs(params.select)
    logger.info("%s: %d selections (methods %s x budgets %s x seeds %s), artifacts in %s",
                params.data.task_name, len(runs), params.select.methods, params.select.budgets,
                params.select.seeds, ws.root.resolve())

    # One run at a time in a workspace; the run holds the lock, not its tasks (on Dask workers
    # they write on its behalf), and `taskselect run` has taken it already: this nests.
    with workspace_lock(ws.root, f"taskselect-pipeline flow run {flow_run.name!r}"):
        prepared = prepare_data.submit(params.data, ws)
        prepared.result()
        embedded = embed_in_shards(params.embed, ws, upstream=prepared)
        indexed = run_cached(build_pool_index, params.index, ws, upstream=embedded)

        # quote(): Prefect links a task's arguments to earlier results by object identity, and strings
        # such as 'tsds' in every Run would link each stage to all others; wait_for gives the real order.
        chains = []
        for run in runs:
            selected = select_rows.submit(quote(params.select), quote(run), ws, wait_for=[indexed])
            trained = train_model.submit(quote(params.finetune), quote(run), ws, wait_for=[selected])
            chains.append((run, [selected, trained, evaluate_model.submit(quote(params.evaluate), quote(run), ws, wait_for=[trained])]))
        for done, (run, chain) in enumerate(chains, 1):
            for future in chain:  # a stage that failed raises its own error here; those after it never ran
                metrics = future.result()
            logger.info("%d/%d scored: %s macro-F1 %.4f", done, len(chains), run.slug, metrics["f1_macro"])
        records = write_report(quote(params), ws, out, wait_for=[chain[-1] for _, chain in chains])

        tags = {"prefect_flow_run_id": str(flow_run.id)}
        dvc_root = dvc_project(data_dir)
        if dvc_root is not None and out == dvc_root / "data" / "results":
            recorded = record_in_dvc(dvc_root, quote(params), flow_run.name)
            tags |= {f"dvc.{path}": md5 for path, md5 in recorded["hashes"].items()}
            if recorded["experiment"]:
                tags["dvc.experiment"] = recorded["experiment"]
        mlflow_run = None
        if params.track.enabled:
            tracked = log_to_mlflow(ws, out, tags, tracking.tracking_uri(params.track), return_state=True)
            if tracked.is_completed():
                mlflow_run = tracked.result()
            else:  # the results are on disk: a tracking server that stays down must not fail the run
                logger.warning(tracking.relog_hint(data_dir, out_dir, tracked.result(raise_on_failure=False)))
        publish_results(records, out, mlflow_run)
        logger.info("results in %s", out)
    return records
