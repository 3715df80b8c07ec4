"""Every selector and auto on tasks outside the four targets, through the bring-your-own path.

    PYTHONPATH=. python benchmarks/other_tasks.py --pool-from data/bench/airline_sentiment/prepared/pool.parquet \
        -S embed.cache_dir=/work/cache/embeddings [--sources bbc,sms,r8] [--methods auto] [--render-only]

The TSDS defaults and auto's candidates were chosen on the four packaged targets. Here the task
is one of the other sources of the benchmark's pool (by default BBC news topics, SMS spam,
Reuters R8 topics): its 40 query rows and 400 test rows are drawn from that source (seeded), the rest of
its rows are hidden in a pool among 6,000 rows of the other sources, and `taskselect run
--pool --query --test` (files, as a user brings them) runs every selector at 2% and 5% with
seeds 0 and 1. A source whose results are already in --work is not run again; --methods reruns
some methods and keeps the others' records. Records:
benchmarks/quality/other-tasks/<source>.json; the "Other tasks" section of BENCHMARKS.md is
rendered from them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from benchmarks import auto_report
from benchmarks.harness import machine, section_arguments, write_marked_section
from taskselect.io import read_json, write_json
from taskselect.selectors import budget_label

SECTION = "Other tasks: the bring-your-own path"
METHODS = ("tsds", "auto", "knn", "kcenter", "s2l", "dsir", "negcliploss", "random", "full")
# auto's candidates that are no method of their own: run as their method with these overrides, so
# that auto's rule can be replayed with every score and tolerance (not a "best other" selector:
# as on the four targets, that is the best single-representation method)
VARIANTS = {"tsds:representation=hybrid": ("tsds", "select.tsds.representation=hybrid")}
BUDGETS, SEEDS = ("0.02", "0.05"), ("0", "1")
N_QUERY, N_TEST, N_OTHER, SEED = 40, 400, 6000, 7
OUT = Path("benchmarks/quality/other-tasks")
# the airline benchmark's pool, as the bench prepares it (the default run's data/prepared/pool.parquet is the same)
POOL_FROM = Path("data/bench/airline_sentiment/prepared/pool.parquet")


def task_files(pool: pd.DataFrame, source: str, work: Path, n_query: int = N_QUERY) -> dict[str, Path]:
    """The source's query, test and hidden rows, and the other sources' rows: three Parquet files."""
    rows = pool[pool["source"] == source].sample(frac=1, random_state=SEED)
    others = pool[pool["source"] != source].sample(N_OTHER, random_state=SEED)
    parts = {"query": rows.iloc[:n_query], "test": rows.iloc[n_query:n_query + N_TEST],
             "pool": pd.concat([rows.iloc[n_query + N_TEST:], others]).sample(frac=1, random_state=SEED)}
    files = {}
    for name, frame in parts.items():
        files[name] = work / f"{source}_{name}.parquet"
        frame[["text", "label"]].reset_index(drop=True).to_parquet(files[name], index=False)
    return files


def run_source(pool: pd.DataFrame, source: str, work: Path, overrides: list[str],
               methods: tuple[str, ...] = METHODS, n_query: int = N_QUERY) -> list[dict]:
    """The source's records of `methods` (or of one of VARIANTS): run unless their results are
    already in `work`. auto's records keep every candidate's cross-validation scores, the close
    ones and their blend's scores."""
    variant = len(methods) == 1 and methods[0] in VARIANTS
    run_methods, extra = (VARIANTS[methods[0]][:1], [VARIANTS[methods[0]][1]]) if variant else (methods, [])
    suffix = "" if methods == METHODS else "-" + "-".join(m.replace(":representation=", "-") for m in methods)
    results = work / f"results-{source}{suffix}" / "results.json"
    if not results.is_file():
        files = task_files(pool, source, work, n_query)
        command = [str(Path(sys.executable).parent / "taskselect"), "run", *[f"--{k}={v}" for k, v in files.items()],
                   "--methods", ",".join(run_methods), "--budgets", ",".join(BUDGETS), "--seeds", ",".join(SEEDS),
                   "--data-dir", str(work / f"data-{source}"), "--out", str(results.parent),
                   *[a for o in overrides + extra for a in ("-S", o)]]
        subprocess.run(command, check=True)
    return [{"source": source, "method": methods[0] if variant else r["method"], "budget": r["budget"],
             "seed": r["seed"], "f1": r["f1_macro"], "on_task": r["target_share"],
             "choice": r["select_info"].get("choice"), "select_seconds": r["select_seconds"],
             **({k: r["select_info"].get(k) for k in ("candidates", "close", "blend", "score", "tolerance")}
                if r["method"] == "auto" else {})}
            for r in read_json(results)]


