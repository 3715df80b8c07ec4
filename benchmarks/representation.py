"""Semantic, lexical and hybrid representations for the embedding-based selectors, on every target.

    PYTHONPATH=. python benchmarks/representation.py -S embed.cache_dir=/work/cache/embeddings
        [--targets trec] [--render-only]

knn and tsds (params.yaml's settings) select in each representation
(taskselect.selectors.representation) at BUDGETS with seeds SEEDS; each representation is
computed once per target. Scored as the stages score (benchmarks/harness.py): the head is
trained on the semantic embeddings of the selected rows whatever the representation that
chose them. Records: benchmarks/quality/representation/<target>.json; the "Representation"
section of BENCHMARKS.md is rendered from them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from benchmarks.harness import Target, benchmark_main, read_records, runs_line
from taskselect.bench import PlanOnceTSDS
from taskselect.config import TARGETS, Params
from taskselect.selectors import budget_label, make_selector, resolve_budget
from taskselect.selectors.representation import REPRESENTATIONS, represent

log = logging.getLogger("representation")

METHODS = ("knn", "tsds")
BUDGETS = (0.02, 0.05, 0.1)
SEEDS = (0, 1, 2)
SECTION = "Representation: semantic, lexical, hybrid"


def run_target(target: Target, args=None) -> tuple[list[dict], dict]:
    select = target.params.select
    records = []
    for representation in REPRESENTATIONS:
        started = time.perf_counter()
        query, pool, index = represent(representation, target.query, target.pool, target.index, target.corpus,
                                       select.tsds.lexical_weight)
        seconds = time.perf_counter() - started
        for method in METHODS:
            # the vectors are already represented; TSDS plans once per representation
            selector = (PlanOnceTSDS(**{**select.tsds.model_dump(exclude={"preset"}), "representation": "semantic"})
                        if method == "tsds" else replace(make_selector(method, select), representation="semantic"))
            for budget in BUDGETS:
                for seed in SEEDS:
                    chosen = selector.select(query, pool, resolve_budget(budget, len(pool)), seed, index)
                    records.append({"target": target.name, "representation": representation, "method": method,
                                    "budget": budget, "seed": seed, "f1": target.f1(chosen.indices, seed),
                                    "on_task": target.on_task(chosen.indices), "represent_seconds": round(seconds, 2)})
            log.info("%s %s %s done", target.name, representation, method)
    return records, {}


def render(out_dir: Path, params: Params) -> str:
    found = read_records(out_dir)
    frame = pd.DataFrame([r for f in found for r in f["records"]])
    lines = [
        "`PYTHONPATH=. python benchmarks/representation.py -S embed.cache_dir=...` (records under "
        "`benchmarks/quality/representation/`). knn and tsds (params.yaml settings) selecting on the sentence "
        f"embeddings (semantic), on TF-IDF of hashed 1- and 2-grams reduced by SVD (lexical), or on both "
        f"(hybrid, lexical weight {params.select.tsds.lexical_weight:g}); the head is always trained on the sentence "
        f"embeddings. Macro-F1 mean ± std over seeds {list(SEEDS)}; on-task: share of the selection with a target "
        "label. " + runs_line(found),
        "",
        "| target | method | representation | " + " | ".join(budget_label(b) for b in BUDGETS)
        + " | on-task | time to represent the pool |",
        "|---|---|---|" + "---|" * len(BUDGETS) + "---|---|",
    ]
    for target in [t for t in TARGETS if t in set(frame["target"])]:
        for method in METHODS:
            for representation in REPRESENTATIONS:
                rows = frame[(frame["target"] == target) & (frame["method"] == method)
                             & (frame["representation"] == representation)]
                cells = []
                for b in BUDGETS:
                    f1 = rows[rows["budget"] == b]["f1"]
                    cells.append(f"{f1.mean():.3f} ± {f1.std():.3f}")
                lines.append(f"| {target} | {method} | {representation} | " + " | ".join(cells)
                             + f" | {rows['on_task'].mean():.0%} | {rows['represent_seconds'].iloc[0]:.1f} s |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    benchmark_main(__doc__, "representation", SECTION, run_target, render)
