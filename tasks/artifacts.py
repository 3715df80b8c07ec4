"""What a flow run shows on its Artifacts tab in the Prefect UI: the F1 comparison, and where
the results, the plot and the MLflow runs are."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from taskselect.report import (auto_choices, comparison_caption, comparison_rows, delta_columns, selection_rows,
                               summarize, summarize_selections, verdicts)

TABLE_KEY = "f1-comparison"
SWEEP_TABLE_KEY = "sweep-f1-comparison"


@task(name="publish")
def publish_results(records: list[dict], out_dir: Path, mlflow_run: dict | None) -> None:
    """The comparison table, and a note with the results directory, the plot and the MLflow run
    (on an unlabelled pool: the selections made, and why nothing was scored).

    mlflow_run: {"run_id", "link"} of the parent run, None if the run was not logged.
    """
    skipped = next((r["skipped"] for r in records if "skipped" in r), None)
    if skipped is None:
        summary = summarize(records)
        create_table_artifact(comparison_rows(summary), key=TABLE_KEY,
                              description=_described(summary, comparison_caption(summary)))
    else:  # an unlabelled pool: what was selected, in the F1 table's place, and why it has no F1
        create_table_artifact(selection_rows(summarize_selections(records)), key=TABLE_KEY,
                              description=f"selections, no macro-F1: {skipped}")
    out_dir = out_dir.resolve()
    if mlflow_run is None:
        mlflow_line = "not logged (tracking disabled, or it failed: the run's logs give the command that logs it)"
    elif mlflow_run["link"].startswith("http"):
        mlflow_line = f"[parent run {mlflow_run['run_id']}]({mlflow_run['link']}), one child run per selection"
    else:
        mlflow_line = (f"parent run `{mlflow_run['run_id']}`, one child run per selection; open it with "
                       f"`{mlflow_run['link']}`")
    create_markdown_artifact(
        "\n".join([
            "### taskselect results",
            f"- results: `{out_dir}` (results.json, summary.csv, metrics.json)",
            *([f"- {skipped}; export a selection with `taskselect export`"] if skipped else
              [f"- plot: `{out_dir / 'f1_vs_budget.png'}`"]),
            f"- MLflow: {mlflow_line}",
            *(f"- {line}" for line in verdicts(records)),
            *(f"- {line}" for line in auto_choices(records, bold=True)),
        ]),
        key="results", description="Where this run's results are",
    )


@task(name="publish-sweep")
def publish_sweep(records_by_target: dict[str, list[dict]]) -> None:
    """One comparison table over every target of a sweep."""
    summaries = {target: summarize(records) for target, records in records_by_target.items()}
    rows = [{"target": target, **row} for target, summary in summaries.items() for row in comparison_rows(summary)]
    caption = next(filter(None, map(comparison_caption, summaries.values())), None)
    create_table_artifact(rows, key=SWEEP_TABLE_KEY, description=_described(pd.concat(summaries.values()), caption))


def _described(summary: pd.DataFrame, caption: str | None) -> str:
    """The comparison table's description: what its Δ columns compare with (the baselines, and the
    selectors of report.against the runs were set against), and what its (k/n) counts say where
    it has them."""
    against = ["a random selection of the same size" if b == "random" else "the full pool" if b == "full"
               else f"{b}'s selection of the same size" for b in delta_columns(summary)]
    listed = f"{', '.join(against[:-1])} and {against[-1]}" if len(against) > 1 else "".join(against)
    delta = f"Δ: difference in macro-F1 (0.01 = 1 point) from {listed}" if against else None
    return "; ".join(filter(None, ["macro-F1 on the task's test set, mean ± std over seeds", delta, caption]))
