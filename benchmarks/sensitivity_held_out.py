"""TSDS's sensitivity grid on the held-out tasks: do the defaults chosen on the four targets hold?

    PYTHONPATH=. python benchmarks/sensitivity_held_out.py --work /tmp/workheld:disaster,election,movies
        --work /tmp/worksent:amazon,nyt,tweets [--render-only]

Each --work is benchmarks/other_tasks.py's --work directory and the sources it ran: their
workspaces (<work>/data-<source>: the task's 40 queries and 400 test rows, its other rows hidden
in a pool among 6,000 rows of the other sources, prepared, embedded and indexed by `taskselect
run --pool --query --test`). The grid, budgets, seeds and scoring are benchmarks/sensitivity.py's.
Report only: the defaults were chosen on the four targets before this ran, and nothing is chosen
here. Records: benchmarks/quality/sensitivity-held-out/<source>.json; the section "TSDS
sensitivity on the held-out tasks" of BENCHMARKS.md is rendered from them.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from benchmarks.harness import Target, runs_line, section_arguments, stopwatch, write_marked_section
from benchmarks.sensitivity import (ALPHAS, BUDGETS, CS, SEEDS, SETTING, SIGMAS, _label, cell_means, run_target,
                                    setting_cells)
from taskselect import stages
from taskselect.config import Params, load_params
from taskselect.io import read_json, write_json

SECTION = "TSDS sensitivity on the held-out tasks"
OUT = Path("benchmarks/quality/sensitivity-held-out")
# other_tasks.py's records of these tasks: the default setting's runs must have their tsds F1
RECORDED = (Path("benchmarks/quality/held-out-tasks"), Path("benchmarks/quality/held-out-sentiment"))


def check_against_recorded(source: str, records: list[dict], default: tuple[float, float, float]) -> int:
    """How many of the default setting's runs have the macro-F1 that `taskselect run` recorded for
    tsds at that budget and seed (other_tasks.py's records); a difference is an error: the grid
    would then not score selections as the product does."""
    recorded = {}
    for folder in RECORDED:
        if (folder / f"{source}.json").is_file():
            recorded |= {(r["budget"], r["seed"]): r["f1"] for r in read_json(folder / f"{source}.json")["records"]
                         if r["method"] == "tsds"}
    mine = {(r["budget"], r["seed"]): r["f1"] for r in records if (r["alpha"], r["C"], r["sigma"]) == default}
    differ = [(key, mine[key], f1) for key, f1 in recorded.items() if key in mine and abs(mine[key] - f1) > 1e-9]
    if differ:
        raise SystemExit(f"{source}: the default setting's macro-F1 differs from the recorded tsds runs: {differ}")
    return len(set(recorded) & set(mine))


def render(found: list[dict], params: Params) -> str:
    tsds = params.select.tsds
    default = (tsds.alpha, tsds.C, tsds.sigma)
    means = cell_means([r for f in found for r in f["records"]])
    tasks = [f["target"] for f in found]
    per_task = means.pivot_table(index=SETTING, columns="target", values="f1")  # mean of the budgets' means
    summary = means.groupby(SETTING)[["f1", "rank", "gap"]].mean()
    order = summary.sort_values(["rank", "gap"], kind="mergesort").index
    best = summary["f1"].idxmax()
    lines = [
        f"`PYTHONPATH=. python benchmarks/sensitivity_held_out.py --work <other_tasks.py's --work>:<sources> ...` "
        f"(records under `{OUT}/`). The grid of *TSDS sensitivity* (alpha in {list(ALPHAS)}, "
        f"C in {list(CS)}, sigma in {list(SIGMAS)}; budgets {', '.join(f'{b:.0%}' for b in BUDGETS)}; seeds "
        f"{list(SEEDS)}; head trainer) on the six tasks of *Other tasks measured after every choice* and *...: labels "
        "the pool shares* (their workspaces: 40 queries, 400 test rows, about 6,000 pool rows). The defaults were "
        "chosen on the four targets before this ran; nothing is chosen here. The default setting's runs at the "
        f"seeds those sections ran ({sum(f.get('checked_runs', 0) for f in found)} runs) have the macro-F1 their "
        "`taskselect run` recorded for tsds (the script checks it). " + runs_line(found),
        "",
        "Macro-F1 per task (mean over the budgets and seeds); settings in order of mean rank over the "
        f"{len(tasks) * len(BUDGETS)} task x budget cells. Gap: points below the cell's best setting, mean over the cells.",
        "",
        "| alpha | C | sigma | " + " | ".join(tasks) + " | mean macro-F1 | mean rank | mean gap |",
        "|---|---|---|" + "---|" * len(tasks) + "---|---|---|",
    ]
    for setting in order:
        lines.append(setting_cells(setting, default, default, "default")
                     + " | ".join(f"{per_task.loc[setting, t]:.3f}" for t in tasks)
                     + f" | {summary.loc[setting, 'f1']:.3f} | {summary.loc[setting, 'rank']:.1f} | "
                       f"{100 * summary.loc[setting, 'gap']:.1f} |")
    rank = list(order).index(default) + 1
    lines += ["", f"The default (alpha {default[0]:g}, C {default[1]:g}, sigma {default[2]:g}): "
                  f"{100 * (summary.loc[best, 'f1'] - summary.loc[default, 'f1']):.2f} points below the best single "
                  f"setting on these tasks (alpha {best[0]:g}, C {best[1]:g}, sigma {best[2]:g}{_label(*best)}, mean "
                  f"macro-F1 {summary.loc[best, 'f1']:.3f} against {summary.loc[default, 'f1']:.3f}); "
                  f"{100 * summary.loc[default, 'gap']:.2f} points below each cell's best setting on average; "
                  f"{rank} of {len(order)} by mean rank.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", action="append", default=[], help="<other_tasks.py's --work>:<source>,<source>")
    section_arguments(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    params = load_params(None, args.overrides)
    if not args.render_only:
        if not args.work:
            parser.error("--work <directory>:<sources> is needed (benchmarks/other_tasks.py's workspaces)")
        for work in args.work:
            directory, _, sources = work.rpartition(":")
            for source in sources.split(","):
                measured = stopwatch()
                target = Target.of_workspace(source, params, stages.Workspace(Path(directory) / f"data-{source}"))
                records, facts = run_target(target)
                tsds = params.select.tsds
                facts["checked_runs"] = check_against_recorded(source, records, (tsds.alpha, tsds.C, tsds.sigma))
                write_json(OUT / f"{source}.json", {"target": source, **measured(), **facts, "records": records})
    found = [read_json(p) for p in sorted(OUT.glob("*.json"))]
    write_marked_section(args.markdown, SECTION, render(found, params))


if __name__ == "__main__":
    main()
