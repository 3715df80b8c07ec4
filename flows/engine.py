"""Where a flow's tasks run: threads in this process by default, or the workers of a Dask
cluster (an existing one at an address, or a local one started for the run).

On a cluster every task runs in a worker process, so the workspace must be on a file system
the workers share, at the same path (the pipeline passes absolute paths), and the workers of
an existing cluster need PREFECT_API_URL set to the server the flow runs against.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

from prefect.logging import get_logger
from prefect.settings import get_current_settings
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.utilities.annotations import quote
from prefect_dask import DaskTaskRunner

from taskselect.errors import TaskselectError

IN_PROCESS_THREADS = 2

logger = get_logger("flows")
SERVER_LOG = "temporary-server.log"


def api_url() -> str:
    """The Prefect API this process talks to: $PREFECT_API_URL, or the temporary server Prefect
    starts for a run without one (started here if it is not yet).

    The temporary server writes to $PREFECT_HOME/temporary-server.log, not to the command's
    terminal: stopped at the command's exit, its services log tracebacks of a write they were
    cancelled in (Prefect's task run recorder, seen at the end of a failed run), which are
    not the run's and would break its one `error:` line."""
    settings = get_current_settings()
    if settings.api.url:  # check_api asked whether it answers
        return settings.api.url
    from prefect.server.api.server import SubprocessASGIServer  # seconds to import: only without a server

    server = SubprocessASGIServer()  # one per process: the one the flow run uses
    if not server.running:
        settings.home.mkdir(parents=True, exist_ok=True)
        log = settings.home / SERVER_LOG
        with output_to(log):
            server.start()
        logger.info("Prefect: a temporary server for this command at %s, its log in %s", server.api_url, log)
    return server.api_url


def check_api() -> None:
    """Refuse a PREFECT_API_URL where no server answers (asked by Prefect's own client: its key,
    certificates and retries) now, before the run reads its data: a run against a server that is
    not up would fail in that client with tracebacks, after its first task was submitted."""
    from prefect.client.orchestration import get_client

    if not (url := get_current_settings().api.url):
        return
    with get_client(sync_client=True) as client:
        failure = client.api_healthcheck()
    if failure is not None:
        raise TaskselectError(
            f"PREFECT_API_URL {url}: no Prefect server answers there ({type(failure).__name__}); start one "
            "(`make prefect-ui`, or `prefect server start`), or unset PREFECT_API_URL for a server of the run's own"
        )


@contextmanager
def output_to(path: Path):
    """Inside the block, this process's stdout and stderr (file descriptors 1 and 2) append to
    `path`: a child process started in it keeps writing there."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)


class DaskRunner(DaskTaskRunner):
    """prefect-dask's runner, with two fixes.

    A local cluster's workers are told the run's Prefect API (without it each would start a
    temporary server of its own, and its task runs would not appear in the run's).

    It takes quote()d task arguments: the flow quotes them so that Prefect does not link tasks
    through shared strings, but quote is a tuple, and Dask rebuilds the tuples it finds in
    arguments as plain ones. The links are made before a task is submitted, so the runner
    hands Dask the arguments themselves.
    """

    def __enter__(self):
        if self.address is None:  # a local cluster: its workers report to this run's Prefect API
            self.cluster_kwargs = {**self.cluster_kwargs, "env": {"PREFECT_API_URL": api_url()}}
        return super().__enter__()

    def submit(self, task, parameters, wait_for=None, dependencies=None):
        parameters = {k: v.unquote() if isinstance(v, quote) else v for k, v in parameters.items()}
        return super().submit(task, parameters, wait_for=wait_for, dependencies=dependencies)


def task_runner(cluster: str | None = None, workers: int | None = None) -> TaskRunner:
    """The task runner for a run.

    cluster: address of a running Dask scheduler (tcp://host:8786) to send the tasks to.
    workers: start a local Dask cluster of this many single-threaded worker processes.
    Neither: IN_PROCESS_THREADS threads in this process.
    """
    if cluster is not None and workers is not None:
        raise TaskselectError("--cluster and --workers: give one (an existing cluster, or a local one to start)")
    if workers is not None and workers < 1:
        raise TaskselectError(f"--workers {workers}: expected at least 1 worker process")
    if cluster is not None:
        if not get_current_settings().api.url:  # a temporary server of this process: the workers could not reach it
            raise TaskselectError("--cluster: its workers report to the Prefect server of the run; start one "
                                  "(`make prefect-ui`) and set PREFECT_API_URL here and on the workers")
        return DaskRunner(address=cluster)
    if workers is not None:
        return DaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True})
    return ThreadPoolTaskRunner(max_workers=IN_PROCESS_THREADS)
