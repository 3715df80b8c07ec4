"""The selection-quality benchmark: the real stages over targets x budgets x methods x seeds.

`taskselect bench` runs four parts and renders what they measured into the "Selection
quality" section of BENCHMARKS.md:

- sweep: every target, budgets 1-10% of the pool, tsds / random / full, seeds 0-2, head trainer;
- methods: the selectors from the literature (knn, knn-uniform, knn-kde, dsir, kcenter, s2l,
  loss) at the sweep's targets, budgets and seeds, shown beside the sweep's;
- ablation: TSDS's alpha, sigma, C and replace on the default target at 2% and 5%;
- transformer: the fine-tuning trainer on the default target at 2% and 5%, with wall times.

Each part runs prepare -> embed -> index -> (select -> finetune -> evaluate) per run -> report
from taskselect.stages, writes its records as JSON under out_dir, and the section is rendered
from those files only, so a part can be rerun alone and the section stays consistent.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from taskselect import plan, stages
from taskselect.config import TARGETS, Params, validate_params
from taskselect.data import Benchmark
from taskselect.errors import TaskselectError
from taskselect.io import atomic_path, read_json, write_json
from taskselect.plots import plot_f1_vs_budget
from taskselect.report import summarize
from taskselect.selectors import TSDSSelector, budget_label, make_selector, methods, spec, with_filter

log = logging.getLogger(__name__)

PARTS = ("sweep", "methods", "ablation", "transformer")
SWEEP_METHODS = tuple(m for m in methods() if spec(m).default)
OTHER_METHODS = tuple(m for m in methods() if m not in SWEEP_METHODS)
BEGIN = "<!-- BEGIN taskselect bench: generated, edits between these markers are overwritten -->"
END = "<!-- END taskselect bench -->"
SECTION = "## Selection quality"
BAR_POINTS = 5.0  # the bar: TSDS beats random by this many macro-F1 points
BAR_BUDGETS = (0.02, 0.05)


@dataclass(frozen=True)
class TSDSSetting:
    """One point of the ablation grid."""

    alpha: float
    sigma: float
    C: float = 1.0
    replace: bool = False

    @property
    def slug(self) -> str:
        return f"alpha{self.alpha:g}-sigma{self.sigma:g}-C{self.C:g}" + ("-replace" if self.replace else "")


def default_grid() -> tuple[TSDSSetting, ...]:
    """alpha x sigma at C 1 without replacement; then C and replacement around alpha 0.9, sigma 0.75."""
    grid = [TSDSSetting(a, s) for s in (0.0, 0.5, 0.75, 1.0) for a in (0.1, 0.3, 0.5, 0.7, 0.9, 0.99)]
    grid += [TSDSSetting(0.9, 0.75, C) for C in (0.2, 5.0)]
    grid += [TSDSSetting(0.9, 0.75, replace=True)]
    return tuple(grid)


class PlanOnceTSDS(TSDSSelector):
    """TSDS whose neighbour search and densities are computed once per query set, pool and setting.

    The plan depends neither on alpha nor on the seed, so every budget and seed of a target,
    and every alpha of the ablation, reuse it (the plan costs about 8 s on a 26.6k pool).
    """

    _plans: ClassVar[dict] = {}

    def plan(self, query, candidates, index=None):
        key = (self.C, self.sigma, self.max_k, self.kde_k, self.metric, _digest(query), _digest(candidates))
        if key not in self._plans:
            self._plans[key] = super().plan(query, candidates, index)
        return self._plans[key]


def _digest(array: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(array).view(np.uint8)).hexdigest()


@dataclass
class QualityBench:
    """What to run; `params` (params.yaml plus overrides) gives every other setting.

    out_dir: records (JSON) and figures, committed with BENCHMARKS.md.
    data_dir: artifacts, one workspace per target (never committed).
    """

    params: Params
    out_dir: Path = Path("benchmarks/quality")
    data_dir: Path = Path("data/bench")
    targets: tuple[str, ...] = TARGETS
    budgets: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1)
    methods: tuple[str, ...] = SWEEP_METHODS
    other_methods: tuple[str, ...] = OTHER_METHODS
    seeds: tuple[int, ...] = (0, 1, 2)
    ablation_target: str = "airline_sentiment"
    ablation_budgets: tuple[float, ...] = BAR_BUDGETS
    grid: tuple[TSDSSetting, ...] = field(default_factory=default_grid)
    transformer_budgets: tuple[float, ...] = BAR_BUDGETS
    transformer_methods: tuple[str, ...] = ("tsds", "random")
    transformer_seeds: tuple[int, ...] = (0,)  # a fine-tune costs minutes on 2 cores

    def target_params(self, target: str, overrides: dict | None = None) -> Params:
        """self.params for `target` without MLflow, with dotted keys replaced, validated."""
        raw = self.params.model_dump(mode="json")
        raw["data"]["target"] = target
        raw["track"]["enabled"] = False
        for dotted, value in (overrides or {}).items():
            *sections, name = dotted.split(".")
            node = raw
            for section in sections:
                node = node[section]
            node[name] = value
        return validate_params(raw, "bench parameters")

    def workspace(self, params: Params) -> stages.Workspace:
        """The target's workspace under data_dir, prepared, embedded and indexed (each stage runs;
        the texts' vectors come from the embedding cache once computed)."""
        ws = stages.Workspace(self.data_dir / params.data.target)
        stages.prepare(params.data, ws)
        stages.embed(params.embed, ws)
        stages.index(params.index, ws)
        return ws

    def run_all(self, params: Params, ws: stages.Workspace, out: Path) -> list[dict]:
        """Select, train and evaluate every run of params.select; report into `out`."""
        # A method that uses no budget (the full pool) trains on the same set at every budget, and
        # the head trainer has no randomness: one run says it all.
        first = (params.select.budgets[0], params.select.seeds[0])
        runs = [r for r in stages.plan_runs(params.select)
                if not (not spec(r.method).uses_budget and params.finetune.trainer == "head" and (r.budget, r.seed) != first)]
        reused = {"tsds": with_filter(PlanOnceTSDS(**params.select.tsds.model_dump(exclude={"preset"})), "tsds", params.select)}
        if "auto" in params.select.methods:  # like tsds, auto keeps its plans and n-grams between runs
            reused["auto"] = make_selector("auto", params.select, params.finetune)
        run_plan = plan.RunPlan(params, ws, out, tuple(runs), dvc_root=None)
        for stage, run in run_plan.steps():
            if stage == "select":
                log.info("[%d/%d] %s %s", runs.index(run) + 1, len(runs), params.data.target, run.slug)
            plan.run_stage(run_plan, stage, run, selector=reused.get(run.method) if stage == "select" else None)
        return plan.report(run_plan)

    def _sweep_params(self, target: str, methods: tuple[str, ...]) -> Params:
        return self.target_params(target, {
            "select.methods": list(methods), "select.budgets": list(self.budgets),
            "select.seeds": list(self.seeds), "finetune.trainer": "head",
        })

    def sweep(self) -> None:
        for target in self.targets:
            params = self._sweep_params(target, self.methods)
            ws = self.workspace(params)
            out = self.out_dir / "sweep" / target
            self.run_all(params, ws, out)
            for method in ("tsds", "random"):  # the confusion matrices the section shows
                run = stages.Run(method, 0.05, self.seeds[0])
                if (ws.evaluation(run) / "confusion.png").is_file():
                    shutil.copyfile(ws.evaluation(run) / "confusion.png",
                                    self.out_dir / f"confusion_{target}_{run.slug}.png")
            benchmark = Benchmark.load(ws.prepared)
            write_json(out / "benchmark.json", {
                "pool": len(benchmark.pool), "query": len(benchmark.query), "test": len(benchmark.test),
                "labels": benchmark.target_labels,
            })

    def methods_part(self) -> None:
        """The other selectors over the sweep's targets, budgets and seeds, into out_dir/methods; the
        records of runs not made again (other methods, budgets or seeds) are kept."""
        for target in self.targets:
            params = self._sweep_params(target, self.other_methods)
            out = self.out_dir / "methods" / target
            earlier = read_json(out / "results.json") if (out / "results.json").is_file() else []
            records = self.run_all(params, self.workspace(params), out)
            made = {(r["method"], r["budget"], r["seed"]) for r in records}
            write_json(out / "results.json", [r for r in earlier if (r["method"], r["budget"], r["seed"]) not in made] + records)

    def ablation(self) -> None:
        base = self.target_params(self.ablation_target)
        ws = self.workspace(base)
        for setting in self.grid:
            params = self.target_params(self.ablation_target, {
                "select.methods": ["tsds"], "select.budgets": list(self.ablation_budgets),
                "select.seeds": list(self.seeds), "select.tsds.alpha": setting.alpha,
                "select.tsds.sigma": setting.sigma, "select.tsds.C": setting.C,
                "select.tsds.replace": setting.replace, "finetune.trainer": "head",
            })
            runs_ws = stages.Workspace(ws.root, runs_root=self.data_dir / "ablation" / setting.slug)
            out = self.out_dir / "ablation" / setting.slug
            self.run_all(params, runs_ws, out)
            write_json(out / "setting.json", setting.__dict__)

    def transformer(self) -> None:
        params = self.target_params(self.ablation_target, {
            "select.methods": list(self.transformer_methods), "select.budgets": list(self.transformer_budgets),
            "select.seeds": list(self.transformer_seeds), "finetune.trainer": "transformer",
        })
        ws = self.workspace(params)
        runs_ws = stages.Workspace(ws.root, runs_root=self.data_dir / "transformer")
        out = self.out_dir / "transformer"
        self.run_all(params, runs_ws, out)
        write_json(out / "settings.json", params.finetune.transformer.model_dump(mode="json"))

    def _part_key(self, part: str) -> str:
        """The part's row in bench.json: a run over some of the targets, or of some of the methods,
        gets its own row, so running the others later keeps both wall times."""
        some = []
        if part in ("sweep", "methods") and set(self.targets) != set(TARGETS):
            some.append(", ".join(self.targets))
        if part == "methods" and set(self.other_methods) != set(OTHER_METHODS):
            some.append(", ".join(self.other_methods))
        return f"{part} ({'; '.join(some)})" if some else part

    def run(self, parts: tuple[str, ...] = PARTS) -> dict:
        """Run `parts` in order; record their wall times and the machine in out_dir/bench.json."""
        meta_path = self.out_dir / "bench.json"
        meta = read_json(meta_path) if meta_path.is_file() else {}
        meta["machine"] = machine()
        meta.setdefault("parts", {})
        for part in parts:
            measured = stopwatch()
            getattr(self, "methods_part" if part == "methods" else part)()
            meta["parts"][self._part_key(part)] = {**measured(), "finished": time.strftime("%Y-%m-%d %H:%M")}
            write_json(meta_path, meta)
        return meta


