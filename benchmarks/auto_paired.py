"""auto against the best other selector of each cell, run by run, with paired intervals.

    PYTHONPATH=. python benchmarks/auto_paired.py [--data-dir data/bench] [--render-only]

The bar of issue 17 compares auto's mean macro-F1 over three seeds with the best mean of the
other selectors in each target x budget cell (2, 5 and 10%), a best chosen knowing the test
results. This asks of each run whether its difference holds on the test set: per target,
budget and seed, auto's selection (its close candidates' selections blended as auto blends them,
the close candidates taken from benchmarks/auto_blends.py's records of the same runs, so auto's
cross-validation is not run again) and the best other selector's selection with the same seed
are each trained and scored as the stages do (harness.Target), and the difference of their
macro-F1 gets the paired bootstrap interval `taskselect run` reports against its baselines
(evaluate.n_boot resamples of the test rows within each label, evaluate.confidence;
stages.paired_deltas). Both F1s are checked against the bench's records of those runs.
Records: benchmarks/quality/auto-paired/targets.json; section "auto against the best other
selector, run by run" of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import numpy as np

from benchmarks.auto_blends import OUT as BLENDS
from benchmarks.auto_report import CELL_BUDGETS, best_other, load, mean_f1
from benchmarks.auto_seeds import auto_selector
from benchmarks.harness import Target, machine, write_marked_section
from taskselect.config import TARGETS, load_params
from taskselect.io import read_json, write_json
from taskselect.metrics import macro_f1_resamples, percentile_interval, stratified_draws
from taskselect.selectors import budget_label, make_selector, resolve_budget
from taskselect.selectors.auto import in_turns

SECTION = "auto against the best other selector, run by run"
OUT = Path("benchmarks/quality/auto-paired")


def run_target(target: Target, records: list[dict], blends: dict) -> list[dict]:
    """A record per budget of the bar and seed: auto's and the best other selector's macro-F1 and
    the paired interval of their difference."""
    recorded = {(r["method"], r["budget"], r["seed"]): r["f1_macro"] for r in records}
    b = target.benchmark
    truth = b.test["label"].to_numpy(dtype=str)
    evaluate = target.params.evaluate
    draws = stratified_draws(truth, evaluate.n_boot, np.random.default_rng(evaluate.seed))
    auto, own, every = auto_selector(target.params), {}, np.arange(len(target.query))
    out = []
    for budget in CELL_BUDGETS:
        best, _ = best_other({m: mean_f1(records, m, budget) for m in {r["method"] for r in records}})
        selector = make_selector(best, target.params.select, target.params.finetune)
        size = resolve_budget(budget, len(target.pool))
        for seed in sorted(s for (m, bb, s) in recorded if m == "auto" and bb == budget):
            close = blends[(budget, seed)]["close"]
            for spec in close:
                own.setdefault(spec, auto.candidate(spec, target.query, target.pool, target.index, target.corpus))
            selections = [own[spec](every, size, seed).indices for spec in close]
            rows = {"auto": selections[0] if len(close) == 1 else in_turns(selections, size, seed),
                    best: selector.select(target.query, target.pool, size, seed, index=target.index,
                                          corpus=target.corpus).indices}
            scores, f1 = {}, {}
            for method, chosen in rows.items():
                predicted = target.predictions(chosen, seed)
                scores[method] = macro_f1_resamples(truth, predicted, b.target_labels, draws)
                f1[method] = target.f1(chosen, seed)
                if abs(f1[method] - recorded[method, budget, seed]) > 1e-9:
                    raise SystemExit(f"{target.name} {method} {budget} seed {seed}: macro-F1 {f1[method]} is not the "
                                     f"bench's record {recorded[method, budget, seed]}: the workspace changed")
            low, high = percentile_interval(scores["auto"] - scores[best], evaluate.confidence)
            out.append({"target": target.name, "budget": budget, "seed": seed, "best_other": best,
                        "auto": f1["auto"], "other": f1[best], "low": low, "high": high})
    return out


def render(found: dict) -> str:
    records = found["records"]
    lines = [
        "`PYTHONPATH=. python benchmarks/auto_paired.py` (records under `benchmarks/quality/auto-paired/`). "
        "The bar compares auto's mean over three seeds with the best other selector's mean in each cell, a best "
        "picked among eleven selectors knowing the test results. Here each run's difference gets the paired "
        f"bootstrap interval `taskselect run` reports against its baselines ({found['confidence']:.0%}; "
        f"{found['n_boot']} resamples of the test rows within each label): auto's selection (its close candidates "
        "blended, as recorded by *auto: other blends of the close candidates*) and the best other selector's with the "
        "same seed, both scored as the stages score them; every F1 equals the bench's record of that run (the "
        f"script checks it). Head trainer. Run: {found['seconds']:.0f} s, load {found['load_before']} / "
        f"{found['load_after']}; machine: {found['machine']['cpu']}, {found['machine']['cores']} cores.",
        "",
        "| target | budget | best other | auto − best other, per seed (points) [paired interval] | holds below / above 0 |",
        "|---|---|---|---|---|",
    ]
    below = above = 0
    for target in TARGETS:
        for budget in CELL_BUDGETS:
            cell = [r for r in records if r["target"] == target and r["budget"] == budget]
            if not cell:
                continue
            down, up = sum(r["high"] < 0 for r in cell), sum(r["low"] > 0 for r in cell)
            below, above = below + down, above + up
            runs = ", ".join(f"{100 * (r['auto'] - r['other']):+.1f} [{100 * r['low']:+.1f}, {100 * r['high']:+.1f}]"
                             for r in cell)
            lines.append(f"| {target} | {budget_label(budget)} | {cell[0]['best_other']} | {runs} | "
                         f"{down} / {up} of {len(cell)} |")
    lines += ["", f"Of the {len(records)} runs, auto's difference from the best other selector holds below 0 in "
                  f"**{below}** and above 0 in **{above}**; in the others the test set cannot tell them apart.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data/bench"), help="the bench's workspaces")
    parser.add_argument("-S", "--set", dest="overrides", action="append", default=[])
    parser.add_argument("--markdown", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument("--render-only", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(asctime)s %(name)s %(message)s")
    if not args.render_only:
        params = load_params(None, args.overrides)
        found = load(Path("benchmarks/quality"))
        blends = {(r["task"], r["budget"], r["seed"]): r for r in read_json(BLENDS / "targets.json")["records"]}
        load_before, started = os.getloadavg()[0], time.perf_counter()
        records = []
        for name in TARGETS:
            target = Target.load(params, name, args.data_dir)
            records += run_target(target, found[name], {k[1:]: v for k, v in blends.items() if k[0] == name})
        write_json(OUT / "targets.json", {
            "seconds": round(time.perf_counter() - started, 1), "load_before": round(load_before, 2),
            "load_after": round(os.getloadavg()[0], 2), "machine": machine(),
            "n_boot": params.evaluate.n_boot, "confidence": params.evaluate.confidence, "records": records})
    write_marked_section(args.markdown, SECTION, render(read_json(OUT / "targets.json")))


if __name__ == "__main__":
    main()
