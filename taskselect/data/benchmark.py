"""The three sets of a selection experiment: a pool to select from, a query set, a test set.

A packaged benchmark hides the target task's own training rows in a pool of thirteen other
sources, each capped at the same size, so that a selector has to find them among rows of
unrelated tasks, as it would in real use. A custom benchmark reads the three sets from files;
a pool file without a label column is an unlabelled pool: selection only (which of my texts to
annotate), with no test set, nothing trained and nothing scored.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from taskselect.config import TARGET_SOURCES, DataParams
from taskselect.data.sources import SOURCES, normalize_text
from taskselect.errors import TaskselectError
from taskselect.io import read_json, read_table, required, write_json, write_parquet
from taskselect.shards import ROW_GROUP_ROWS

logger = logging.getLogger(__name__)

COLUMNS = ["id", "text", "label", "source"]
ROLES = ("pool", "query", "test")


@dataclass
class Benchmark:
    """Pool, query and test frames (columns id, text, label, source) and the task's labels.

    An unlabelled pool has no label column (nor has its test set, which is empty), and its query
    set may have none either: `pool_labelled` is then False.
    """

    task: str
    pool: pd.DataFrame
    query: pd.DataFrame
    test: pd.DataFrame
    target_labels: list[str]

    @property
    def pool_labelled(self) -> bool:
        return "label" in self.pool.columns

    def digest(self) -> str:
        """sha256 (hex, 16 digits) of the texts and labels of pool, query and test, in order: what
        every score of a run on this benchmark is a function of, besides the parameters. Files and
        ids do not enter it: the same rows read from elsewhere give the same digest."""
        hashed = hashlib.sha256()
        for role in ROLES:
            frame = getattr(self, role)
            rows = pd.util.hash_pandas_object(frame[[c for c in ("text", "label") if c in frame]], index=False)
            hashed.update(f"{role}:{len(frame)}:".encode() + rows.to_numpy().tobytes())
        return hashed.hexdigest()[:16]

    def save(self, directory: str | os.PathLike) -> None:
        """Write one Parquet file per set, then benchmark.json as the mark of a finished save."""
        directory = Path(directory)
        for role in ROLES:
            write_parquet(directory / f"{role}.parquet", getattr(self, role), row_group_size=ROW_GROUP_ROWS)
        write_json(
            directory / "benchmark.json",
            {
                "task": self.task,
                "target_labels": self.target_labels,
                "pool_labelled": self.pool_labelled,
                "rows": {role: len(getattr(self, role)) for role in ROLES},
                "digest": self.digest(),
                "pool_rows_per_source": self.pool["source"].value_counts(sort=False).to_dict(),
            },
        )

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Benchmark:
        directory = Path(directory)
        paths = [directory / f"{role}.parquet" for role in ROLES] + [directory / "benchmark.json"]
        for path in paths:
            required(path, "prepare")
        meta = read_json(directory / "benchmark.json")
        pool, query, test = (pd.read_parquet(path) for path in paths[:3])
        return cls(meta["task"], pool, query, test, list(meta["target_labels"]))


def build_benchmark(
    target: str, cap_per_source: int, n_query: int, max_test: int, seed: int
) -> Benchmark:
    """Build the packaged benchmark of `target`; the same arguments give identical frames.

    The test set is the target source's official test split (or, for airline, which has
    none, a sample of it), at most `max_test` rows. The query set is `n_query` of the
    remaining target rows; the rest of them join the pool, in which every source contributes
    at most `cap_per_source` training rows. No pool row repeats the text of a query or test
    row, and no query row repeats a test row (texts compared after `normalize_text`). Pool
    rows are ordered by source name, then as in the source, so the order is reproducible.
    """
    if target not in TARGET_SOURCES:
        raise TaskselectError(
            f"target {target!r}: unknown; expected one of {', '.join(TARGET_SOURCES)}"
        )
    sizes = {"cap_per_source": cap_per_source, "n_query": n_query, "max_test": max_test}
    for name, value in sizes.items():
        if value < 1:
            raise TaskselectError(f"{name}: expected a positive number of rows, got {value}")
    rng = np.random.default_rng(seed)
    target_source = TARGET_SOURCES[target]
    rows = SOURCES[target_source].load()

    if (rows["split"] == "test").any():
        test = _sample(rows[rows["split"] == "test"], max_test, rng)
        train = rows[rows["split"] == "train"]
    else:
        test = _sample(rows, max_test, rng)
        train = rows.drop(test.index)
    train = _without_texts(train, test)
    if n_query > len(train):
        raise TaskselectError(
            f"n_query: {n_query} exceeds the {len(train)} training rows of target {target!r}"
        )
    query = _sample(train, n_query, rng)
    hidden = train.drop(query.index)

    held_out = pd.concat([query, test])
    pool_parts = []
    for name in sorted(SOURCES):
        source_rows = hidden if name == target_source else SOURCES[name].load()
        candidates = _without_texts(source_rows[source_rows["split"] == "train"], held_out)
        # Each source draws from its own stream: other targets' pools then share these rows,
        # and their embeddings come from the cache.
        source_rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        pool_parts.append(_with_source(_sample(candidates, cap_per_source, source_rng), name))
    pool = pd.concat(pool_parts, ignore_index=True)

    benchmark = Benchmark(
        task=target,
        pool=pool,
        query=_with_source(query, target_source),
        test=_with_source(test, target_source),
        target_labels=sorted(rows["label"].unique()),
    )
    logger.info(
        "benchmark %s: pool %d rows from %d sources, query %d, test %d",
        target, len(pool), pool["source"].nunique(), len(benchmark.query), len(benchmark.test),
    )
    return benchmark


def _sample(frame: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """At most `n` random rows of `frame`, kept in their original order."""
    if len(frame) <= n:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), size=n, replace=False))]


def _repeats(frame: pd.DataFrame, held_out: pd.DataFrame) -> pd.Series:
    """Which rows of `frame` repeat a text of `held_out` (compared after `normalize_text`)."""
    return frame["text"].map(normalize_text).isin(set(held_out["text"].map(normalize_text)))


def _without_texts(frame: pd.DataFrame, held_out: pd.DataFrame) -> pd.DataFrame:
    return frame[~_repeats(frame, held_out)]


def _with_source(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    return frame.assign(source=source)[COLUMNS].reset_index(drop=True)


def load_custom_benchmark(
    pool: str | os.PathLike,
    query: str | os.PathLike,
    test: str | os.PathLike | None,
    text_column: str = "text",
    label_column: str = "label",
) -> Benchmark:
    """Read the three sets from CSV, TSV, JSONL, JSON or Parquet files.

    Every row needs a non-empty text and a label. An `id` column, if present, must be unique;
    otherwise ids are "<role>:<row>". Rows are counted from 1, header excluded. Labels are
    compared as text, so their spaces must fit together (see `check_label_spaces`). Pool and
    query rows that repeat a test text are left out (`_without_test_copies`), as in the packaged
    benchmark.

    A pool without a label column is unlabelled: selection only. It takes no test set (`test`
    None; there is nothing trained to score), and the query set may have labels or no label
    column at all. A label column with some (or all) cells empty is an error in every file.
    """
    paths = {"pool": Path(pool), "query": Path(query)}
    # without a test set the pool may lack labels; with one it needs them (nothing else is scored)
    frames = {"pool": _read_custom(paths["pool"], "pool", text_column, label_column, label_optional=test is None)}
    labelled = "label" in frames["pool"]
    if labelled and test is None:
        raise TaskselectError(
            f"data.test: missing; {pool} has labels (column {label_column!r}) and its selections are scored on a "
            "test set (only a pool without a label column, for selection only, needs none)"
        )
    frames["query"] = _read_custom(paths["query"], "query", text_column, label_column, label_optional=not labelled)
    if labelled:
        paths["test"] = Path(test)
        frames["test"] = _read_custom(paths["test"], "test", text_column, label_column)
        named = dict(paths)
        for role in ("pool", "query"):
            kept = _without_test_copies(frames[role], role, frames["test"], paths)
            if len(kept) < len(frames[role]):  # a label whose rows were all copies of test rows is missing: say why
                named[role] = f"{paths[role]} (without its rows that repeat a test text)"
            frames[role] = kept
        check_label_spaces(frames, named, label_column)
    else:
        frames["test"] = pd.DataFrame({c: pd.Series(dtype=str) for c in COLUMNS if c != "label"})
        logger.info("%s: no column %r: an unlabelled pool, for selection only (nothing is trained or scored)",
                    pool, label_column)
    copies = _repeats(frames["pool"], frames["query"])
    if copies.any():
        logger.warning("%s: %d pool rows repeat a query text (kept; auto leaves a held-out query's copies out of "
                       "the models that score it)", pool, int(copies.sum()))
    target_labels = sorted(set().union(*(frames[role].get("label", ()) for role in ("query", "test"))))
    return Benchmark("custom", frames["pool"], frames["query"], frames["test"], target_labels)


# Why a pool or query row that repeats a test text is left out, and what to do when all of them do.
_TEST_COPIES = {
    "pool": ("a model trained on them would be scored on rows it has seen", "nothing is left to select from"),
    "query": ("a selection aimed at the test rows themselves would lean the verdict against random its way",
              "give examples of the task that the test set does not hold"),
}


def _without_test_copies(frame: pd.DataFrame, role: str, test: pd.DataFrame, paths: dict[str, Path]) -> pd.DataFrame:
    """The pool (or query set) without the rows that repeat a test text (compared after
    `normalize_text`), as the packaged benchmark is built: a model trained on a copy of a test row
    would be scored on what it has seen, and the selectors that aim at the queries find such
    copies more often than random does, so the verdict would lean their way; queries that are
    test rows aim them at the test set itself. The rows keep their ids (file rows)."""
    copies = _repeats(frame, test)
    why, remedy = _TEST_COPIES[role]
    if copies.all():
        raise TaskselectError(f"{paths[role]}: every row repeats a text of {paths['test']}; {remedy}")
    if copies.any():
        n = int(copies.sum())
        logger.warning("%s: %d %s %s a text of %s and %s left out (%s)", paths[role], n, role,
                       "row repeats" if n == 1 else "rows repeat", paths["test"], "is" if n == 1 else "are", why)
    return frame[~copies].reset_index(drop=True)


def check_label_spaces(frames: dict[str, pd.DataFrame], paths: dict[str, Path], label_column: str) -> None:
    """Refuse label sets that would make macro-F1 silently wrong.

    - the same number written two ways (`0` and `0.0`, in one file or across files): as text
      they are two classes, and a model trained on one never scores on the other;
    - fewer than 2 test labels: macro-F1 needs at least 2 classes;
    - a query label the test set never has: macro-F1 over the target labels would average in a
      class whose F1 is 0 whatever the model does;
    - a test label the pool never has: no selection can learn it, its F1 is 0 by construction.

    A test label the query set never has is allowed, and logged as a warning.
    """
    spellings: dict[float, tuple[str, str]] = {}
    for role in ROLES:
        for label in frames[role]["label"].unique():
            value = _as_number(label)
            if value is None:
                continue
            first = spellings.setdefault(value, (role, label))
            if first[1] != label:
                raise TaskselectError(
                    f"{paths[role]}: column {label_column!r} has label {label!r} where {paths[first[0]]} has "
                    f"{first[1]!r}: labels are compared as text, write the same class the same way in every file"
                )
    labels = {role: frames[role]["label"].value_counts() for role in ROLES}
    if len(labels["test"]) < 2:
        raise TaskselectError(
            f"{paths['test']}: column {label_column!r} holds one class only ({labels['test'].index[0]!r}); "
            "scoring needs at least 2"
        )
    for role, other, why in (
        ("query", "test", "macro-F1 would average in a class the test set cannot score; remove its query rows "
                          "or add test rows of it"),
        ("test", "pool", "no selection can learn it (its F1 would be 0 by construction); remove its test rows or "
                         "add pool rows of it"),
    ):
        absent = labels[role].index.difference(labels[other].index)
        if len(absent):
            label, rows = absent[0], int(labels[role][absent[0]])
            more = f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""
            raise TaskselectError(
                f"{paths[role]}: column {label_column!r}: label {label!r} ({rows} row{'' if rows == 1 else 's'}){more} "
                f"never occurs in {paths[other]}: {why}"
            )
    unshown = labels["test"].index.difference(labels["query"].index)
    if len(unshown):  # allowed (a task may have rare labels), but every selector aims at the queries
        logger.warning(
            "%s: label%s %s (%d test rows) never occur%s in %s: the selectors aim at the query examples, so a "
            "selection holds these labels only by chance and auto cannot score them", paths["test"],
            "s" if len(unshown) > 1 else "", ", ".join(map(repr, unshown)), int(labels["test"][unshown].sum()),
            "" if len(unshown) > 1 else "s", paths["query"])


def _as_number(label: str) -> float | None:
    try:
        value = float(label)
    except ValueError:
        return None
    return value if np.isfinite(value) else None


def _describe(value) -> str:
    """How a bad cell is named in an error: empty, or its type and a short repr."""
    if value is None or (isinstance(value, float) and value != value):
        return "an empty cell"
    if isinstance(value, str):
        return repr(value) if value else "an empty cell"
    if isinstance(value, (list, tuple, np.ndarray)):
        kind = "a list"
    elif isinstance(value, (bool, np.bool_)):
        kind = "the boolean"
    elif isinstance(value, (int, float, np.number)):
        kind = "the number"
    else:
        kind = f"a {type(value).__name__}"
    text = repr(value.tolist() if isinstance(value, np.ndarray) else value)
    return f"{kind} {text[:40]}{'...' if len(text) > 40 else ''}"


def _label_text(value) -> str | None:
    """A label as text (JSON and Parquet may hold numbers); None where no label is given."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return None if value != value else str(float(value))
    return None


