"""The k-center cover kept up to date in blocks, against one pass over every row per chosen row.

    PYTHONPATH=. python benchmarks/kcenter.py [--sizes 26599,100000,300000,1000000] [--budget 0.1]

Rows: the default run's MiniLM pool and its 100 queries (data/embeddings: `make run` first), and
near-duplicates of that pool at the larger sizes (benchmarks/selection.py's near_duplicates).
For each size N, kcenter's neighbourhood of the queries (1.5 x the budget, taskselect's round
robin) is covered with `budget x N` rows twice: by taskselect.selectors.kcenter.greedy_k_center,
and by `one_pass` below (the rule written plainly: every row's gap updated once per chosen
row). Both at one BLAS thread, as every selection runs (taskselect.threads); medians of
--repeats runs, one run of one_pass above --one-pass-repeat-max rows and none above
--one-pass-max. Reports how many rows both chose and each cover's radius. Writes BENCHMARKS.md's
section "k-center cover".
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
from benchmarks.selection import near_duplicates
from taskselect.bench import machine
from taskselect.selectors.kcenter import greedy_k_center
from taskselect.selectors.neighbourhood import round_robin
from taskselect.threads import fixed_threads

ROOT = Path(__file__).resolve().parents[1]
SECTION = "k-center cover"


def one_pass(points: np.ndarray, size: int, first: int = 0) -> np.ndarray:
    """Greedy k-center as the rule reads: after each chosen row, every row's distance to it."""
    points = np.asarray(points, dtype=np.float32)
    norms = np.einsum("ij,ij->i", points, points)
    gap = np.full(len(points), np.inf)
    chosen = np.empty(size, dtype=np.int64)
    row = first
    for step in range(size):
        chosen[step] = row
        gap = np.minimum(gap, np.sqrt(np.maximum(norms - 2.0 * (points @ points[row]) + norms[row], 0.0)))
        gap[row] = -1.0
        row = int(np.argmax(gap))
    return chosen


def cover_radius(points: np.ndarray, chosen: np.ndarray, chunk: int = 4096) -> float:
    """The largest distance from a row to its nearest chosen row (float64)."""
    centers = points[chosen].astype(np.float64)
    radius = 0.0
    for start in range(0, len(points), chunk):
        rows = points[start:start + chunk].astype(np.float64)
        squared = (rows**2).sum(1)[:, None] - 2.0 * rows @ centers.T + (centers**2).sum(1)[None, :]
        radius = max(radius, float(np.sqrt(np.maximum(squared, 0.0)).min(axis=1).max()))
    return radius


def timed(function, *args) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    out = function(*args)
    return time.perf_counter() - started, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="26599,100000,300000,1000000",
                        help="pool sizes; the real pool's own size uses its rows, larger ones near-duplicates")
    parser.add_argument("--budget", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one-pass-repeat-max", type=int, default=100_000)
    parser.add_argument("--one-pass-max", type=int, default=300_000)
    parser.add_argument("--embeddings", type=Path, default=ROOT / "data" / "embeddings")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()

    real = np.load(args.embeddings / "pool.npy")
    query = np.load(args.embeddings / "query.npy")
    load_before = os.getloadavg()
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        pool = real if n == len(real) else near_duplicates(real, n, seed=0)
        size = round(args.budget * n)
        region = round_robin(query, pool, int(np.ceil(1.5 * size)), seed=0)
        points = np.ascontiguousarray(pool[region])
        del pool
        with fixed_threads():
            blocked = [timed(greedy_k_center, points, size) for _ in range(args.repeats)]
            plain_runs = 0 if n > args.one_pass_max else 1 if n > args.one_pass_repeat_max else args.repeats
            plain = [timed(one_pass, points, size) for _ in range(plain_runs)]
        chosen = blocked[0][1][0]
        if any(not np.array_equal(r[1][0], chosen) for r in blocked):
            raise SystemExit(f"N={n}: greedy_k_center chose other rows in another run")
        shared = len(np.intersect1d(chosen, plain[0][1])) / size if plain else None
        radii = (cover_radius(points, chosen), cover_radius(points, plain[0][1])) if plain else None
        rows.append({"n": n, "kind": "MiniLM" if n == len(real) else "near-duplicates", "region": len(region),
                     "size": size, "blocked": [t for t, _ in blocked], "plain": [t for t, _ in plain],
                     "shared": shared, "radii": radii})
        print(rows[-1], flush=True)

    def cell(times):
        return f"{statistics.median(times):.1f} s ({', '.join(f'{t:.1f}' for t in times)})" if times else "not run"

    m = machine()
    lines = [
        f"`PYTHONPATH=. python benchmarks/kcenter.py --sizes {args.sizes} --budget {args.budget}` on the default run's "
        f"embeddings ({len(real):,} MiniLM pool rows, {len(query)} queries; larger pools are near-duplicates of it). "
        "kcenter's neighbourhood of the queries (1.5 x the budget) covered by taskselect's greedy_k_center, which keeps "
        "only the 1,024 farthest rows up to date at each step and the others in one matrix product when one of them may "
        "be farther, and by the rule written plainly (`one_pass`: every row's distance to each chosen row). One BLAS "
        "thread, as selections run. Seconds: median (runs). *same rows*: the share of the cover's rows both chose "
        "(they differ where two rows' gaps differ in the last bits: a matrix product rounds otherwise than one row at "
        "a time); *radius*: the largest distance from a neighbourhood row to its nearest chosen row, each cover's "
        "(in float64), greedy_k_center's / one pass's.",
        f"Machine: {m['cpu']}, {m['cores']} cores; load average {load_before[0]:.2f} before / "
        f"{os.getloadavg()[0]:.2f} after; {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
        "",
        "| pool rows | rows | neighbourhood | cover | greedy_k_center | one pass | speed-up | same rows | radius |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = f"{statistics.median(r['plain']) / statistics.median(r['blocked']):.1f}x" if r["plain"] else ""
        same = f"{r['shared']:.2%}" if r["plain"] else ""
        radii = " / ".join(f"{x:.6f}" for x in r["radii"]) if r["plain"] else ""
        lines.append(f"| {r['n']:,} | {r['kind']} | {r['region']:,} | {r['size']:,} | {cell(r['blocked'])} | "
                     f"{cell(r['plain'])} | {ratio} | {same} | {radii} |")
    write_marked_section(args.out, SECTION, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
