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

import argparse
import logging
import os
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from benchmarks.harness import Target, write_marked_section
from taskselect.bench import PlanOnceTSDS, machine
from taskselect.config import TARGETS, load_params
from taskselect.io import read_json, write_json
from taskselect.selectors import budget_label, make_selector, resolve_budget
from taskselect.selectors.representation import REPRESENTATIONS, represent

log = logging.getLogger("representation")

METHODS = ("knn", "tsds")
BUDGETS = (0.02, 0.05, 0.1)
SEEDS = (0, 1, 2)
SECTION = "Representation: semantic, lexical, hybrid"


def run_target(target: Target) -> list[dict]:
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
    return records


def render(out_dir: Path, lexical_weight: float) -> str:
    files = [out_dir / f"{t}.json" for t in TARGETS if (out_dir / f"{t}.json").is_file()]
    found = [read_json(f) for f in files]
    frame = pd.DataFrame([r for f in found for r in f["records"]])
    m = found[0]["machine"]
    lines = [
        "`PYTHONPATH=. python benchmarks/representation.py -S embed.cache_dir=...` (records under "
        "`benchmarks/quality/representation/`). knn and tsds (params.yaml settings) selecting on the sentence "
        f"embeddings (semantic), on TF-IDF of hashed 1- and 2-grams reduced by SVD (lexical), or on both "
        f"(hybrid, lexical weight {lexical_weight:g}); the head is always trained on the sentence embeddings. "
        f"Macro-F1 mean ± std over seeds {list(SEEDS)}; on-task: share of the selection with a target label. "
        f"Machine: {m['cpu']}, {m['cores']} cores; "
        + "; ".join(f"{f['target']}: {f['seconds']:.0f} s, load {f['load_before']} / {f['load_after']}" for f in found)
        + ".",
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("-S", "--set", dest="overrides", action="append", default=[])
    parser.add_argument("--params", default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/quality/representation"))
    parser.add_argument("--data-dir", type=Path, default=Path("data/bench"))
    parser.add_argument("--markdown", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument("--render-only", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    params = load_params(args.params, args.overrides)
    if not args.render_only:
        for name in args.targets.split(","):
            load_before, started = os.getloadavg()[0], time.perf_counter()
            records = run_target(Target.load(params, name, args.data_dir))
            write_json(args.out / f"{name}.json", {
                "target": name, "seconds": round(time.perf_counter() - started, 1), "load_before": round(load_before, 2),
                "load_after": round(os.getloadavg()[0], 2), "machine": machine(), "records": records,
            })
    write_marked_section(args.markdown, SECTION, render(args.out, params.select.tsds.lexical_weight))


if __name__ == "__main__":
    main()
