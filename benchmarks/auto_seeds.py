"""auto's blend against the earliest close candidate on the other tasks, at seeds no choice was made on.

    PYTHONPATH=. python benchmarks/auto_seeds.py --work /tmp/byo [--queries 100] --seeds 2,3,4 [--budgets 0.01,0.1]

The blend (select.auto.undecided) was chosen on seeds 0 and 1 of the other tasks (and the four
targets). This reruns those tasks at other seeds: it reads the workspaces benchmarks/other_tasks.py
left under --work (data-<source>: the prepared files, embeddings and index of `taskselect run
--pool --query --test`), runs auto in-process with params.yaml's settings, and scores its selection
and every candidate's own selection with the same seed as the stages do (harness.Target; at seeds
0 and 1 of the 40-query tasks every F1, auto's and each method's, equals the recorded run's). Records:
benchmarks/quality/auto-seeds/<queries>-queries[-<budgets>].json; section "auto at other seeds" of
BENCHMARKS.md. --budgets measures budgets other_tasks.py does not run (2% and 5% by default).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from benchmarks.harness import Target, section_arguments, stopwatch, write_marked_section
from benchmarks import auto_report, other_tasks
from benchmarks.other_tasks import N_QUERY
from taskselect import stages
from taskselect.config import load_params
from taskselect.io import read_json, write_json
from taskselect.selectors import budget_label, make_selector, resolve_budget
from taskselect.selectors.auto import AutoSelector

SECTION = "auto at other seeds: the other tasks"
OUT = Path("benchmarks/quality/auto-seeds")
SOURCES, BUDGETS = ("bbc", "r8", "sms"), tuple(map(float, other_tasks.BUDGETS))


def auto_selector(params, **settings) -> AutoSelector:
    """auto as the select stage builds it from `params` (its finetune parameters included), with
    the select.auto keys in `settings` replaced."""
    select = params.select.model_copy(update={"auto": params.select.auto.model_copy(update=settings)})
    return make_selector("auto", select, params.finetune)


def auto_runs(target: Target, budgets, seeds):
    """auto in-process with the target's parameters, as the select stage runs it: per budget and
    seed, (budget, seed, size in draws, auto's selection, every candidate prepared on this data:
    spec -> its query_subsets, whose call with every query is its own selection)."""
    auto = auto_selector(target.params)
    for budget in budgets:
        size = resolve_budget(budget, len(target.pool))
        for seed in seeds:
            chosen = auto.select(target.query, target.pool, size, seed, index=target.index, corpus=target.corpus)
            yield budget, seed, size, chosen, {spec: auto.candidate(spec, target.query, target.pool, target.index,
                                                                    target.corpus) for spec in auto.candidates}


def run_source(source: str, work: Path, params, seeds: list[int], budgets=BUDGETS) -> list[dict]:
    target = Target.of_workspace(source, params, stages.Workspace(work / f"data-{source}"))
    every = np.arange(len(target.query))
    return [{"source": source, "budget": budget, "seed": seed, "close": chosen.info["close"],
             "auto": target.f1(chosen.indices, seed),
             "f1": {spec: target.f1(own[spec](every, size, seed).indices, seed) for spec in own}}
            for budget, seed, size, chosen, own in auto_runs(target, budgets, seeds)]


def budgets_of(found: dict) -> tuple[float, ...]:
    return tuple(found.get("budgets", BUDGETS))  # records made before --budgets hold 2% and 5%


def where(found: dict) -> str:
    return f"{found['queries']} queries at {', '.join(map(budget_label, budgets_of(found)))}"


def render(found: list[dict]) -> str:
    lines = [
        "`PYTHONPATH=. python benchmarks/auto_seeds.py --work <other_tasks.py's --work> [--queries 100] --seeds "
        f"{','.join(map(str, found[0]['seeds']))}` (records under `{OUT}/`). "
        + __doc__.split("\n\n")[2].replace("\n", " ")
        + " Best other: the candidate method of highest mean macro-F1 in the cell (its single-representation "
        "methods, as in *Other tasks*). Head trainer. " + "; ".join(
            f"{where(f)}: {f['seconds']:.0f} s, load {f['load_before']} / {f['load_after']}" for f in found)
        + f". Machine: {found[0]['machine']['cpu']}, {found[0]['machine']['cores']} cores.", "",
        "| queries | task | budget | best other | blend (auto, as run): gap | earliest close candidate: gap "
        "| runs with several close |",
        "|---|---|---|---|---|---|---|",
    ]
    summary = []
    for f in found:
        gaps = {"blend": [], "earliest": []}
        for source in SOURCES:
            for budget in budgets_of(f):
                runs = [r for r in f["records"] if (r["source"], r["budget"]) == (source, budget)]
                if not runs:
                    continue
                best, best_f1 = auto_report.best_other({m: np.mean([r["f1"][m] for r in runs]) for m in runs[0]["f1"]})
                blend = 100 * (np.mean([r["auto"] for r in runs]) - best_f1)
                earliest = 100 * (np.mean([r["f1"][r["close"][0]] for r in runs]) - best_f1)
                gaps["blend"].append(blend)
                gaps["earliest"].append(earliest)
                lines.append(f"| {f['queries']} | {source} | {budget_label(budget)} | {best} {best_f1:.3f} | "
                             f"{blend:+.1f} | {earliest:+.1f} | "
                             f"{sum(len(r['close']) > 1 for r in runs)} of {len(runs)} |")
        for name, v in gaps.items():
            within, shortfall, mean = auto_report.bar(v)
            summary.append(f"{where(f)}, {name}: within {auto_report.WITHIN} point of the best other in {within} of "
                           f"{len(v)} cells, largest shortfall {shortfall:.1f}, mean gap {mean:+.2f}")
    return "\n".join(lines + ["", "; ".join(summary) + ".", ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="benchmarks/other_tasks.py's --work directory")
    parser.add_argument("--queries", type=int, default=N_QUERY, help="the query rows other_tasks.py used there")
    parser.add_argument("--seeds", default="2,3,4")
    parser.add_argument("--budgets", default=",".join(map(str, BUDGETS)))
    section_arguments(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    if not args.render_only:
        params = load_params(None, args.overrides)
        seeds, budgets = [int(s) for s in args.seeds.split(",")], [float(b) for b in args.budgets.split(",")]
        measured = stopwatch()
        records = [r for source in SOURCES for r in run_source(source, args.work, params, seeds, budgets)]
        suffix = "" if tuple(budgets) == BUDGETS else "-" + "-".join(map(str, budgets))
        write_json(OUT / f"{args.queries}-queries{suffix}.json", {
            "queries": args.queries, "seeds": seeds, "budgets": budgets, **measured(), "records": records})
    found = sorted((read_json(p) for p in OUT.glob("*-queries*.json")),
                   key=lambda f: (budgets_of(f) != BUDGETS, f["queries"]))
    write_marked_section(args.markdown, SECTION, render(found))


if __name__ == "__main__":
    main()
