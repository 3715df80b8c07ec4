"""How well `auto` chooses: its macro-F1 against the best other selector in every target x budget
cell, what it chose, what it cost, and what other tolerances of its rule would have chosen.

    PYTHONPATH=. python benchmarks/auto_report.py

Reads the bench's records only (benchmarks/quality/{sweep,methods}/<target>/results.json, after
`taskselect bench --part sweep`, where auto is among the default methods) and renders the "auto" section of
BENCHMARKS.md. Every candidate of auto selects exactly as the method of its name does with the
same seed, so the test macro-F1 any choice would have had is in the records: the tolerance
table replays the rule on the candidates' recorded cross-validation scores.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.harness import write_marked_section
from taskselect.config import TARGETS
from taskselect.io import read_json
from taskselect.selectors import auto, budget_label

SECTION = "auto: the selector chosen from the query set"
CELL_BUDGETS = (0.02, 0.05, 0.1)  # the cells
TOLERANCES = (0.0, 0.5, 1.0, 2.0)
SCORES = auto.SCORES  # select.auto.score
NOT_COMPARED = ("auto", "full")
WITHIN = 1.0  # the bar: auto within this many points of the best other selector


def best_other(means: dict[str, float | None]) -> tuple[str, float]:
    """(method, mean macro-F1) of the best other selector in a cell, from method -> mean F1 there
    (None: no run): auto, the full pool and auto's candidate variants ('method:key=value', no
    method of their own) are not compared."""
    compared = {m: v for m, v in means.items() if v is not None and m not in NOT_COMPARED and ":" not in m}
    best = max(compared, key=compared.get)
    return best, compared[best]


def bar(gaps: list[float]) -> tuple[int, float, float]:
    """(cells within WITHIN points, largest shortfall, mean gap) of auto's gaps to the best other
    selector, in points."""
    return sum(g >= -WITHIN for g in gaps), max(0.0, -min(gaps)), float(np.mean(gaps))


def load(out_dir: Path) -> dict[str, list[dict]]:
    found = {}
    for t in TARGETS:
        files = [out_dir / part / t / "results.json" for part in ("sweep", "methods")]
        records = [r for f in files if f.is_file() for r in read_json(f)]
        if any(r["method"] == "auto" for r in records):
            found[t] = records
    return found


def mean_f1(records: list[dict], method: str, budget: float) -> float | None:
    values = [r["f1_macro"] for r in records if r["method"] == method and r["budget"] == budget]
    return float(np.mean(values)) if values else None


def replay(record: dict, tolerance: float, score: str = "f1") -> str:
    """The candidate auto's rule picks from a run's recorded scores with another score and tolerance."""
    scores = record["select_info"]["candidates"]
    se = auto.score_keys(score)[1]
    best = max(s[score] for s in scores.values())
    return next(name for name, s in scores.items() if best - s[score] <= tolerance * s[se] + 1e-12)


def render(found: dict[str, list[dict]], parts: dict, out_dir: Path = Path("benchmarks/quality")) -> str:
    loads = "; ".join(f"{key}: {info['seconds']:.0f} s, load average {info['load_before']} / {info['load_after']} "
                      f"(finished {info['finished']})" for key, info in parts.items() if key.startswith("sweep"))
    lines = [
        "`taskselect bench --part sweep --part methods` (auto is a default method, so the sweep runs it) then "
        "`PYTHONPATH=. python benchmarks/auto_report.py`. "
        "auto with params.yaml's settings (candidates, folds, tolerance; head trainer), seeds as the other "
        "selectors. Best other: the selector of highest mean macro-F1 in the cell among every other one "
        f"(the full pool excluded). Bar: auto within {WITHIN} point of it in at least 10 of the 12 cells at 2, 5 "
        "and 10%, never more than 2.0 below. The bench runs (2 cores shared with other work): " + loads + ".",
        "",
        "Candidates, in order of preference (when several are within one standard error of the best, auto blends their "
        "selections, named 'a + b' below; with select.auto.undecided: earliest it keeps the earliest of them): "
        "tsds, the product's method and a robust middle on every target; tsds on the hybrid representation "
        "(sentence embeddings and hashed n-grams), which leads trec and 20newsgroups (*Representation*); knn, the "
        "cheapest strong baseline; kcenter, diversity within the query neighbourhood (first or second on three targets at 1%); "
        "s2l, clusters of the pool's training dynamics (its proxy trains once per seed for every fold: the clusters "
        "do not depend on the queries; issue 17 reports it among the leaders on targets we do not hold); dsir, hashed n-grams alone; "
        "negcliploss, the pairs whose text best matches its label, then the rows nearest the queries (it leads trec "
        "at 1-2% and falls far below random on the sentiment targets: a specialist the held-out queries must vouch "
        "for); random, the floor. loss is left out (a proxy per fold, and it leads nowhere here); knn-uniform and "
        "knn-kde are TSDS's own special cases. Select time: auto's whole cross-validation and "
        "final selection, per run (the bench reuses one auto per target, so its TSDS plans, representations and "
        "DSIR n-grams are computed once).",
        "",
        "| target | budget | auto | best other | auto − best other (points) | chosen (seeds) | auto select time | tsds select time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    gaps = []
    for t, records in found.items():
        methods = sorted({r["method"] for r in records if r["method"] not in NOT_COMPARED})
        for b in sorted({r["budget"] for r in records if r["method"] == "auto"}):
            auto = [r for r in records if r["method"] == "auto" and r["budget"] == b]
            best, best_f1 = best_other({m: mean_f1(records, m, b) for m in methods})
            gap = 100 * (np.mean([r["f1_macro"] for r in auto]) - best_f1)
            if b in CELL_BUDGETS:
                gaps.append(gap)
            chosen = ", ".join(r["select_info"]["choice"] for r in sorted(auto, key=lambda r: r["seed"]))
            tsds_time = [r["select_seconds"] for r in records if r["method"] == "tsds" and r["budget"] == b]
            lines.append(f"| {t} | {budget_label(b)} | {np.mean([r['f1_macro'] for r in auto]):.3f} | {best} "
                         f"{best_f1:.3f} | {gap:+.1f} | {chosen} | {np.mean([r['select_seconds'] for r in auto]):.0f} s "
                         f"| {np.mean(tsds_time):.1f} s |")
    if gaps:
        within, shortfall, mean = bar(gaps)
        lines += ["", f"At 2, 5 and 10%: auto is within {WITHIN} point of the best other selector in **{within} of "
                      f"{len(gaps)}** cells; its largest shortfall is {shortfall:.1f} points; mean gap {mean:+.2f} points."]
    lines += [""]
    lines += _tolerances(found, out_dir)
    lines += undecided_table(found, out_dir)
    return "\n".join(lines)


# select.auto.undecided, and the blend gated on its own held-out score, replayed on runs made with
# 'blend': (auto's F1 as run, its select_info, the earliest close candidate's F1) -> the F1 chosen
UNDECIDED = {
    "earliest (replayed)": lambda f1, info, earliest: earliest,
    "**blend** (as run, the default)": lambda f1, info, earliest: f1,
    "blend only if its own held-out score is within the tolerance of the best (replayed)":
        lambda f1, info, earliest: f1 if info["blend"][auto.score_keys(info["score"])[0]]
        <= info["tolerance"] * info["blend"][auto.score_keys(info["score"])[1]] + 1e-12 else earliest,
}


def undecided_table(found: dict[str, list[dict]], out_dir: Path) -> list[str]:
    """The blend against one candidate when several are close, over the four targets' cells and
    the other tasks' (benchmarks/other_tasks.py records, both query counts)."""
    groups = {"four targets, 2-10%": [  # group -> cells: (best other's mean F1, [(f1, select_info, earliest's F1)])
        (best, [(r["f1_macro"], r["select_info"], test[(r["select_info"]["close"][0], b, r["seed"])]) for r in runs])
        for _, runs, test, b, best in target_cells(found, out_dir)]}
    for queries, source, b, best, cell in other_task_cells(out_dir):
        test = {(r["method"], r["seed"]): r["f1"] for r in cell}
        runs = [(r["f1"], r, test[(r["close"][0], r["seed"])]) for r in cell if r["method"] == "auto" and r.get("close")]
        groups.setdefault(f"other tasks, {queries} queries", []).append((best, runs))
    runs = [run for cells in groups.values() for _, cell in cells for run in cell]
    if not runs or any(len(info["close"]) > 1 and "blend" not in info for _, info, _ in runs):
        return []  # runs made with undecided: earliest have no blend to compare
    header = " | ".join(groups)
    lines = ["What auto selects when several candidates are within the tolerance of the best (select.auto.undecided), "
             "replayed on the same runs: the blend's F1 is the run's own, the earliest close candidate's is its "
             f"method's record with the same seed. Per group: cells within {WITHIN} point of the best other selector / largest "
             "shortfall / mean gap, in points:", "",
             f"| when several are close | {header} | all cells: mean gap / largest shortfall |",
             "|---|" + "---|" * (len(groups) + 1)]
    for name, rule in UNDECIDED.items():
        row, every = [], []
        for cells in groups.values():
            gaps = [100 * (np.mean([rule(*run) if len(run[1]["close"]) > 1 else run[0] for run in cell]) - best)
                    for best, cell in cells if cell]
            every += gaps
            within, shortfall, mean = bar(gaps)
            row.append(f"{within} of {len(gaps)} / {shortfall:.1f} / {mean:+.2f}")
        _, shortfall, mean = bar(every)
        lines.append(f"| {name} | " + " | ".join(row) + f" | {mean:+.2f} / {shortfall:.1f} |")
    return lines + [""]


