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


def task_label_probabilities(scores: np.ndarray, classes: list[str], labels: list[str]) -> np.ndarray:
    """(n, len(labels)) the class probabilities `scores` (n, len(classes)) give the target `labels`,
    renormalised over them as predict_within restricts them; 0 for a label the model never saw,
    uniform if it saw none or gave them no mass."""
    column = {c: i for i, c in enumerate(classes)}
    seen = [j for j, label in enumerate(labels) if label in column]
    within = np.zeros((scores.shape[0], len(labels)))
    within[:, seen] = scores[:, [column[labels[j]] for j in seen]]
    totals = within.sum(axis=1, keepdims=True)
    return np.divide(within, totals, out=np.full_like(within, 1 / len(labels)), where=totals > 0)


LOG_FLOOR = 1e-3  # the log score of a probability below this: one confident miss must not outweigh every other query

#: Per-query scores of held-out predictions, higher is better: (n, L) task-label probabilities and
#: (n, L) one-hot truth -> (n,). 'probability' is the own label's probability (smooth, but it rewards
#: a model that is sure of its mistakes as much as a calibrated one); 'brier' (1 - half the squared
#: error, in [0, 1]) and 'log' (the own label's log probability, floored) are proper scoring rules:
#: a model scores best by stating the probabilities it has.
QUERY_SCORES = {
    "probability": lambda p, y: (p * y).sum(axis=1),
    "brier": lambda p, y: 1 - 0.5 * ((p - y) ** 2).sum(axis=1),
    "log": lambda p, y: np.log(np.maximum((p * y).sum(axis=1), LOG_FLOOR)),
}


def query_scores(probabilities: np.ndarray, labels: list[str], truth) -> dict[str, np.ndarray]:
    """Each of QUERY_SCORES, (n,), of the probabilities (n, len(labels)) a model gives the target
    `labels` (task_label_probabilities) for rows whose labels are `truth` (n,)."""
    code = {label: j for j, label in enumerate(labels)}
    onehot = np.zeros_like(probabilities)
    for i, t in enumerate(np.asarray(truth, dtype=str)):
        if t in code:
            onehot[i, code[t]] = 1
    return {name: rule(probabilities, onehot) for name, rule in QUERY_SCORES.items()}


def soft_macro_f1(y_true, probabilities: np.ndarray, labels: list[str], draws: np.ndarray | None = None) -> np.ndarray:
    """Macro-F1 over `labels` of the expected confusion matrix: each row counts its probabilities
    (n, len(labels)) over the labels (task_label_probabilities) in place of one prediction.

    Like macro-F1, and unlike a per-row score averaged per label, it weighs a label's precision,
    so the false positives a frequent label sends to a rare one count by how frequent it is;
    being a sum of probabilities it moves little when one row of a rare label flips. A label
    with no row scores 0, as in macro_f1_resamples. draws (n_boot, n): row numbers of resamples;
    then (n_boot,) one value per resample, else a 0-d array.
    """
    y_true = np.asarray(y_true, dtype=str)
    code = {label: i for i, label in enumerate(labels)}
    k = len(labels)
    onehot = np.zeros((len(y_true), k + 1))  # column k: a label outside `labels`
    onehot[np.arange(len(y_true)), [code.get(y, k) for y in y_true]] = 1
    weights = np.ones((1, len(y_true))) if draws is None else np.stack(
        [np.bincount(d, minlength=len(y_true)) for d in draws])
    # confusion[b, i, j]: probability mass resample b's rows of true label i give label j
    confusion = np.einsum("bn,ni,nj->bij", weights, onehot, np.asarray(probabilities, dtype=np.float64))
    tp = confusion[:, np.arange(k), np.arange(k)]
    denominator = confusion[:, :k, :].sum(axis=2) + confusion.sum(axis=1)
    f1 = np.divide(2 * tp, denominator, out=np.zeros(tp.shape), where=denominator > 0)
    result = f1.mean(axis=1)
    return result if draws is not None else result[0]


