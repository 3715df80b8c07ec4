"""The `taskselect` command: the whole pipeline (`run`) or one stage at a time (for DVC)."""

from __future__ import annotations

import logging
import sys
import time
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
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
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


def _params(params_file: Path | None, overrides: list[str] | None, **shortcuts) -> Params:
    """params.yaml, then shortcut options, then -S overrides (last wins)."""
    named = {
        "target": "data.target", "pool": "data.pool", "query": "data.query", "test": "data.test",
        "methods": "select.methods", "budgets": "select.budgets", "seeds": "select.seeds",
        "trainer": "finetune.trainer",
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
        return [Run(method, 1.0 if method == "full" else yaml.safe_load(budget), seed)]
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
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler(console=Console(stderr=True), show_path=False)])


def print_results(records: list[dict]) -> None:
    """The comparison table: one row per run, best macro-F1 first within each budget; with
    several seeds, also their mean and standard deviation per method and budget."""
    from taskselect.stages import summarize

    table = Table(title="macro-F1 on the target test set",
                  caption="on-task: selected rows with a target label; 95% CI: bootstrap over test rows")
    for column in ("method", "budget", "seed", "selected", "distinct", "on-task", "macro-F1", "95% CI", "accuracy"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for r in sorted(records, key=lambda r: (r["method"] == "full", r["budget"], -r["f1_macro"], r["seed"])):
        low, high = r["f1_macro_ci"]
        table.add_row(
            r["method"], "all" if r["method"] == "full" else r["budget_label"], str(r["seed"]),
            str(r["n_selected"]), str(r["n_unique"]), f"{r['n_on_task']} ({r['target_share']:.0%})",
            f"{r['f1_macro']:.4f}", f"{low:.3f}-{high:.3f}", f"{r['accuracy']:.4f}",
        )
    console.print(table)
    summary = summarize(records)
    if any(len(row["seeds"]) > 1 for row in summary):
        table = Table(title="mean ± standard deviation over seeds")
        for column in ("method", "budget", "seeds", "macro-F1", "accuracy"):
            table.add_column(column, justify="left" if column == "method" else "right")
        for row in sorted(summary, key=lambda r: (r["method"] == "full", r["budget"], -r["f1_macro_mean"])):
            table.add_row(
                row["method"], "all" if row["method"] == "full" else row["budget_label"], str(len(row["seeds"])),
                f"{row['f1_macro_mean']:.4f} ± {row['f1_macro_std']:.4f}",
                f"{row['accuracy_mean']:.4f} ± {row['accuracy_std']:.4f}",
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
        stages.evaluate(params.evaluate, run, stages.Workspace(data_dir))


@app.command()
def report(params_file: ParamsFile = None, overrides: Overrides = None, data_dir: DataDir = Path("data"),
           out: OutDir = Path("data/results")) -> None:
    """Collect every run's scores into OUT/results.json, print the table, log to MLflow."""
    from taskselect import stages, tracking

    _log_to_console()
    params = _params(params_file, overrides)
    records = stages.report(stages.plan_runs(params.select), stages.Workspace(data_dir), out)
    print_results(records)
    if params.track.enabled:
        tracking.log_pipeline(params, records, out / "results.json")


@app.command()
def run(params_file: ParamsFile = None, overrides: Overrides = None, data_dir: DataDir = Path("data"),
        out: OutDir = Path("data/results"), target: Target = None, pool: Pool = None, query: Query = None,
        test: Test = None,
        methods: Annotated[Optional[str], typer.Option(help="Comma-separated methods, e.g. tsds,random,full.")] = None,
        budgets: Annotated[Optional[str], typer.Option(help="Comma-separated budgets, e.g. 0.01,0.05,500.")] = None,
        seeds: Annotated[Optional[str], typer.Option(help="Comma-separated seeds, e.g. 0,1,2.")] = None,
        trainer: Annotated[Optional[str], typer.Option(help="head (frozen embeddings, seconds) or transformer (fine-tunes MiniLM, minutes).")] = None) -> None:
    """Run the whole pipeline as a Prefect flow and print the comparison table."""
    params = _params(params_file, overrides, target=target, pool=pool, query=query, test=test,
                     methods=methods, budgets=budgets, seeds=seeds, trainer=trainer)
    from flows.pipeline import pipeline

    records = pipeline(params=params, data_dir=str(data_dir), out_dir=str(out))
    print_results(records)
    console.print(f"results: {out / 'results.json'}")


def _floats(text: str | None) -> tuple | None:
    return None if text is None else tuple(yaml.safe_load(f"[{text}]"))


@app.command()
def bench(params_file: ParamsFile = None, overrides: Overrides = None,
          part: Annotated[Optional[list[str]], typer.Option(help="Only this part: sweep, ablation or transformer (repeatable) [default: all].")] = None,
          targets: Annotated[Optional[str], typer.Option(help="Comma-separated targets of the sweep [default: all four].")] = None,
          budgets: Annotated[Optional[str], typer.Option(help="Comma-separated budgets of the sweep [default: 0.01,0.02,0.05,0.1].")] = None,
          seeds: Annotated[Optional[str], typer.Option(help="Comma-separated seeds of the sweep and the ablation [default: 0,1,2].")] = None,
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
    chosen = {"targets": tuple(targets.split(",")) if targets else None, "budgets": _floats(budgets),
              "seeds": _floats(seeds), "transformer_seeds": _floats(transformer_seeds)}
    runner = QualityBench(params, out, data_dir, **{k: v for k, v in chosen.items() if v is not None})
    started = time.perf_counter()
    runner.run(parts)
    write_section(markdown, render(out, markdown.resolve().parent))
    console.print(f"{markdown}: '## Selection quality' rewritten ({time.perf_counter() - started:.0f} s)")


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2."""
    try:
        app()
    except TaskselectError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
