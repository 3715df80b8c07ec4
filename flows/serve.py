"""Serve the flows as deployments on a Prefect server, to be run from its UI.

    prefect server start                 # the UI at http://127.0.0.1:4200
    taskselect serve                     # or: python -m flows.serve, from the project directory

Deployments 'taskselect-pipeline/taskselect' and 'taskselect-sweep/taskselect'; their run forms
start from params.yaml. Flow runs execute in this process's directory (data/ is the project's
DVC workspace) until it is stopped (Ctrl-C).
"""

from __future__ import annotations

from taskselect.environment import configure

if __name__ == "__main__":  # run as a program: set up before Prefect is imported
    configure()

from prefect import serve  # noqa: E402
from prefect.deployments.runner import EntrypointType, RunnerDeployment  # noqa: E402
from prefect.settings import PREFECT_API_URL  # noqa: E402

from flows.pipeline import pipeline  # noqa: E402
from flows.sweep import sweep  # noqa: E402
from taskselect.config import Params, load_params  # noqa: E402
from taskselect.errors import TaskselectError  # noqa: E402

DEPLOYMENT = "taskselect"  # the UI lists them as taskselect-pipeline/taskselect and taskselect-sweep/taskselect


def deployments(params: Params) -> list[RunnerDeployment]:
    """Both flows, with `params` as the form's defaults."""
    defaults = {"params": params.model_dump(mode="json")}
    return [
        flow.to_deployment(name=DEPLOYMENT, parameters=defaults, tags=["taskselect"],
                           entrypoint_type=EntrypointType.MODULE_PATH)
        for flow in (pipeline, sweep)
    ]


def main(params: Params | None = None) -> None:
    """Serve both deployments until interrupted; defaults from ./params.yaml unless `params`."""
    if not PREFECT_API_URL.value():
        raise TaskselectError(
            "PREFECT_API_URL is not set: start a server (`prefect server start`) and "
            "`export PREFECT_API_URL=http://127.0.0.1:4200/api` (or `prefect config set PREFECT_API_URL=...`)"
        )
    serve(*deployments(params or load_params()))


if __name__ == "__main__":
    main()
