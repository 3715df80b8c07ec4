"""Turning per-run records into the comparison a reader wants: F1 per method and budget.

One summary serves every view: the table printed after a run, metrics.json and the plot
that DVC shows, the Prefect artifact and the MLflow parent run.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from taskselect.selectors import REGISTRY, budget_share

OPTIONAL_MEANS = ("f1_micro", "n_unique", "n_on_task", "target_share")


def level(confidence: float) -> str:
    """evaluate.confidence as a percentage: 0.95 -> '95%', 0.975 -> '97.5%'."""
    return f"{round(confidence * 100, 6):g}%"


def summarize(records: list[dict]) -> pd.DataFrame:
    """One row per (method, budget): means and standard deviations over seeds, deltas vs the
    methods the runs are compared against (compared: the baselines, and report.against's selectors
    where the records have paired intervals against them).

    Columns: method, budget, budget_label, seeds (how many), n_selected, f1_macro, f1_macro_std,
    accuracy, accuracy_std, delta_<reference> for each of those (delta_random, delta_full,
    delta_tsds: macro-F1 difference, NaN where the reference did not run), and the means of
    f1_micro, n_unique, n_on_task and target_share where the records have them. A single seed has
    std 0.

    Where the records have paired intervals ("delta_ci", stages.paired_deltas; "confidence", their
    level): n_paired_<reference>, the runs (seeds) with one, and of those n_above_<reference> and
    n_below_<reference>, the runs whose interval lies wholly above or below zero (the verdict
    holds on that run's test set); and confidence.
    """
    frame = pd.DataFrame(records)
    intervals = [ci for ci in frame["delta_ci"] if isinstance(ci, dict)] if "delta_ci" in frame else []
    references = compared(lambda name: any(name in ci for ci in intervals))
    paired = references if intervals else []
    for reference in paired:
        frame[f"_side_{reference}"] = [_side(ci.get(reference)) if isinstance(ci, dict) else np.nan for ci in frame["delta_ci"]]
    grouped = frame.groupby(["method", "budget", "budget_label"], sort=False)
    spec = {"seeds": ("seed", "nunique"), "n_selected": ("n_selected", "mean"),
            "f1_macro": ("f1_macro", "mean"), "f1_macro_std": ("f1_macro", "std"),
            "accuracy": ("accuracy", "mean"), "accuracy_std": ("accuracy", "std")}
    spec |= {name: (name, "mean") for name in OPTIONAL_MEANS if name in frame}
    for reference in paired:
        side = f"_side_{reference}"
        spec |= {f"n_paired_{reference}": (side, "count"), f"n_above_{reference}": (side, lambda s: int((s > 0).sum())),
                 f"n_below_{reference}": (side, lambda s: int((s < 0).sum()))}
    spec |= {"confidence": ("confidence", "max")} if paired and "confidence" in frame else {}
    table = grouped.agg(**spec).reset_index()
    table[["f1_macro_std", "accuracy_std"]] = table[["f1_macro_std", "accuracy_std"]].fillna(0.0)
    for reference in references:
        f1 = table[table["method"] == reference].set_index("budget")["f1_macro"]
        table[f"delta_{reference}"] = table["f1_macro"] - table["budget"].map(f1)
    return table


def _side(interval: list[float] | None) -> float:
    """1 for an interval wholly above zero, -1 wholly below, 0 across it, NaN for none."""
    if interval is None:
        return np.nan
    low, high = interval
    return 1.0 if low > 0 else -1.0 if high < 0 else 0.0


def summarize_selections(records: list[dict]) -> pd.DataFrame:
    """For runs that were not scored (an unlabelled pool): one row per (method, budget) with
    method, budget, budget_label, seeds (how many) and the means over seeds of n_selected and
    n_unique, in reading order."""
    frame = pd.DataFrame(records)
    table = frame.groupby(["method", "budget", "budget_label"], sort=False).agg(
        seeds=("seed", "nunique"), n_selected=("n_selected", "mean"), n_unique=("n_unique", "mean")).reset_index()
    return reading_order(table)


def selection_rows(summary: pd.DataFrame) -> list[dict[str, str]]:
    """summarize_selections as the table a reader sees in place of the F1 comparison: rows of
    display strings, the macro-F1 column saying why there is none."""
    return [{"method": row["method"], "budget": row["budget_label"], "seeds": str(row["seeds"]),
             "selected": f"{row['n_selected']:g}", "distinct": f"{row['n_unique']:g}", "macro-F1": "not trained (no labels)"}
            for row in summary.to_dict("records")]


def auto_choices(records: list[dict], bold: bool = False) -> list[str]:
    """One line per auto run: the selector it chose and every candidate's score on the held-out
    queries (the score that ranked them), with the standard error of its gap to the best.

    bold: the choice in Markdown bold (the Prefect results note)."""
    from taskselect.selectors.auto import score_keys

    lines = []
    for r in (r for r in records if r["method"] == "auto"):
        info = r["select_info"]
        score = info["score"]
        se = score_keys(score)[1]
        blend = info.get("blend")  # the close candidates' selections blended: its own held-out score
        choice = f"**{info['choice']}**" if bold else info["choice"]
        if "blended" in info:  # select.auto.blend_max left some close candidates out
            choice += f", the {len(info['blended'])} with the most wins of the close {', '.join(info['close'])}"
        lines.append(f"{r['slug']}: chose {choice} ({score} on the held-out queries, ± the standard "
                     "error of the gap to the best: "
                     + ", ".join(f"{name} {s[score]:.3f} ± {s[se]:.3f}" for name, s in info["candidates"].items())
                     + (f"; their blend {blend[score]:.3f} ± {blend[se]:.3f}" if blend else "") + ")")
    return lines


def verdicts(records: list[dict]) -> list[str]:
    """One line per run of a selector (not a baseline) with paired intervals (stages.paired_deltas):
    its macro-F1 minus each reference's (the baselines, report.against's selectors) at the same
    budget and seed, the interval of that difference over resamples of the test rows, and what
    the interval says (interval_verdict)."""
    f1 = {(r["method"], r["budget"], r["seed"]): r.get("f1_macro") for r in records}
    lines = [f"{r['slug']}: " + ", ".join(f"{r['f1_macro'] - f1[b, r['budget'], r['seed']]:+.4f} vs {b} "
                                          f"[{low:+.4f}, {high:+.4f}] {interval_verdict(low, high)}"
                                          for b, (low, high) in r["delta_ci"].items() if (b, r["budget"], r["seed"]) in f1)
             for r in records if "delta_ci" in r and not REGISTRY[r["method"]].baseline]
    if lines:
        lines.append(f"Δ macro-F1 against the other method's run of the same budget and seed; "
                     f"[{level(records[0]['confidence'])} interval: both scored on the same bootstrap resamples of the test rows]; "
                     "better / worse: the interval lies wholly above / below 0; undecided: it holds 0, this test set "
                     "cannot tell the two apart")
    return lines


def interval_verdict(low: float, high: float) -> str:
    """What a paired interval of a difference in macro-F1 says: better, worse or undecided."""
    return {1.0: "better", -1.0: "worse", 0.0: "undecided"}[_side([low, high])]


def baselines() -> list[str]:
    """The selectors every method is compared against (delta_<name>), in registration order."""
    return [name for name, spec in REGISTRY.items() if spec.baseline]


def compared(has: Callable[[str], bool]) -> list[str]:
    """The methods a table's runs are compared against: the baselines, then each other selector
    `has(name)` says they have a difference from (report.against), in registration order."""
    return baselines() + [name for name, spec in REGISTRY.items() if not spec.baseline and has(name)]


def reading_order(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary by budget, and within a budget the methods in registration order (tsds first),
    those that use no budget (the full pool) last; methods no longer registered after the rest."""
    rank = {name: (not spec.uses_budget, i) for i, (name, spec) in enumerate(REGISTRY.items())}
    order = summary["method"].map(lambda m: rank.get(m, (True, len(rank))))
    return summary.assign(_order=order).sort_values(["budget", "_order"]).drop(columns="_order").reset_index(drop=True)


