"""The `taskselect` command: the whole pipeline (`run`) or one stage at a time (for DVC)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
import yaml
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from taskselect.config import Params, dump_params, load_params
from taskselect.errors import TaskselectError

app = typer.Typer(
    help="Select the training data for one task from a large pool, fine-tune on it, prove it with F1.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
)
console = Console()

ParamsFile = Annotated[Optional[Path], typer.Option("--params", "-p", help="Parameters file [default: ./params.yaml].")]
Overrides = Annotated[Optional[list[str]], typer.Option("--set", "-S", help="Override a parameter: KEY=VALUE, e.g. select.tsds.alpha=0.5.")]
DataDir = Annotated[Path, typer.Option("--data-dir", help="Root of the artifacts.")]
OutDir = Annotated[Path, typer.Option("--out", help="Where results.json and metrics.json go.")]
Target = Annotated[Optional[str], typer.Option(help="Benchmark target: airline_sentiment, trec, 20newsgroups, drug_reviews.")]
Pool = Annotated[Optional[Path], typer.Option(help="Your pool file (CSV, JSONL or Parquet) with text and label columns.")]
Query = Annotated[Optional[Path], typer.Option(help="Your query file: examples of the task.")]
Test = Annotated[Optional[Path], typer.Option(help="Your test file: scored with macro-F1.")]
Method = Annotated[Optional[str], typer.Option(help="Only this method [default: all in params].")]
Budget = Annotated[Optional[str], typer.Option(help="Only this budget: a row count or a fraction of the pool.")]
Seed = Annotated[Optional[int], typer.Option(help="Only this seed.")]
TrackingUri = Annotated[Optional[str], typer.Option(help="MLflow tracking URI [default: the run's, $MLFLOW_TRACKING_URI, sqlite:///mlflow.db].")]


def _params(params_file: Path | None, overrides: list[str] | None, **shortcuts) -> Params:
    """params.yaml, then shortcut options, then -S overrides (last wins)."""
    named = {
        "target": "data.target", "pool": "data.pool", "query": "data.query", "test": "data.test",
        "methods": "select.methods", "budgets": "select.budgets", "seeds": "select.seeds",
    }
    extra = []
    for name, value in shortcuts.items():
        if value is None:
            continue
        if name in ("methods", "budgets", "seeds"):
            value = "[" + value + "]"
        extra.append(f"{named[name]}={value}")
    return load_params(params_file, extra + list(overrides or []))


def _runs(params: Params, method: str | None, budget: str | None, seed: int | None):
    from taskselect.stages import Run, plan_runs

    if method is not None and budget is not None and seed is not None:
        return [Run(method, yaml.safe_load(budget), seed)]
    wanted_budget = yaml.safe_load(budget) if budget is not None else None
    runs = [
        r for r in plan_runs(params.select)
        if (method is None or r.method == method)
        and (wanted_budget is None or r.budget == wanted_budget)
        and (seed is None or r.seed == seed)
    ]
    if not runs:
        raise TaskselectError(f"no run matches method={method} budget={budget} seed={seed} in select parameters")
    return runs


def _log_to_console() -> None:
    """Rich log lines on a terminal; plain unwrapped lines in files and CI logs."""
    if sys.stderr.isatty():
        logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler(show_path=False)])
    else:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def print_results(records: list[dict]) -> None:
    """The comparison table: one row per run, best macro-F1 first within each budget."""
    table = Table(title="macro-F1 on the target test set", caption="on-task: selected rows with a target label")
    for column in ("method", "budget", "seed", "selected", "distinct", "on-task", "macro-F1", "accuracy"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for r in sorted(records, key=lambda r: (r["budget"], r["method"] == "full", -r["f1_macro"], r["seed"])):
        table.add_row(
            r["method"], r["budget_label"], str(r["seed"]),
            str(r["n_selected"]), str(r["n_unique"]), f"{r['target_share']:.0%}",
            f"{r['f1_macro']:.4f}", f"{r['accuracy']:.4f}",
        )
    console.print(table)


@app.command("params")
def show_params(params_file: ParamsFile = None, overrides: Overrides = None) -> None:
    """Print the parameters a run would use (params.yaml plus overrides)."""
    console.print(dump_params(_params(params_file, overrides)), end="", markup=False, highlight=False)


@app.command()
def prepare(params_file: ParamsFile = None, overrides: Overrides = None, data_dir: DataDir = Path("data"),
            target: Target = None, pool: Pool = None, query: Query = None, test: Test = None) -> None:
    """Build the benchmark (or read your pool/query/test files) into DATA_DIR/prepared."""
    from taskselect import stages

    _log_to_console()
    params = _params(params_file, overrides, target=target, pool=pool, query=query, test=test)
    stages.prepare(params.data, stages.Workspace(data_dir))


@app.command()
def embed(params_file: ParamsFile = None, overrides: Overrides = None, data_dir: DataDir = Path("data")) -> None:
    """Embed pool, query and test texts (cached by content)."""
    from taskselect import stages

    _log_to_console()
    stages.embed(_params(params_file, overrides).embed, stages.Workspace(data_dir))


@app.command()
def index(params_file: ParamsFile = None, overrides: Overrides = None, data_dir: DataDir = Path("data")) -> None:
    """Index the pool embeddings with faiss."""
    from taskselect import stages

    _log_to_console()
    stages.index(_params(params_file, overrides).index, stages.Workspace(data_dir))


@app.command()
def select(params_file: ParamsFile = None, overrides: Overrides = None, data_dir: DataDir = Path("data"),
           method: Method = None, budget: Budget = None, seed: Seed = None) -> None:
    """Select training rows for each (method, budget, seed)."""
    from taskselect import stages

    _log_to_console()
    params = _params(params_file, overrides)
    for run in _runs(params, method, budget, seed):
        stages.select(params.select, run, stages.Workspace(data_dir))


@app.command()
def finetune(params_file: ParamsFile = None, overrides: Overrides = None, data_dir: DataDir = Path("data"),
             method: Method = None, budget: Budget = None, seed: Seed = None) -> None:
    """Train a model on each selection."""
    from taskselect import stages

    _log_to_console()
    params = _params(params_file, overrides)
    for run in _runs(params, method, budget, seed):
        stages.finetune(params.finetune, run, stages.Workspace(data_dir))


@app.command()
def evaluate(params_file: ParamsFile = None, overrides: Overrides = None, data_dir: DataDir = Path("data"),
             method: Method = None, budget: Budget = None, seed: Seed = None) -> None:
    """Score each model with macro-F1 on the target test set."""
    from taskselect import stages

    _log_to_console()
    params = _params(params_file, overrides)
    for run in _runs(params, method, budget, seed):
        stages.evaluate(run, stages.Workspace(data_dir))


@app.command()
def report(params_file: ParamsFile = None, overrides: Overrides = None, data_dir: DataDir = Path("data"),
           out: OutDir = Path("data/results")) -> None:
    """Collect every run's scores into OUT (results.json, metrics, plot), print the table, log to MLflow."""
    from taskselect import stages, tracking, versioning

    _log_to_console()
    params = _params(params_file, overrides)
    records = stages.report(params, stages.Workspace(data_dir), out)
    print_results(records)
    if params.track.enabled:
        root = versioning.dvc_project(data_dir)
        hashes = versioning.lock_hashes(root) if root else {}
        tracking.log_pipeline_or_warn(data_dir, out, {f"dvc.{p}": md5 for p, md5 in hashes.items()})


