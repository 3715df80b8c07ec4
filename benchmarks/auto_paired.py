"""auto against the best other selector of each cell, run by run, with paired intervals.

    PYTHONPATH=. python benchmarks/auto_paired.py [--data-dir data/bench] [--groups targets,held-out,...]
        [--work-held-out DIR] [--work-sentiment DIR] [--render-only]

The bar of issue 17 compares auto's mean macro-F1 over three seeds with the best mean of the
other selectors in each target x budget cell (2, 5 and 10%), a best chosen knowing the test
results. This asks of each run whether its difference holds on the test set: per target,
budget and seed, auto's selection (its close candidates' selections blended as auto blends them,
the close candidates taken from benchmarks/auto_blends.py's records of the same runs, so auto's
cross-validation is not run again) and the best other selector's selection with the same seed
are each trained and scored as the stages do (harness.Target), and the difference of their
macro-F1 gets the paired bootstrap interval `taskselect run` reports against its baselines
(evaluate.n_boot resamples of the test rows within each label, evaluate.confidence;
stages.paired_deltas). Both F1s are checked against the records of those runs. Groups: the
four targets (the bench's workspaces and records) and the held-out tasks of
benchmarks/other_tasks.py (its --work directories and records folders; 2% and 5%, seeds 0-1).
Records: benchmarks/quality/auto-paired/<group>.json; section "auto against the best other
selector, run by run" of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from benchmarks.auto_blends import NAMES, TASKS
from benchmarks.auto_blends import OUT as BLENDS
from benchmarks.auto_report import CELL_BUDGETS, best_other, load
from benchmarks.harness import Paired, Target, section_arguments, stopwatch, write_marked_section
from taskselect import stages
from taskselect.config import load_params
from taskselect.io import read_json, write_json
from taskselect.selectors import budget_label, resolve_budget

SECTION = "auto against the best other selector, run by run"
OUT = Path("benchmarks/quality/auto-paired")
GROUPS = ("targets", "held-out", "held-out-sentiment")


def recorded_runs(group: str) -> dict[str, dict[tuple, float]]:
    """Per task, the test macro-F1 of every recorded run: (method, budget, seed) -> F1."""
    if group == "targets":
        return {t: {(r["method"], r["budget"], r["seed"]): r["f1_macro"] for r in records}
                for t, records in load(Path("benchmarks/quality")).items()}
    folder = Path("benchmarks/quality") / TASKS[group][1]
    return {s: {(r["method"], r["budget"], r["seed"]): r["f1"] for r in read_json(folder / f"{s}.json")["records"]}
            for s in TASKS[group][2]}


def run_target(target: Target, recorded: dict[tuple, float], blends: dict, budgets) -> list[dict]:
    """A record per budget and seed of auto's runs: auto's and the best other selector's macro-F1
    and the paired interval of their difference."""
    paired, out = Paired(target, recorded), []
    for budget in budgets:
        best, _ = best_other({m: float(np.mean([f1 for (mm, bb, _), f1 in recorded.items() if mm == m and bb == budget]))
                              for m in {m for (m, bb, _) in recorded if bb == budget}})
        size = resolve_budget(budget, len(target.pool))
        for seed in sorted(s for (m, bb, s) in recorded if m == "auto" and bb == budget):
            f1, scores = paired.scored("auto", budget, seed, paired.auto_selection(blends[(budget, seed)]["close"], size, seed))
            other, other_scores = paired.scored(best, budget, seed, paired.selection(best, size, seed))
            low, high = paired.interval(scores, other_scores)
            out.append({"target": target.name, "budget": budget, "seed": seed, "best_other": best,
                        "auto": f1, "other": other, "low": low, "high": high})
    return out


def render(found: dict[str, dict]) -> str:
    first = next(iter(found.values()))
    lines = [
        "`PYTHONPATH=. python benchmarks/auto_paired.py --work-held-out <other_tasks.py's --work of the held-out tasks> "
        "--work-sentiment <of the held-out sentiment tasks>` (records under `benchmarks/quality/auto-paired/`). The "
        "bar compares auto's mean over three seeds with the best other selector's mean in each cell, a best picked "
        "among the other selectors knowing the test results. Here each run's difference gets the paired bootstrap "
        f"interval `taskselect run` reports against its baselines ({first['confidence']:.0%}; {first['n_boot']} "
        "resamples of the test rows within each label): auto's selection (its close candidates blended, as recorded "
        "by *auto: other blends of the close candidates*) and the best other selector's with the same seed, both "
        "scored as the stages score them; every F1 equals the recorded run's (the script checks it). Head trainer. "
        "Runs: " + "; ".join(f"{NAMES[g]}: {f['seconds']:.0f} s, load {f['load_before']} / {f['load_after']}"
                             for g, f in found.items())
        + f". Machine: {first['machine']['cpu']}, {first['machine']['cores']} cores.",
        "",
        "| task | budget | best other | auto − best other, per seed (points) [paired interval] | holds below / above 0 |",
        "|---|---|---|---|---|",
    ]
    totals = []
    for group, f in found.items():
        records, below, above = f["records"], 0, 0
        for task in dict.fromkeys(r["target"] for r in records):
            for budget in sorted({r["budget"] for r in records if r["target"] == task}):
                cell = [r for r in records if r["target"] == task and r["budget"] == budget]
                down, up = sum(r["high"] < 0 for r in cell), sum(r["low"] > 0 for r in cell)
                below, above = below + down, above + up
                runs = ", ".join(f"{100 * (r['auto'] - r['other']):+.1f} [{100 * r['low']:+.1f}, {100 * r['high']:+.1f}]"
                                 for r in cell)
                lines.append(f"| {task} | {budget_label(budget)} | {cell[0]['best_other']} | {runs} | "
                             f"{down} / {up} of {len(cell)} |")
        totals.append(f"{NAMES[group]}: below 0 in **{below}** and above 0 in **{above}** of {len(records)}")
    lines += ["", "Runs whose difference from the best other selector holds: " + "; ".join(totals)
              + ". In the others the test set cannot tell auto from the best other selector.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data/bench"), help="the bench's workspaces")
    parser.add_argument("--work-held-out", type=Path, help="other_tasks.py's --work directory of the held-out tasks")
    parser.add_argument("--work-sentiment", type=Path, help="its --work directory of the held-out sentiment tasks")
    parser.add_argument("--groups", default=",".join(GROUPS))
    section_arguments(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(asctime)s %(name)s %(message)s")
    if not args.render_only:
        params = load_params(None, args.overrides)
        for group in args.groups.split(","):
            blends = {(r["task"], r["budget"], r["seed"]): r for r in read_json(BLENDS / f"{group}.json")["records"]}
            measured, records = stopwatch(), []
            for name, recorded in recorded_runs(group).items():
                if group == "targets":
                    target, budgets = Target.load(params, name, args.data_dir), CELL_BUDGETS
                else:
                    work = getattr(args, TASKS[group][0])
                    if work is None:
                        parser.error(f"--groups {group} needs --{TASKS[group][0].replace('_', '-')}")
                    target = Target.of_workspace(name, params, stages.Workspace(work / f"data-{name}"))
                    budgets = sorted({b for (m, b, _) in recorded if m == "auto"})
                records += run_target(target, recorded, {k[1:]: v for k, v in blends.items() if k[0] == name}, budgets)
            write_json(OUT / f"{group}.json", {
                **measured(), "n_boot": params.evaluate.n_boot, "confidence": params.evaluate.confidence,
                "records": records})
    found = {g: read_json(OUT / f"{g}.json") for g in GROUPS if (OUT / f"{g}.json").is_file()}
    write_marked_section(args.markdown, SECTION, render(found))


if __name__ == "__main__":
    main()
