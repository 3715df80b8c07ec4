"""Scale: the index and select stages on pools of up to 1M rows, and MiniLM's embedding rate.

    PYTHONPATH=. python benchmarks/scale.py                    # 100k, 300k, 1M rows (about 15 min on 2 cores)
    PYTHONPATH=. python benchmarks/scale.py --sizes 100000     # a smoke test

The pool is N synthesised unit vectors (dim 384, seeded; benchmarks/selection.py's random_unit),
written as a workspace the real stages read: embeddings/pool.npy, 100 query vectors, and a
prepared pool.parquet of ids, labels and sources (no text). Each stage runs in its own process:
`index` (flat, or IVF trained on a sample and filled block by block) then `select` (TSDS, max_k
5000, kde_k 1000, budget 1%), timed end to end (reading the index and the memory-mapped pool
included), with the process's peak resident memory (VmHWM: memory-mapped pool pages count in it)
and its peak anonymous memory (RssAnon sampled every 20 ms: what the process allocated itself).
The embedding rate is that of the real MiniLM on real pool texts in one process. From these, a
linear fit in N extrapolates to 10M rows. Writes the "## Scale" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path[:0] = [str(Path(__file__).resolve().parent)]
from selection import DIM, ROOT, TSDS, fmt, in_subprocess, machine, peak_rss_mib, random_unit, write_section  # noqa: E402

SECTION = "## Scale"
SIZES = "100000,300000,1000000"
QUERIES = 100
BUDGET = 0.01
TEN_MILLION = 10_000_000
EMBED_TEXTS = 1024


# ---------------------------------------------------------------- one stage, in its own process

class AnonPeak:
    """Peak RssAnon of this process, sampled in a thread (the kernel keeps no peak of it)."""

    def __init__(self, every: float = 0.02):
        self.peak, self.every, self._stop = 0, every, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("RssAnon:"):
                    self.peak = max(self.peak, int(line.split()[1]))
            time.sleep(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def mib(self) -> float:
        return self.peak / 1024


def run_stage(case: dict) -> dict:
    from taskselect import stages
    from taskselect.config import IndexParams, SelectParams
    from taskselect.selectors.tsds import TSDSParams

    ws = stages.Workspace(Path(case.get("root", ".")))
    started = time.perf_counter()
    with AnonPeak() as anon:
        if case["stage"] == "index":
            facts = stages.index(IndexParams(kind=case["kind"]), ws)
        elif case["stage"] == "select":
            params = SelectParams(methods=["tsds"], budgets=[BUDGET], tsds=TSDSParams(**TSDS))
            facts = stages.select(params, stages.Run("tsds", BUDGET, 0), ws)
        else:  # embed: real MiniLM on real texts, no cache
            from taskselect.embedding import Embedder

            texts = json.loads(Path(case["texts"]).read_text())
            embedder = Embedder()
            embedder.encode(texts[:64])  # load the model and warm up
            started = time.perf_counter()
            embedder.encode(texts[64:])
            facts = {"texts": len(texts) - 64}
    seconds = time.perf_counter() - started
    keep = ("kind", "recall@100", "union", "recall", "kde", "n_unique", "texts")
    return {"seconds": seconds, "peak_mib": peak_rss_mib(), "anon_mib": anon.mib,
            **{k: facts[k] for k in keep if k in facts}}


# ---------------------------------------------------------------- workspaces

def make_workspace(root: Path, pool: np.ndarray, query: np.ndarray) -> Path:
    """A workspace holding `pool` as the prepared pool's embeddings (rows written block by block)."""
    from taskselect.io import write_json, write_npy, write_parquet
    from taskselect.shards import write_rows

    n = len(pool)
    if (root / "prepared" / "benchmark.json").is_file():
        return root
    step = 100_000
    write_rows(root / "embeddings" / "pool.npy", (pool[s:s + step] for s in range(0, n, step)), n, DIM)
    write_npy(root / "embeddings" / "query.npy", np.ascontiguousarray(query))
    labels = np.random.default_rng(0).choice(["negative", "neutral", "positive"], n)
    write_parquet(root / "prepared" / "pool.parquet",
                  pd.DataFrame({"id": [f"r{i}" for i in range(n)], "label": labels, "source": "synthetic"}))
    write_json(root / "prepared" / "benchmark.json",
               {"task": "synthetic", "target_labels": ["negative", "neutral", "positive"],
                "rows": {"pool": n, "query": len(query), "test": 0}})
    return root


def real_texts(path: Path) -> Path:
    """EMBED_TEXTS + 64 real pool texts of the default benchmark, saved once as JSON."""
    if not path.is_file():
        from taskselect.config import DataParams
        from taskselect.data import prepare_benchmark

        pool = prepare_benchmark(DataParams(cap_per_source=100)).pool
        texts = pool["text"].sample(EMBED_TEXTS + 64, random_state=0).tolist()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(texts))
    return path


# ---------------------------------------------------------------- the section

