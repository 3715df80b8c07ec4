"""Every selector against a reference selector (tsds, or random), run by run, with paired
intervals (the four targets).

    PYTHONPATH=. python benchmarks/against.py [--reference tsds|random] [--data-dir data/bench] [--render-only]

The *Every selector* tables give each selector's mean macro-F1 over three seeds; whether a
selector beats the reference there is a difference of means. This asks it of each run, as
`taskselect run` does for the selectors report.against names: per target, budget (2, 5 and 10%)
and seed, each selector's selection and the reference's with the same seed are trained and
scored as the stages do (harness.Target), and their difference gets the paired bootstrap interval
of stages.paired_deltas (evaluate.n_boot resamples of the test rows within each label,
evaluate.confidence). Every selector of the bench's `methods` part, and auto (its close
candidates' selections blended, the close candidates from benchmarks/auto_blends.py's records,
so its cross-validation is not run again), random and tsds from the sweep; every F1 is checked
against the recorded run's.
Records: benchmarks/quality/against-<reference>.json; section "Every selector against
<reference>, run by run" of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from benchmarks.auto_blends import OUT as BLENDS
from benchmarks.auto_report import CELL_BUDGETS, load
from benchmarks.harness import Paired, Target, section_arguments, stopwatch, write_marked_section
from taskselect.config import load_params
from taskselect.io import read_json, write_json
from taskselect.selectors import REGISTRY, budget_label, resolve_budget

REFERENCES = ("tsds", "random")


def section(reference: str) -> str:
    return f"Every selector against {reference}, run by run"


def records_file(reference: str) -> Path:
    return Path(f"benchmarks/quality/against-{reference}.json")


def run_target(target: Target, recorded: dict[tuple, float], blends: dict, reference: str) -> list[dict]:
    """A record per selector, budget and seed: its macro-F1, the reference's, and the paired
    interval of their difference."""
    paired, out = Paired(target, recorded), []
    # the full pool is one training set whatever the budget
    methods = [m for m in REGISTRY if m not in (reference, "full") and any(k[0] == m for k in recorded)]
    for budget in CELL_BUDGETS:
        size = resolve_budget(budget, len(target.pool))
        for seed in sorted(s for (m, b, s) in recorded if m == reference and b == budget):
            reference_f1, reference_scores = paired.scored(reference, budget, seed, paired.selection(reference, size, seed))
            for method in methods:
                rows = (paired.auto_selection(blends[(budget, seed)]["close"], size, seed) if method == "auto"
                        else paired.selection(method, size, seed))
                f1, scores = paired.scored(method, budget, seed, rows)
                low, high = paired.interval(scores, reference_scores)
                out.append({"target": target.name, "method": method, "budget": budget, "seed": seed,
                            "f1": f1, "reference": reference_f1, "low": low, "high": high})
            logging.getLogger(__name__).warning("%s %s seed %d done", target.name, budget_label(budget), seed)
    return out


def cell(records: list[dict]) -> str:
    """'+1.2 (2/3)': the mean difference from the reference in points and in how many runs the
    paired interval lies wholly on its side of 0 (the (k/n) of `taskselect compare`)."""
    delta = 100 * float(np.mean([r["f1"] - r["reference"] for r in records]))
    held = sum(r["low"] > 0 if delta >= 0 else r["high"] < 0 for r in records)
    return f"{delta:+.1f} ({held}/{len(records)})"


def render(found: dict) -> str:
    records, reference = found["records"], found["reference"]
    targets = list(dict.fromkeys(r["target"] for r in records))
    methods = list(dict.fromkeys(r["method"] for r in records))
    columns = [(t, b) for t in targets for b in CELL_BUDGETS]
    lines = [
        f"`PYTHONPATH=. python benchmarks/against.py --reference {reference}` (records: "
        f"`{records_file(reference)}`). The runs of *Every selector* (head trainer; seeds 0-2), each set against "
        f"{reference}'s run of the same budget and seed "
        "as `taskselect run` sets a selection against the selectors `report.against` names: the difference of "
        f"macro-F1 and its paired bootstrap interval ({found['confidence']:.0%}; {found['n_boot']} resamples of the "
        f"test rows within each label). Each cell: the mean difference from {reference} in points (the *Every selector* "
        "tables' means, subtracted) and (k/n), in how many of the n runs the interval lies wholly on that side of 0. "
        "auto's selection is its close candidates' blend as recorded by *auto: other blends of the close "
        "candidates*; every F1 equals the recorded run's (the script checks it). "
        f"Run: {found['seconds']:.0f} s, load {found['load_before']} / {found['load_after']}, "
        f"{found['machine']['cpu']}, {found['machine']['cores']} cores.",
        "",
        "| method | " + " | ".join(f"{t} {budget_label(b)}" for t, b in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for method in methods:
        lines.append(f"| {method} | " + " | ".join(
            cell([r for r in records if r["method"] == method and r["target"] == t and r["budget"] == b])
            for t, b in columns) + " |")
    above = {m: [f"{t} {budget_label(b)}" for t, b in columns
                 if sum(r["low"] > 0 for r in records if r["method"] == m and r["target"] == t and r["budget"] == b) >= 2]
             for m in methods}
    runs = {m: sum(r["low"] > 0 for r in records if r["method"] == m) for m in methods}
    below = {m: sum(r["high"] < 0 for r in records if r["method"] == m) for m in methods}
    n = {m: sum(r["method"] == m for r in records) for m in methods}

    def cells(m: str) -> str:  # the shorter list: the cells, or every cell but the others
        if 2 * len(above[m]) <= len(columns):
            return ", ".join(above[m])
        rest = [f"{t} {budget_label(b)}" for t, b in columns if f"{t} {budget_label(b)}" not in above[m]]
        return f"every cell but {', '.join(rest)}" if rest else "every cell"

    lines += ["", f"Runs whose difference from {reference} holds, above / below 0: " + "; ".join(
        f"{m} {runs[m]} / {below[m]} of {n[m]}" for m in methods) + f". Cells where a selector is above {reference} in at "
        "least two of the three runs: " + ("; ".join(f"{m}: {cells(m)}" for m in methods if above[m]) or "none")
        + ".", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data/bench"), help="the bench's workspaces")
    parser.add_argument("--reference", choices=REFERENCES, default="tsds", help="the selector every other one is set against")
    section_arguments(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    if not args.render_only:
        params = load_params(None, args.overrides)
        blends = {(r["task"], r["budget"], r["seed"]): r for r in read_json(BLENDS / "targets.json")["records"]}
        measured, records = stopwatch(), []
        for name, runs in load(Path("benchmarks/quality")).items():
            recorded = {(r["method"], r["budget"], r["seed"]): r["f1_macro"] for r in runs}
            records += run_target(Target.load(params, name, args.data_dir), recorded,
                                  {k[1:]: v for k, v in blends.items() if k[0] == name}, args.reference)
        write_json(records_file(args.reference), {**measured(), "reference": args.reference, "n_boot": params.evaluate.n_boot,
                                                  "confidence": params.evaluate.confidence, "records": records})
    write_marked_section(args.markdown, section(args.reference), render(read_json(records_file(args.reference))))


if __name__ == "__main__":
    main()
