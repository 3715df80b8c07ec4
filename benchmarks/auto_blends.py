"""auto's blend (equal shares) against other ways of blending the candidates it cannot rank.

    PYTHONPATH=. python benchmarks/auto_blends.py --work /tmp/byo --work100 /tmp/byo100 \
        --work-held-out /tmp/held --work-sentiment /tmp/sentiment --bench-data data/bench \
        -S embed.cache_dir=... [--groups targets,40] [--replay --variants vote] [--render-only]

When several candidates are close, auto (select.auto.undecided: blend) takes their selections'
draws in turns, each an equal share. Three other blends, measured here, not offered: 'weighted'
gives each close candidate a share proportional to its wins (the share of the bootstrap
resamples of the held-out queries on which it scores best), 'smaller' takes each close
candidate's own selection at ceil(budget / k) draws (its most-preferred rows at that budget, not a
random share of its full-budget selection), topped up in turns from their full selections, and 'vote'
ranks the pool rows by how many close candidates' selections hold them (ties in a seeded random
order) and takes them in that order, each row as often as one selection draws it, so that rows one
candidate alone holds come last; 'cap3' blends in equal shares only the three close candidates
with the most wins (ties to the preferred; select.auto.blend_max 3), since five or six close
candidates leave each a sliver of a small budget. Six settings are measured alike, each with its own cross-validation
(which may close other candidates): 'repeats2', auto with two fold splits (select.auto.repeats 2),
'knn-uniform', the TSDS paper's KNN-Uniform added to the candidates after knn, 'tol0.5' and
'tol2', auto blending the candidates within 0.5 or 2 standard errors of the best instead of 1
(select.auto.tolerance: chosen when auto took the earliest close candidate; with the blend it
sets how many candidates share the budget), and 'folds3' and 'folds10', auto with 3 or 10 folds
instead of 5 (select.auto.folds, never measured: more folds select each fold's rows with more of
the queries, closer to the final selection, and cost more candidate runs). Rule,
stated before the runs: a variant replaces the equal shares only if its mean gap to the best other
selector over the 24 cells of the "auto" section's last table is better by at least 0.1 point and,
on the other tasks at seeds 2-4 (no choice was made on them), it is not worse per run. The two
held-out groups, the tasks of benchmarks/other_tasks.py's runs after every choice (--records
held-out-tasks and held-out-sentiment, 2% and 5%, seeds 0-1), were measured after a variant
passed the rule: a check on data no choice was made on. auto runs
in-process as in benchmarks/auto_seeds.py (params.yaml's settings, the bench's workspaces and
other_tasks.py's); every run checks that the variant params.yaml's blend_max makes (null:
'blend', 3: 'cap3') has the recorded auto run's F1 where one exists. --replay takes each run's
close candidates and wins from this script's records instead of running auto's cross-validation
again, recomputes the blends named by --variants (checking the equal shares' F1 against this
script's record) and keeps the others' recorded F1.
Records: benchmarks/quality/auto-blends/<group>.json.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from collections import Counter
from pathlib import Path

import numpy as np

from benchmarks import auto_report, other_tasks
from benchmarks.auto_seeds import auto_runs, auto_selector
from benchmarks.harness import Target, section_arguments, stopwatch, write_marked_section
from taskselect import stages
from taskselect.config import TARGETS, load_params
from taskselect.io import read_json, write_json
from taskselect.selectors import resolve_budget
from taskselect.selectors.auto import blend_members, in_turns, most_draws

SECTION = "auto: other blends of the close candidates"
OUT = Path("benchmarks/quality/auto-blends")
BLENDS = ("weighted", "smaller", "vote", "cap3")
CAP = 3  # cap3: the close candidates a blend keeps (select.auto.blend_max 3)
# auto with another setting (select.auto keys): it may choose other candidates, so it runs its own
# cross-validation in every run
SETTINGS = {"repeats2": {"repeats": 2},
            # knn-uniform (the TSDS paper's KNN-Uniform) among the candidates, after knn: it leads
            # airline_sentiment at 5%, where auto falls 1.9 points short
            "knn-uniform": {"candidates": ["tsds", "tsds:representation=hybrid", "knn", "knn-uniform", "kcenter", "s2l",
                                           "dsir", "negcliploss", "random"]},
            # the tolerance was chosen for the earliest close candidate; the blend's number of members
            # rests on it
            "tol0.5": {"tolerance": 0.5}, "tol2": {"tolerance": 2.0},
            # five folds was the common default, never measured here
            "folds3": {"folds": 3}, "folds10": {"folds": 10}}
VARIANTS = (*BLENDS, *SETTINGS)
# group -> (budgets, seeds); the other tasks' seeds 0-1 are the recorded runs', 2-4 new
GROUPS = {"targets": ((0.02, 0.05, 0.1), (0, 1, 2)), "40": ((0.02, 0.05), (0, 1, 2, 3, 4)),
          "100": ((0.02, 0.05), (0, 1, 2, 3, 4)), "held-out": ((0.02, 0.05), (0, 1)),
          "held-out-sentiment": ((0.02, 0.05), (0, 1))}
RULE = ("targets", "40", "100")  # the groups the rule was stated on
# the other tasks' groups: (their workspaces' option, other_tasks.py's records folder, its sources)
TASKS = {"40": ("work", "other-tasks", ("bbc", "r8", "sms")),
         "100": ("work100", "other-tasks-100-queries", ("bbc", "r8", "sms")),
         "held-out": ("work_held_out", "held-out-tasks", ("disaster", "election", "movies")),
         "held-out-sentiment": ("work_sentiment", "held-out-sentiment", ("amazon", "nyt", "tweets"))}
NAMES = {"targets": "four targets, 2-10%", "40": "other tasks, 40 queries", "100": "other tasks, 100 queries",
         "held-out": "held-out tasks", "held-out-sentiment": "held-out sentiment tasks"}


def weighted_turns(selections: list[np.ndarray], weights: list[float], size: int, seed) -> np.ndarray:
    """(size,) sorted pool rows: draws taken from the selections in proportion to `weights`
    (smooth weighted round robin; each selection in a seeded random order, a row skipped once taken
    as often as one selection draws it, as in auto.in_turns); a selection of weight 0 gives none."""
    rng = np.random.default_rng(seed)
    orders = [rng.permutation(np.sort(rows)) for rows in selections]
    most = most_draws(selections)
    weights = np.asarray(weights, dtype=float)
    credit, position, taken, blended = np.zeros(len(orders)), [0] * len(orders), Counter(), []
    while len(blended) < size:
        live = [i for i in range(len(orders)) if weights[i] > 0 and position[i] < len(orders[i])]
        if not live:
            break
        credit[live] += weights[live]
        i = max(live, key=lambda j: credit[j])
        credit[i] -= weights[live].sum()
        while position[i] < len(orders[i]):
            row = int(orders[i][position[i]])
            position[i] += 1
            if taken[row] < most[row]:
                taken[row] += 1
                blended.append(row)
                break
    return np.sort(np.asarray(blended, dtype=np.int64))


def smaller_blend(own, close: list[str], queries: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Each close candidate's own selection at ceil(size / k) draws, in turns; topped up to `size`
    from the blend of their full-budget selections (the rows not already taken, seeded order)."""
    blended = in_turns([own[spec](queries, math.ceil(size / len(close)), seed).indices for spec in close], size, seed)
    if len(blended) < size:
        left = Counter(in_turns([own[spec](queries, size, seed).indices for spec in close], size, seed).tolist())
        left.subtract(Counter(blended.tolist()))
        rest = np.asarray(sorted(left.elements()), dtype=np.int64)
        blended = np.sort(np.concatenate([blended, np.random.default_rng(seed).permutation(rest)[:size - len(blended)]]))
    return blended


