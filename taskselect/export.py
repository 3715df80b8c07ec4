"""The selected rows of one run as a dataset file: texts in hand, to train any model on.

A selection (data/selections/<run>/selection.parquet) holds pool row numbers, ids, labels,
sources and counts, not texts; `export_selection` joins it with the prepared pool's texts and
the method's per-row probability (probs.npy) or score (scores.npy) and writes JSONL, CSV or
Parquet. A Hugging Face `datasets` folder is not offered: `datasets.load_dataset("parquet",
data_files=...)` (or "json") reads these files as they are, and the library would add a dozen
dependencies to the install for nothing the files lack.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from taskselect.errors import TaskselectError
from taskselect.io import atomic_path, read_json, required
from taskselect.stages import ROW_VALUES, Run, Workspace, check_made_from, load_selection
from taskselect.validate import BUDGET_FORMS, budget_value

FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}


def selected_runs(ws: Workspace) -> list[Run]:
    """Every finished selection in the workspace, in name order."""
    root = ws.runs / "selections"
    runs = []
    for path in sorted(root.glob("*/selection.json")) if root.is_dir() else []:
        facts = read_json(path)
        runs.append(Run(facts["method"], facts["budget"], facts["seed"]))
    return runs


def find_run(ws: Workspace, method: str | None, budget: str | None, seed: int | None) -> Run:
    """The one selection in `ws` matching the given parts (None matches any; a budget as given
    to the pipeline, 0.05 or 500, or as tables name it, 5%); an error naming what the workspace
    holds when none or several match."""
    runs = selected_runs(ws)
    if not runs:
        raise TaskselectError(f"{ws.runs / 'selections'}: no selections; run `taskselect run` or `taskselect select` first")
    try:
        wanted_budget = None if budget is None else budget_value(budget)
    except (ValueError, ArithmeticError):
        raise TaskselectError(f"--budget {budget!r}: expected {BUDGET_FORMS}") from None
    matches = [r for r in runs if (method is None or r.method == method) and (seed is None or r.seed == seed)
               and (budget is None or (r.budget == wanted_budget and isinstance(r.budget, int) == isinstance(wanted_budget, int)))]
    available = ", ".join(r.slug for r in runs)
    given = [f"--{name} {value}" for name, value in (("method", method), ("budget", budget), ("seed", seed))
             if value is not None]
    wanted = " ".join(given) or "(no --method, --budget or --seed)"
    if not matches:
        raise TaskselectError(f"no selection matches {wanted} in {ws.runs / 'selections'}; it holds {available}")
    # A run on another pool leaves the selections it did not remake: they are not this pool's.
    current = [r for r in matches if made_from_this_pool(ws, r)]
    if not current:
        check_made_from("selection", ws, matches[0])  # its one line, naming the command that remakes it
    if len(current) > 1:
        raise TaskselectError(f"{len(current)} selections match {wanted}: {', '.join(r.slug for r in current)}; "
                              "choose one with --method, --budget and --seed")
    return current[0]


def made_from_this_pool(ws: Workspace, run: Run) -> bool:
    """Whether the run's selection was made from the prepared pool, embeddings and index `ws` holds now."""
    try:
        check_made_from("selection", ws, run)
    except TaskselectError:
        return False
    return True


def output_format(out: Path, fmt: str | None) -> str:
    """`fmt`, else the one out's suffix names; an unknown or missing format is an error."""
    if fmt is None:
        if out.suffix.lower() not in FORMATS:
            raise TaskselectError(f"{out}: cannot tell the format from {out.suffix or 'no suffix'!r}; "
                                  f"use a suffix {', '.join(FORMATS)} or --format {'|'.join(FORMATS.values())}")
        return FORMATS[out.suffix.lower()]
    if fmt not in FORMATS.values():
        raise TaskselectError(f"--format {fmt!r}: expected one of {', '.join(FORMATS.values())}")
    return fmt


def _pool_columns(path: Path, rows: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """`columns` of the pool's sorted `rows`, reading only the Parquet row groups that hold
    them: a few selected rows of a pool of millions never load all of its text."""
    meta = pq.ParquetFile(path).metadata
    ends = np.cumsum([meta.row_group(g).num_rows for g in range(meta.num_row_groups)])
    starts = np.concatenate([[0], ends[:-1]])
    groups = np.unique(np.searchsorted(ends, rows, side="right"))
    table = pq.ParquetFile(path).read_row_groups(groups.tolist(), columns=columns).to_pandas()
    read_rows = np.concatenate([np.arange(starts[g], ends[g]) for g in groups])  # pool row of each row read
    return table.iloc[np.searchsorted(read_rows, rows)].reset_index(drop=True)


def selection_rows(ws: Workspace, run: Run) -> pd.DataFrame:
    """The run's selected rows: pool_row, id, text, label (none from an unlabelled pool: the
    rows to annotate), source, count (times drawn) and, where the method has them, probability
    (its selection distribution) and score (what it ranked by). One row per distinct pool row,
    in pool order."""
    folder = ws.selection(run)
    chosen = load_selection(ws, run)
    pool_path = ws.prepared / "pool.parquet"
    if not pool_path.is_file():
        raise TaskselectError(f"{pool_path}: not found; the selection {run.slug} needs the prepared pool it was made from")
    # Row numbers and the ids of a file without an id column ('pool:7') can match another pool.
    check_made_from("selection", ws, run)
    rows = chosen["pool_row"].to_numpy()
    # A selection made before taskselect recorded what it was made from: its rows must still exist.
    beyond = rows.size and rows.max() >= pq.ParquetFile(pool_path).metadata.num_rows
    texts = None if beyond else _pool_columns(pool_path, rows, ["id", "text"])
    if texts is None or not (texts["id"].to_numpy() == chosen["id"].to_numpy()).all():
        raise TaskselectError(f"{pool_path}: its rows no longer match the selection {run.slug} "
                              "(prepared again since?); rerun the selection")
    frame = chosen[["pool_row", "id"]].assign(text=texts["text"])
    for column in ("label", "source", "count"):
        if column in chosen:
            frame[column] = chosen[column]
    for column in read_json(folder / "selection.json")["row_values"]:  # a file deleted since is an error, not a column less
        path = required(folder / ROW_VALUES[column], "select", f"selection {run.slug}'s per-row {column}")
        frame[column] = np.load(path, mmap_mode="r")[rows]
    return frame


def export_selection(ws: Workspace, run: Run, out: str | os.PathLike, fmt: str | None = None,
                     force: bool = False) -> pd.DataFrame:
    """Write the run's selected rows (see `selection_rows`) to `out` as JSONL, CSV or Parquet
    (`fmt`, else out's suffix), atomically; an existing `out` is replaced only with `force`.
    Returns the rows written."""
    out = Path(out)
    fmt = output_format(out, fmt)
    if out.exists() and not force:
        raise TaskselectError(f"{out}: already exists; pass --force to replace it")
    if out.is_dir():
        raise TaskselectError(f"{out}: is a directory; expected a file name")
    frame = selection_rows(ws, run)
    with atomic_path(out) as tmp:
        if fmt == "jsonl":  # json, not pandas: pandas rounds floats to 10 digits
            tmp.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in frame.to_dict("records")))
        elif fmt == "csv":
            # RFC 4180's CRLF line ends: a text holding a bare \r (tweets do) is then quoted, and reads back whole
            frame.to_csv(tmp, index=False, lineterminator="\r\n")
        else:
            frame.to_parquet(tmp, index=False)
    return frame