def linear(xs, ys, at):
    slope, intercept = np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)
    return slope * at + intercept


def section(rows: list[dict], embed: dict, args, load: tuple[float, float]) -> str:
    rate = embed["texts"] / embed["seconds"]
    lines = [
        SECTION, "",
        f"Machine: {machine()}. Load average before / after: {load[0]:.2f} / {load[1]:.2f}"
        + (" (other jobs were running: timings are pessimistic)" if max(load) > 1.5 else "") + ".",
        f"Command: `PYTHONPATH=. python benchmarks/scale.py"
        f"{'' if args.sizes == SIZES else ' --sizes ' + args.sizes}` ({time.strftime('%Y-%m-%d')}).", "",
        f"The index and select stages (taskselect.stages, each in its own process) on N synthesised unit "
        f"vectors (dim 384) with {QUERIES} query vectors: TSDS with max_k {TSDS['max_k']}, kde_k {TSDS['kde_k']}, "
        f"sigma {TSDS['sigma']}, a {BUDGET:.0%} budget. *select s* is the whole stage: reading the index and "
        "the memory-mapped pool, neighbour search, densities, solving and drawing, writing the selection. "
        "*peak MiB* is the process's max RSS, pages of the memory-mapped pool included; *anon MiB* the "
        "peak of what it allocated itself (the index, the neighbour lists, the union's vectors).", "",
        "| N | index | index s | index peak MiB | index recall@100 | select s | select peak MiB | select anon MiB | union | recall@5000 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        i, s = r["index"], r["select"]
        lines.append(
            f"| {r['n']:,} | {r['kind']} | {fmt(i['seconds'])} | {fmt(i['peak_mib'], 0)} "
            f"| {fmt(i.get('recall@100', 1.0), 3)} | {fmt(s['seconds'])} | {fmt(s['peak_mib'], 0)} "
            f"| {fmt(s['anon_mib'], 0)} | {s['union']:,} | {fmt(s['recall'], 3)} |"
        )
    lines += [
        "", f"Embedding: the real MiniLM (all-MiniLM-L6-v2, max_seq_length 128, batch 64) on {embed['texts']:,} "
        f"real pool texts in one process (2 torch threads): {rate:.0f} texts/s, peak {fmt(embed['peak_mib'], 0)} MiB.",
    ]
    lines += ["", "Extrapolated to 10M rows: a straight line through the two largest sizes (there the union of "
              "the queries' neighbours, and so the densities' cost, has reached its bound M x max_k; "
              "what still grows with N is the search and reading the pool):", "",
              "| index | index s | select s | select anon MiB | embedding (1 process as above) |",
              "|---|---|---|---|---|"]
    for kind in sorted({r["kind"] for r in rows}):
        mine = sorted((r for r in rows if r["kind"] == kind), key=lambda r: r["n"])[-2:]
        if len(mine) < 2:
            continue
        ns = [r["n"] for r in mine]
        lines.append(
            f"| {kind} | {fmt(linear(ns, [r['index']['seconds'] for r in mine], TEN_MILLION), 0)} "
            f"| {fmt(linear(ns, [r['select']['seconds'] for r in mine], TEN_MILLION), 0)} "
            f"| {fmt(linear(ns, [r['select']['anon_mib'] for r in mine], TEN_MILLION), 0)} "
            f"| {TEN_MILLION / rate / 3600:.0f} h |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=SIZES, help="pool rows N, comma-separated")
    parser.add_argument("--kinds", default="flat,ivf", help="index kinds, comma-separated")
    parser.add_argument("--cache", type=Path, default=ROOT / ".taskselect-cache" / "bench", help="vectors and workspaces")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_stage(json.loads(args.worker))))
        return

    load_before = os.getloadavg()[0]
    sizes = [int(n) for n in args.sizes.split(",")]
    pool = np.load(random_unit(args.cache / f"pool-{max(sizes)}.npy", max(sizes), seed=0), mmap_mode="r")
    query = np.load(random_unit(args.cache / "query-1000.npy", 1000, seed=1), mmap_mode="r")[:QUERIES]
    print("embedding rate ...", file=sys.stderr, flush=True)
    embed = in_subprocess({"stage": "embed", "texts": str(real_texts(args.cache / "texts.json"))}, __file__)
    rows = []
    for n in sizes:
        root = make_workspace(args.cache / f"scale-{n}", pool[:n], query)
        for kind in args.kinds.split(","):
            row = {"n": n, "kind": kind}
            for stage in ("index", "select"):
                print(f"N={n:,} {kind} {stage} ...", file=sys.stderr, flush=True)
                row[stage] = in_subprocess({"stage": stage, "root": str(root), "kind": kind}, __file__)
                print(f"    {row[stage]}", file=sys.stderr, flush=True)
            rows.append(row)
    text = section(rows, embed, args, (load_before, os.getloadavg()[0]))
    write_section(args.out, text, SECTION)
    print(text)


if __name__ == "__main__":
    main()