def comparison_rows(summary: pd.DataFrame) -> list[dict[str, str]]:
    """The summary as the table a reader sees (`taskselect compare`, the Prefect artifact):
    one row of display strings per method and budget, in reading order."""
    return [
        {"method": row["method"], "budget": row["budget_label"], "seeds": str(row["seeds"]),
         "macro-F1 (mean ± std)": f"{row['f1_macro']:.4f} ± {row['f1_macro_std']:.4f}",
         **{f"Δ vs {b}": _delta_cell(row, b) for b in delta_columns(summary)}}
        for row in reading_order(summary).to_dict("records")
    ]


def delta_columns(summary: pd.DataFrame) -> list[str]:
    """The methods a comparison table shows a Δ column for: those compared (`compared`) that ran
    (not a column of blanks for the full pool left out of select.methods)."""
    return [b for b in compared(lambda name: f"delta_{name}" in summary) if summary[f"delta_{b}"].notna().any()]


def _delta_cell(row: dict, baseline: str) -> str:
    """'+0.0123 (2/3)': the mean difference from the baseline and, where the runs have paired
    intervals, in how many of the runs that have one the interval lies on the difference's side
    of zero (comparison_caption); empty where the baseline did not run (NaN)."""
    delta = row[f"delta_{baseline}"]
    if delta != delta:
        return ""
    held = _holds(row, baseline)
    return f"{delta:+.4f}" if held is None else f"{delta:+.4f} ({held}/{int(row[f'n_paired_{baseline}'])})"


