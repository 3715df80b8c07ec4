"""One pipeline run as a plan that every front end executes: the Prefect flow, the per-stage
commands (and so DVC), `taskselect run` and the benchmark.

A plan says which selections are made, trained and scored (`steps`), where, and how the
finished run is recorded (`record`: DVC and MLflow, with the same tags whoever ran it).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from taskselect import stages, versioning
from taskselect.config import Params
from taskselect.selectors import Selector, spec
from taskselect.stages import Run, Workspace

log = logging.getLogger(__name__)

# The stages each selection goes through, in order, after prepare -> embed -> index.
RUN_STAGES = ("select", "finetune", "evaluate")


@dataclass(frozen=True)
class RunPlan:
    """Everything a front end needs to execute and record one run.

    params: every parameter of the run.
    ws: the workspace (artifacts); out: where the report goes (results.json, ...).
    runs: the selections, each selected, trained and evaluated (default: every (method,
        budget, seed) of params.select).
    dvc_root: the DVC project whose data/ the workspace is, else None.
    """

    params: Params
    ws: Workspace
    out: Path
    runs: tuple[Run, ...]
    dvc_root: Path | None

    @property
    def dvc_results(self) -> bool:
        """Whether the run writes the DVC project's own results (data/results): a run that does
        is recorded in dvc.lock and saved as a DVC experiment."""
        return versioning.records_run(self.dvc_root, self.out)

    def steps(self) -> list[tuple[str, Run]]:
        """(stage, run) for every selection, in order: its select, finetune and evaluate."""
        return [(stage, run) for run in self.runs for stage in RUN_STAGES]

    def after(self, stage: str, run: Run) -> list[tuple[str, Run]]:
        """The steps that must end before (stage, run) starts: the run's stage before it; for the
        finetune of a method that uses no budget (the full pool), also that method's finetune at
        the plan's first budget with the same seed, whose model stages.finetune then copies
        rather than train the same model twice at the same time."""
        before = [] if stage == RUN_STAGES[0] else [(RUN_STAGES[RUN_STAGES.index(stage) - 1], run)]
        if stage == "finetune" and not spec(run.method).uses_budget:
            first = next(r for r in self.runs if (r.method, r.seed) == (run.method, run.seed))
            before += [("finetune", first)] if first != run else []
        return before


def results_dir(data_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Where a run in `data_dir` writes its results: `out_dir`, by default DATA_DIR/results
    (data/results for the project's workspace), so runs in two data directories never write
    each other's results."""
    return Path(out_dir) if out_dir is not None else Path(data_dir) / "results"


def plan_run(params: Params, data_dir: str | Path = "data", out_dir: str | Path | None = None,
             runs: list[Run] | None = None) -> RunPlan:
    """The plan of a run of `params` in `data_dir` reporting to `out_dir` (default: see
    results_dir; absolute paths: the stages may run in other processes, such as Dask workers)."""
    ws, out = Workspace(Path(data_dir).resolve()), results_dir(data_dir, out_dir).resolve()
    chosen = stages.plan_runs(params.select) if runs is None else runs
    return RunPlan(params, ws, out, tuple(chosen), versioning.dvc_project(ws.root))


def run_stage(plan: RunPlan, stage: str, run: Run, selector: Selector | None = None) -> dict:
    """One step of the plan: stages.<stage> with its parameter section.

    selector: for select, used instead of the one the parameters configure (see stages.select).
    """
    if stage == "select":
        return stages.select(plan.params.select, run, plan.ws, selector=selector, finetune=plan.params.finetune)
    if stage == "finetune":
        return stages.finetune(plan.params.finetune, run, plan.ws)
    if stage == "evaluate":
        return stages.evaluate(plan.params.evaluate, run, plan.ws)
    raise ValueError(f"stage {stage!r}: expected one of {', '.join(RUN_STAGES)}")


def report(plan: RunPlan) -> list[dict]:
    """The report of the plan's runs into plan.out."""
    return stages.report(plan.params, plan.ws, plan.out, list(plan.runs))


def dvc_tags(plan: RunPlan, experiment: str | None = None) -> dict[str, str]:
    """What DVC knows of a finished run, as MLflow tags: dvc.<path> = md5 of each output in
    dvc.lock, and dvc.experiment. A run on the project's own results with an `experiment` name
    first brings params.yaml and dvc.lock up to the run and saves it as that DVC experiment
    (versioning.record_run); any other run in the project's workspace gets dvc.lock's hashes as
    they stand (the case of `dvc repro`, which records its runs itself; under `dvc exp run`, the
    experiment's name DVC gives the stage). Empty outside a DVC project."""
    if plan.dvc_root is None:
        return {}
    tags = {}
    if experiment is not None and plan.dvc_results:
        recorded = versioning.record_run(plan.dvc_root, plan.params, experiment)
        hashes = recorded["hashes"]
        if recorded["experiment"]:
            tags["dvc.experiment"] = recorded["experiment"]
    else:
        hashes = versioning.lock_hashes(plan.dvc_root)
        if name := os.environ.get("DVC_EXP_NAME"):  # a stage of `dvc exp run`: DVC names the experiment
            tags["dvc.experiment"] = name
    return {**{f"dvc.{path}": md5 for path, md5 in hashes.items()}, **tags}


def track(plan: RunPlan, tags: dict[str, str]) -> dict:
    """Log the reported run to MLflow with `tags` (tracking.log_pipeline; a failure raises);
    returns {"run_id", "link"} of the parent run."""
    from taskselect import tracking  # MLflow takes a second to import: not in every stage's process

    uri = tracking.tracking_uri(plan.params.track)
    run_id = tracking.log_pipeline(plan.ws.root, plan.out, tags, uri=uri)
    return {"run_id": run_id, "link": tracking.run_link(uri, run_id)}


def record(plan: RunPlan, tags: dict[str, str] | None = None, experiment: str | None = None) -> dict:
    """Record a finished, reported run: dvc_tags, then `track` with those tags and `tags` (if
    tracking is enabled). A tracking failure only warns, with the command that logs the run
    later: the results are on disk. The Prefect flow runs the same two steps as tasks.

    Returns {"tags": every tag, "mlflow_run": {"run_id", "link"}, or None if not logged}.
    """
    tags = {**(tags or {}), **dvc_tags(plan, experiment)}
    mlflow_run = None
    if plan.params.track.enabled:
        try:
            mlflow_run = track(plan, tags)
        except Exception as exc:  # any failure of the tracking backend must not fail the run
            from taskselect import tracking

            log.warning("%s", tracking.relog_hint(plan.ws.root, plan.out, exc))
    return {"tags": tags, "mlflow_run": mlflow_run}