def stopwatch():
    """Start timing; calling the result gives the wall seconds since and the 1-minute load
    average before and after (the machine's load is part of what a timing means)."""
    load_before, started = os.getloadavg()[0], time.perf_counter()
    return lambda: {"seconds": round(time.perf_counter() - started, 1), "load_before": round(load_before, 2),
                    "load_after": round(os.getloadavg()[0], 2)}


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(memory), "python": sys.version.split()[0],
            "os": platform.platform(terse=True)}


# ---- rendering ---------------------------------------------------------------------------------


def _summary(part_dir: Path) -> list[dict]:
    """report.summarize of the run records in part_dir/results.json, as dicts."""
    return summarize(read_json(part_dir / "results.json")).to_dict("records")


def _mean_std(row: dict | None, name: str = "f1_macro") -> str:
    if row is None:
        return "-"
    return f"{row[name]:.3f} ± {row[f'{name}_std']:.3f}"


def _on_task(row: dict | None) -> str:
    return "-" if row is None else f"{row['n_on_task']:,.0f} ({row['target_share']:.0%})"


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s" if seconds >= 60 else f"{seconds:.0f} s"


def _find(summary: list[dict], method: str, budget: float | None = None) -> dict | None:
    return next((r for r in summary if r["method"] == method and (budget is None or r["budget"] == budget)), None)