def vote_blend(selections: list[np.ndarray], size: int, seed) -> np.ndarray:
    """(size,) sorted pool rows: the rows most selections hold first (ties in a seeded random
    order), each taken as often as one selection draws it, until `size` draws."""
    most = most_draws(selections)
    votes = Counter(row for rows in selections for row in np.unique(rows).tolist())
    rows = np.random.default_rng(seed).permutation(np.asarray(sorted(votes), dtype=np.int64))
    ranked = sorted(rows.tolist(), key=lambda row: -votes[row])  # stable: ties keep the seeded order
    draws = [row for row in ranked for _ in range(most[row])]
    return np.sort(np.asarray(draws[:size], dtype=np.int64))


def replayed_runs(target: Target, earlier: list[dict]):
    """(budget, seed, size, close, wins, candidates prepared on this data: spec -> its
    query_subsets) for each of this script's earlier records of the target, without auto's
    cross-validation: the close candidates and wins are the records'."""
    auto = auto_selector(target.params)
    own = {}
    for r in earlier:
        for spec in r["close"]:
            if spec not in own:
                own[spec] = auto.candidate(spec, target.query, target.pool, target.index, target.corpus)
        yield r["budget"], r["seed"], resolve_budget(r["budget"], len(target.pool)), r["close"], r["wins"], own


