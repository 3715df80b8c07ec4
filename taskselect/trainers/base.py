"""What a trainer consumes and the interface every trainer offers."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

import numpy as np

Consumes = Literal["texts", "embeddings"]


@dataclass(frozen=True)
class Examples:
    """Rows to train on or predict, as the trainer consumes them (Trainer.consumes): texts for
    trainers that read text, embeddings for heads; the stages leave the other None.

    texts: n strings.
    embeddings: (n, dim) float32 unit-normalised sentence embeddings of those texts.
    labels: (n,) str labels, or None when predicting.
    """

    texts: list[str] | None = None
    embeddings: np.ndarray | None = None
    labels: np.ndarray | None = None

    def __post_init__(self):
        if self.texts is None and self.embeddings is None:
            raise ValueError("Examples: give texts or embeddings, whichever the trainer consumes")

    def __len__(self) -> int:
        return len(self.texts if self.texts is not None else self.embeddings)


class Trainer(Protocol):
    """Fits a classifier on a selection and scores new rows.

    consumes: "texts" or "embeddings", the one field of Examples it reads (the stages load
        nothing else).
    classes_: labels the model can predict, in the column order of predict_scores.
    history_: what fitting went through (iterations, losses per epoch, ...), JSON-serialisable.
    """

    consumes: ClassVar[Consumes]
    classes_: list[str]
    history_: dict

    def fit(self, examples: Examples) -> "Trainer": ...

    def predict_scores(self, examples: Examples) -> np.ndarray:
        """(n, len(classes_)) float64 class scores; larger is more likely."""
        ...

    def save(self, directory: str | os.PathLike) -> None: ...

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "Trainer":
        """The trainer `save` wrote into `directory`, ready to predict."""
        ...