def _read_custom(path: Path, role: str, text_column: str, label_column: str,
                 label_optional: bool = False) -> pd.DataFrame:
    """The file's rows as columns id, text, label, source; without label when `label_optional`
    and the file has no label column."""
    frame = read_table(path)
    if frame.empty:
        raise TaskselectError(f"{path}: no rows; the {role} set needs at least one")
    labelled = label_column in frame.columns or not label_optional
    for column in (text_column, label_column) if labelled else (text_column,):
        if column not in frame.columns:
            unlabelled = {"pool": " (a pool without labels is for selection only: leave data.test out)",
                          "query": " (with a labelled pool the query examples carry labels too: the task's label set "
                                   "and auto's cross-validation read them)"}.get(role, "") if column == label_column else ""
            key = "text_column" if column == text_column else "label_column"
            raise TaskselectError(
                f"{path}: no column {column!r}; columns are {', '.join(map(str, frame.columns))}{unlabelled}; "
                f"set data.{key} to yours (-S data.{key}=<column>)"
            )

    texts = frame[text_column]
    bad_text = ~texts.map(lambda t: isinstance(t, str) and bool(t.strip()))
    if bad_text.any():
        row = int(np.argmax(bad_text.to_numpy()))
        raise TaskselectError(
            f"{path}: column {text_column!r}, row {row + 1}: expected non-empty text, "
            f"got {_describe(texts.iloc[row])}{_others(bad_text)}"
        )
    labels = frame[label_column].map(_label_text) if labelled else None
    if labelled and labels.isna().any():
        row = int(np.argmax(labels.isna().to_numpy()))
        unlabelled = " (a pool without labels has no label column at all)" if role == "pool" else ""
        raise TaskselectError(
            f"{path}: column {label_column!r}, row {row + 1}: expected a label (text or number), "
            f"got {_describe(frame[label_column].iloc[row])}{_others(labels.isna())}{unlabelled}"
        )

    if "id" in frame.columns:
        ids = frame["id"].astype(str)
        if ids.duplicated().any():
            raise TaskselectError(
                f"{path}: column 'id' repeats {ids[ids.duplicated()].iloc[0]!r}; ids must be unique"
            )
    else:
        ids = [f"{role}:{row}" for row in range(1, len(frame) + 1)]
    sources = role
    if role == "pool" and "source" in frame.columns:
        sources = frame["source"].map(lambda s: _label_text(s) or role)
    columns = {"id": ids, "text": texts.str.strip(), "label": None if labels is None else labels.astype(str),
               "source": sources}
    return pd.DataFrame({k: v for k, v in columns.items() if v is not None}).reset_index(drop=True)


