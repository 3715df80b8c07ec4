"""Scoring predictions on the target's test set."""

from __future__ import annotations

import logging

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

log = logging.getLogger(__name__)


def predict_within(scores: np.ndarray, classes: list[str], labels: list[str]) -> np.ndarray:
    """Argmax of `scores` (n, len(classes)) over the target `labels` only.

    A model trained on a mixed selection knows off-target labels (e.g. 'sms:spam'); the task
    only admits its own. If the model knows none of them it predicts the first target label.
    """
    allowed = [i for i, c in enumerate(classes) if c in set(labels)]
    if not allowed:
        log.warning("the model knows none of the target labels %s; predictions are constant", labels)
        return np.full(scores.shape[0], labels[0], dtype=object)
    picks = np.asarray(allowed)[np.argmax(scores[:, allowed], axis=1)]
    return np.asarray(classes, dtype=object)[picks]


def classification_metrics(y_true, y_pred, labels: list[str]) -> dict:
    """Macro-F1, micro-F1 and accuracy over the target `labels`, plus F1 per label."""
    y_true = np.asarray(y_true, dtype=str)
    y_pred = np.asarray(y_pred, dtype=str)
    per_class = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    return {
        "f1_macro": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "f1_micro": float(f1_score(y_true, y_pred, labels=labels, average="micro", zero_division=0)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_per_class": {label: float(f) for label, f in zip(labels, per_class)},
        "n_test": int(y_true.size),
    }
