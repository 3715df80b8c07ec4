"""A small proxy classifier trained on the pool, and each example's loss along the way.

What S2L and loss-based selection learn from: a linear softmax model on the frozen embeddings,
trained by SGD for a few epochs (seconds on a CPU for tens of thousands of rows).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
from tqdm.auto import tqdm

from taskselect.errors import TaskselectError
from taskselect.memo import keep_last

log = logging.getLogger(__name__)


@keep_last(2)  # s2l and loss select at every budget of a seed from the same trajectories
def loss_trajectories(
    embeddings: np.ndarray, labels, epochs: int, seed: int, l2: float = 1e-4
) -> np.ndarray:
    """(N, epochs) float64 cross-entropy loss of every row after each epoch of the proxy model,
    read-only (computed once per process for the same arguments).

    embeddings: (N, dim) features; labels: (N,) class of each row (strings);
    the proxy is sklearn's SGDClassifier(loss="log_loss", alpha=l2), one partial_fit pass over
    the rows in a seeded random order per epoch.
    """
    x = np.asarray(embeddings, dtype=np.float32)
    y = np.asarray(labels)
    classes = np.unique(y)
    if classes.size < 2:
        raise TaskselectError(f"proxy model: the pool needs at least 2 labels to train on, got {classes.size}")
    from sklearn.exceptions import ConvergenceWarning  # sklearn where used: the CLI starts without it
    from sklearn.linear_model import SGDClassifier

    model = SGDClassifier(loss="log_loss", alpha=l2, random_state=seed)
    rng = np.random.default_rng(seed)
    column = np.searchsorted(classes, y)
    losses = np.empty((len(x), epochs))
    for epoch in tqdm(range(epochs), desc="proxy model", unit="epoch"):
        order = rng.permutation(len(x))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.partial_fit(x[order], y[order], classes=classes)
        p = model.predict_proba(x)[np.arange(len(x)), column]
        losses[:, epoch] = -np.log(np.clip(p, 1e-12, None))
    log.info("proxy model: %d classes, mean loss %.3f after %d epochs", classes.size, losses[:, -1].mean(), epochs)
    return losses
