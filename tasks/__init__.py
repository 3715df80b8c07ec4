"""Prefect tasks: one per stage of taskselect.stages, the cache of the expensive ones, and the
artifacts a flow run publishes."""

import os

# Core modules log to the 'taskselect' logger; Prefect forwards extra loggers to the run's
# logs (and the UI) only if told before it is imported.
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "taskselect")
# The temporary local server's telemetry heartbeat has no network here, and its write races
# the server's start-up on SQLite ("database is locked" tracebacks in every run).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import logging  # noqa: E402

logging.getLogger("taskselect").setLevel(logging.INFO)


class _UserErrorsInOneLine(logging.Filter):
    """A TaskselectError (bad input or configuration) says everything in its one line: the run's
    log keeps Prefect's line about it but not the traceback (the command prints it once, as
    its `error:` line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from taskselect.errors import TaskselectError

        if record.exc_info and isinstance(record.exc_info[1], TaskselectError):
            record.exc_info, record.exc_text = None, None
        return True


for _name in ("prefect.task_runs", "prefect.flow_runs"):
    logging.getLogger(_name).addFilter(_UserErrorsInOneLine())

from tasks.artifacts import publish_results, publish_sweep  # noqa: E402
from tasks.caching import run_cached  # noqa: E402
from tasks.stages import (  # noqa: E402
    build_pool_index, embed_in_shards, embed_texts, evaluate_model, log_to_mlflow, prepare_data, record_in_dvc,
    select_rows, train_model, write_report,
)

__all__ = [
    "build_pool_index", "embed_in_shards", "embed_texts", "evaluate_model", "log_to_mlflow", "prepare_data", "publish_results",
    "publish_sweep", "record_in_dvc", "run_cached", "select_rows", "train_model", "write_report",
]