def _holds(row: dict, baseline: str) -> int | None:
    """Of a summarize row's runs with a paired interval, those whose interval lies wholly on the
    side of zero of the mean difference from the baseline; None for the baseline itself or runs
    reported before paired intervals."""
    n = row.get(f"n_paired_{baseline}")
    if not n or n != n:
        return None
    return int(row[f"n_above_{baseline}" if row[f"delta_{baseline}"] >= 0 else f"n_below_{baseline}"])


def verdict(row: dict) -> dict[str, float | int]:
    """A summarize row's verdict as numbers (metrics.json, the MLflow pipeline run): delta_<reference>,
    the mean macro-F1 difference from each method it is compared against that ran (not its own), and
    delta_<reference>_holds, in how many runs it holds (the table's k of (k/n); where the runs have
    paired intervals)."""
    found = {}
    for b in compared(lambda name: f"delta_{name}" in row):
        delta = row.get(f"delta_{b}", np.nan)
        if b == row["method"] or delta != delta:  # NaN: it did not run
            continue
        found[f"delta_{b}"] = delta
        if (held := _holds(row, b)) is not None:
            found[f"delta_{b}_holds"] = held
    return found


def comparison_caption(summary: pd.DataFrame) -> str | None:
    """What the '(k/n)' after a Δ says, for under the table; None where no run has a paired interval."""
    if "confidence" not in summary or summary["confidence"].isna().all():
        return None
    return (f"(k/n): the Δ holds in k of n runs (seeds): its {level(summary['confidence'].max())} paired bootstrap "
            "interval over the test rows lies wholly on that side of 0")


def metrics_tree(summary: pd.DataFrame) -> dict:
    """{method: {budget_label: {seeds, f1_macro, f1_macro_std, accuracy, delta_<baseline>,
    delta_<baseline>_holds}}}: what `dvc metrics show` and `dvc exp show` list. delta_<baseline>:
    the mean macro-F1 difference from a baseline that ran (not the baseline's own); _holds: in how
    many of the runs (seeds) its paired interval lies wholly on the difference's side of 0 (the
    table's (k/n); absent for runs without paired intervals; verdict). Numbers only, as DVC
    compares them."""
    tree: dict[str, dict] = {}
    for row in summary.to_dict("records"):
        metrics = {"seeds": int(row["seeds"]), "f1_macro": round(row["f1_macro"], 4),
                   "f1_macro_std": round(row["f1_macro_std"], 4), "accuracy": round(row["accuracy"], 4)}
        metrics |= {name: round(value, 4) for name, value in verdict(row).items()}
        tree.setdefault(row["method"], {})[row["budget_label"]] = metrics
    return tree


def f1_by_budget(summary: pd.DataFrame, pool_size: int) -> pd.DataFrame:
    """Wide table for `dvc plots`: budget (fraction of the pool), then mean macro-F1 per method."""
    wide = summary.pivot_table(index="budget", columns="method", values="f1_macro", sort=True)
    wide.index = [budget_share(b, pool_size) for b in wide.index]
    wide.index.name = "budget"
    return wide.reset_index()
