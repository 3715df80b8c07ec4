"""Recording a pipeline run in MLflow: a parent run, a child run per selection."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from taskselect.config import Params

log = logging.getLogger(__name__)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'select': {'tsds': {'alpha': 0.9}}} -> {'select.tsds.alpha': 0.9}."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def experiment_name(params: Params) -> str:
    return params.track.experiment or f"taskselect-{params.data.task_name}"


def _artifact_root(tracking_uri: str) -> str | None:
    """Keep a local SQLite store's artifacts beside it, not wherever the process started."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme != "sqlite":
        return None
    db = Path(tracking_uri.removeprefix("sqlite:///"))
    return (db.resolve().parent / "mlartifacts").as_uri()


def log_pipeline(params: Params, records: list[dict], results_file: Path | None = None,
                 tags: dict[str, str] | None = None) -> str:
    """Log params and one child run per record; return the parent run id."""
    import mlflow

    logging.getLogger("alembic").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(params.track.tracking_uri)
    name = experiment_name(params)
    if mlflow.get_experiment_by_name(name) is None:
        mlflow.create_experiment(name, artifact_location=_artifact_root(params.track.tracking_uri))
    mlflow.set_experiment(name)
    with mlflow.start_run(run_name=f"pipeline-{params.data.task_name}", tags=tags) as parent:
        mlflow.log_params(flatten(params.model_dump(mode="json")))
        if results_file is not None:
            mlflow.log_artifact(str(results_file))
        for record in records:
            with mlflow.start_run(
                run_name=f"{record['method']}-{record['budget_label']}-{record['seed']}", nested=True,
                tags={"method": record["method"], "budget": record["budget_label"]},
            ):
                mlflow.log_params({k: record[k] for k in ("method", "budget", "seed", "trainer")})
                mlflow.log_metrics({
                    **{k: float(record[k]) for k in (
                        "f1_macro", "f1_micro", "accuracy", "n_selected", "n_unique", "n_on_task", "target_share",
                        "train_seconds",
                    )},
                    "f1_macro_ci_low": record["f1_macro_ci"][0], "f1_macro_ci_high": record["f1_macro_ci"][1],
                })
    log.info("logged to MLflow experiment %r, run %s", name, parent.info.run_id)
    return parent.info.run_id