def fresh_runs(target: Target, budgets, seeds):
    """The same tuples from auto run in-process (auto_seeds.auto_runs)."""
    for budget, seed, size, chosen, own in auto_runs(target, budgets, seeds):
        report = chosen.info["candidates"]
        yield budget, seed, size, chosen.info["close"], {s: report[s]["wins"] for s in chosen.info["close"]}, own


def run_target(target: Target, runs, recorded: dict, variants=VARIANTS, earlier: dict | None = None) -> list[dict]:
    """auto's runs on one task: the blend's and the variants' test macro-F1 (and a setting's select
    seconds). `runs` yields fresh_runs' or replayed_runs' tuples; a variant not in `variants` keeps
    its record in `earlier` ((task, budget, seed) -> record)."""
    every, earlier = np.arange(len(target.query)), earlier or {}
    other = {v: auto_selector(target.params, **SETTINGS[v]) for v in SETTINGS if v in variants}
    records = []
    as_run = {None: "blend", CAP: "cap3"}.get(target.params.select.auto.blend_max)  # the variant auto runs
    for budget, seed, size, close, wins, own in runs:
        full = [own[spec](every, size, seed).indices for spec in close]
        key = (target.name, budget, seed)
        record = {"task": target.name, "budget": budget, "seed": seed, "close": close, "wins": wins,
                  "blend": target.f1(full[0] if len(close) == 1 else in_turns(full, size, seed), seed)}
        if key in earlier and abs(earlier[key]["blend"] - record["blend"]) > 1e-9:
            raise SystemExit(f"{target.name} {budget} seed {seed}: the equal shares' F1 {record['blend']} is not "
                             f"the record's {earlier[key]['blend']}: the workspace or a candidate changed")
        for v in VARIANTS:
            if v not in variants:
                record |= {k: earlier[key][k] for k in (v, f"{v}_seconds") if k in earlier.get(key, {})}
            elif v in SETTINGS:
                started = time.perf_counter()
                chosen_there = other[v].select(target.query, target.pool, size, seed, index=target.index,
                                               corpus=target.corpus)
                record[f"{v}_seconds"] = round(time.perf_counter() - started, 1)
                record[v] = target.f1(chosen_there.indices, seed)
            elif len(close) == 1:
                record[v] = record["blend"]
            elif v == "weighted":
                shares = [wins[spec] for spec in close]
                record[v] = target.f1(weighted_turns(full, shares if sum(shares) else [1] * len(close), size, seed), seed)
            elif v == "smaller":
                record[v] = target.f1(smaller_blend(own, close, every, size, seed), seed)
            elif v == "cap3":
                kept = blend_members(close, wins, CAP)
                record[v] = target.f1(in_turns([full[close.index(spec)] for spec in kept], size, seed), seed) \
                    if len(kept) < len(close) else record["blend"]
            else:
                record[v] = target.f1(vote_blend(full, size, seed), seed)
        if as_run and key in recorded and abs(recorded[key] - record[as_run]) > 1e-9:
            raise SystemExit(f"{target.name} {budget} seed {seed}: {as_run}'s F1 {record[as_run]} is not the recorded "
                             f"auto run's {recorded[key]}: the workspace or auto changed")
        records.append(record)
    return records


