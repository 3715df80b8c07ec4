"""The `taskselect` command: the whole pipeline (`run`) or one stage at a time (for DVC)."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from taskselect.config import TARGETS, Params, dump_params, load_params, validate_params
from taskselect.environment import configure
from taskselect.errors import TaskselectError
from taskselect.lock import workspace_lock
from taskselect.selectors import methods as registered_methods, spec
from taskselect.selectors.tsds import TSDSParams

app = typer.Typer(
    help="Select the training data for one task from a large pool, fine-tune on it, prove it with F1.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
)
# Logs and CI capture stdout: keep tables whole there instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True, soft_wrap=True)  # error lines and notes, one line each

ParamsFile = Annotated[Optional[Path], typer.Option("--params", "-p", help="Parameters file [default: ./params.yaml].")]
Overrides = Annotated[Optional[list[str]], typer.Option("--set", "-S", help="Override a parameter: KEY=VALUE, e.g. select.tsds.alpha=0.5.")]
DataDir = Annotated[Path, typer.Option("--data-dir", help="Root of the artifacts.")]
OutDir = Annotated[Optional[Path], typer.Option("--out", help="Where results.json and metrics.json go [default: DATA_DIR/results].")]
ResultsDir = Annotated[Optional[Path], typer.Option("--out", help="The finished run's results (run.json, results.json) [default: DATA_DIR/results].")]
Target = Annotated[Optional[str], typer.Option(help=f"Benchmark target: {', '.join(TARGETS)}.")]
Pool = Annotated[Optional[Path], typer.Option(help="Your pool file (CSV, TSV, JSONL, JSON or Parquet) with text and label columns; without a label column, selection only (no --test).")]
Query = Annotated[Optional[Path], typer.Option(help="Your query file: examples of the task.")]
Test = Annotated[Optional[Path], typer.Option(help="Your test file: scored with macro-F1 (none for an unlabelled pool).")]
Method = Annotated[Optional[str], typer.Option(help=f"Only this method: {', '.join(registered_methods())} [default: all in params].")]
Budget = Annotated[Optional[str], typer.Option(help="Only this budget: a row count or a fraction of the pool.")]
Seed = Annotated[Optional[int], typer.Option(help="Only this seed.")]
TrackingUri = Annotated[Optional[str], typer.Option(help="MLflow tracking URI [default: the run's, $MLFLOW_TRACKING_URI, sqlite:///mlflow.db].")]


def _params(params_file: Path | None, overrides: list[str] | None, **shortcuts) -> Params:
    """params.yaml, then shortcut options, then -S overrides (last wins)."""
    return load_params(params_file, _overrides(overrides, **shortcuts))


def _overrides(overrides: list[str] | None, **shortcuts) -> list[str]:
    """The KEY=VALUE overrides the shortcut options stand for, then the -S ones. The data options
    (--target, --pool, --query, --test) describe the run's data whole: a file they leave out is
    none, not the one params.yaml kept from an earlier run (which would score another test set)."""
    named = {
        "target": "data.target", "pool": "data.pool", "query": "data.query", "test": "data.test",
        "methods": "select.methods", "budgets": "select.budgets", "seeds": "select.seeds",
        "trainer": "finetune.trainer",
    }
    given = [name for name in ("target", "pool", "query", "test") if shortcuts.get(name) is not None]
    if "target" in given and len(given) > 1:
        raise TaskselectError(f"--target with --{given[1]}: a run takes a packaged target or your own files, not both")
    extra = [f"data.{name}=" for name in ("pool", "query", "test") if given and name not in given]
    for name, value in shortcuts.items():
        if value is None:
            continue
        if name == "budgets":
            value = json.dumps(_budgets(value))
        elif name == "seeds":
            value = json.dumps(_seeds(value))
        elif name == "methods":
            if unknown := [item.strip() for item in value.split(",") if item.strip() not in registered_methods()]:
                raise TaskselectError(f"--methods {unknown[0]!r}: expected one of {', '.join(registered_methods())}")
            value = "[" + value + "]"
        extra.append(f"{named[name]}={value}")
    return extra + list(overrides or [])


def _runs(params: Params, method: str | None, budget: str | None, seed: int | None, data_dir: Path):
    """The runs a stage command makes (its --method/--budget/--seed within params), once the
    parameters and options are checked against the prepared data."""
    from taskselect.stages import Run, plan_runs
    from taskselect.validate import check_stage, parse_budget

    if method is not None and method not in registered_methods():
        raise TaskselectError(f"--method {method!r}: expected one of {', '.join(registered_methods())}")
    wanted_budget = parse_budget(budget) if budget is not None else None
    check_stage(params, data_dir, budgets=None if wanted_budget is None else [wanted_budget])
    if method is not None and budget is not None and seed is not None:
        runs = [Run(method, wanted_budget, seed)]  # DVC's matrix names every run
    else:
        runs = [
            r for r in plan_runs(params.select)
            if (method is None or r.method == method)
            and (wanted_budget is None or r.budget == wanted_budget)
            and (seed is None or r.seed == seed)
        ]
    if not runs:
        raise TaskselectError(f"no run matches method={method} budget={budget} seed={seed} in select parameters")
    return runs


def _run_steps(stage: str, params: Params, data_dir: Path, method: str | None, budget: str | None,
               seed: int | None) -> None:
    """`stage` for each chosen run of the plan (what DVC's matrix stages call, one run each)."""
    from taskselect import plan

    _log_to_console()
    chosen = plan.plan_run(params, data_dir, runs=_runs(params, method, budget, seed, data_dir))
    with workspace_lock(data_dir):
        for run in chosen.runs:
            plan.run_stage(chosen, stage, run)


def _log_to_console() -> None:
    """Rich log lines on a terminal; plain unwrapped lines in files and CI logs."""
    if sys.stderr.isatty():
        logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler(show_path=False)])
    else:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def print_results(records: list[dict]) -> None:
    """The comparison table: one row per run, best macro-F1 first within each budget; with
    several seeds, also their mean and standard deviation per method and budget. Runs on an
    unlabelled pool were not scored: a table of what was selected, and the note why."""
    if any("skipped" in r for r in records):
        from taskselect.report import selection_rows, summarize_selections

        table = Table(title="selections (no macro-F1)", caption=records[0]["skipped"])
        rows = selection_rows(summarize_selections(records))
        for column in rows[0]:
            table.add_column(column, justify="left" if column == "method" else "right")
        for row in rows:
            table.add_row(*row.values())
        console.print(table)
        return
    from taskselect.report import auto_choices, level, summarize, verdicts  # pandas: not at start-up (select-embeddings does without)

    interval = f"{level(records[0]['confidence'])} CI"  # evaluate.confidence
    table = Table(title="macro-F1 on the target test set",
                  caption=f"on-task: selected rows with a target label; {interval}: bootstrap over test rows (within each label)")
    for column in ("method", "budget", "seed", "selected", "distinct", "on-task", "macro-F1", interval, "accuracy"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for r in sorted(records, key=lambda r: (r["budget"], not spec(r["method"]).uses_budget, -r["f1_macro"], r["seed"])):
        low, high = r["f1_macro_ci"]
        table.add_row(
            r["method"], r["budget_label"], str(r["seed"]),
            str(r["n_selected"]), str(r["n_unique"]), f"{r['n_on_task']} ({r['target_share']:.0%})",
            f"{r['f1_macro']:.4f}", f"{low:.3f}-{high:.3f}", f"{r['accuracy']:.4f}",
        )
    console.print(table)
    for line in verdicts(records) + auto_choices(records):
        console.print(line, soft_wrap=True, markup=False, highlight=False)
    summary = summarize(records)
    if (summary["seeds"] > 1).any():
        print_comparison(summary, "mean ± standard deviation over seeds")


def print_comparison(summary, title: str) -> None:
    """report.comparison_rows as a table: macro-F1 mean ± std per method and budget, deltas."""
    from taskselect.report import comparison_caption, comparison_rows

    rows = comparison_rows(summary)
    table = Table(title=title)
    for column in rows[0]:
        table.add_column(column, justify="left" if column == "method" else "right")
    for row in rows:
        table.add_row(*row.values())
    console.print(table)
    if caption := comparison_caption(summary):
        console.print(caption, soft_wrap=True, markup=False, highlight=False)


@app.command("params")
def show_params(params_file: ParamsFile = None, overrides: Overrides = None) -> None:
    """Print the parameters a run would use (params.yaml plus overrides)."""
    console.print(dump_params(_params(params_file, overrides)), end="", markup=False, highlight=False)


@app.command()
def prepare(params_file: ParamsFile = None, overrides: Overrides = None, data_dir: DataDir = Path("data"),
            target: Target = None, pool: Pool = None, query: Query = None, test: Test = None) -> None:
    """Build the benchmark (or read your pool/query/test files) into DATA_DIR/prepared."""
    from taskselect import stages
    from taskselect.validate import check_params, check_writable_dir

    _log_to_console()
    params = _params(params_file, overrides, target=target, pool=pool, query=query, test=test)
    check_params(params)
    check_writable_dir(data_dir, "--data-dir")
    # the budgets are checked against the pool prepare builds, before it replaces the last one
    with workspace_lock(data_dir):
        stages.prepare(params.data, stages.Workspace(data_dir), select=params.select)


@app.command()
def embed(params_file: ParamsFile = None, overrides: Overrides = None, data_dir: DataDir = Path("data")) -> None:
    """Embed pool, query and test texts (cached by content)."""
    from taskselect import stages
    from taskselect.validate import check_stage

    _log_to_console()
    params = _params(params_file, overrides)
    check_stage(params, data_dir)
    with workspace_lock(data_dir):
        stages.embed(params.embed, stages.Workspace(data_dir))


@app.command()
def index(params_file: ParamsFile = None, overrides: Overrides = None, data_dir: DataDir = Path("data")) -> None:
    """Index the pool embeddings with faiss."""
    from taskselect import stages
    from taskselect.validate import check_stage

    _log_to_console()
    params = _params(params_file, overrides)
    check_stage(params, data_dir)
    with workspace_lock(data_dir):
        stages.index(params.index, stages.Workspace(data_dir))


@app.command()
def select(params_file: ParamsFile = None, overrides: Overrides = None, data_dir: DataDir = Path("data"),
           method: Method = None, budget: Budget = None, seed: Seed = None) -> None:
    """Select training rows for each (method, budget, seed)."""
    _run_steps("select", _params(params_file, overrides), data_dir, method, budget, seed)


@app.command()
def finetune(params_file: ParamsFile = None, overrides: Overrides = None, data_dir: DataDir = Path("data"),
             method: Method = None, budget: Budget = None, seed: Seed = None) -> None:
    """Train a model on each selection."""
    _run_steps("finetune", _params(params_file, overrides), data_dir, method, budget, seed)


@app.command()
def evaluate(params_file: ParamsFile = None, overrides: Overrides = None, data_dir: DataDir = Path("data"),
             method: Method = None, budget: Budget = None, seed: Seed = None) -> None:
    """Score each model with macro-F1 on the target test set."""
    _run_steps("evaluate", _params(params_file, overrides), data_dir, method, budget, seed)


@app.command()
def report(params_file: ParamsFile = None, overrides: Overrides = None, data_dir: DataDir = Path("data"),
           out: OutDir = None) -> None:
    """Collect every run's scores into OUT (results.json, metrics, plot), print the table, log to MLflow."""
    from taskselect import plan
    from taskselect.validate import check_stage, check_writable_dir

    _log_to_console()
    params, out = _params(params_file, overrides), plan.results_dir(data_dir, out)
    check_stage(params, data_dir)
    check_writable_dir(out, "--out")
    run = plan.plan_run(params, data_dir, out)
    with workspace_lock(data_dir):
        records = plan.report(run)
    print_results(records)
    plan.record(run)


@app.command()
def track(data_dir: DataDir = Path("data"), out: ResultsDir = None, tracking_uri: TrackingUri = None) -> None:
    """Log a finished run (its files in DATA_DIR and OUT) to MLflow: e.g. after the server was down."""
    from taskselect import tracking
    from taskselect.plan import results_dir

    _log_to_console()
    run_id = tracking.log_pipeline(data_dir, results_dir(data_dir, out), uri=tracking_uri)
    console.print(f"logged: parent run {run_id}")


@app.command()
def compare(
    params_file: ParamsFile = None, overrides: Overrides = None,
    experiment: Annotated[Optional[str], typer.Option(help="MLflow experiment [default: that of the last run in DATA_DIR, else of params.yaml: taskselect-<target>].")] = None,
    parent: Annotated[Optional[str], typer.Option(help="Parent (pipeline) run id [default: the latest].")] = None,
    all_runs: Annotated[bool, typer.Option("--all", help="Pool the selection runs of every pipeline run.")] = False,
    filter_string: Annotated[str, typer.Option("--filter", help="MLflow filter on the selection runs, e.g. \"params.`select.tsds.alpha` = '0.5'\".")] = "",
    fmt: Annotated[str, typer.Option("--format", help="table, csv, markdown or json.")] = "table",
    tracking_uri: TrackingUri = None,
    data_dir: DataDir = Path("data"),
    out: ResultsDir = None,
) -> None:
    """Compare methods from MLflow: macro-F1 mean +- std over seeds per budget, deltas vs random, full and report.against (tsds)."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.search_utils import SearchUtils

    from taskselect import tracking
    from taskselect.plan import results_dir
    from taskselect.report import compared
    if fmt not in ("table", "csv", "markdown", "json"):
        raise TaskselectError(f"--format {fmt!r}: expected table, csv, markdown or json")
    try:
        SearchUtils.parse_search_filter(filter_string)
    except MlflowException as exc:
        raise TaskselectError(f"--filter {filter_string!r}: not an MLflow run filter: {exc.message.splitlines()[0]}") from None
    last_run = results_dir(data_dir, out)
    if params_file is None and not overrides and (last_run / "run.json").is_file():
        # the experiment and store the last run logged to: after `taskselect run --pool ...`, taskselect-custom
        params = tracking.recorded_run(last_run)[1]
        if not params.track.enabled:  # the table is then of an earlier run: said, not left to the run id
            err_console.print(
                f"note: the last run ({last_run / 'run.json'}) was not logged to MLflow (track.enabled false); "
                "compared: the latest run the experiment holds", markup=False, highlight=False)
    else:
        params = _params(params_file, overrides)
    track = params.track.model_copy(update={"tracking_uri": tracking_uri or params.track.tracking_uri})
    experiment = experiment or tracking.experiment_name(params)
    summary, which = tracking.compare(track, experiment, parent, filter_string, all_runs, last_run / "results.json")
    if fmt in ("csv", "json"):  # the numbers, for a program
        references = compared(lambda name: f"delta_{name}" in summary)
        paired = [f"n_{side}_{b}" for b in references for side in ("paired", "above", "below") if f"n_{side}_{b}" in summary]
        shown = summary[["method", "budget_label", "seeds", "f1_macro", "f1_macro_std",
                         *(f"delta_{b}" for b in references), *paired]].rename(columns={"budget_label": "budget"})
        sys.stdout.write(shown.to_csv(index=False, float_format="%.4f") if fmt == "csv"
                         else shown.to_json(orient="records", indent=2) + "\n")
    elif fmt == "markdown":  # for reading: the table's cells, (k/n) explained under it
        import pandas as pd

        from taskselect.report import comparison_caption, comparison_rows

        sys.stdout.write(pd.DataFrame(comparison_rows(summary)).to_markdown(index=False) + "\n")
        if caption := comparison_caption(summary):
            sys.stdout.write(f"\n{caption}\n")
    else:
        print_comparison(summary, f"macro-F1 by method and budget ({experiment})")
        console.print(which, soft_wrap=True, markup=False, highlight=False)


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write: .jsonl, .csv or .parquet.")],
    method: Annotated[Optional[str], typer.Option(help="The selection's method [default: the only one in DATA_DIR].")] = None,
    budget: Annotated[Optional[str], typer.Option(help="Its budget: 0.05, 5% or a row count [default: the only one].")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Its seed [default: the only one].")] = None,
    fmt: Annotated[Optional[str], typer.Option("--format", help="jsonl, csv or parquet [default: from OUT's suffix].")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUT if it exists.")] = False,
    data_dir: DataDir = Path("data"),
) -> None:
    """Write the rows one run selected (text, label, source, count, and the method's probability
    or score) to a dataset file, to train any model on."""
    from taskselect.export import export_selection, find_run
    from taskselect.stages import Workspace

    _log_to_console()
    ws = Workspace(data_dir)
    run = find_run(ws, method, budget, seed)
    rows = export_selection(ws, run, out, fmt, force)
    console.print(f"{out}: {len(rows)} rows of selection {run.slug} ({int(rows['count'].sum())} draws)", highlight=False)


@app.command()
def docs(run_dir: Annotated[Path, typer.Option("--run-dir", help="Directory of the run the captured outputs come from (its data/, mlflow.db).")] = Path("."),
         root: Annotated[Path, typer.Option("--root", help="Project whose README.md and docs/ are rewritten.")] = Path(".")) -> None:
    """Regenerate docs/parameters.md from config.py and every captured command output in
    README.md and docs/*.md (blocks marked `<!-- captured: COMMAND -->`) from the run in RUN_DIR."""
    from taskselect.docs import markdown_files, refresh_captured, write_parameters_reference

    write_parameters_reference(root / "docs" / "parameters.md")
    console.print(f"{root / 'docs' / 'parameters.md'}: written", highlight=False)
    for path in markdown_files(root):
        if path.is_file():
            console.print(f"{path}: {refresh_captured(path, run_dir.resolve())} captured outputs rerun", highlight=False)


_TSDS = TSDSParams.model_fields


@app.command("select-embeddings")
def select_embeddings(
    query: Annotated[Path, typer.Option("--query", help="Query embeddings .npy (M, dim): examples of the task.")],
    candidates: Annotated[Path, typer.Option("--candidates", help="Candidate embeddings .npy (N, dim): the pool.")],
    size: Annotated[int, typer.Option("--size", help="Rows to select.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for indices.npy, probs.npy and selection.json.")],
    alpha: Annotated[float, typer.Option(help=_TSDS["alpha"].description)] = _TSDS["alpha"].default,
    C: Annotated[float, typer.Option("--C", help=_TSDS["C"].description)] = _TSDS["C"].default,
    sigma: Annotated[float, typer.Option(help=_TSDS["sigma"].description)] = _TSDS["sigma"].default,
    max_k: Annotated[Optional[int], typer.Option(
        "--max-k", help=f"{_TSDS['max_k'].description} (default {_TSDS['max_k'].default}, or N if smaller)")] = None,
    kde_k: Annotated[Optional[int], typer.Option(
        "--kde-k", help=f"{_TSDS['kde_k'].description} (default {_TSDS['kde_k'].default}, or N if smaller)")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the draw.")] = 0,
    replace: Annotated[bool, typer.Option("--replace/--no-replace", help=_TSDS["replace"].description)] = _TSDS["replace"].default,
    metric: Annotated[str, typer.Option(help="Distance: l2 or cosine.")] = _TSDS["metric"].default,
    index: Annotated[str, typer.Option(help="Candidate search: flat (exact), ivf or hnsw (approximate, recall logged).")] = "flat",
) -> None:
    """Select SIZE rows of your own candidate embeddings for the task your query embeddings show (TSDS).

    Writes OUT/indices.npy (selected candidate rows, int64), OUT/probs.npy (the selection
    distribution, float64, one per candidate) and OUT/selection.json (what was done).
    """
    from taskselect.index import build_index, unit_rows
    from taskselect.io import atomic_path, read_npy, write_json, write_npy
    from taskselect.selectors import TSDSSelector
    from taskselect.selectors.tsds import check_embeddings
    from taskselect.validate import check_writable_dir

    _log_to_console()
    # The options as select.tsds would hold them: ranges, finite numbers, a known metric.
    options = {"alpha": alpha, "C": C, "sigma": sigma, "metric": metric, "max_k": max_k, "kde_k": kde_k}
    try:
        TSDSParams(**{k: v for k, v in options.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0])
        raise TaskselectError(f"--{name.replace('_', '-')} {options[name]!r}: {err['msg']}") from None
    if index not in ("flat", "ivf", "hnsw"):
        raise TaskselectError(f"--index {index!r}: expected flat, ivf or hnsw")
    check_writable_dir(out, "--out")
    pool = check_embeddings(f"{candidates} (--candidates)", read_npy(candidates, "--candidates"))
    queries = check_embeddings(f"{query} (--query)", read_npy(query, "--query"), dim=pool.shape[1])
    n = len(pool)
    for option, value in (("--max-k", max_k), ("--kde-k", kde_k)):
        if value is not None and value > n:
            raise TaskselectError(f"{option} {value}: more than the {n} candidates")
    selector = TSDSSelector(
        alpha=alpha, C=C, sigma=sigma, metric=metric, replace=replace,
        max_k=min(_TSDS["max_k"].default, n) if max_k is None else max_k,
        kde_k=min(_TSDS["kde_k"].default, n) if kde_k is None else kde_k,
    )
    selector.check_size(size, n)  # before building an index
    started = time.perf_counter()
    faiss_index = None
    if index != "flat":
        index_params = validate_params({"index": {"kind": index}}, "--index").index
        faiss_index = build_index(unit_rows(pool) if metric == "cosine" else pool, index_params,
                                  metric="ip" if metric == "cosine" else "l2")
    selection = selector.select(queries, pool, size, seed, index=faiss_index)
    summary = {
        "query": str(query), "candidates": str(candidates), "size": size, "seed": seed,
        "n_selected": selection.n_selected, "n_unique": selection.n_unique,
        "seconds": round(time.perf_counter() - started, 3),
        "params": {"alpha": alpha, "C": C, "sigma": sigma, "max_k": selector.max_k, "kde_k": selector.kde_k,
                   "metric": metric, "replace": replace, "index": index},
        **selection.info,
    }
    # written first, renamed together: a failure leaves the last selection's three files, not a mix
    with atomic_path(out / "indices.npy") as indices, atomic_path(out / "probs.npy") as probs, \
            atomic_path(out / "selection.json") as record:
        write_npy(indices, selection.indices.astype("int64"))
        write_npy(probs, selection.probs)
        write_json(record, summary)
    console.print(
        f"selected {selection.n_selected} of {n} candidates ({selection.n_unique} distinct, "
        f"alpha {selection.info['alpha_effective']:.4g}) in {summary['seconds']:.1f}s -> {out}",
        highlight=False,
    )


def left_values(params_file: Path | None, data_dir: Path, out: Path, options: list[str]) -> list[str]:
    """The values a run recorded in the project's DVC state reads from params.yaml other than the
    committed file's that its `options` (KEY=VALUE) do not set: what an earlier run with options
    (or `dvc exp run -S`) left there, used again (a plain `make run` after a run of your files
    scores them, not the packaged benchmark)."""
    from taskselect.versioning import dvc_project, left_by_earlier_runs, records_run

    root = dvc_project(data_dir)
    if params_file is not None or not records_run(root, out) or Path("params.yaml").resolve() != root / "params.yaml":
        return []
    return left_by_earlier_runs(root, [option.partition("=")[0].strip() for option in options])


def left_note(params_file: Path | None, data_dir: Path, out: Path, options: list[str]) -> str | None:
    """The line such a run starts with (left_values), or None."""
    left = left_values(params_file, data_dir, out, options)
    return (f"note: params.yaml differs from the committed one (an earlier run with options, or `dvc exp run -S`, wrote "
            f"it), and this run uses it: {'; '.join(left)} (`git checkout params.yaml` restores the committed "
            "values)") if left else None


@contextmanager
def second_interrupt_stops():
    """Ctrl-C once: Prefect ends the flow run (Crashed) when the steps running in its threads have
    ended, which may take minutes (an embedding shard); said in one line. Ctrl-C again: the process
    stops at once, its child processes (the temporary Prefect server, local Dask workers) with it.
    Either way every artifact is whole or absent (atomic writes): a rerun reuses what was complete."""
    interrupted = False

    def interrupt(signum, frame):
        nonlocal interrupted
        if interrupted:
            import psutil

            for child in psutil.Process().children(recursive=True):
                child.kill()
            os._exit(128 + signum)
        interrupted = True
        from tqdm import tqdm

        tqdm.write("interrupted: the run stops when its running steps end (what they finish is kept, and a rerun "
                   "reuses it); Ctrl-C again stops it at once", file=sys.stderr)  # above the progress bars
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@app.command()
def run(params_file: ParamsFile = None, overrides: Overrides = None, data_dir: DataDir = Path("data"),
        out: OutDir = None, target: Target = None, pool: Pool = None, query: Query = None,
        test: Test = None,
        methods: Annotated[Optional[str], typer.Option(help=f"Comma-separated methods of {', '.join(registered_methods())}.")] = None,
        budgets: Annotated[Optional[str], typer.Option(help="Comma-separated budgets, e.g. 0.01,0.05,500.")] = None,
        seeds: Annotated[Optional[str], typer.Option(help="Comma-separated seeds, e.g. 0,1,2.")] = None,
        trainer: Annotated[Optional[str], typer.Option(help="head (frozen embeddings, seconds) or transformer (fine-tunes MiniLM, minutes).")] = None,
        cluster: Annotated[Optional[str], typer.Option(help="Run the tasks on the Dask cluster whose scheduler is at this address (tcp://host:8786); the data directory must be shared.")] = None,
        workers: Annotated[Optional[int], typer.Option(help="Run the tasks on a local Dask cluster of this many worker processes.")] = None) -> None:
    """Run the whole pipeline as a Prefect flow and print the comparison table.

    Tasks run in threads of this process, or on a Dask cluster (--cluster, --workers): embedding
    shards, selections, training and scoring then run in parallel on its workers."""
    from taskselect.plan import results_dir
    from taskselect.validate import check_run
    from taskselect.versioning import check_recordable

    from flows.engine import api_url, check_api, task_runner

    options = _overrides(overrides, target=target, pool=pool, query=query, test=test,
                         methods=methods, budgets=budgets, seeds=seeds, trainer=trainer)
    runner = task_runner(cluster, workers)  # the cheap checks first: the task runner's options, the Prefect API
    check_api()
    out = results_dir(data_dir, out)
    try:
        params = load_params(params_file, options)
        check_run(params, data_dir, out)  # before the flow: a refusal is one line, and nothing is written
        check_recordable(data_dir, out)
    except TaskselectError as refused:  # a value an earlier run left may be why: the same line says so
        if left := left_values(params_file, data_dir, out, options):
            raise TaskselectError(f"{refused} (params.yaml holds values an earlier run left: {'; '.join(left)}; "
                                  "`git checkout params.yaml` restores the committed ones)") from None
        raise
    if note := left_note(params_file, data_dir, out, options):
        err_console.print(note, markup=False, highlight=False)
    from flows.pipeline import pipeline

    with workspace_lock(data_dir), second_interrupt_stops():  # the lock before Prefect starts: a refusal is one line
        api_url()  # the run's Prefect API: without $PREFECT_API_URL, a temporary server logging to a file
        records = pipeline.with_options(task_runner=runner)(params=params, data_dir=str(data_dir), out_dir=str(out))
    print_results(records)
    console.print(f"results: {out / 'results.json'}")


@app.command("serve")
def serve_flows(params_file: ParamsFile = None, overrides: Overrides = None) -> None:
    """Serve the pipeline and sweep flows on the Prefect server at $PREFECT_API_URL, to run from its UI."""
    params = _params(params_file, overrides)
    from flows.serve import main as serve

    serve(params)


def _budgets(text: str, option: str = "--budgets") -> list[int | float]:
    """'0.02,5%,500' as select.budgets holds it (validate.parse_budget)."""
    from taskselect.validate import parse_budget

    return [parse_budget(item.strip(), option) for item in text.split(",")]


def _seeds(text: str, option: str = "--seeds") -> list[int]:
    """'0,1,2' as select.seeds holds it."""
    items = [item.strip() for item in text.split(",")]
    if not all(item.lstrip("-").isdecimal() for item in items):
        raise TaskselectError(f"{option} {text!r}: expected whole numbers, comma-separated (0,1,2)")
    return [int(item) for item in items]


@app.command()
def bench(params_file: ParamsFile = None, overrides: Overrides = None,
          part: Annotated[Optional[list[str]], typer.Option(help="Only this part: sweep, methods, ablation or transformer (repeatable) [default: all].")] = None,
          targets: Annotated[Optional[str], typer.Option(help="Comma-separated targets of the sweep [default: all four].")] = None,
          budgets: Annotated[Optional[str], typer.Option(help="Comma-separated budgets of the sweep [default: 0.01,0.02,0.05,0.1].")] = None,
          seeds: Annotated[Optional[str], typer.Option(help="Comma-separated seeds of the sweep and the ablation [default: 0,1,2].")] = None,
          methods: Annotated[Optional[str], typer.Option(help="Comma-separated selectors of the methods part [default: every one beside tsds, random, full].")] = None,
          transformer_seeds: Annotated[Optional[str], typer.Option(help="Comma-separated seeds of the transformer part [default: 0].")] = None,
          out: Annotated[Path, typer.Option("--out", help="Records and figures.")] = Path("benchmarks/quality"),
          data_dir: Annotated[Path, typer.Option("--data-dir", help="Artifacts, one workspace per target.")] = Path("data/bench"),
          markdown: Annotated[Path, typer.Option(help="File whose 'Selection quality' section is rewritten.")] = Path("BENCHMARKS.md")) -> None:
    """Selection-quality benchmark: targets x budgets x methods x seeds, a TSDS ablation and the
    transformer trainer, through the real stages; rewrites the quality section of BENCHMARKS.md."""
    from taskselect.bench import PARTS, QualityBench, render, write_section

    _log_to_console()
    parts = tuple(part or PARTS)
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise TaskselectError(f"--part {unknown[0]!r}: expected one of {', '.join(PARTS)}")
    params = _params(params_file, overrides)
    chosen = {"targets": tuple(targets.split(",")) if targets else None,
              "budgets": tuple(_budgets(budgets)) if budgets else None,
              "other_methods": tuple(methods.split(",")) if methods else None, "seeds": tuple(_seeds(seeds)) if seeds else None,
              "transformer_seeds": tuple(_seeds(transformer_seeds, "--transformer-seeds")) if transformer_seeds else None}
    runner = QualityBench(params, out, data_dir, **{k: v for k, v in chosen.items() if v is not None})
    started = time.perf_counter()
    runner.run(parts)
    write_section(markdown, render(out, markdown.resolve().parent))
    console.print(f"{markdown}: '## Selection quality' rewritten ({time.perf_counter() - started:.0f} s)")


def main() -> None:
    """Entry point: the process set-up, then the command; user errors become one line on stderr
    and exit code 2."""
    configure()
    try:
        app()
    except TaskselectError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
