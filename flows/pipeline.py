"""The pipeline flow: prepare -> embed -> index -> (select -> finetune -> evaluate) per run -> report,
then the run is recorded in DVC and MLflow and its comparison published as Prefect artifacts."""

from __future__ import annotations


from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.utilities.annotations import quote

from flows.engine import task_runner
from taskselect import tracking
from taskselect.config import Params
from taskselect.environment import configure
from taskselect.lock import workspace_lock
from taskselect.plan import RUN_STAGES, plan_run, results_dir
from taskselect.validate import check_params
from taskselect.versioning import check_recordable
from tasks import (
    build_pool_index, embed_in_shards, log_to_mlflow, prepare_data, publish_results, record_in_dvc, run_cached, run_step,
    write_report,
)


@flow(name="taskselect-pipeline", task_runner=task_runner())
def pipeline(params: Params = Params(), data_dir: str = "data", out_dir: str | None = None) -> list[dict]:
    """Select training data for a task with each method, train on it, and compare macro-F1.

    Args:
        params: Every parameter of the run, one section per stage; select.methods x select.budgets
            x select.seeds are the selections made and scored.
        data_dir: Root of the artifacts, relative to where the flow runs. 'data' is the project's
            DVC workspace: a run there is also recorded as a DVC experiment.
        out_dir: Where results.json, summary.csv, metrics.json and f1_vs_budget.png are written;
            by default DATA_DIR/results (data/results).
    """
    configure()  # a deployment's run executes in a fresh process: core INFO logs must reach the run's logs
    check_params(params)  # what the form's types cannot say (a model on disk, a writable cache), as `taskselect run`
    logger = get_run_logger()
    plan = plan_run(params, data_dir, out_dir)
    check_recordable(plan.ws.root, plan.out)  # a run DVC could not record at its end is refused now
    ws = plan.ws
    logger.info("%s: %d selections (methods %s x budgets %s x seeds %s), artifacts in %s",
                params.data.task_name, len(plan.runs), params.select.methods, params.select.budgets,
                params.select.seeds, ws.root)

    # One run at a time in a workspace; the run holds the lock, not its tasks (on Dask workers
    # they write on its behalf), and `taskselect run` has taken it already: this nests.
    with workspace_lock(ws.root, f"taskselect-pipeline flow run {flow_run.name!r}"):
        prepared = prepare_data.submit(params.data, ws, quote(params.select))
        prepared.result()
        embedded = embed_in_shards(params.embed, ws, upstream=prepared)
        indexed = run_cached(build_pool_index, params.index, ws, upstream=embedded)

        # quote(): Prefect links a task's arguments to earlier results by object identity, and strings
        # such as 'tsds' in every Run would link each stage to all others; wait_for gives the real order.
        steps: dict = {}
        for stage, run in plan.steps():
            steps[stage, run] = run_step.with_options(name=stage).submit(
                quote(plan), stage, quote(run), wait_for=[steps[step] for step in plan.after(stage, run)] or [indexed])
        for done, run in enumerate(plan.runs, 1):
            for stage in RUN_STAGES:  # a stage that failed raises its own error here; those after it never ran
                metrics = steps[stage, run].result()
            if "skipped" in metrics:  # an unlabelled pool
                logger.info("%d/%d selected: %s (%s)", done, len(plan.runs), run.slug, metrics["skipped"])
            else:
                logger.info("%d/%d scored: %s macro-F1 %.4f", done, len(plan.runs), run.slug, metrics["f1_macro"])
        records = write_report(quote(plan), wait_for=[steps[RUN_STAGES[-1], run] for run in plan.runs])

        # taskselect.plan.record's two steps, each a task that retries
        tags = {"prefect_flow_run_id": str(flow_run.id)}
        if plan.dvc_root is not None:
            tags |= record_in_dvc(quote(plan), flow_run.name)
        mlflow_run = None
        if params.track.enabled:
            tracked = log_to_mlflow(quote(plan), tags, return_state=True)
            if tracked.is_completed():
                mlflow_run = tracked.result()
            else:  # the results are on disk: a tracking server that stays down must not fail the run
                failure = tracked.result(raise_on_failure=False)
                logger.warning(tracking.relog_hint(data_dir, results_dir(data_dir, out_dir), failure))
        publish_results(records, plan.out, mlflow_run)
        logger.info("results in %s", plan.out)
    return records