def other_task_cells(out_dir: Path) -> list[tuple[int, str, float, float, list[dict]]]:
    """Per query count, task and budget of benchmarks/other_tasks.py's records: (query rows, task,
    budget, the best other selector's mean F1, the cell's records)."""
    from benchmarks.other_tasks import N_QUERY, OUT  # other_tasks imports this module

    return [(N_QUERY if folder.name == OUT.name else int(folder.name.split("-")[2]), *cell)  # other-tasks-100-queries
            for folder in sorted(out_dir.glob(OUT.name + "*")) for cell in folder_cells(folder)]


def folder_cells(folder: Path) -> list[tuple[str, float, float, list[dict]]]:
    """Per task and budget of the other_tasks.py records in `folder`: (task, budget, the best other
    selector's mean F1, the cell's records)."""
    from benchmarks.other_tasks import METHODS

    records = [r for f in sorted(folder.glob("*.json")) for r in read_json(f)["records"]]
    cells = []
    for source, b in sorted({(r["source"], r["budget"]) for r in records}):
        cell = [r for r in records if (r["source"], r["budget"]) == (source, b)]
        best = best_other({m: np.mean([r["f1"] for r in cell if r["method"] == m]) for m in METHODS
                           if any(r["method"] == m for r in cell)})[1]
        cells.append((source, b, best, cell))
    return cells


