"""auto's candidates cross-validated one at a time and side by side (AutoSelector.workers).

    PYTHONPATH=. python benchmarks/auto_workers.py [--data-dir data] [--budget 0.05] [--repeats 3]

Reads the default run's workspace (`make run` first): its pool, query set, embeddings and index.
Times auto with params.yaml's settings (the default run's selection: seed 0) with one worker
thread and with one per core, each run a fresh auto with every kept pool feature forgotten (as a
run's first selection), median wall time of --repeats, and checks that every run gives the same
rows and the same report. Writes BENCHMARKS.md's section "auto: candidates side by side".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.harness import write_marked_section
from taskselect.bench import machine
from taskselect.config import load_params
from taskselect.environment import configure
from taskselect.index import read_index
from taskselect.memo import forget_all
from taskselect.selectors import Corpus, make_selector
from taskselect.stages import Workspace
from taskselect.threads import fixed_threads, usable_cores

SECTION = "auto: candidates side by side"


def auto_run(ws: Workspace, workers: int, size: int) -> tuple[float, np.ndarray, str]:
    """(seconds, selected rows, the report as JSON) of a fresh auto, nothing kept from before."""
    forget_all()
    params = load_params(Path("params.yaml"))
    auto = replace(make_selector("auto", params.select, params.finetune), workers=workers)
    pool, query = (pd.read_parquet(ws.prepared / f"{split}.parquet") for split in ("pool", "query"))
    corpus = Corpus(pool["text"].tolist(), pool["label"].tolist(), query["text"].tolist(), query["label"].tolist())
    started = time.perf_counter()
    with fixed_threads():  # as the select stage runs it
        chosen = auto.select(ws.load_embeddings("query"), ws.load_embeddings("pool"), size, 0,
                             index=read_index(ws.index), corpus=corpus)
    seconds = time.perf_counter() - started
    report = {k: v for k, v in chosen.info.items() if not k.endswith("_seconds")}
    return seconds, chosen.indices, json.dumps(report, sort_keys=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--budget", type=float, default=0.05)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--markdown", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args()
    configure()
    ws = Workspace(args.data_dir)
    n_pool = len(ws.load_embeddings("pool"))
    size = round(args.budget * n_pool)
    cores = usable_cores()
    load = os.getloadavg()[0]
    runs = {workers: [auto_run(ws, workers, size) for _ in range(args.repeats)] for workers in (1, cores)}
    first = runs[1][0]
    for workers, timed in runs.items():
        for _, rows, report in timed:
            assert np.array_equal(rows, first[1]) and report == first[2], f"{workers} worker(s): another selection"
    median = {workers: statistics.median(t for t, _, _ in timed) for workers, timed in runs.items()}
    m = machine()
    body = "\n".join([
        f"`PYTHONPATH=. python benchmarks/auto_workers.py` on the workspace {args.data_dir}/ ({n_pool:,} pool "
        f"rows, budget {args.budget:.0%}, {size} rows). " + __doc__.split("\n\n")[2].replace("\n", " "),
        f"Machine: {m['cpu']}, {m['cores']} cores; load average {load:.2f} before / {os.getloadavg()[0]:.2f} after; "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. Choice: {json.loads(first[2])['choice']}; the same rows "
        f"and report in all {sum(map(len, runs.values()))} runs.",
        "",
        "| worker threads | auto's cross-validation and selection (median) | runs |",
        "|---|---|---|",
        *(f"| {workers} | {median[workers]:.1f} s | {', '.join(f'{t:.1f}' for t, _, _ in runs[workers])} s |"
          for workers in runs),
    ])
    write_marked_section(args.markdown, SECTION, body)
    print(body)


if __name__ == "__main__":
    main()