def render(out_dir: Path, n_query: int = N_QUERY, options: str = "", section: str = SECTION,
           pool_from: Path = POOL_FROM) -> str:
    found = [read_json(p) for p in sorted(out_dir.glob("*.json"))]
    frame = pd.DataFrame([r for f in found for r in f["records"]])
    cells = [(s, b) for s in frame["source"].unique() for b in sorted(frame["budget"].unique())]
    means = frame.groupby(["method", "source", "budget"])["f1"].mean()
    lines = [
        f"`PYTHONPATH=. python benchmarks/other_tasks.py --pool-from {pool_from} "
        + ("" if n_query == N_QUERY else f"--queries {n_query} ") + options + "-S embed.cache_dir=...` (records under "
        f"`{out_dir}/`). " + __doc__.split("\n\n")[2].replace("\n", " ").replace(
            f"its {N_QUERY} query rows", f"its {n_query} query rows").replace("benchmarks/quality/other-tasks/", f"{out_dir}/")
        .replace("by default BBC news topics, SMS spam, Reuters R8 topics", "here: " + ", ".join(frame["source"].unique()))
        .replace('the "Other tasks" section', f'the "{section}" section')
        + f" Head trainer; macro-F1 mean over seeds {list(map(int, SEEDS))}. Machine: {found[0]['machine']['cpu']}, "
        f"{found[0]['machine']['cores']} cores, shared with other benchmark jobs.",
        "",
        "| method | " + " | ".join(f"{s} {budget_label(b)}" for s, b in cells) + " |",
        "|---|" + "---|" * len(cells),
    ]
    for method in (*METHODS, *VARIANTS):
        if method in frame["method"].values:
            lines.append(f"| {method} | " + " | ".join(f"{means[(method, s, b)]:.3f}" for s, b in cells) + " |")
    gaps, chosen = [], []
    for s, b in cells:
        best, best_f1 = auto_report.best_other({m: means.get((m, s, b)) for m in METHODS})
        gaps.append(100 * (means[("auto", s, b)] - best_f1))
        picks = frame.query("method == 'auto' and source == @s and budget == @b")["choice"].tolist()
        chosen.append(f"{s} {budget_label(b)}: {', '.join(picks)} (best other {best}, auto {gaps[-1]:+.1f} points)")
    within, shortfall, mean = auto_report.bar(gaps)
    lines += ["", "auto chose, per seed: " + "; ".join(chosen) + ".",
              f"auto is within {auto_report.WITHIN} point of the best other selector in {within} of {len(gaps)} "
              f"cells; its largest shortfall is {shortfall:.1f} points; mean gap {mean:+.2f} points.", ""]
    return "\n".join(lines + replayed(frame, cells, means))


def replayed(frame: pd.DataFrame, cells: list, means: pd.Series) -> list[str]:
    """auto's rule with every score and tolerance, replayed on the runs' recorded cross-validation
    scores (auto_report.replay_table, as on the four targets)."""
    if "candidates" not in frame:
        return []
    runs = frame[(frame["method"] == "auto") & frame["candidates"].notna()]
    test = {(r.method, r.source, r.budget, r.seed): r.f1 for r in frame.itertuples()}
    replays = []
    for s, b in cells:
        cell = [{"seed": r.seed, "select_info": {"candidates": r.candidates}}
                for r in runs[(runs["source"] == s) & (runs["budget"] == b)].itertuples()]
        best = auto_report.best_other({m: means.get((m, s, b)) for m in METHODS})[1]
        replays.append((cell, lambda p, r, s=s, b=b: test[(p, s, b, r["seed"])], best))
    return auto_report.replay_table(replays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool-from", type=Path, default=POOL_FROM,
                        help="a prepared pool with text, label and source columns")
    parser.add_argument("--sources", default="bbc,sms,r8")
    parser.add_argument("--methods", default=",".join([*METHODS, *VARIANTS]),
                        help="rerun these (e.g. auto after a change to it); the other methods' records are kept")
    parser.add_argument("--work", type=Path, default=Path(".taskselect-cache/other-tasks"))
    section_arguments(parser)
    parser.add_argument("--queries", type=int, default=N_QUERY,
                        help=f"query rows per task; other than {N_QUERY}, records and section of their own")
    parser.add_argument("--records", type=Path,
                        help=f"records folder (default {OUT}, or {OUT}-N-queries); its own section, --section")
    parser.add_argument("--section", help="BENCHMARKS.md section of --records")
    args = parser.parse_args()
    out, section = (OUT, SECTION) if args.queries == N_QUERY else (
        OUT.with_name(f"{OUT.name}-{args.queries}-queries"), f"{SECTION}, {args.queries} queries")
    if args.records:
        if not args.section or args.records.name.startswith(OUT.name):  # auto_report reads other-tasks* as its cells
            parser.error(f"--records {args.records}: needs --section, and a folder not named {OUT.name}*")
        out, section = args.records, args.section
    options = f"--sources {args.sources} --records {out} --section '{section}' " if args.records else ""
    if not args.render_only:
        pool = pd.read_parquet(args.pool_from)
        args.work.mkdir(parents=True, exist_ok=True)
        asked = args.methods.split(",")
        methods = tuple(m for m in METHODS if m in asked)
        for source in args.sources.split(","):
            kept = [] if set(asked) >= {*METHODS, *VARIANTS} else [
                r for r in read_json(out / f"{source}.json")["records"] if r["method"] not in asked]
            records = kept + (run_source(pool, source, args.work, args.overrides, methods, args.queries) if methods else [])
            for variant in (v for v in VARIANTS if v in asked):
                records += run_source(pool, source, args.work, args.overrides, (variant,), args.queries)
            write_json(out / f"{source}.json", {"source": source, "machine": machine(), "records": records})
    write_marked_section(args.markdown, section, render(out, args.queries, options, section, args.pool_from))
    print(json.dumps({"sources": args.sources, "markdown": str(args.markdown)}))


if __name__ == "__main__":
    main()
