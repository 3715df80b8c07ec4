"""What keeping a process's pool features saves (taskselect.memo): a run's selections at several
budgets and seeds, computed as `taskselect run` computes them in one process.

    PYTHONPATH=. python benchmarks/memo.py [--data-dir data] [--repeats 3]

Reads the default run's workspace (`make run` first): its prepared pool and query set and their
embeddings. Times dsir at 2% and 5% with seeds 0-2 (six selections) and s2l at 2%, 5% and 10%
with seed 0 (three), once with every kept result forgotten before each selection (as before the
memo) and once as a run does; median wall time of --repeats, and checks that both give the same
rows. Writes BENCHMARKS.md's section "Pool features kept between selections".
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from benchmarks.harness import write_marked_section
from taskselect.bench import machine
from taskselect.memo import forget_all
from taskselect.selectors import s2l
from taskselect.selectors.dsir import DSIRSelector
from taskselect.stages import Workspace

SECTION = "Pool features kept between selections"
RUNS = {"dsir": [(b, s) for b in (0.02, 0.05) for s in (0, 1, 2)], "s2l": [(b, 0) for b in (0.02, 0.05, 0.1)]}


def selections(method: str, ws: Workspace, fresh: bool) -> tuple[float, list[np.ndarray]]:
    """(seconds, selected rows per run) of the method's runs in one process; fresh: nothing kept."""
    import pandas as pd

    from taskselect.selectors.base import Corpus

    pool, query = (pd.read_parquet(ws.prepared / f"{split}.parquet") for split in ("pool", "query"))
    corpus = Corpus(pool["text"].tolist(), pool["label"].tolist(), query["text"].tolist(), query["label"].tolist())
    vectors = {split: ws.load_embeddings(split) for split in ("pool", "query")}
    selector = DSIRSelector() if method == "dsir" else s2l.S2LSelector()
    forget_all()
    chosen, started = [], time.perf_counter()
    for budget, seed in RUNS[method]:
        if fresh:
            forget_all()
        chosen.append(selector.select(vectors["query"], vectors["pool"], round(budget * len(pool)), seed,
                                      corpus=corpus).indices)
    return time.perf_counter() - started, chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--markdown", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args()
    ws = Workspace(args.data_dir)
    load = os.getloadavg()[0]
    rows = []
    for method in RUNS:
        seconds = {}
        for fresh in (True, False):
            timed = [selections(method, ws, fresh) for _ in range(args.repeats)]
            seconds[fresh] = statistics.median(t for t, _ in timed)
            picked = timed[0][1]
        _, again = selections(method, ws, True)
        assert all(np.array_equal(a, b) for a, b in zip(picked, again)), f"{method}: kept features changed a selection"
        rows.append(f"| {method} | {', '.join(f'{b:.0%} seed {s}' for b, s in RUNS[method])} | "
                    f"{seconds[True]:.1f} s | {seconds[False]:.1f} s |")
    m = machine()
    body = "\n".join([
        f"`PYTHONPATH=. python benchmarks/memo.py` on the default run's workspace "
        f"({len(ws.load_embeddings('pool')):,} pool rows). " + __doc__.split("\n\n")[2].replace("\n", " "),
        f"Machine: {m['cpu']}, {m['cores']} cores; load average {load:.2f} before / {os.getloadavg()[0]:.2f} after; "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
        "",
        "| method | selections, in one process | each computed afresh | as a run computes them |",
        "|---|---|---|---|",
        *rows,
    ])
    write_marked_section(args.markdown, SECTION, body)
    print(body)


if __name__ == "__main__":
    main()