def budget_reaching(summary: list[dict], share: float = 0.95) -> float | None:
    """Smallest budget at which TSDS's mean macro-F1 reaches `share` of the full pool's, or None."""
    full = _find(summary, "full")
    if full is None:
        return None
    reached = [r["budget"] for r in summary if r["method"] == "tsds" and r["f1_macro"] >= share * full["f1_macro"]]
    return min(reached) if reached else None


def deltas(summary: list[dict], budgets=BAR_BUDGETS) -> dict[float, float | None]:
    """TSDS minus random mean macro-F1 in points (x100) at each budget."""
    out = {}
    for b in budgets:
        tsds, rand = _find(summary, "tsds", b), _find(summary, "random", b)
        out[b] = None if tsds is None or rand is None else 100 * (tsds["f1_macro"] - rand["f1_macro"])
    return out


def _ci_half_width(records: list[dict]) -> float:
    return float(np.mean([(r["f1_macro_ci"][1] - r["f1_macro_ci"][0]) / 2 for r in records]))


def render(out_dir: Path, markdown_dir: Path) -> str:
    """The generated part of the section, from the JSON files under out_dir; redraws the
    F1-versus-budget figures from the same files."""
    out_dir = Path(out_dir)
    rel = Path(os.path.relpath(out_dir, markdown_dir))
    meta = read_json(out_dir / "bench.json")
    m = meta["machine"]
    lines = [
        f"Regenerate with `taskselect bench` (all four parts; `--part sweep|methods|ablation|transformer` "
        f"reruns one). Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, no GPU, "
        f"Python {m['python']}.",
        "",
        "| part | wall time | load average before / after | finished |",
        "|---|---|---|---|",
    ]
    total = 0.0
    for part, info in meta["parts"].items():
        total += info["seconds"]
        lines.append(f"| {part} | {_minutes(info['seconds'])} | {info['load_before']} / {info['load_after']} | {info['finished']} |")
    lines += [f"| **all** | **{_minutes(total)}** | | |", "",
              "Load above 2 means other work shared the 2 cores: F1 values are unaffected, wall times are longer "
              "than on a quiet machine. Embeddings come from the content cache when present; a cold cache adds "
              "about 5 minutes of embedding per target.", ""]
    if (out_dir / "sweep").is_dir():
        lines += _render_sweep(out_dir, rel)
    if (out_dir / "methods").is_dir():
        lines += _render_methods(out_dir)
    if (out_dir / "ablation").is_dir():
        lines += _render_ablation(out_dir)
    if (out_dir / "transformer").is_dir():
        lines += _render_transformer(out_dir)
    return "\n".join(lines).rstrip() + "\n"


