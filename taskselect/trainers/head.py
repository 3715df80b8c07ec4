"""The fast trainer: a logistic-regression head on frozen sentence embeddings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import joblib
import numpy as np

from taskselect.config import HeadParams
from taskselect.errors import TaskselectError
from taskselect.trainers.base import Examples

if TYPE_CHECKING:
    from sklearn.linear_model import LogisticRegression


class HeadTrainer:
    """Multinomial logistic regression on (n, dim) embeddings; seconds on a CPU.

    C: inverse L2 regularisation strength (unit-norm inputs need a weak penalty).
    max_iter: L-BFGS iterations at most.
    seed: kept for the trainer interface (L-BFGS itself is deterministic).
    """

    consumes = "embeddings"

    def __init__(self, C: float = HeadParams.default("C"), max_iter: int = HeadParams.default("max_iter"), seed: int = 0):
        self.C = C
        self.max_iter = max_iter
        self.seed = seed
        HeadParams.check(self, "finetune.head")  # built directly, held to params.yaml's constraints
        self.classes_: list[str] = []
        self.history_: dict = {}
        self._model: LogisticRegression | None = None

    def fit(self, examples: Examples) -> "HeadTrainer":
        if examples.labels is None or len(examples) == 0:
            raise TaskselectError("finetune: the selection is empty; nothing to train on")
        labels = np.asarray(examples.labels, dtype=str)
        self.classes_ = sorted(set(labels.tolist()))
        if len(self.classes_) == 1:  # one label selected: nothing to learn, predict it
            self._model = None
            return self
        from sklearn.linear_model import LogisticRegression  # a second to import: not in every stage's process

        self._model = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.seed)
        self._model.fit(examples.embeddings, labels)
        self.classes_ = [str(c) for c in self._model.classes_]
        self.history_ = {"iterations": int(self._model.n_iter_.max())}
        return self

    def predict_scores(self, examples: Examples) -> np.ndarray:
        if not self.classes_:
            raise TaskselectError("the head is not trained")
        if self._model is None:
            return np.ones((len(examples), 1))
        return self._model.predict_proba(examples.embeddings)

    def save(self, directory: str | os.PathLike) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        joblib.dump(self, Path(directory) / "head.joblib")

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "HeadTrainer":
        return joblib.load(Path(directory) / "head.joblib")
