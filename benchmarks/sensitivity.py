"""TSDS's sensitivity to alpha, C and sigma on every target, and the defaults it supports.

    PYTHONPATH=. python benchmarks/sensitivity.py -S embed.cache_dir=/work/cache/embeddings
        [--targets trec,20newsgroups] [--render-only]

Grid: alpha in ALPHAS x C in CS x sigma in SIGMAS (sigma 0: KNN-Uniform) at BUDGETS, seeds
SEEDS, on the bench's targets (data/bench/<target>, the same prepared data and embeddings as
`taskselect bench`). The neighbour search and densities are computed once per target and sigma
(bench.PlanOnceTSDS); each (alpha, C, budget, seed) only solves and draws. Every selection is
scored as the stages score it (benchmarks/harness.py). Records go to
benchmarks/quality/sensitivity/<target>.json; the "TSDS sensitivity" section of BENCHMARKS.md
is rendered from those files.

Default rule: within each target x budget cell the settings are ranked by mean macro-F1 over
the seeds (1 = best, ties share the mean rank); the default is the setting of best mean rank
over all cells. A rank does not let one target's wide F1 spread outweigh the others'.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.harness import Target, benchmark_main, read_records, runs_line
from taskselect.bench import PlanOnceTSDS
from taskselect.config import TARGETS, Params
from taskselect.selectors import budget_label, resolve_budget
from taskselect.selectors.tsds import PRESETS

log = logging.getLogger("sensitivity")

ALPHAS = (0.075, 0.3, 0.6, 0.9, 0.99)
CS = (1.0, 5.0)
SIGMAS = (0.0, 0.1, 0.2, 0.75)
BUDGETS = (0.02, 0.05)
SEEDS = (0, 1, 2)
SETTING = ["alpha", "C", "sigma"]
SECTION = "TSDS sensitivity"


def setting_records(target: Target, settings: list[dict]) -> list[dict]:
    """One record per (setting, budget, seed): TSDS with params.yaml's parameters and `setting`
    over them at BUDGETS and SEEDS: macro-F1, alpha after any lowering, distinct rows, on-task
    share. Settings that share a plan (every key but alpha) compute it once."""
    base = target.params.select.tsds.model_dump(exclude={"preset"})
    records = []
    for setting in settings:
        selector = PlanOnceTSDS(**{**base, **setting})
        plan = selector.plan(target.query, target.pool, target.index)
        for budget in BUDGETS:
            size = resolve_budget(budget, len(target.pool))
            for seed in SEEDS:
                chosen = selector.draw(plan, size, seed)
                records.append({
                    "target": target.name, **setting, "budget": budget, "seed": seed,
                    "f1": target.f1(chosen.indices, seed), "alpha_effective": chosen.info["alpha_effective"],
                    "n_unique": chosen.n_unique, "on_task": target.on_task(chosen.indices),
                })
        log.info("%s %s: mean macro-F1 %.4f", target.name, setting,
                 np.mean([r["f1"] for r in records[-len(BUDGETS) * len(SEEDS):]]))
    return records


def run_target(target: Target, args=None) -> tuple[list[dict], dict]:
    """Every (alpha, C, sigma) of the grid."""
    base = target.params.select.tsds
    settings = [{"alpha": alpha, "C": C, "sigma": sigma} for sigma in SIGMAS for C in CS for alpha in ALPHAS]
    return setting_records(target, settings), {"max_k": base.max_k, "kde_k": base.kde_k}


def cell_means(records: list[dict], setting: list[str] = SETTING) -> pd.DataFrame:
    """Mean macro-F1 of each setting in each (target, budget) cell, and its rank in the cell."""
    frame = pd.DataFrame(records)
    means = frame.groupby(["target", "budget", *setting], sort=False)["f1"].mean().reset_index()
    means["rank"] = means.groupby(["target", "budget"])["f1"].rank(ascending=False, method="average")
    means["gap"] = means.groupby(["target", "budget"])["f1"].transform("max") - means["f1"]
    return means


def choose_default(means: pd.DataFrame) -> tuple[float, float, float]:
    """The setting of best mean rank over the cells (ties: the smaller mean gap)."""
    summary = means.groupby(SETTING)[["rank", "gap"]].mean().reset_index().sort_values(["rank", "gap"], kind="mergesort")
    row = summary.iloc[0]
    return float(row["alpha"]), float(row["C"]), float(row["sigma"])


def _label(alpha: float, C: float, sigma: float) -> str:
    names = [name for name, p in PRESETS.items() if (p["alpha"], p["C"], p["sigma"]) == (alpha, C, sigma)]
    return f" ({names[0]})" if names else ""


def setting_cells(setting: tuple, bold: tuple, named: tuple, name: str) -> str:
    """A table row's first cells: alpha (bold if the setting is `bold`), C, sigma, and `name` if it
    is `named` (the default), else the name of the preset it is, if any."""
    mark = "**" if setting == bold else ""
    note = f" ({name})" if setting == named else _label(*setting)
    return f"| {mark}{setting[0]:g}{mark} | {setting[1]:g} | {setting[2]:g}{note} | "


def render(out_dir: Path, params: Params) -> str:
    tsds = params.select.tsds
    current = (tsds.alpha, tsds.C, tsds.sigma)
    found = read_records(out_dir)
    records = [r for f in found for r in f["records"]]
    meta = found[0]
    means = cell_means(records)
    targets = [t for t in TARGETS if t in set(means["target"])]
    cells = [(t, b) for t in targets for b in BUDGETS]
    default = choose_default(means)
    wide = means.pivot_table(index=SETTING, columns=["target", "budget"], values="f1")
    ranks = means.groupby(SETTING)[["rank", "gap"]].mean()
    order = ranks.sort_values(["rank", "gap"], kind="mergesort").index
    lines = [
        f"`PYTHONPATH=. python benchmarks/sensitivity.py -S embed.cache_dir=...` (records under "
        f"`benchmarks/quality/sensitivity/`). TSDS with alpha in {list(ALPHAS)}, C in {list(CS)}, sigma in "
        f"{list(SIGMAS)} (sigma 0 is KNN-Uniform); max_k {meta['max_k']}, kde_k {meta['kde_k']}, l2, without "
        f"replacement; head trainer; macro-F1 mean over seeds {list(SEEDS)}. " + runs_line(found),
        "",
        "Rule: in each target x budget cell the 40 settings are ranked by mean macro-F1 (1 = best); the "
        "default is the setting of best mean rank over the cells. Gap: points below the cell's best setting, "
        "mean over the cells.",
        "",
        "| alpha | C | sigma | " + " | ".join(f"{t} {budget_label(b)}" for t, b in cells) + " | mean rank | mean gap |",
        "|---|---|---|" + "---|" * len(cells) + "---|---|",
    ]
    for setting in order:
        lines.append(setting_cells(setting, default, current, "current default")
                     + " | ".join(f"{wide.loc[setting, c]:.3f}" for c in cells)
                     + f" | {ranks.loc[setting, 'rank']:.1f} | {100 * ranks.loc[setting, 'gap']:.1f} |")
    gap = means.set_index(SETTING)
    lines += ["", f"Chosen by the rule: alpha {default[0]:g}, C {default[1]:g}, sigma {default[2]:g}; its gap to the "
                  f"best setting of each cell, mean over the {len(cells)} cells: "
                  f"{100 * ranks.loc[default, 'gap']:.2f} points (per target: "
                  + ", ".join(f"{t} {100 * gap.loc[default].query('target == @t')['gap'].mean():.2f}" for t in targets)
                  + f"). The current default (alpha {current[0]:g}, C {current[1]:g}, sigma {current[2]:g}): "
                  f"{100 * ranks.loc[current, 'gap']:.2f} points.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    benchmark_main(__doc__, "sensitivity", SECTION, run_target, render)