def _render_sweep(out_dir: Path, rel: Path) -> list[str]:
    targets = [t for t in TARGETS if (out_dir / "sweep" / t / "results.json").is_file()]
    loaded = {t: (_summary(out_dir / "sweep" / t), read_json(out_dir / "sweep" / t / "results.json"),
                  read_json(out_dir / "sweep" / t / "benchmark.json")) for t in targets}
    seeds = sorted({r["seed"] for t in targets for r in loaded[t][1]})
    lines = [
        "### TSDS against random and the full pool (head trainer)",
        "",
        f"Macro-F1 on each target's test set, mean ± standard deviation over seeds {seeds} (the seed "
        "drives both the selection and the training). Trainer: logistic regression on frozen MiniLM "
        "embeddings. Budgets are shares of the pool; random draws the same number of distinct rows.",
        "",
        f"Bar: TSDS beats random by at least {BAR_POINTS:g} macro-F1 points at "
        f"{' and '.join(budget_label(b) for b in BAR_BUDGETS)} on at least 3 of the 4 targets.",
        "",
        "| target | test rows | labels | TSDS − random at " + " | TSDS − random at ".join(budget_label(b) for b in BAR_BUDGETS)
        + " | bar | full pool | smallest budget where TSDS ≥ 95% of full |",
        "|---|---|---|" + "---|" * len(BAR_BUDGETS) + "---|---|---|",
    ]
    passed = 0
    for t in targets:
        summary, _, bench = loaded[t]
        d = deltas(summary)
        ok = all(v is not None and v >= BAR_POINTS for v in d.values())
        passed += ok
        reach = budget_reaching(summary)
        full = _find(summary, "full")
        lines.append(
            f"| {t} | {bench['test']:,} | {len(bench['labels'])} | "
            + " | ".join("-" if v is None else f"{v:+.1f}" for v in d.values())
            + f" | {'met' if ok else '**not met**'} | {_mean_std(full)} | "
            + (budget_label(reach) if reach is not None else f"not reached by {budget_label(max(r['budget'] for r in summary if spec(r['method']).uses_budget))}")
            + " |"
        )
    lines += ["", f"The bar is met on **{passed} of {len(targets)}** targets.", ""]
    for t in targets:
        summary, records, bench = loaded[t]
        plot_f1_vs_budget(pd.DataFrame(summary), bench["pool"], out_dir / f"f1_vs_budget_{t}.png",
                          title=f"{t}: head trainer, mean ± std over seeds {seeds}")
        lines += [
            f"#### {t}",
            "",
            f"Pool {bench['pool']:,} rows, query {bench['query']}, test {bench['test']:,} rows, "
            f"{len(bench['labels'])} labels. A single run's bootstrap 95% interval of macro-F1 is "
            f"± {100 * _ci_half_width(records):.1f} points on average (test rows resampled).",
            "",
            "| budget | rows | TSDS | random | TSDS − random | on-task rows: TSDS | on-task rows: random |",
            "|---|---|---|---|---|---|---|",
        ]
        for b in sorted({r["budget"] for r in summary if spec(r["method"]).uses_budget}):
            tsds, rand = _find(summary, "tsds", b), _find(summary, "random", b)
            gap = "-" if tsds is None or rand is None else f"{100 * (tsds['f1_macro'] - rand['f1_macro']):+.1f}"
            rows = (tsds or rand)["n_selected"]
            lines.append(f"| {budget_label(b)} | {rows:,.0f} | {_mean_std(tsds)} | {_mean_std(rand)} | {gap} | {_on_task(tsds)} | {_on_task(rand)} |")
        lines.append("")
        full = _find(summary, "full")
        if full is not None:
            runs = full["seeds"]
            lines += [f"Full pool ({full['n_selected']:,.0f} rows, {full['n_on_task']:,.0f} of them on-task, "
                      f"{full['target_share']:.0%}): macro-F1 {_mean_std(full)}"
                      + (" (one run: the head trainer on the full pool has no randomness)." if runs == 1 else f" over {runs} seeds."), ""]
        lines += [f"![macro-F1 against budget, {t}]({rel / f'f1_vs_budget_{t}.png'})", ""]
        confusions = [f"[{m} 5%, seed {seeds[0]}]({rel / f'confusion_{t}_{m}-0.05-{seeds[0]}.png'})"
                      for m in ("tsds", "random") if (out_dir / f"confusion_{t}_{m}-0.05-{seeds[0]}.png").is_file()]
        if confusions:
            lines += ["Confusion matrices: " + ", ".join(confusions) + ".", ""]
    return lines


