"""Prefect's cache for the expensive stages (embed, index), keyed by what their outputs depend on.

Prefect's default keys hash a task's arguments; here those are parameters and a Workspace, a
path, so a key would not change when the files under it do. `StageInputs` hashes the content
of the files the stage reads instead (its code included). A key alone still cannot see the stage's *outputs*: run A
(airline) embeds, run B (trec) overwrites data/embeddings, run C (airline again) would be a
cache hit and keep trec's vectors. So `run_cached` refreshes the cache unless the outputs in the
workspace are the ones the stage made from its current inputs (taskselect.stages.outputs_current).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefect import Task
from prefect.cache_policies import TASK_SOURCE, CachePolicy
from prefect.futures import PrefectFuture
from prefect.utilities.hashing import hash_objects
from pydantic import BaseModel

from taskselect import stages
from taskselect.stages import Workspace

# Task results and cache records live beside the artifacts they describe (data/prefect-results
# for the project's workspace), so they are shared by every run on that workspace, served or not.
RESULTS_DIR = "prefect-results"


@dataclass
class StageInputs(CachePolicy):
    """Key: the task's source, the stage's parameters, and the content of the files it reads.

    The task must take the stage's parameters as `params` and the Workspace as `ws`.
    """

    stage: str = ""

    def compute_key(self, task_ctx, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs) -> str:
        made_from = stages.stage_inputs(self.stage, inputs["params"], inputs["ws"])
        source = TASK_SOURCE.compute_key(task_ctx, inputs, flow_parameters)
        return hash_objects(self.stage, source, made_from, raise_on_failure=True)


def run_cached(task: Task, params: BaseModel, ws: Workspace, upstream: PrefectFuture, **extra) -> PrefectFuture:
    """Run a StageInputs-cached stage after `upstream` and wait for it (its errors raise here).

    A cache hit is taken only while the workspace still holds the outputs made from the current
    inputs; otherwise the stage runs and its cache entry is rewritten. `extra`: further
    arguments of the task, outside its cache key.
    """
    stage = task.cache_policy.stage
    current = stages.outputs_current(stage, params, ws)
    future = task.with_options(refresh_cache=not current, result_storage=ws.root.resolve() / RESULTS_DIR).submit(
        params, ws, wait_for=[upstream], **extra
    )
    future.result()
    return future
