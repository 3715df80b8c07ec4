"""TSDS's sensitivity to its neighbour search: max_k and the metric, at the default alpha, C, sigma.

    PYTHONPATH=. python benchmarks/search_sensitivity.py -S embed.cache_dir=/work/cache/embeddings
        [--targets trec,20newsgroups] [--render-only]

max_k (neighbours per query the transport may use) in MAX_KS x metric in METRICS, at the
sensitivity benchmark's budgets and seeds, on the bench's targets. sigma keeps its value under
either metric: on unit vectors the l2 distance is sqrt(2 x the cosine distance), so the same
sigma is a narrower kernel under cosine. Records: benchmarks/quality/search-sensitivity/<target>.json;
the "TSDS sensitivity: max_k and metric" section of BENCHMARKS.md is rendered from them.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.harness import Target, benchmark_main, read_records, runs_line
from benchmarks.sensitivity import BUDGETS, SEEDS, cell_means, setting_records
from taskselect.config import TARGETS, Params
from taskselect.selectors import budget_label

MAX_KS = (1000, 2000, 5000, 10000)
METRICS = ("l2", "cosine")
SETTING = ["max_k", "metric"]
SECTION = "TSDS sensitivity: max_k and metric"


def run_target(target: Target, args=None) -> tuple[list[dict], dict]:
    """Every (metric, max_k) at the default alpha, C and sigma."""
    base = target.params.select.tsds
    settings = [{"max_k": max_k, "kde_k": min(base.kde_k, max_k), "metric": metric}
                for metric in METRICS for max_k in MAX_KS]
    records = setting_records(target, settings)
    return records, {"alpha": base.alpha, "C": base.C, "sigma": base.sigma, "kde_k": base.kde_k}


def render(out_dir: Path, params: Params) -> str:
    tsds = params.select.tsds
    current = (tsds.max_k, tsds.metric)
    found = read_records(out_dir)
    meta = found[0]
    means = cell_means([r for f in found for r in f["records"]], SETTING)
    targets = [t for t in TARGETS if t in set(means["target"])]
    cells = [(t, b) for t in targets for b in BUDGETS]
    wide = means.pivot_table(index=SETTING, columns=["target", "budget"], values="f1")
    ranks = means.groupby(SETTING)[["rank", "gap"]].mean().sort_values(["rank", "gap"], kind="mergesort")
    lines = [
        f"`PYTHONPATH=. python benchmarks/search_sensitivity.py -S embed.cache_dir=...` (records under "
        f"`benchmarks/quality/search-sensitivity/`). TSDS at alpha {meta['alpha']:g}, C {meta['C']:g}, sigma "
        f"{meta['sigma']:g} with max_k in {list(MAX_KS)} and metric in {list(METRICS)} (kde_k min({meta['kde_k']}, "
        f"max_k)); without replacement; head trainer; macro-F1 mean over seeds {list(SEEDS)}. " + runs_line(found),
        "",
        "Rank and gap as in the section above (within each target x budget cell over these settings).",
        "",
        "| max_k | metric | " + " | ".join(f"{t} {budget_label(b)}" for t, b in cells) + " | mean rank | mean gap |",
        "|---|---|" + "---|" * len(cells) + "---|---|",
    ]
    for setting in ranks.index:
        note = " (default)" if setting == current else ""
        lines.append(f"| {setting[0]} | {setting[1]}{note} | " + " | ".join(f"{wide.loc[setting, c]:.3f}" for c in cells)
                     + f" | {ranks.loc[setting, 'rank']:.1f} | {100 * ranks.loc[setting, 'gap']:.1f} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    benchmark_main(__doc__, "search-sensitivity", SECTION, run_target, render)
