"""Prefect tasks: one per stage of taskselect.stages, the cache of the expensive ones, and the
artifacts a flow run publishes. Entry points call taskselect.environment.configure() before
importing this package (it imports Prefect)."""

from tasks.artifacts import publish_results, publish_sweep
from tasks.caching import run_cached
from tasks.stages import (
    build_pool_index, embed_in_shards, embed_texts, log_to_mlflow, prepare_data, record_in_dvc, run_step, write_report,
)

__all__ = [
    "build_pool_index", "embed_in_shards", "embed_texts", "log_to_mlflow", "prepare_data", "publish_results",
    "publish_sweep", "record_in_dvc", "run_cached", "run_step", "write_report",
]
