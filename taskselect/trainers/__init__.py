"""Trainers: fit a classifier on a selection. `head` is fast; a transformer fine-tune can join."""

from __future__ import annotations

import os
from pathlib import Path

from taskselect.config import FinetuneParams
from taskselect.errors import TaskselectError
from taskselect.trainers.base import Examples, Trainer
from taskselect.trainers.head import HeadTrainer

TRAINERS = {"head": HeadTrainer}


def make_trainer(params: FinetuneParams, seed: int) -> Trainer:
    if params.trainer not in TRAINERS:
        raise TaskselectError(f"finetune.trainer {params.trainer!r}: expected one of {', '.join(TRAINERS)}")
    return TRAINERS[params.trainer](**getattr(params, params.trainer).model_dump(), seed=seed)


def load_trainer(name: str, directory: str | os.PathLike) -> Trainer:
    if not Path(directory).is_dir():
        raise TaskselectError(f"{directory}: no trained model; run `taskselect finetune` first")
    return TRAINERS[name].load(directory)


__all__ = ["Examples", "HeadTrainer", "TRAINERS", "Trainer", "load_trainer", "make_trainer"]