@app.command()
def track(data_dir: DataDir = Path("data"), out: OutDir = Path("data/results"),
          tracking_uri: TrackingUri = None) -> None:
    """Log a finished run (its files in DATA_DIR and OUT) to MLflow: e.g. after the server was down."""
    from taskselect import tracking

    _log_to_console()
    run_id = tracking.log_pipeline(data_dir, out, uri=tracking_uri)
    console.print(f"logged: parent run {run_id}")


@app.command()
def compare(
    params_file: ParamsFile = None, overrides: Overrides = None,
    experiment: Annotated[Optional[str], typer.Option(help="MLflow experiment [default: taskselect-<target>].")] = None,
    parent: Annotated[Optional[str], typer.Option(help="Parent (pipeline) run id [default: the latest].")] = None,
    all_runs: Annotated[bool, typer.Option("--all", help="Pool the selection runs of every pipeline run.")] = False,
    filter_string: Annotated[str, typer.Option("--filter", help="MLflow filter on the selection runs, e.g. \"params.`select.tsds.alpha` = '0.5'\".")] = "",
    fmt: Annotated[str, typer.Option("--format", help="table, csv, markdown or json.")] = "table",
    tracking_uri: TrackingUri = None,
) -> None:
    """Compare methods from MLflow: macro-F1 mean +- std over seeds per budget, deltas vs random and full."""
    from taskselect import tracking
    from taskselect.report import comparison_rows

    if fmt not in ("table", "csv", "markdown", "json"):
        raise TaskselectError(f"--format {fmt!r}: expected table, csv, markdown or json")
    params = _params(params_file, (overrides or []) + ([f"track.tracking_uri={tracking_uri}"] if tracking_uri else []))
    summary = tracking.compare(params.track, experiment or tracking.experiment_name(params), parent, filter_string, all_runs)
    shown = summary[["method", "budget_label", "seeds", "f1_macro", "f1_macro_std", "delta_random", "delta_full"]]
    shown = shown.rename(columns={"budget_label": "budget"})
    if fmt == "csv":
        sys.stdout.write(shown.to_csv(index=False, float_format="%.4f"))
    elif fmt == "json":
        sys.stdout.write(shown.to_json(orient="records", indent=2) + "\n")
    elif fmt == "markdown":
        sys.stdout.write(shown.to_markdown(index=False, floatfmt=".4f") + "\n")
    else:
        rows = comparison_rows(summary)
        table = Table(title=f"macro-F1 by method and budget ({experiment or tracking.experiment_name(params)})")
        for column in rows[0]:
            table.add_column(column, justify="left" if column == "method" else "right")
        for row in rows:
            table.add_row(*row.values())
        console.print(table)