def _others(bad: pd.Series) -> str:
    """' (and 2 more rows: 9, 12)' after the first bad row of a column, so that one refusal
    says how many rows to mend; empty when it is the only one."""
    rows = np.flatnonzero(bad.to_numpy())[1:] + 1
    if not rows.size:
        return ""
    listed = ", ".join(map(str, rows[:5])) + (", ..." if rows.size > 5 else "")
    return f" (and {rows.size} more row{'s' if rows.size > 1 else ''}: {listed})"


def prepare_benchmark(params: DataParams) -> Benchmark:
    """The custom benchmark when any of the files is given, else the packaged one."""
    if not params.custom:
        benchmark = build_benchmark(
            params.target, params.cap_per_source, params.n_query, params.max_test, params.seed
        )
        test = f"target {params.target!r}'s test set (data.max_test {params.max_test})"
    else:
        missing = [f"data.{role}" for role in ("pool", "query") if getattr(params, role) is None]
        if missing:
            raise TaskselectError(
                f"{', '.join(missing)}: missing; give data.pool and data.query (and data.test, unless the pool "
                "has no labels) or none of them"
            )
        benchmark = load_custom_benchmark(
            params.pool, params.query, params.test, params.text_column, params.label_column
        )
        test = str(params.test)
    warn_coarse_test(benchmark, test)
    return benchmark