def _render_methods(out_dir: Path) -> list[str]:
    """Per target: macro-F1 of every selector at every budget, and its mean selection wall time."""
    targets = [t for t in TARGETS if (out_dir / "methods" / t / "results.json").is_file()]
    if not targets:
        return []
    lines = [
        "### Every selector (head trainer)",
        "",
        "Macro-F1, mean ± std over seeds, at the sweep's budgets; the selectors from the literature "
        "(`methods` part) beside the sweep's TSDS, random and full pool. Select time: mean wall time of "
        "one selection (s), neighbour search included; TSDS computes its neighbour search and densities "
        "once per target and reuses them for every budget and seed, so its mean spreads that cost over "
        "the runs. The full pool is one training set whatever the budget.",
        "",
    ]
    for t in targets:
        records = read_json(out_dir / "methods" / t / "results.json")
        if (out_dir / "sweep" / t / "results.json").is_file():
            records = read_json(out_dir / "sweep" / t / "results.json") + records
        summary = summarize(records).to_dict("records")
        budgets = sorted({r["budget"] for r in summary if spec(r["method"]).uses_budget})
        seeds = sorted({r["seed"] for r in records})
        lines += [
            f"#### {t}: every selector, seeds {seeds}",
            "",
            "| method | " + " | ".join(budget_label(b) for b in budgets) + " | on-task share (mean) | select time |",
            "|---|" + "---|" * len(budgets) + "---|---|",
        ]
        for method in [m for m in methods() if any(r["method"] == m for r in records)]:
            rows = [r for r in records if r["method"] == method]
            cells = [_mean_std(_find(summary, method, b if spec(method).uses_budget else None)) for b in budgets]
            share = np.mean([r["target_share"] for r in rows])
            lines.append(f"| {method} | " + " | ".join(cells)
                         + f" | {share:.0%} | {np.mean([r['select_seconds'] for r in rows]):.1f} s |")
        lines += ["", *_raised_k(records, read_json(out_dir / "methods" / t / "run.json")["params"]["select"]),
                  *_influence_spearman(records)]
    if (out_dir / "dsir_agreement.json").is_file():
        lines += _render_dsir_agreement(read_json(out_dir / "dsir_agreement.json"))
    return lines