def label_balanced_mean(y_true, values: np.ndarray, labels: list[str], draws: np.ndarray | None = None) -> np.ndarray:
    """Mean over `labels` of the mean of `values` (n,) over each label's rows: with values the
    probability of the own label, a smooth, class-balanced accuracy. Labels without rows are left
    out. draws (n_boot, n): row numbers of resamples; then (n_boot,) one value per resample,
    else a 0-d array."""
    y_true = np.asarray(y_true, dtype=str)
    code = {label: i for i, label in enumerate(labels)}
    k = len(labels)
    t = np.array([code.get(y, k) for y in y_true])
    rows = np.arange(len(t))[None, :] if draws is None else draws
    offsets = (k + 1) * np.arange(len(rows))[:, None]
    counts = np.bincount((t[rows] + offsets).ravel(), minlength=len(rows) * (k + 1)).reshape(len(rows), k + 1)[:, :k]
    sums = np.bincount((t[rows] + offsets).ravel(), weights=np.asarray(values, dtype=np.float64)[rows].ravel(),
                       minlength=len(rows) * (k + 1)).reshape(len(rows), k + 1)[:, :k]
    present = counts > 0
    means = np.divide(sums, counts, out=np.zeros(sums.shape), where=present)
    result = means.sum(axis=1) / np.maximum(present.sum(axis=1), 1)
    return result if draws is not None else result[0]


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> np.ndarray:
    """(len(labels), len(labels)) counts: [i, j] rows of labels[i] predicted as labels[j]; rows
    whose true or predicted label is not among `labels` are not counted. (scikit-learn's
    confusion_matrix warns of a missing `labels` argument on a one-label task's 1x1 matrix.)"""
    position = {label: i for i, label in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(y_true.tolist(), y_pred.tolist()):
        if t in position and p in position:
            counts[position[t], position[p]] += 1
    return counts


def macro_f1(y_true, y_pred, labels: list[str]) -> float:
    """Macro-F1 over the target `labels` (a label never predicted nor present scores 0)."""
    return float(f1_score(np.asarray(y_true, dtype=str), np.asarray(y_pred, dtype=str), labels=labels,
                          average="macro", zero_division=0))


def classification_metrics(y_true, y_pred, labels: list[str]) -> dict:
    """Macro-F1, micro-F1 and accuracy over the target `labels`, F1 per label, confusion matrix.

    confusion[i][j]: test rows of labels[i] predicted as labels[j] (counts).
    warnings: what makes the scores mean less than they seem, also logged: predictions of one
    label only (a model trained on a one-class selection) score a constant model. That is the
    true score of such a selection, so it is reported, not refused, but never silently.
    """
    y_true = np.asarray(y_true, dtype=str)
    y_pred = np.asarray(y_pred, dtype=str)
    per_class = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    warnings = []
    predicted = np.unique(y_pred).tolist()
    if len(predicted) == 1 and len(labels) > 1:
        warnings.append(f"every test row is predicted {predicted[0]!r}: the model learnt one class only "
                        f"(the selection holds one of the {len(labels)} target labels?), macro-F1 scores a constant model")
        log.warning(warnings[-1])
    return {
        "f1_macro": macro_f1(y_true, y_pred, labels),
        "f1_micro": float(f1_score(y_true, y_pred, labels=labels, average="micro", zero_division=0)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_per_class": {label: float(f) for label, f in zip(labels, per_class)},
        "confusion": confusion_counts(y_true, y_pred, labels).tolist(),
        "n_test": int(y_true.size),
        "warnings": warnings,
    }


def macro_f1_bootstrap(
    y_true, y_pred, labels: list[str], n_boot: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of macro-F1 over `labels`: test rows resampled with
    replacement within each true label (stratified_draws).

    n_boot resamples of the test set's size; returns (low, high) at the `confidence` level
    (0.95 = 2.5th and 97.5th percentiles). Same inputs and seed, same interval.
    """
    draws = stratified_draws(y_true, n_boot, np.random.default_rng(seed))
    return percentile_interval(macro_f1_resamples(y_true, y_pred, labels, draws), confidence)


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """(low, high): the central `confidence` share of `values` (0.95: 2.5th and 97.5th percentiles)."""
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def stratified_draws(y_true, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n) row numbers: each resample draws every true label's rows from that label's
    rows, as many as it has. A plain resample of a test set with rare labels misses some of them
    (a label with one row, about a third of the time); macro-F1 scores such a label 0 when it is
    also not predicted, so every such resample fell below the test set's own macro-F1 and, on a
    task of 40 labels, many with one test row, the whole interval lay below it."""
    y_true = np.asarray(y_true, dtype=str)
    draws = np.empty((n_boot, len(y_true)), dtype=np.int64)
    for label in np.unique(y_true):  # sorted: the same draws for the same rows and seed
        rows = np.flatnonzero(y_true == label)
        draws[:, rows] = rows[rng.integers(0, len(rows), size=(n_boot, len(rows)))]
    return draws


def macro_f1_resamples(y_true, y_pred, labels: list[str], draws: np.ndarray) -> np.ndarray:
    """(n_boot,) macro-F1 over `labels` of each resample of the rows; draws: (n_boot, n) row
    numbers, one resample per row (the same draws give paired resamples of two predictions)."""
    y_true = np.asarray(y_true, dtype=str)
    y_pred = np.asarray(y_pred, dtype=str)
    n_boot = len(draws)
    code = {label: i for i, label in enumerate(labels)}
    k = len(labels)
    # Labels outside `labels` (never predicted, but possible in y_true) get code k: they add
    # false negatives to nobody and count as neither TP nor FP for a target label.
    t = np.array([code.get(y, k) for y in y_true])
    p = np.array([code.get(y, k) for y in y_pred])
    # counts[b, i, j]: rows of true code i predicted as j in resample b
    cells = (k + 1) ** 2
    pair = (t * (k + 1) + p)[draws] + cells * np.arange(n_boot)[:, None]
    counts = np.bincount(pair.ravel(), minlength=n_boot * cells).reshape(n_boot, k + 1, k + 1)
    tp = counts[:, np.arange(k), np.arange(k)]
    true_per_label = counts[:, :k, :].sum(axis=2)
    pred_per_label = counts[:, :, :k].sum(axis=1)
    denominator = true_per_label + pred_per_label
    f1 = np.divide(2 * tp, denominator, out=np.zeros(tp.shape), where=denominator > 0)
    return f1.mean(axis=1)
