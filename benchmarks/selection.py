"""Selection speed and memory: the TSDS engine against a heap-and-loop implementation of the same algorithm.

    PYTHONPATH=. python benchmarks/selection.py            # everything (about an hour on 2 cores)
    PYTHONPATH=. python benchmarks/selection.py --quick    # 10k candidates only, a smoke test
    PYTHONPATH=. python benchmarks/selection.py --against-script DIR  # the public TSDS script's main()
        # against the whole `taskselect select-embeddings` process (DIR: its tsds.py and faiss_helper.py)

Candidates: N unit-normalised random vectors (dim 384, seeded) for N in 10k, 100k, 1M, with
M random queries (100, 1000), max_k 5000, kde_k 1000, sigma 0.75, alpha 0.9, C 1, a budget of
1% of N. Also the real MiniLM pool (data/embeddings/{pool,query}.npy, from `taskselect prepare &&
taskselect embed`), and the accuracy of the approximate densities against exact ones. Every
(case, implementation) runs in its own process, so its peak memory (max RSS) is its own;
timings are medians over --repeats runs in that process. Writes the "## Selection speed"
section of BENCHMARKS.md (other sections are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DIM = 384
SECTION = "## Selection speed"
TSDS = {"alpha": 0.9, "C": 1.0, "sigma": 0.75, "max_k": 5000, "kde_k": 1000}
SIZES = "10000,100000,1000000"
BASELINE_FULL_KDE_MAX = 150_000  # larger unions: the baseline's exact KDE is timed on a sample


def random_unit(path: Path, n: int, seed: int) -> Path:
    """(n, DIM) float32 unit vectors written to `path` once (chunked: no full float64 copy)."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        tmp = path.with_suffix(".tmp.npy")
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, DIM))
        for start in range(0, n, 100_000):
            block = rng.standard_normal((min(100_000, n - start), DIM), dtype=np.float32)
            out[start:start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
        out.flush()
        del out
        os.replace(tmp, path)
    return path


def near_duplicates(pool: np.ndarray, n: int, seed: int, noise: float = 0.018) -> np.ndarray:
    """n unit vectors, each a real embedding plus noise: clusters of near-duplicates (distance
    about 0.5 within a cluster), the structure the KDE exists for."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, pool.shape[1]), dtype=np.float32)
    for start in range(0, n, 100_000):
        rows = rng.integers(0, len(pool), min(100_000, n - start))
        block = pool[rows] + noise * rng.standard_normal((rows.size, pool.shape[1]), dtype=np.float32)
        out[start:start + rows.size] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def clustered_unit(directory: Path, n: int = 100_000, m: int = 1000, clusters: int = 1000, noise: float = 0.02,
                   seed: int = 0) -> tuple[Path, Path]:
    """candidates.npy (n, DIM) and query.npy (m, DIM) float32 unit vectors around `clusters`
    random centres (distance about 0.5 within a cluster: near-duplicates for the KDE to find);
    the queries come from the first 50 clusters. Written once."""
    pool, query = directory / "candidates.npy", directory / "query.npy"
    if not (pool.is_file() and query.is_file()):
        directory.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        centres = rng.standard_normal((clusters, DIM), dtype=np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)

        def draw(count: int, among: int) -> np.ndarray:
            x = centres[rng.choice(among, count)] + noise * rng.standard_normal((count, DIM), dtype=np.float32)
            return x / np.linalg.norm(x, axis=1, keepdims=True)

        np.save(pool, draw(n, clusters))
        np.save(query, draw(m, 50))
    return pool, query


# ---------------------------------------------------------------- against the public TSDS script

SCRIPT_CASE = {"size": 1000, "alpha": 0.5, "C": 5.0, "sigma": 0.75, "max_k": 2000, "kde_k": 500}
SCRIPT_SECTION = "## Selection speed against the public TSDS script"
SCRIPT_MAIN = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import tsds
started = time.perf_counter()
try:
    tsds.main()
    error = None
except Exception as exc:
    error = f"{type(exc).__name__}: {exc}"
print(json.dumps({"seconds": time.perf_counter() - started, "error": error}))
"""


def against_script(script_dir: Path, cache: Path) -> dict:
    """The public TSDS script's main() (tsds.py from its repository, in `script_dir`, never in
    ours) and the whole `taskselect select-embeddings` process, one run each, on the same
    clustered_unit input and settings (SCRIPT_CASE)."""
    import yaml

    pool, query = clustered_unit(cache / "clustered")
    c = SCRIPT_CASE
    work = cache / "against-script"
    work.mkdir(parents=True, exist_ok=True)
    (work / "config.yaml").write_text(yaml.safe_dump({
        "query_embedding_path": str(query), "candidate_embedding_path": str(pool), "output_folder": str(work / "script"),
        "sample_size": c["size"], "alpha": c["alpha"], "C": c["C"], "sigma": c["sigma"], "max_K": c["max_k"],
        "kde_K": c["kde_k"]}))
    load = os.getloadavg()[0]
    done = subprocess.run([sys.executable, "-c", SCRIPT_MAIN, str(script_dir)], cwd=work, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True, check=True)
    script = json.loads(done.stdout.strip().splitlines()[-1])
    command = [str(Path(sys.executable).with_name("taskselect")), "select-embeddings", "--query", str(query),
               "--candidates", str(pool), "--size", str(c["size"]), "--alpha", str(c["alpha"]), "--C", str(c["C"]),
               "--sigma", str(c["sigma"]), "--max-k", str(c["max_k"]), "--kde-k", str(c["kde_k"]),
               "--out", str(work / "ours")]
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    whole = time.perf_counter() - started
    ours = json.loads((work / "ours" / "selection.json").read_text())
    return {"script": script, "ours_process_s": whole, "ours_selection_s": ours["seconds"],
            "ours_kde_s": ours.get("kde_seconds"), "union": ours.get("union"), "n_unique": ours["n_unique"],
            "load": [load, os.getloadavg()[0]], "date": time.strftime("%Y-%m-%d")}


def script_section(r: dict) -> str:
    c, s = SCRIPT_CASE, r["script"]
    return "\n".join([
        SCRIPT_SECTION, "",
        f"Machine: {machine()}. Load average before / after: {r['load'][0]:.2f} / {r['load'][1]:.2f}"
        + (" (other jobs were running: read the ratio, not the times)" if max(r["load"]) > 1.5 else "") + ".",
        f"Command: `PYTHONPATH=. python benchmarks/selection.py --against-script DIR` ({r['date']}), DIR holding "
        "tsds.py and faiss_helper.py of the authors' public repository (not part of ours).", "",
        f"Input: 100,000 candidates and 1,000 queries, unit vectors (dim {DIM}) around 1,000 random centres "
        "(near-duplicates 0.5 apart; `clustered_unit`); the same settings for both: "
        f"budget {c['size']:,}, alpha {c['alpha']}, C {c['C']}, sigma {c['sigma']}, max_k {c['max_k']}, "
        f"kde_k {c['kde_k']}. One run each.", "",
        "| | seconds | what is timed |",
        "|---|---|---|",
        f"| public script, main() | {s['seconds']:.1f} | reading the arrays, its IVF index, search, exact KDE, "
        "the heap, sampling" + (f" (it stopped with `{s['error']}`: timed until then)" if s["error"] else "") + " |",
        f"| `taskselect select-embeddings`, the whole process | {r['ours_process_s']:.1f} | Python start-up and "
        f"imports, reading and checking the arrays, exact search, KDE, water-filling, drawing {r['n_unique']:,} "
        "distinct rows, writing indices, probabilities and selection.json |",
        f"| of which the selection | {r['ours_selection_s']:.1f} | KDE {r['ours_kde_s']:.1f} s over "
        f"{r['union']:,} rows |",
        "", f"Whole process against the script's main(): **{s['seconds'] / r['ours_process_s']:.1f}x** faster.", "",
    ])


# ---------------------------------------------------------------- one case, in its own process

def run_case(case: dict) -> dict:
    """Time one implementation on one case; runs in a fresh process (see main)."""
    sys.path.insert(0, str(ROOT))
    from taskselect.config import IndexParams
    from taskselect.index import build_index
    from taskselect.selectors import TSDSSelector

    pool = np.load(case["pool"], mmap_mode="r")[:case["n"]]
    query = np.ascontiguousarray(np.load(case["query"])[:case["m"]])
    if case["impl"] == "ours":
        pool = np.ascontiguousarray(pool)
    size = case["size"]
    runs, result = [], {}
    for repeat in range(case["repeats"]):
        if case["impl"] == "ours":
            seconds = {}
            started = time.perf_counter()
            index = None
            if case["index"] != "flat":
                index = build_index(pool, IndexParams(kind=case["index"]))
                seconds["index"] = time.perf_counter() - started
            selector = TSDSSelector(**TSDS, kde_exact_max=case.get("kde_exact_max", 50000))
            started = time.perf_counter()
            plan = selector.plan(query, pool, index)
            plan_seconds = time.perf_counter() - started
            seconds["kde"] = plan.info["kde_seconds"]
            seconds["search"] = plan_seconds - seconds["kde"]
            started = time.perf_counter()
            chosen = selector.draw(plan, size, seed=repeat)
            seconds["solve+sample"] = time.perf_counter() - started
            result = {"union": plan.info["union"], "recall": plan.info["recall"], "kde": plan.info["kde"],
                      "n_unique": chosen.n_unique, "alpha_effective": chosen.info["alpha_effective"]}
            if case.get("save_p"):
                np.save(case["save_p"], selector.distribution(plan))
        else:
            sys.path.insert(0, str(ROOT / "benchmarks"))
            from heap_baseline import heap_tsds

            kde_sample = None if case["union_hint"] <= BASELINE_FULL_KDE_MAX else 5000
            p, indices, seconds = heap_tsds(query, pool, size, repeat, kde_sample=kde_sample, **TSDS)
            seconds["solve+sample"] = seconds.pop("solve", float("nan")) + seconds.pop("sample", float("nan"))
            extrapolated = seconds.pop("extrapolated", False)
            result = {"extrapolated": extrapolated}
            if p is not None and case.get("save_p"):
                np.save(case["save_p"], p)
        seconds["total"] = sum(v for v in seconds.values() if np.isfinite(v))
        runs.append(seconds)
        print(f"    run {repeat + 1}/{case['repeats']}: " + ", ".join(f"{k} {v:.2f}s" for k, v in seconds.items()),
              file=sys.stderr, flush=True)
    result["seconds"] = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
    result["peak_mib"] = peak_rss_mib()
    return result


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM; unlike ru_maxrss it does not start from the
    parent's size after fork and exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_subprocess(case: dict, script: str = __file__) -> dict:
    """`script --worker CASE` in a fresh process: its last line of output, as JSON."""
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    done = subprocess.run([sys.executable, script, "--worker", json.dumps(case)],
                          env=env, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- accuracy of approximate densities

def kde_accuracy(pool_path: Path) -> list[dict]:
    """Approximate densities (k-means cells, default nprobe) against exact ones.

    (a) the MiniLM pool, every row: densities and the TSDS distribution of its 100 queries;
    (b) 1M near-duplicate vectors built from it: exact densities of 2,000 sampled rows.
    """
    sys.path.insert(0, str(ROOT))
    from taskselect.selectors import TSDSSelector
    from taskselect.selectors.tsds import kde_densities

    rows = []
    pool = np.load(pool_path)
    query = np.load(pool_path.with_name("query.npy"))

    def compare(name, exact, approx, seconds):
        rel = (exact - approx) / exact
        rows.append({"data": name, "rows": int(exact.size), "mean_rel_err": float(rel.mean()),
                     "p99_rel_err": float(np.quantile(rel, 0.99)), "max_rel_err": float(rel.max()),
                     "mass_found": float((approx - 1).sum() / max((exact - 1).sum(), 1e-300)), **seconds})

    started = time.perf_counter()
    exact, _ = kde_densities(pool, TSDS["sigma"], TSDS["kde_k"], "l2")
    exact_s = time.perf_counter() - started
    started = time.perf_counter()
    approx, info = kde_densities(pool, TSDS["sigma"], TSDS["kde_k"], "l2", exact_max=0)
    compare(f"MiniLM pool ({len(pool):,} rows, {info['kde_cells']} cells)", exact, approx,
            {"exact_s": exact_s, "approx_s": time.perf_counter() - started})
    ps = [TSDSSelector(**TSDS, kde_exact_max=limit).probabilities(query, pool) for limit in (10**9, 0)]
    rows[-1]["tv_distance_p"] = float(np.abs(ps[0] - ps[1]).sum() / 2)

    big = near_duplicates(pool, 1_000_000, seed=0)
    started = time.perf_counter()
    approx, info = kde_densities(big, TSDS["sigma"], TSDS["kde_k"], "l2", exact_max=0)
    approx_s = time.perf_counter() - started
    sample = np.sort(np.random.default_rng(0).choice(len(big), 2000, replace=False))
    squared, _ = __import__("faiss").knn(big[sample], big, TSDS["kde_k"])
    exact = np.clip(1 - np.clip(squared.astype(np.float64), 0, None) / TSDS["sigma"] ** 2, 0, None).sum(axis=1)
    compare(f"1M near-duplicates of it (2,000 sampled rows, {info['kde_cells']} cells)", exact, approx[sample],
            {"exact_s": float("nan"), "approx_s": approx_s})
    return rows


# ---------------------------------------------------------------- the water-filling step alone

def water_filling(repeats: int) -> list[dict]:
    """The solve step on synthetic (M, 5000) plans: vectorised water-filling against the heap loop."""
    sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
    from heap_baseline import heap_water_filling
    from taskselect.selectors.tsds import WaterFilling

    rng = np.random.default_rng(0)
    n = 1_000_000
    rows = []
    for m in (100, 1000):
        d = np.sort(1.1 + 0.3 * rng.random((m, TSDS["max_k"])), axis=1)
        rho = 1.0 + 3.0 * rng.random(d.shape)
        ids = rng.integers(0, n, d.shape)
        lists = d.tolist(), rho.tolist(), ids.tolist()
        for alpha in (0.9, 0.5, 0.1):
            times = {"ours": [], "heap": []}
            for _ in range(repeats):
                started = time.perf_counter()
                ours = np.bincount(ids.ravel(), WaterFilling(d, rho, TSDS["C"]).masses(alpha).ravel(), minlength=n)
                times["ours"].append(time.perf_counter() - started)
                started = time.perf_counter()
                heap = heap_water_filling(*lists, n, alpha, TSDS["C"])
                times["heap"].append(time.perf_counter() - started)
            rows.append({"m": m, "alpha": alpha, "ours_s": float(np.median(times["ours"])),
                         "heap_s": float(np.median(times["heap"])), "p_diff": float(np.abs(ours - heap).max()),
                         "support": int(np.count_nonzero(ours))})
            print(f"    water-filling M={m} alpha={alpha}: ours {rows[-1]['ours_s']:.2f}s, "
                  f"heap {rows[-1]['heap_s']:.2f}s", file=sys.stderr, flush=True)
    return rows


# ---------------------------------------------------------------- the table

def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import faiss

    return (f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, Python {platform.python_version()}, "
            f"numpy {np.__version__}, faiss {faiss.__version__}")


def fmt(x, digits=1):
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def section(results: list[dict], solves: list[dict], accuracy: list[dict], args, load: tuple[float, float]) -> str:
    lines = [
        SECTION, "",
        f"Machine: {machine()}. Load average before / after: {load[0]:.2f} / {load[1]:.2f}"
        + (" (other jobs were running: timings are pessimistic)" if max(load) > 1.5 else "") + ".",
        f"Command: `PYTHONPATH=. python benchmarks/selection.py{' --quick' if args.quick else ''}"
        f"{'' if args.quick or args.sizes == SIZES else ' --sizes ' + args.sizes}` "
        f"({time.strftime('%Y-%m-%d')}).", "",
        "TSDS with max_k 5000, kde_k 1000, sigma 0.75, alpha 0.9, C 1, budget 1% of N drawn without "
        "replacement (ours; alpha lowered when the support is too small) or with replacement (baseline). "
        "Random unit vectors (dim 384, seeded) unless noted. *ours*: taskselect's engine (faiss exact "
        "search, blocked KDE: exact up to 50,000 union rows, k-means cells above, vectorised "
        "water-filling); *heap*: benchmarks/heap_baseline.py, the same algorithm with a Python heap, "
        "Python loops over queries and neighbour pairs and an exact kde_k-NN search for every union "
        "row. Seconds are medians of the runs shown; peak memory is the process's max RSS, input "
        "embeddings included (N x 384 float32 = 1.5 GiB at 1M).", "",
        "| N | M | impl | index | union | densities | search s | KDE s | solve+sample s | total s | peak MiB | runs | recall | p vs heap |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r["seconds"]
        search = s.get("search", float("nan")) + s.get("index", 0.0)
        kde, total = fmt(s.get("kde")), fmt(s["total"])
        if r.get("extrapolated"):  # the baseline stopped after timing part of its KDE
            kde, total = f"{kde} (extrapolated)", f">= {total}"
        s_solve = fmt(s.get("solve+sample"), 2)
        union = f"{r['union']:,}" if "union" in r else ""
        lines.append(
            f"| {r['label_n']} | {r['m']} | {r['impl']} | {r['index']} | {union} "
            f"| {r.get('kde', 'exact')} | {fmt(search)} "
            f"| {kde} | {s_solve} | {total} | {fmt(r['peak_mib'], 0)} | {r['repeats']} "
            f"| {fmt(r.get('recall'), 3) if r['impl'] == 'ours' else ''} | {r.get('p_diff', '')} |"
        )
    lines += [
        "", "*search* includes building an approximate index and measuring its recall@5000 on 100 queries; "
        "*p vs heap*: largest absolute difference between the two implementations' selection "
        "probabilities for the same case (both exact). Where the baseline's exact KDE would take "
        "hours, it searched 5,000 union rows and its KDE time is scaled to the whole union; its "
        "memory there is not comparable (it would hold union x kde_k results: 12 GB at 1M).",
    ]
    lines += [
        "", f"The water-filling step alone (solve for alpha and form p; synthetic plans: K = 5000 "
        f"distances in [1.1, 1.4], densities in [1, 4], N = 1M; median of {args.repeats} runs). The "
        "heap stops as soon as the level is found, so it is quick when alpha keeps the level low "
        "and slow when it does not; the vectorised solver costs the same for every alpha.", "",
        "| M | alpha | rows with p > 0 | ours s | heap s | max abs diff of p |",
        "|---|---|---|---|---|---|",
    ] + [f"| {r['m']} | {r['alpha']} | {r['support']:,} | {r['ours_s']:.2f} | {r['heap_s']:.2f} | {r['p_diff']:.1e} |"
         for r in solves]
    if accuracy:
        lines += [
            "", "Approximate densities (each row compares itself with rows in its 8 nearest k-means "
            "cells) against exact ones; relative error = (exact - approx) / exact, >= 0 since only "
            "neighbours are missed; *mass found*: share of the exact kernel mass (beyond each row "
            "itself) recovered; *TV*: total-variation distance between the TSDS distributions "
            "computed with exact and with approximate densities.", "",
            "| data | rows compared | mean rel. error | 99th pct | max | mass found | exact s | approx s | TV(p) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for a in accuracy:
            lines.append(
                f"| {a['data']} | {a['rows']:,} | {a['mean_rel_err']:.1e} | {a['p99_rel_err']:.1e} "
                f"| {a['max_rel_err']:.2f} | {a['mass_found']:.4f} | {fmt(a['exact_s'])} | {fmt(a['approx_s'])} "
                f"| {a['tv_distance_p']:.1e} |" if "tv_distance_p" in a else
                f"| {a['data']} | {a['rows']:,} | {a['mean_rel_err']:.1e} | {a['p99_rel_err']:.1e} "
                f"| {a['max_rel_err']:.2f} | {a['mass_found']:.4f} | {fmt(a['exact_s'])} | {fmt(a['approx_s'])} | |"
            )
    return "\n".join(lines) + "\n"


def write_section(path: Path, text: str, heading: str = SECTION) -> None:
    """Replace (or append) a benchmark's section of BENCHMARKS.md, keeping the others."""
    old = path.read_text() if path.is_file() else "# Benchmarks\n"
    start = old.find(heading)
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        following = old.find("\n## ", start + len(heading))
        new = old[:start] + text + (old[following + 1:] if following >= 0 else "")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(new)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k candidates only; skip the 1M accuracy check")
    parser.add_argument("--sizes", default=SIZES, help="candidate counts N, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="runs per case below 1M candidates")
    parser.add_argument("--cache", type=Path, default=ROOT / ".taskselect-cache" / "bench", help="random vectors")
    parser.add_argument("--real", type=Path, default=ROOT / "data" / "embeddings", help="MiniLM pool.npy and query.npy")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--against-script", type=Path, metavar="DIR",
                        help="only the comparison with the public TSDS script (tsds.py in DIR)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_case(json.loads(args.worker))))
        return
    if args.against_script:
        text = script_section(against_script(args.against_script, args.cache))
        write_section(args.out, text, SCRIPT_SECTION)
        print(text)
        return

    load_before = os.getloadavg()[0]
    sizes = [10_000] if args.quick else [int(n) for n in args.sizes.split(",")]
    pool_path = random_unit(args.cache / f"pool-{max(sizes)}.npy", max(sizes), seed=0)
    query_path = random_unit(args.cache / "query-1000.npy", 1000, seed=1)
    cases = []
    for n in sizes:
        for m in (100, 1000):
            repeats = 1 if n >= 1_000_000 else args.repeats
            common = {"pool": str(pool_path), "query": str(query_path), "n": n, "m": m, "size": n // 100,
                      "label_n": f"{n:,}", "union_hint": min(n, m * TSDS["max_k"])}
            cases.append(common | {"impl": "ours", "index": "flat", "repeats": repeats})
            cases.append(common | {"impl": "heap", "index": "flat", "repeats": 1 if n >= 100_000 else repeats})
        if n == 100_000:  # exact densities too, to compare exact with exact
            cases.append(common | {"impl": "ours", "index": "flat", "repeats": 1, "kde_exact_max": 10**9})
            cases.append(common | {"impl": "ours", "index": "hnsw", "repeats": 1})
        if n >= 100_000:
            cases.append(common | {"impl": "ours", "index": "ivf", "repeats": 1})
    real = args.real / "pool.npy"
    if real.is_file():
        n_real, m_real = len(np.load(real, mmap_mode="r")), len(np.load(args.real / "query.npy", mmap_mode="r"))
        common = {"pool": str(real), "query": str(args.real / "query.npy"), "n": n_real, "m": m_real,
                  "size": max(1, round(0.05 * n_real)), "label_n": f"{n_real:,} (MiniLM)",
                  "union_hint": min(n_real, m_real * TSDS["max_k"])}
        cases.append(common | {"impl": "ours", "index": "flat", "repeats": args.repeats})
        cases.append(common | {"impl": "heap", "index": "flat", "repeats": args.repeats})
        cases += [common | {"impl": "ours", "index": kind, "repeats": 1} for kind in ("ivf", "hnsw")]
    else:
        print(f"{real} not found: run `taskselect prepare && taskselect embed` for the MiniLM rows", file=sys.stderr)

    results = []
    for number, case in enumerate(cases, 1):
        tag = f"{case['label_n']} x {case['m']} {case['impl']}/{case['index']}"
        print(f"[{number}/{len(cases)}] {tag} ...", file=sys.stderr, flush=True)
        exact_kde = "-exact" if "kde_exact_max" in case else ""
        case["save_p"] = str(args.cache / f"p-{case['n']}-{case['m']}-{case['impl']}-{case['index']}{exact_kde}.npy")
        result = case | in_subprocess(case)
        ours = Path(case["save_p"].replace("-heap-", "-ours-"))
        if case["impl"] == "heap" and not result.get("extrapolated") and ours.is_file():
            result["p_diff"] = f"{np.abs(np.load(ours) - np.load(case['save_p'])).max():.1e}"
        results.append(result)
        print(f"    {tag}: total {result['seconds']['total']:.1f}s, peak {result['peak_mib']:.0f} MiB",
              file=sys.stderr, flush=True)

    print("water-filling alone ...", file=sys.stderr, flush=True)
    solves = water_filling(args.repeats)
    accuracy = []
    if real.is_file() and not args.quick:
        print("KDE accuracy ...", file=sys.stderr, flush=True)
        accuracy = kde_accuracy(real)
    text = section(results, solves, accuracy, args, (load_before, os.getloadavg()[0]))
    write_section(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