@app.command()
def run(params_file: ParamsFile = None, overrides: Overrides = None, data_dir: DataDir = Path("data"),
        out: OutDir = Path("data/results"), target: Target = None, pool: Pool = None, query: Query = None,
        test: Test = None,
        methods: Annotated[Optional[str], typer.Option(help="Comma-separated methods, e.g. tsds,random,full.")] = None,
        budgets: Annotated[Optional[str], typer.Option(help="Comma-separated budgets, e.g. 0.01,0.05,500.")] = None,
        seeds: Annotated[Optional[str], typer.Option(help="Comma-separated seeds, e.g. 0,1,2.")] = None) -> None:
    """Run the whole pipeline as a Prefect flow and print the comparison table."""
    params = _params(params_file, overrides, target=target, pool=pool, query=query, test=test,
                     methods=methods, budgets=budgets, seeds=seeds)
    from flows.pipeline import pipeline

    records = pipeline(params=params, data_dir=str(data_dir), out_dir=str(out))
    print_results(records)
    console.print(f"results: {out / 'results.json'}")


@app.command("serve")
def serve_flows(params_file: ParamsFile = None, overrides: Overrides = None) -> None:
    """Serve the pipeline and sweep flows on the Prefect server at $PREFECT_API_URL, to run from its UI."""
    params = _params(params_file, overrides)
    from flows.serve import main as serve

    serve(params)


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2."""
    try:
        app()
    except TaskselectError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