def _raised_k(records: list[dict], select: dict) -> list[str]:
    """A sentence naming the KNN-density runs that had to reach beyond their configured k."""
    raised = set()
    for r in records:
        configured = select.get(r["method"].replace("-", "_"), {}).get("k")
        if configured is not None and r["select_info"].get("k", configured) > configured:
            raised.add((r["method"], configured, r["select_info"]["k"], r["budget"]))
    if not raised:
        return []
    return ["The queries' k nearest rows held fewer distinct rows than the budget, so k was raised: " + "; ".join(
        f"{method} {k} -> {reached} at {budget_label(b)}" for method, k, reached, b in sorted(raised)) + ".", ""]


def _influence_spearman(records: list[dict]) -> list[str]:
    """A sentence with MATES's influence model's Spearman correlation on held-out probes per budget."""
    by_budget: dict[float, list[float]] = {}
    for r in records:
        if r["method"] == "mates" and r["select_info"].get("spearman") is not None:
            by_budget.setdefault(r["budget"], []).append(r["select_info"]["spearman"])
    if not by_budget:
        return []
    return ["mates: its influence model's Spearman correlation with the oracle on held-out probes (mean over "
            "rounds, then mean ± std over seeds): " + "; ".join(
                f"{np.mean(v):.3f} ± {np.std(v):.3f} at {budget_label(b)}" for b, v in sorted(by_budget.items())) + ".", ""]


def _render_dsir_agreement(found: dict) -> list[str]:
    """The table of benchmarks/dsir_agreement.py: DSIR here against the data-selection package."""
    lines = [
        "#### DSIR against the data-selection package",
        "",
        f"`PYTHONPATH=. python benchmarks/dsir_agreement.py`: both on the default benchmark's pool "
        f"({found['pool']:,} rows) and query set ({found['query']}), unigrams and bigrams hashed into 10,000 "
        f"buckets; selections of {found['size']:,} rows (seed {found['seed']}).",
        "",
        "| our weights | Spearman correlation with the package's | top-k overlap | Gumbel sample overlap "
        "| on-task share of the sample: ours / the package's |",
        "|---|---|---|---|---|",
    ]
    for r in found["results"]:
        lines.append(f"| {r['variant']} | {r['spearman']:.4f} | {r['top_k_overlap']:.1%} | {r['sample_overlap']:.1%} "
                     f"| {r['on_task']:.0%} / {r['package_on_task']:.0%} |")
    return lines + ["", "The features agree exactly; the smoothing differs by design: the package gives every "
                        "n-gram the 100 query texts never use a target probability of 1e-8 (log -18.4), so a "
                        "row's weight mostly counts its n-grams unseen in the queries (long texts lose); a "
                        "pseudo-count of 1 per bucket bounds that cost.", ""]


