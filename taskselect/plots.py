"""Figures a person reads: a confusion matrix per run, macro-F1 against the budget per target."""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd
# Figure, not pyplot: no global state, so the Prefect flow's threads can draw at once, and
# no display is needed (a Figure renders with the Agg canvas).
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, findfont, get_font

from taskselect.io import atomic_path
from taskselect.selectors import REGISTRY, budget_share, spec

log = logging.getLogger(__name__)
MARKERS = "osD^v<>PX*"
_said_missing: set[str] = set()


def drawable(texts: list[str]) -> list[str]:
    """`texts` with each character the figures' font lacks drawn as '□', as matplotlib would draw
    it, but said in one log line per process (matplotlib warns of each glyph again in every
    figure: 57 warnings for one run on labels with an emoji and Chinese)."""
    font = get_font(findfont(FontProperties()))
    missing = {c for t in texts for c in t if not c.isspace() and not font.get_char_index(ord(c))}
    if new := sorted(missing - _said_missing):
        _said_missing.update(new)
        log.warning("the figures' font (%s) has no %s: drawn as □ in the plots", font.family_name, " ".join(new))
    return ["".join("□" if c in missing else c for c in t) for t in texts]


def method_style(method: str) -> tuple[str, str]:
    """(colour, marker) of a method's line, by its place in the registry: the same in every figure."""
    i = list(REGISTRY).index(method)
    return f"C{i % 10}", MARKERS[i % len(MARKERS)]


def _save(fig, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def plot_confusion(matrix: np.ndarray, labels: list[str], path: str | os.PathLike, title: str = "") -> None:
    """PNG of a (k, k) confusion matrix: rows true labels, columns predicted, counts in the cells.

    Colours are row shares (recall per label), so a small class reads as well as a large one.
    """
    matrix = np.asarray(matrix)
    *labels, title = drawable([*labels, title])
    k = len(labels)
    namespace = labels[0].split(":")[0] + ":" if ":" in labels[0] else ""
    if namespace and all(label.startswith(namespace) for label in labels):  # '20ng:sci.med' -> 'sci.med'
        labels = [label.removeprefix(namespace) for label in labels]
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.45 * k + 2.5)
    fig = Figure(figsize=(size + 1.2, size))
    ax = fig.subplots()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true label's rows")
    ticks = np.arange(k)
    ax.set_xticks(ticks, labels, rotation=45 if k > 3 else 0, ha="right" if k > 3 else "center",
                  fontsize=8 if k > 8 else 10)
    ax.set_yticks(ticks, labels, fontsize=8 if k > 8 else 10)
    ax.set_xlabel(f"predicted {namespace}")
    ax.set_ylabel(f"true {namespace}")
    for i in range(k):
        for j in range(k):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7 if k > 8 else 10,
                        color="white" if shares[i, j] > 0.5 else "black")
    ax.set_title(title, fontsize=10)
    _save(fig, path)


def plot_note(note: str, path: str | os.PathLike, title: str = "") -> None:
    """PNG of `note` alone: the figure in the place of one that cannot be drawn (no scores)."""
    fig = Figure(figsize=(6.4, 1.6))
    fig.text(0.5, 0.5, note, ha="center", va="center", fontsize=10, wrap=True)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def plot_f1_vs_budget(summary: pd.DataFrame, pool_size: int, path: str | os.PathLike, title: str = "") -> None:
    """PNG of mean macro-F1 against the budget: a line per method with a +-1 std band over
    seeds, a method that uses no budget (the full pool) as a horizontal line with its band, and
    95% of it dotted.

    summary: rows of report.summarize (method, budget as a fraction of the pool or a row count,
        f1_macro, f1_macro_std); pool_size converts row counts to shares of the pool.
    """
    (title,) = drawable([title])
    share = summary["budget"].map(lambda b: budget_share(b, pool_size)) * 100
    budgeted = summary["method"].map(lambda m: spec(m).uses_budget)
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.subplots()
    for method in dict.fromkeys(summary["method"]):
        rows = summary[summary["method"] == method].assign(x=share).sort_values("x")
        mean, std = rows["f1_macro"].to_numpy(), rows["f1_macro_std"].to_numpy()
        if not spec(method).uses_budget:  # the same training set at every budget
            mean, std = mean.mean(), std.mean()
            ax.axhline(mean, color="black", linestyle="--", label=f"{method} pool ({mean:.3f})")
            ax.axhline(0.95 * mean, color="grey", linestyle=":", label=f"95% of {method} pool")
            if std:
                ax.axhspan(mean - std, mean + std, color="black", alpha=0.08, linewidth=0)
            continue
        color, marker = method_style(method)
        line, = ax.plot(rows["x"], mean, marker=marker, color=color, label=method)
        ax.fill_between(rows["x"], mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)
    ticks = sorted(set(share[budgeted]))
    if len(ticks) > 1:
        ax.set_xscale("log")
    ax.set_xticks(ticks, [f"{x:.3g}%" for x in ticks])
    ax.minorticks_off()
    ax.set_xlabel("budget (share of the pool selected)")
    ax.set_ylabel("macro-F1 on the target test set")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title, fontsize=10)
    _save(fig, path)