def recorded_f1(out_dir: Path) -> dict[str, dict]:
    """group -> (task, budget, seed) -> auto's recorded test macro-F1."""
    found = {"targets": {(t, r["budget"], r["seed"]): r["f1_macro"] for t, records in auto_report.load(out_dir).items()
                         for r in records if r["method"] == "auto"}}
    for group, (_, folder, _) in TASKS.items():
        found[group] = {(source, b, r["seed"]): r["f1"] for source, b, _, cell in auto_report.folder_cells(out_dir / folder)
                        for r in cell if r["method"] == "auto"}
    return found


def render(found: dict[str, dict], out_dir: Path) -> str:
    """The rule's table: per group of cells, each blend's bar and mean gap; the other tasks at
    seeds 2-4, each variant's mean difference to the equal shares per run; then the held-out groups."""
    best = {("targets", t, b): f1 for t, _, _, b, f1 in auto_report.target_cells(auto_report.load(out_dir), out_dir)}
    best |= {(g, source, b): f1 for g, (_, folder, _) in TASKS.items()
             for source, b, f1, _ in auto_report.folder_cells(out_dir / folder)}
    chosen_on = tuple(map(int, other_tasks.SEEDS))  # the recorded runs' seeds; later ones are new
    seeds_of_choice = {g: chosen_on if g in ("40", "100") else GROUPS[g][1] for g in GROUPS}
    groups = [g for g in GROUPS if g in found]
    rule, held_out = [g for g in groups if g in RULE], [g for g in groups if g not in RULE]
    lines = [
        "`PYTHONPATH=. python benchmarks/auto_blends.py --work <other_tasks.py's --work> --work100 <its 100-query "
        "--work> --work-held-out <its --work of the held-out tasks> --work-sentiment <of the held-out sentiment tasks> "
        f"--bench-data data/bench` (records under `{OUT}/`). " + __doc__.split("\n\n")[2].replace("\n", " ").strip()
        + " Head trainer. Runs: " + "; ".join(
            f"{NAMES[g]}: {found[g]['seconds']:.0f} s"
            + (f" (--replay --variants {','.join(found[g]['replayed'])})" if "replayed" in found[g] else
               f" (--variants {','.join(found[g]['variants'])})" if "variants" in found[g] else "")
            + f", load {found[g]['load_before']} / {found[g]['load_after']}" for g in groups)
        + f". Machine: {found[groups[0]]['machine']['cpu']}, {found[groups[0]]['machine']['cores']} cores.", "",
        f"Cells within {auto_report.WITHIN} point of the best other selector / largest shortfall / mean gap, in points, at the seeds "
        "the choices were made on; then each variant's mean difference to the equal shares per run at seeds 2-4; then "
        "the held-out groups (every seed; measured after the rule was applied):", "",
        "| variant | " + " | ".join(NAMES[g] for g in rule) + " | all cells: mean gap | other tasks, seeds 2-4: "
        "per run against equal shares (40 / 100 queries) |" + "".join(f" {NAMES[g]} |" for g in held_out)
        + (" held-out cells: mean gap |" if held_out else ""),
        "|---|" + "---|" * (len(rule) + 2 + len(held_out) + bool(held_out)),
    ]

    def gaps(g: str, variant: str) -> list[float] | None:
        """Points to the best other selector per cell of group g, None if the variant was not run there."""
        records = [r for r in found[g]["records"] if r["seed"] in seeds_of_choice[g]]
        if any(variant not in r for r in records):
            return None
        cells = {}
        for r in records:
            cells.setdefault((r["task"], r["budget"]), []).append(r[variant])
        return [100 * (np.mean(v) - best[(g, *cell)]) for cell, v in cells.items()]

    def cells(part: list[str], found_gaps: dict[str, list[float] | None]) -> list[str]:
        """The groups' bar cells, then the mean gap over all their cells."""
        row, every = [], []
        for gs in (found_gaps[g] for g in part):
            if gs is None:
                row.append("not run")
                continue
            within, shortfall, mean = auto_report.bar(gs)
            row.append(f"{within} of {len(gs)} / {shortfall:.1f} / {mean:+.2f}")
            every += gs
        return row + [f"{np.mean(every):+.2f}" if every else "not run"]

    for variant in ("blend", *VARIANTS):
        found_gaps = {g: gaps(g, variant) for g in groups}
        if all(v is None for v in found_gaps.values()):
            continue
        later = [f"{100 * np.mean([r[variant] - r['blend'] for r in found[g]['records'] if r['seed'] not in chosen_on]):+.2f}"
                 for g in ("40", "100") if g in found and all(variant in r for r in found[g]["records"])]
        name = {"blend": "equal shares (auto's blend, the default)", "weighted": "weighted by wins",
                "smaller": "each candidate's own smaller selection",
                "vote": "the rows most close candidates hold first",
                "cap3": "equal shares of the three close candidates with the most wins (select.auto.blend_max 3)",
                "repeats2": "equal shares, two fold splits (select.auto.repeats 2)",
                "knn-uniform": "equal shares, knn-uniform among the candidates",
                "tol0.5": "equal shares of the candidates within 0.5 standard errors (select.auto.tolerance 0.5)",
                "tol2": "equal shares of the candidates within 2 standard errors (select.auto.tolerance 2)",
                "folds3": "equal shares, 3 folds (select.auto.folds 3)",
                "folds10": "equal shares, 10 folds (select.auto.folds 10)"}[variant]
        lines.append(f"| {name} | " + " | ".join(cells(rule, found_gaps)) + f" | {' / '.join(later)} |"
                     + ("".join(f" {c} |" for c in cells(held_out, found_gaps)) if held_out else ""))
    return "\n".join(lines + [""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="benchmarks/other_tasks.py's --work directory (40 queries)")
    parser.add_argument("--work100", type=Path, help="its --work directory with --queries 100")
    parser.add_argument("--work-held-out", type=Path, help="its --work directory of the held-out tasks (disaster, ...)")
    parser.add_argument("--work-sentiment", type=Path, help="its --work directory of the held-out sentiment tasks")
    parser.add_argument("--bench-data", type=Path, default=Path("data/bench"), help="the bench's workspaces")
    parser.add_argument("--groups", default=",".join(GROUPS))
    section_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/quality"))
    parser.add_argument("--replay", action="store_true", help="the close candidates and wins of the records")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="the variants to compute (--replay keeps the others' records)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(asctime)s %(name)s %(message)s")
    if not args.render_only:
        missing = [f"--{TASKS[g][0].replace('_', '-')}" for g in args.groups.split(",") if g in TASKS and not getattr(args, TASKS[g][0])]
        if missing:
            parser.error(f"the other tasks' groups need {' and '.join(missing)}")
        params = load_params(None, args.overrides)
        recorded, variants = recorded_f1(args.out), tuple(args.variants.split(","))
        if unknown := set(variants) - set(VARIANTS):
            parser.error(f"--variants {args.variants}: expected some of {', '.join(VARIANTS)}, not {', '.join(sorted(unknown))}")
        for group in args.groups.split(","):
            budgets, seeds = GROUPS[group]
            earlier = {(r["task"], r["budget"], r["seed"]): r for r in read_json(OUT / f"{group}.json")["records"]} \
                if (args.replay or set(variants) != set(VARIANTS)) and (OUT / f"{group}.json").is_file() else {}
            measured = stopwatch()
            if group == "targets":
                targets = [Target.load(params, t, args.bench_data) for t in TARGETS]
            else:
                option, _, sources = TASKS[group]
                targets = [Target.of_workspace(s, params, stages.Workspace(getattr(args, option) / f"data-{s}")) for s in sources]
            records = []
            for target in targets:
                if args.replay:
                    mine = [r for key, r in earlier.items() if key[0] == target.name]
                    records += run_target(target, replayed_runs(target, mine), recorded.get(group, {}), variants, earlier)
                else:
                    records += run_target(target, fresh_runs(target, budgets, seeds), recorded.get(group, {}), variants)
            write_json(OUT / f"{group}.json", {
                "group": group, **measured(), "records": records,
                **({"replayed": list(variants)} if args.replay else
                   {"variants": list(variants)} if set(variants) != set(VARIANTS) else {})})
    found = {p.stem: read_json(p) for p in sorted(OUT.glob("*.json"))}
    write_marked_section(args.markdown, SECTION, render(found, args.out))


if __name__ == "__main__":
    main()
