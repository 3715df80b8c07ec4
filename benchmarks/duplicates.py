"""Duplicate robustness, as the TSDS paper tests it: 1% of the pool's rows copied many times.

    PYTHONPATH=. python benchmarks/duplicates.py -S embed.cache_dir=/work/cache/embeddings
        [--targets airline_sentiment,trec] [--methods tsds,knn,...] [--render-only]

DUPLICATED of the pool's rows (seeded) get c copies each, c = floor(MAX_COPIES ** u) with u
uniform in [0, 1): a power law (density ~ 1/c) from 1 to MAX_COPIES copies. The copies are
appended to the pool (same text, label and embedding); budgets are shares of the original pool,
so both pools are asked for the same number of rows. Every selector runs on both pools (head
trainer, as the stages score: benchmarks/harness.py); distinct texts and the on-task share tell
where a budget went. Records: benchmarks/quality/duplicates/<target>.json; the "Duplicate
robustness" section of BENCHMARKS.md is rendered from them.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.harness import Target, benchmark_main, read_records, runs_line
from taskselect.config import Params
from taskselect.data import Benchmark
from taskselect.index import build_index
from taskselect.io import read_json
from taskselect.selectors import budget_label, make_selector, methods, resolve_budget, spec

log = logging.getLogger("duplicates")

DUPLICATED = 0.01
MAX_COPIES = 1000
BUDGETS = (0.02, 0.05)
SEEDS = (0, 1, 2)
SECTION = "Duplicate robustness"


def with_duplicates(target: Target, seed: int = 0) -> Target:
    """`target` whose pool has copies of DUPLICATED of its rows appended (see the module)."""
    rng = np.random.default_rng(seed)
    n = len(target.pool)
    rows = rng.choice(n, max(1, round(DUPLICATED * n)), replace=False)
    copies = np.floor(MAX_COPIES ** rng.random(rows.size)).astype(np.int64)
    extra = np.repeat(rows, copies)
    b = target.benchmark
    pool = pd.concat([b.pool, b.pool.iloc[extra]], ignore_index=True)
    embeddings = np.vstack([target.pool, target.pool[extra]])
    log.info("%s: %d rows copied %d times in all (at most %d), pool %d -> %d rows", target.name, rows.size,
             extra.size, copies.max(), n, len(pool))
    return Target(target.name, target.params, Benchmark(b.task, pool, b.query, b.test, b.target_labels),
                  embeddings, target.query, target.test, build_index(embeddings, target.params.index))


def run_target(target: Target, args) -> tuple[list[dict], dict]:
    """The records of every method of args.methods on the original and the duplicated pool, and
    the target's earlier records of the other methods (a rerun of some methods keeps the rest)."""
    earlier = args.out / f"{target.name}.json"
    rerun = set(args.methods.split(","))
    records = [r for r in read_json(earlier)["records"] if r["method"] not in rerun] if earlier.is_file() else []
    n_original = len(target.pool)
    duplicated = with_duplicates(target)
    for pool_kind, t in (("original", target), ("duplicated", duplicated)):
        texts = t.benchmark.pool["text"].to_numpy()
        for method in args.methods.split(","):
            selector = make_selector(method, t.params.select)
            corpus = t.corpus if spec(method).reads_corpus else None
            for budget in BUDGETS:
                for seed in SEEDS:
                    started = time.perf_counter()
                    chosen = selector.select(t.query, t.pool, resolve_budget(budget, n_original), seed, t.index, corpus)
                    records.append({
                        "target": t.name, "pool": pool_kind, "method": method, "budget": budget, "seed": seed,
                        "f1": t.f1(chosen.indices, seed), "distinct_texts": int(np.unique(texts[chosen.indices]).size),
                        "rows": chosen.n_selected, "on_task": t.on_task(chosen.indices),
                        "seconds": round(time.perf_counter() - started, 2),
                    })
            log.info("%s %s %s: mean macro-F1 %.4f", t.name, pool_kind, method,
                     np.mean([r["f1"] for r in records[-len(BUDGETS) * len(SEEDS):]]))
    return records, {"pool_rows": n_original, "duplicated_rows": len(duplicated.pool)}


def render(out_dir: Path, params: Params) -> str:
    found = read_records(out_dir)
    frame = pd.DataFrame([r for f in found for r in f["records"]])
    lines = [
        "`PYTHONPATH=. python benchmarks/duplicates.py -S embed.cache_dir=...` (records under "
        f"`benchmarks/quality/duplicates/`). {DUPLICATED:.0%} of the pool's rows copied c times, c = floor("
        f"{MAX_COPIES}^u), u uniform (seeded; a power law from 1 to {MAX_COPIES} copies); budgets are shares of the "
        f"original pool. Macro-F1 mean over seeds {list(SEEDS)}; distinct: distinct texts among the selected rows "
        "(mean); on-task: share of the selection with a target label. Pool rows with the copies: "
        + ", ".join(f"{f['target']} {f['pool_rows']:,} -> {f['duplicated_rows']:,}" for f in found) + ". "
        + runs_line(found),
        "",
        "| target | method | budget | macro-F1 | with duplicates | change (points) | distinct | with duplicates | on-task | with duplicates |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    means = frame.groupby(["target", "method", "budget", "pool"])[["f1", "distinct_texts", "on_task"]].mean()
    for f in found:
        t = f["target"]
        for method in [x for x in methods() if x in set(frame["method"])]:
            for b in BUDGETS:
                o, d = means.loc[(t, method, b, "original")], means.loc[(t, method, b, "duplicated")]
                lines.append(f"| {t} | {method} | {budget_label(b)} | {o['f1']:.3f} | {d['f1']:.3f} | "
                             f"{100 * (d['f1'] - o['f1']):+.1f} | {o['distinct_texts']:.0f} | {d['distinct_texts']:.0f} | "
                             f"{o['on_task']:.0%} | {d['on_task']:.0%} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    benchmark_main(__doc__, "duplicates", SECTION, run_target, render, targets="airline_sentiment,trec",
                   add_arguments=lambda parser: parser.add_argument(
                       "--methods", default=",".join(m for m in methods() if m != "auto" and spec(m).uses_budget)))