def candidate_f1(target: str, out_dir: Path = Path("benchmarks/quality")) -> dict:
    """Test macro-F1 of candidates with a representation override ('tsds:representation=hybrid'),
    from the representation benchmark's records: the same TSDS settings and seeds select the same
    rows there (benchmarks/representation.py)."""
    path = out_dir / "representation" / f"{target}.json"
    if not path.is_file():
        return {}
    return {(f"{r['method']}:representation={r['representation']}", r["budget"], r["seed"]): r["f1"]
            for r in read_json(path)["records"] if r["representation"] != "semantic"}


def target_cells(found: dict[str, list[dict]], out_dir: Path) -> list[tuple[str, list[dict], dict, float, float]]:
    """Per target and budget of the bar with auto runs: (the target, auto's records, the test macro-F1 of every
    method and candidate by (method, budget, seed), the budget, the best other selector's mean F1)."""
    cells = []
    for target, records in found.items():
        test = {(r["method"], r["budget"], r["seed"]): r["f1_macro"] for r in records} | candidate_f1(target, out_dir)
        for b in CELL_BUDGETS:
            runs = [r for r in records if r["method"] == "auto" and r["budget"] == b]
            if runs:
                best = best_other({m: mean_f1(records, m, b) for m in {r["method"] for r in records}})[1]
                cells.append((target, runs, test, b, best))
    return cells


def _tolerances(found: dict[str, list[dict]], out_dir: Path) -> list[str]:
    """Each tolerance's choices replayed on the recorded scores, scored by the chosen method's test F1."""
    # the run's own choice scored as recorded; another candidate by its own record
    return replay_table([(runs, lambda p, r, b=b, test=test: r["f1_macro"] if p == r["select_info"]["choice"]
                          else test[(p, b, r["seed"])], best) for _, runs, test, b, best in target_cells(found, out_dir)])


def replay_table(cells: list[tuple[list[dict], Callable[[str, dict], float], float]]) -> list[str]:
    """auto's rule with every score and tolerance replayed on recorded runs, as a Markdown table.

    cells: one per (task, budget): its auto records (select_info with every candidate's scores,
    seed), the test macro-F1 a pick would have had in a run, and the best other selector's mean
    macro-F1 there. Records without a score (made before auto recorded it) are left out of its rows.
    """
    rows = []
    for score, tolerance in [(score, t) for score in SCORES for t in TOLERANCES]:
        gaps, shares = [], []
        for runs, f1_of, best in cells:
            runs = [r for r in runs if all(score in c for c in r["select_info"]["candidates"].values())]
            if not runs:
                continue
            picks = [replay(r, tolerance, score) for r in runs]
            gaps.append(100 * (np.mean([f1_of(p, r) for p, r in zip(picks, runs)]) - best))
            shares.append(np.mean([p == next(iter(r["select_info"]["candidates"])) for p, r in zip(picks, runs)]))
        if gaps:
            within, shortfall, mean = bar(gaps)
            rows.append(f"| {score} | {tolerance:g} | {within} of {len(gaps)} | {shortfall:.1f} | {mean:+.2f} | "
                        f"{np.mean(shares):.0%} |")
    if not rows:
        return []
    return ["auto's rule choosing one candidate (select.auto.undecided: earliest) with each score (select.auto.score) "
            "and tolerance (standard errors), replayed on the same runs' cross-validation scores; each choice scored by "
            "the test macro-F1 its method had with the same seed (a blend has no such record: its row is auto's own, "
            "above; the row soft_f1 / 1 is the default's scores and tolerance without the blend):", "",
            f"| score | tolerance | cells within {WITHIN} point | largest shortfall | mean gap to best other | first candidate chosen |",
            "|---|---|---|---|---|---|", *rows, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/quality"))
    parser.add_argument("--markdown", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args()
    write_marked_section(args.markdown, SECTION, render(load(args.out), read_json(args.out / "bench.json")["parts"], args.out))


if __name__ == "__main__":
    main()
