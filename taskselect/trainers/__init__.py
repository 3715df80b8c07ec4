"""Trainers: fit a classifier on a selection. `head` is fast; `transformer` fine-tunes MiniLM."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from taskselect.config import FinetuneParams
from taskselect.errors import TaskselectError
from taskselect.trainers.base import Consumes, Examples, Trainer
from taskselect.trainers.head import HeadTrainer

# Imported on first use: the transformer trainer pulls in torch (seconds), the head does not.
TRAINERS = {
    "head": "taskselect.trainers.head:HeadTrainer",
    "transformer": "taskselect.trainers.transformer:TransformerTrainer",
}


def trainer_class(name: str) -> type:
    if name not in TRAINERS:
        raise TaskselectError(f"finetune.trainer {name!r}: expected one of {', '.join(TRAINERS)}")
    module, _, cls = TRAINERS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def make_trainer(params: FinetuneParams, seed: int) -> Trainer:
    return trainer_class(params.trainer)(**getattr(params, params.trainer).model_dump(), seed=seed)


def load_trainer(name: str, directory: str | os.PathLike) -> Trainer:
    if not Path(directory).is_dir():
        raise TaskselectError(f"{directory}: no trained model; run `taskselect finetune` first")
    return trainer_class(name).load(directory)


__all__ = ["Consumes", "Examples", "HeadTrainer", "TRAINERS", "Trainer", "load_trainer", "make_trainer", "trainer_class"]
