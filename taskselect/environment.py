"""The process set-up every entry point makes once, before it imports Prefect, MLflow or a model:
`taskselect` (cli.main, which DVC's stage commands go through), `python -m flows.serve`, and the
tests (conftest.py). Importing a taskselect module changes nothing in the process."""

from __future__ import annotations

import logging
import os
import sys

SETTINGS = {
    # Models come from installed packages; a name that is not a local path must never reach a hub.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    # A dead tracking server should fail a log attempt in seconds, not after minutes of retries.
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # Core modules log to the 'taskselect' logger; Prefect forwards extra loggers to a run's
    # logs (and the UI) only if told before it is imported.
    "PREFECT_LOGGING_EXTRA_LOGGERS": "taskselect",
    # ... and the same core code runs outside flow runs (DVC's stage commands, the bench, export):
    # there its records go to the console only, without a warning per record.
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    # The temporary local server's telemetry heartbeat has no network here, and its write races
    # the server's start-up on SQLite ("database is locked" tracebacks in every run).
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # `taskselect run` without a Prefect API starts a temporary server; Prefect's 20 s for its
    # start-up is too short on a loaded 2-core machine (the run then fails before any stage).
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
}


class _UserErrorsInOneLine(logging.Filter):
    """A TaskselectError (bad input or configuration) says everything in its one line: a flow
    run's log keeps Prefect's line about it but not the traceback (the command prints it once,
    as its `error:` line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from taskselect.errors import TaskselectError

        if record.exc_info and isinstance(record.exc_info[1], TaskselectError):
            record.exc_info, record.exc_text = None, None
        return True


_ONE_LINE = _UserErrorsInOneLine()


def configure() -> None:
    """Set the environment above (values already set win), pin BLAS to one thread for the
    process (see taskselect.threads), let the 'taskselect' logger pass INFO records on, and keep
    user errors to one line in Prefect's task and flow run logs. Call it in the main thread."""
    from taskselect.threads import NUMERIC_THREADS, pin_blas

    for name, value in SETTINGS.items():
        os.environ.setdefault(name, value)
    if not sys.stderr.isatty():
        # A progress bar redrawn ten times a second fills a log file or CI log with lines; there
        # one redraw in 30 s still shows a long step moving (tqdm reads TQDM_<argument> defaults).
        os.environ.setdefault("TQDM_MININTERVAL", "30")
    # Not a default a user may override: libraries loaded from here on, and child processes
    # (Dask workers, DVC's stage commands), start their BLAS at this count.
    os.environ["OPENBLAS_NUM_THREADS"] = str(NUMERIC_THREADS)
    pin_blas()  # the libraries already loaded (the main thread can still change them)
    logging.getLogger("taskselect").setLevel(logging.INFO)
    for name in ("prefect.task_runs", "prefect.flow_runs"):
        logging.getLogger(name).addFilter(_ONE_LINE)  # the same filter twice is added once