def warn_coarse_test(benchmark: Benchmark, where: str) -> None:
    """Warn when one test row of the rarest label moves macro-F1 by a point or more.

    Predicting one of a label's n rows otherwise, when the rest are right, lowers that label's
    F1 by 1/(2n - 1), and macro-F1 by that over the number of target labels. Differences between
    selections of a few such steps then rarely hold on this test set (the tables' (k/n)): allowed,
    since the verdict's intervals say so, but the user is told why."""
    if benchmark.test.empty:  # an unlabelled pool: nothing is scored
        return
    counts = benchmark.test["label"].value_counts()
    label = counts.sort_index().idxmin()  # the rarest; ties to the first in label order
    rows = int(counts[label])
    step = 100 / ((2 * rows - 1) * len(benchmark.target_labels))
    if step >= 1:
        alike = int((counts == rows).sum()) - 1  # labels as rare as it
        logger.warning(
            "%s: label %r%s has %d test row%s: one of them predicted otherwise moves macro-F1 by about %.1f points, "
            "so differences between selections of a few points will rarely hold on it (the (k/n) after each Δ); "
            "more test rows of each label resolve smaller ones", where, label,
            f" (and {alike} more label{'s' if alike > 1 else ''})" if alike else "", rows, "" if rows == 1 else "s", step)