def _render_ablation(out_dir: Path) -> list[str]:
    settings = []
    for path in sorted((out_dir / "ablation").glob("*/results.json")):
        setting = read_json(path.parent / "setting.json")
        settings.append((setting, _summary(path.parent), read_json(path)))
    if not settings:
        return []
    budgets = sorted({r["budget"] for _, s, _ in settings for r in s})
    target_summary = None
    sweep = out_dir / "sweep" / "airline_sentiment"
    if (sweep / "results.json").is_file():
        target_summary = _summary(sweep)
    lines = [
        "### TSDS ablation on airline_sentiment (head trainer)",
        "",
        f"Macro-F1, mean ± std over seeds {sorted({r['seed'] for _, _, rs in settings for r in rs})}. "
        "alpha_eff: the alpha actually used (lowered automatically when alpha's distribution has fewer "
        "non-zero rows than the budget without replacement); distinct / on-task: distinct rows selected "
        "and the share of the selection that carries a target label.",
        "",
        "| alpha | sigma | C | replace | " + " | ".join(f"macro-F1 {budget_label(b)} | alpha_eff {budget_label(b)} | distinct / on-task {budget_label(b)}" for b in budgets) + " | mean |",
        "|---|---|---|---|" + "---|---|---|" * len(budgets) + "---|",
    ]
    scored = []
    for setting, summary, records in settings:
        cells, means = [], []
        for b in budgets:
            row = _find(summary, "tsds", b)
            alphas = [r["select_info"]["alpha_effective"] for r in records if r["budget"] == b]
            cells += [_mean_std(row), f"{np.mean(alphas):.3g}" if alphas else "-",
                      f"{row['n_unique']:.0f} / {row['target_share']:.0%}"]
            means.append(row["f1_macro"])
        scored.append((float(np.mean(means)), setting, cells))
    best = max(scored, key=lambda s: s[0])
    for mean, setting, cells in sorted(scored, key=lambda s: (s[1]["replace"], s[1]["C"] != 1.0, s[1]["sigma"], s[1]["alpha"])):
        mark = "**" if mean == best[0] else ""
        lines.append(f"| {setting['alpha']:g} | {setting['sigma']:g} | {setting['C']:g} | {str(setting['replace']).lower()} | "
                     + " | ".join(cells) + f" | {mark}{mean:.3f}{mark} |")
    if target_summary is not None:
        rand = [_find(target_summary, "random", b) for b in budgets]
        if all(rand):
            lines.append("| random | | | | " + " | ".join(f"{_mean_std(r)} | | " for r in rand) + f" | {np.mean([r['f1_macro'] for r in rand]):.3f} |")
    lines += ["", f"Best mean over the budgets: alpha {best[1]['alpha']:g}, sigma {best[1]['sigma']:g}, "
                  f"C {best[1]['C']:g}, replace {str(best[1]['replace']).lower()} ({best[0]:.3f}).", ""]
    return lines


def _render_transformer(out_dir: Path) -> list[str]:
    records = read_json(out_dir / "transformer" / "results.json")
    summary = _summary(out_dir / "transformer")
    settings = read_json(out_dir / "transformer" / "settings.json")
    seeds = sorted({r["seed"] for r in records})
    lines = [
        "### Fine-tuning MiniLM (transformer trainer) on airline_sentiment",
        "",
        f"Settings: {', '.join(f'{k} {v}' for k, v in settings.items() if k != 'model')} "
        f"(backbone {settings['model']}, mean pooling, linear head; early stopping on "
        f"validation loss over {settings['val_fraction']:.0%} of the selected texts). Macro-F1 mean ± std "
        f"over seeds {seeds}; wall times are per run, mean over seeds.",
        "",
        "| method | budget | rows | macro-F1 | accuracy | fine-tune time | test prediction time |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in sorted(summary, key=lambda r: (r["budget"], r["method"])):
        rs = [r for r in records if r["method"] == row["method"] and r["budget"] == row["budget"]]
        lines.append(
            f"| {row['method']} | {row['budget_label']} | {row['n_selected']:,.0f} | {_mean_std(row)} | "
            f"{_mean_std(row, 'accuracy')} | {_minutes(np.mean([r['finetune_seconds'] for r in rs]))} | "
            f"{_minutes(np.mean([r['evaluate_seconds'] for r in rs]))} |"
        )
    head = out_dir / "sweep" / "airline_sentiment"
    if (head / "results.json").is_file():
        head_summary = _summary(head)
        lines += ["", "Head trainer at the same budgets, for comparison: " + "; ".join(
            f"{m} {budget_label(b)} {_mean_std(_find(head_summary, m, b))}"
            for b in sorted({r['budget'] for r in summary}) for m in ("tsds", "random") if _find(head_summary, m, b)
        ) + "."]
    return lines + [""]


def write_section(markdown: Path, body: str) -> None:
    """Put `body` between the markers of the Selection quality section of `markdown`.

    Creates the file or the section when missing; text outside the markers is kept.
    """
    markdown = Path(markdown)
    text = markdown.read_text() if markdown.is_file() else "# Benchmarks\n"
    block = f"{BEGIN}\n{body}{END}"
    if BEGIN in text and END in text:
        start, end = text.index(BEGIN), text.index(END) + len(END)
        text = text[:start] + block + text[end:]
    elif SECTION in text:
        raise TaskselectError(f"{markdown}: has a '{SECTION}' section without the bench markers; add them or remove it")
    else:
        text = text.rstrip("\n") + f"\n\n{SECTION}\n\n{block}\n"
    with atomic_path(markdown) as tmp:
        tmp.write_text(text)
