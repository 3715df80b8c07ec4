"""The bad-input corpus: every case is refused with exit code 2 and exactly one `error:` line
naming the thing and what was expected, without a traceback, before anything is written.

One small real workspace (the packaged airline benchmark at a tiny size, every stage run once,
logged to MLflow) is shared by all cases; each case runs the real `taskselect` command in this
process (a few as real subprocesses, for the real exit code) and the workspace's data/, embedding
cache, mlflow.db and params.yaml must be byte-identical afterwards. No case embeds anything.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import taskselect
from taskselect.data import SOURCES

TINY = """\
data: {cap_per_source: 10, n_query: 10, max_test: 30}
embed: {cache_dir: cache}
select:
  methods: [tsds, random, full]
  budgets: [0.1]
  tsds: {max_k: 60, kde_k: 30}
track: {tracking_uri: "sqlite:///mlflow.db"}
"""
POOL_ROWS = 14 * 10  # every packaged source capped at 10 rows


def _table(source: str, n: int) -> pd.DataFrame:
    """`n` real rows of a packaged source, its labels taking turns (columns text, label): every
    slice of as many rows as there are labels holds each label once."""
    rows = SOURCES[source].load()
    turn = rows.groupby("label").cumcount()
    return rows.assign(turn=turn).sort_values(["turn", "label"])[["text", "label"]].head(n).reset_index(drop=True)


def _write_bad_files(root: Path) -> None:
    """The good user files (files/) and every damaged variant the cases name (bad/)."""
    files, bad = root / "files", root / "bad"
    files.mkdir()
    bad.mkdir()
    airline = _table("airline", 90)
    pool = pd.concat([airline.iloc[:45], _table("sms", 30), _table("trec", 30)], ignore_index=True)
    query, test = airline.iloc[45:60].reset_index(drop=True), airline.iloc[60:].reset_index(drop=True)
    pool.to_csv(files / "pool.csv", index=False)  # pandas' defaults: a tweet holding a bare \r stays unquoted
    query.to_json(files / "query.jsonl", orient="records", lines=True)
    test.to_parquet(files / "test.parquet")
    # numeric labels (0, 1, 2), as users often have
    code = {"negative": 0, "neutral": 1, "positive": 2}
    numeric = {name: frame.assign(label=frame["label"].map(code)) for name, frame in
               (("pool", airline.iloc[:45]), ("query", query), ("test", test))}
    numeric["pool"].to_csv(files / "num_pool.csv", index=False, quoting=csv.QUOTE_ALL)
    numeric["query"].to_json(files / "num_query.jsonl", orient="records", lines=True)
    numeric["test"].to_csv(files / "num_test.csv", index=False, quoting=csv.QUOTE_ALL)

    def write_csv(name, frame):
        frame.to_csv(bad / name, index=False, quoting=csv.QUOTE_ALL)

    def cell(frame, column, row, value):
        frame = frame.astype({column: object})
        frame.iloc[row, frame.columns.get_loc(column)] = value
        return frame

    write_csv("no_text.csv", pool.rename(columns={"text": "body"}))
    write_csv("no_label.csv", pool.drop(columns="label"))
    write_csv("empty_text.csv", cell(pool, "text", 4, ""))
    write_csv("blank_text.csv", cell(pool, "text", 6, "   "))
    write_csv("empty_label.csv", cell(pool, "label", 2, ""))
    write_csv("header_only.csv", pool.iloc[:0])
    (bad / "zero_bytes.csv").write_bytes(b"")
    write_csv("dup_ids.csv", pool.assign(id=["p"] * len(pool)))
    write_csv("one_class_test.csv", test.assign(label="negative"))
    write_csv("unseen_test_label.csv", cell(test, "label", 0, "furious"))
    write_csv("extra_query_label.csv", cell(query, "label", 1, "sarcastic"))
    write_csv("query_is_test.csv", test.head(20))
    numeric["test"].assign(label=numeric["test"]["label"].astype(float)).to_parquet(bad / "float_test.parquet")
    write_csv("float_spelling_query.csv", cell(numeric["query"].astype({"label": str}), "label", 0, "0.0"))
    write_csv("missing_field.csv", pool)
    pool.to_csv(bad / "semicolons.csv", index=False, sep=";")  # as Excel writes CSV where 0,5 is a number
    pool.to_csv(bad / "tabs.csv", index=False, sep="\t")
    text = (bad / "missing_field.csv").read_text().splitlines()
    (bad / "missing_field.csv").write_text("\n".join(text[:3] + ["only-a-text-no-label-field"] + text[3:]) + "\n")
    (bad / "pool.txt").write_text("text,label\nhello,a\n")
    (bad / "dir.csv").mkdir()

    lines = [json.dumps(r) for r in query.to_dict("records")]
    (bad / "broken.jsonl").write_text("\n".join(lines[:2] + ['{"text": "unterminated', *lines[2:]]) + "\n")
    (bad / "array_line.jsonl").write_text("\n".join(lines[:4] + ['["text", "label"]']) + "\n")
    (bad / "null_label.jsonl").write_text("\n".join(lines[:1] + ['{"text": "fine text", "label": null}']) + "\n")
    (bad / "number_text.jsonl").write_text("\n".join(lines[:2] + ['{"text": 42, "label": "negative"}']) + "\n")
    (bad / "list_label.jsonl").write_text("\n".join(lines[:3] + ['{"text": "a text", "label": ["a", "b"]}']) + "\n")
    (bad / "missing_key.jsonl").write_text("\n".join(lines[:2] + ['{"text": "no label key"}']) + "\n")
    write_csv("cp1252.csv", pool)
    (bad / "cp1252.csv").write_bytes((bad / "cp1252.csv").read_text().replace("@", "\u20ac", 1).encode("cp1252", "replace"))
    (bad / "latin1.jsonl").write_bytes(("\n".join(lines[:2]) + '\n{"text": "caf\xe9", "label": "neutral"}\n').encode("latin-1"))
    mixed = [json.dumps({"text": t, "label": v}) for t, v in zip(query["text"], [0, 1, 2, 0.0, 1, 2] * 5)]
    (bad / "mixed_numbers.jsonl").write_text("\n".join(mixed) + "\n")
    (bad / "empty.jsonl").write_text("\n\n")

    pd.DataFrame({"text": [["a", "b"]] * len(test), "label": test["label"]}).to_parquet(bad / "list_text.parquet")
    cell(test, "text", 3, None).to_parquet(bad / "null_text.parquet")
    cell(test, "label", 5, None).to_parquet(bad / "null_label.parquet")
    (bad / "garbage.parquet").write_text("this is not parquet\n")

    # parameter files
    (bad / "dup_key.yaml").write_text("select:\n  tsds:\n    alpha: 0.5\n    C: 1.0\n    alpha: 0.9\n")
    (bad / "dup_section.yaml").write_text("data:\n  seed: 1\nselect:\n  budgets: [0.1]\ndata:\n  seed: 2\n")
    (bad / "bad_indent.yaml").write_text("select:\n  tsds:\n    alpha: 0.5\n   C: 1.0\n")
    (bad / "unclosed.yaml").write_text("select:\n  budgets: [0.1, 0.2\nembed:\n  batch_size: 8\n")
    (bad / "tab.yaml").write_text("select:\n\ttsds: {}\n")
    (bad / "list.yaml").write_text("- data\n- select\n")
    (bad / "scalar.yaml").write_text("just a sentence\n")
    (bad / "unknown_section.yaml").write_text("selekt:\n  budgets: [0.1]\n")
    (bad / "inf.yaml").write_text("select:\n  tsds:\n    C: .inf\n")
    (bad / "nan_budget.yaml").write_text("select:\n  budgets: [.nan]\n")
    (bad / "latin1.yaml").write_bytes("data:\n  target: caf\xe9\n".encode("latin-1"))
    (bad / "earlier_run.yaml").write_text(TINY.replace("max_test: 30}", "max_test: 30, pool: files/pool.csv, "
                                                       "query: files/query.jsonl, test: files/test.parquet}"))

    # arrays
    rng = np.random.default_rng(0)
    np.save(bad / "q.npy", rng.normal(size=(5, 8)).astype("float32"))
    np.save(bad / "c.npy", rng.normal(size=(40, 8)).astype("float32"))
    (bad / "text.npy").write_text("0.1 0.2 0.3\n0.4 0.5 0.6\n")
    np.save(bad / "pickled.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with open(bad / "archive.npy", "wb") as fh:
        np.savez(fh, a=np.zeros((3, 8)))
    np.save(bad / "flat.npy", np.zeros(8, dtype="float32"))
    with_nan = rng.normal(size=(40, 8)).astype("float32")
    with_nan[7, 3] = np.nan
    np.save(bad / "nan.npy", with_nan)
    np.save(bad / "dim16.npy", rng.normal(size=(40, 16)).astype("float32"))
    np.save(bad / "strings.npy", np.array([["a", "b"], ["c", "d"]]))
    np.save(bad / "empty.npy", np.zeros((0, 8), dtype="float32"))
    full = (bad / "c.npy").read_bytes()
    (bad / "truncated.npy").write_bytes(full[: len(full) // 2])
    (bad / "a_file").write_text("not a directory\n")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A real prepared workspace (packaged airline benchmark, 140 pool rows, every stage run once
    and logged to MLflow) beside good and damaged user files."""
    from taskselect import stages, tracking
    from taskselect.config import load_params

    root = tmp_path_factory.mktemp("bad-input")
    (root / "params.yaml").write_text(TINY)
    old = Path.cwd()
    os.chdir(root)
    try:
        params = load_params(root / "params.yaml")
        ws = stages.Workspace(Path("data"))
        stages.prepare(params.data, ws)
        stages.embed(params.embed, ws)
        stages.index(params.index, ws)
        for run in stages.plan_runs(params.select):
            stages.select(params.select, run, ws)
            stages.finetune(params.finetune, run, ws)
            stages.evaluate(params.evaluate, run, ws)
        stages.report(params, ws, Path("data/results"))
        tracking.log_pipeline(Path("data"), Path("data/results"), uri=params.track.tracking_uri)
    finally:
        os.chdir(old)
    _write_bad_files(root)
    return root


def state(root: Path) -> dict[str, str]:
    """sha256 of every file (and the names of the directories) of what a refusal must not touch."""
    digests = {}
    for top in ("data", "cache", "mlflow.db", "params.yaml"):
        path = root / top
        for item in sorted([path, *path.rglob("*")] if path.is_dir() else [path]):
            rel = str(item.relative_to(root))
            digests[rel] = hashlib.sha256(item.read_bytes()).hexdigest() if item.is_file() else "dir"
    return digests


OWN = ["--pool", "files/pool.csv", "--query", "files/query.jsonl", "--test", "files/test.parquet"]
NUM = ["--pool", "files/num_pool.csv", "--query", "files/num_query.jsonl", "--test", "files/num_test.csv"]


def own(role: str, path: str, files: list[str] = OWN) -> list[str]:
    """The good user files with one of them replaced."""
    args = list(files)
    args[args.index(f"--{role}") + 1] = path
    return args


EMB = ["select-embeddings", "--size", "10", "--out", "sel"]


def emb(query: str = "bad/q.npy", candidates: str = "bad/c.npy", *extra: str) -> list[str]:
    return [*EMB, "--query", query, "--candidates", candidates, *extra]


# id: (arguments of `taskselect`, fragments the error line must hold)
CASES: dict[str, tuple[list[str], list[str]]] = {
    # -- parameters on the command line (-S), refused while loading them
    "alpha above 1": (["prepare", "-S", "select.tsds.alpha=2"], ["select.tsds.alpha", "less than or equal to 1", "got 2"]),
    "alpha negative": (["prepare", "-S", "select.tsds.alpha=-0.1"], ["select.tsds.alpha", "greater than or equal to 0"]),
    "C infinite": (["prepare", "-S", "select.tsds.C=.inf"], ["select.tsds.C", "finite number"]),
    "C minus infinite": (["prepare", "-S", "select.tsds.C=-.inf"], ["select.tsds.C", "finite number"]),
    "C NaN": (["prepare", "-S", "select.tsds.C=.nan"], ["select.tsds.C", "finite number"]),
    "C zero": (["prepare", "-S", "select.tsds.C=0"], ["select.tsds.C", "greater than 0"]),
    "sigma negative": (["prepare", "-S", "select.tsds.sigma=-1"], ["select.tsds.sigma", "greater than or equal to 0"]),
    "sigma infinite": (["prepare", "-S", "select.tsds.sigma=.inf"], ["select.tsds.sigma", "finite number"]),
    "preset a list": (["prepare", "-S", "select.tsds.preset=[a]"], ["select.tsds.preset", "Input should be 'custom'"]),
    "alpha a preset would ignore": (["prepare", "-S", "select.tsds.preset=paper-instruction", "-S", "select.tsds.alpha=0.5"],
                                    ["select.tsds: alpha 0.5 would be ignored", "preset 'paper-instruction' sets alpha 0.075"]),
    "max_k zero": (["prepare", "-S", "select.tsds.max_k=0"], ["select.tsds.max_k", "greater than or equal to 1"]),
    "kde_k text": (["prepare", "-S", "select.tsds.kde_k=abc"], ["select.tsds.kde_k", "valid integer", "'abc'"]),
    "kde_k fraction": (["prepare", "-S", "select.tsds.kde_k=2.5"], ["select.tsds.kde_k", "integer"]),
    "metric unknown": (["prepare", "-S", "select.tsds.metric=manhattan"], ["select.tsds.metric", "'l2' or 'cosine'"]),
    "replace not boolean": (["prepare", "-S", "select.tsds.replace=perhaps"], ["select.tsds.replace", "boolean"]),
    "kde_exact_max negative": (["prepare", "-S", "select.tsds.kde_exact_max=-1"], ["select.tsds.kde_exact_max", "greater than or equal to 0"]),
    "misspelt parameter": (["prepare", "-S", "select.tsds.alhpa=0.5"], ["select.tsds.alhpa", "unknown parameter"]),
    "unknown section": (["prepare", "-S", "selekt.budgets=[0.1]"], ["selekt", "unknown parameter"]),
    "unclosed list (bad YAML)": (["prepare", "-S", "select.budgets=[0.1,"], ["override 'select.budgets=[0.1,'", "not valid YAML"]),
    "unclosed mapping (bad YAML)": (["prepare", "-S", "select.tsds={alpha: 1"], ["override", "not valid YAML"]),
    "budget neither count nor fraction": (["prepare", "-S", "select.budgets=[12.5]"], ["select.budgets", "neither a whole row count nor a fraction"]),
    "budget negative": (["prepare", "-S", "select.budgets=[-1]"], ["select.budgets.0", "greater than 0"]),
    "budget zero": (["prepare", "-S", "select.budgets=[0]"], ["select.budgets.0", "greater than 0"]),
    "compared against a baseline": (["prepare", "-S", "report.against=[random]"], ["report.against", "random is a baseline"]),
    "compared against an unknown selector": (["prepare", "-S", "report.against=[tsdss]"], ["report.against.0", "'tsds'"]),
    "budget infinite": (["prepare", "-S", "select.budgets=[.inf]"], ["select.budgets.0", "finite number"]),
    "budget text": (["prepare", "-S", "select.budgets=[abc]"], ["select.budgets.0", "valid number"]),
    "budgets empty": (["prepare", "-S", "select.budgets=[]"], ["select.budgets", "at least 1 item"]),
    "method unknown": (["prepare", "-S", "select.methods=[tsds, magic]"], ["select.methods.1", "'magic'"]),
    "methods empty": (["prepare", "-S", "select.methods=[]"], ["select.methods", "at least 1 item"]),
    "seed text": (["prepare", "-S", "select.seeds=[a]"], ["select.seeds.0", "valid integer"]),
    "target unknown": (["prepare", "-S", "data.target=imdb"], ["data.target", "'airline_sentiment'", "'imdb'"]),
    "cap zero": (["prepare", "-S", "data.cap_per_source=0"], ["data.cap_per_source", "greater than or equal to 1"]),
    "one query row": (["prepare", "-S", "data.n_query=1"], ["data.n_query", "greater than or equal to 2"]),
    "max_test negative": (["prepare", "-S", "data.max_test=-5"], ["data.max_test", "greater than or equal to 1"]),
    "data seed fraction": (["prepare", "-S", "data.seed=1.5"], ["data.seed", "integer"]),
    "batch size zero": (["prepare", "-S", "embed.batch_size=0"], ["embed.batch_size", "greater than or equal to 1"]),
    "sequence too short": (["prepare", "-S", "embed.max_seq_length=4"], ["embed.max_seq_length", "greater than or equal to 8"]),
    "sequence too long": (["prepare", "-S", "embed.max_seq_length=1000"], ["embed.max_seq_length", "less than or equal to 512"]),
    "shard rows zero": (["prepare", "-S", "embed.shard_rows=0"], ["embed.shard_rows", "greater than or equal to 1"]),
    "index kind unknown": (["prepare", "-S", "index.kind=annoy"], ["index.kind", "'flat'"]),
    "nprobe zero": (["prepare", "-S", "index.nprobe=0"], ["index.nprobe", "greater than or equal to 1"]),
    "trainer unknown": (["prepare", "-S", "finetune.trainer=bert"], ["finetune.trainer", "'head' or 'transformer'"]),
    "head C zero": (["prepare", "-S", "finetune.head.C=0"], ["finetune.head.C", "greater than 0"]),
    "head C infinite": (["prepare", "-S", "finetune.head.C=.inf"], ["finetune.head.C", "finite number"]),
    "val_fraction 1": (["prepare", "-S", "finetune.transformer.val_fraction=1"], ["finetune.transformer.val_fraction", "less than 1"]),
    "learning rate NaN": (["prepare", "-S", "finetune.transformer.learning_rate=.nan"], ["finetune.transformer.learning_rate", "finite number"]),
    "confidence 1": (["prepare", "-S", "evaluate.confidence=1"], ["evaluate.confidence", "less than 1"]),
    "n_boot zero": (["prepare", "-S", "evaluate.n_boot=0"], ["evaluate.n_boot", "greater than or equal to 1"]),
    "tracking switch not boolean": (["prepare", "-S", "track.enabled=maybe"], ["track.enabled", "boolean"]),
    "knn-kde sigma zero": (["prepare", "-S", "select.knn_kde.sigma=0"], ["select.knn_kde.sigma", "greater than 0"]),
    "dsir ngrams 4": (["prepare", "-S", "select.dsir.ngrams=4"], ["select.dsir.ngrams", "less than or equal to 3"]),
    "s2l clusters zero": (["prepare", "-S", "select.s2l.clusters=0"], ["select.s2l.clusters", "greater than or equal to 1"]),
    "no equals sign": (["prepare", "-S", "no-equals-sign"], ["override 'no-equals-sign'", "expected KEY=VALUE"]),
    "no key": (["prepare", "-S", "=5"], ["override '=5'", "expected KEY=VALUE"]),
    "empty key part": (["prepare", "-S", "select..alpha=1"], ["override 'select..alpha=1'", "empty part"]),
    "value for a section": (["prepare", "-S", "select.tsds=5"], ["select.tsds", "valid dictionary"]),
    "parameter used as a section": (["prepare", "-S", "select.tsds.alpha.x=1"], ["select.tsds.alpha", "valid number"]),
    # -- parameters only the selector or a model can judge: still before anything is written
    "loss band inverted": (["prepare", "-S", "select.methods=[loss]", "-S", "select.loss.low=0.96"], ["select.loss: low 0.96, high 0.95: expected low < high"]),
    "loss band too narrow for its neighbourhood": (["prepare", "-S", "select.methods=[loss]", "-S", "select.loss.neighbourhood=1"], ["neighbourhood 1.0", "at least 1 / (high - low)"]),
    "embedding model missing": (["prepare", "-S", "embed.model=/no/such/model"], ["embed.model '/no/such/model'", "local model directory"]),
    "transformer model missing": (["prepare", "-S", "finetune.trainer=transformer", "-S", "finetune.transformer.model=/no/model"], ["finetune.transformer.model '/no/model'", "local model directory"]),
    "cache dir is a file": (["prepare", "-S", "embed.cache_dir=bad/a_file"], ["bad/a_file", "embed.cache_dir", "expected a directory"]),
    "cache dir under a file": (["prepare", "-S", "embed.cache_dir=bad/a_file/cache"], ["bad/a_file/cache", "embed.cache_dir", "is a file"]),
    # -- parameter files
    "params file missing": (["prepare", "--params", "bad/none.yaml"], ["bad/none.yaml", "parameters file not found"]),
    "duplicate key": (["prepare", "--params", "bad/dup_key.yaml"], ["bad/dup_key.yaml, line 5", "duplicate key 'alpha' (first at line 3)"]),
    "duplicate section": (["prepare", "--params", "bad/dup_section.yaml"], ["bad/dup_section.yaml, line 5", "duplicate key 'data' (first at line 1)"]),
    "bad indentation": (["prepare", "--params", "bad/bad_indent.yaml"], ["bad/bad_indent.yaml, line 4", "not valid YAML"]),
    "unclosed list in file": (["prepare", "--params", "bad/unclosed.yaml"], ["bad/unclosed.yaml, line 3", "not valid YAML"]),
    "tab indentation": (["prepare", "--params", "bad/tab.yaml"], ["bad/tab.yaml, line 2", "not valid YAML"]),
    "list instead of sections": (["prepare", "--params", "bad/list.yaml"], ["bad/list.yaml", "expected a mapping of sections"]),
    "sentence instead of sections": (["prepare", "--params", "bad/scalar.yaml"], ["bad/scalar.yaml", "expected a mapping of sections"]),
    "unknown section in file": (["prepare", "--params", "bad/unknown_section.yaml"], ["bad/unknown_section.yaml", "selekt", "unknown parameter"]),
    "infinite C in file": (["prepare", "--params", "bad/inf.yaml"], ["bad/inf.yaml", "select.tsds.C", "finite number"]),
    "NaN budget in file": (["prepare", "--params", "bad/nan_budget.yaml"], ["bad/nan_budget.yaml", "select.budgets.0", "finite number"]),
    "params not UTF-8": (["prepare", "--params", "bad/latin1.yaml"], ["bad/latin1.yaml", "cannot read the parameters file"]),
    # -- your own files: found, readable, columns, cells
    "pool missing": (["prepare", *own("pool", "bad/none.csv")], ["bad/none.csv", "file not found"]),
    "pool suffix unknown": (["prepare", *own("pool", "bad/pool.txt")], ["bad/pool.txt", "unsupported file type '.txt'", ".csv"]),
    "pool is a directory": (["prepare", *own("pool", "bad/dir.csv")], ["bad/dir.csv", "file not found"]),
    "only the pool given": (["prepare", "--pool", "files/pool.csv"], ["data.query: missing"]),
    "text column missing": (["prepare", *own("pool", "bad/no_text.csv")], ["bad/no_text.csv", "no column 'text'", "columns are body, label", "set data.text_column to yours"]),
    "text column option wrong": (["prepare", *OWN, "-S", "data.text_column=tweet"], ["files/pool.csv", "no column 'tweet'"]),
    "label column missing": (["prepare", *own("pool", "bad/no_label.csv")], ["bad/no_label.csv", "no column 'label'", "set data.label_column to yours"]),
    "query label column missing": (["prepare", *own("query", "bad/no_label.csv")],
                                   ["bad/no_label.csv", "no column 'label'", "the query examples carry labels too"]),
    "CSV empty text": (["prepare", *own("pool", "bad/empty_text.csv")], ["bad/empty_text.csv", "column 'text', row 5", "expected non-empty text, got an empty cell"]),
    "CSV blank text": (["prepare", *own("pool", "bad/blank_text.csv")], ["bad/blank_text.csv", "column 'text', row 7", "expected non-empty text, got '   '"]),
    "CSV empty label": (["prepare", *own("pool", "bad/empty_label.csv")], ["bad/empty_label.csv", "column 'label', row 3", "expected a label"]),
    "CSV row missing a field": (["prepare", *own("pool", "bad/missing_field.csv")], ["bad/missing_field.csv", "column 'label', row 3", "expected a label", "an empty cell"]),
    "CSV header only": (["prepare", *own("pool", "bad/header_only.csv")], ["bad/header_only.csv", "no rows", "pool set"]),
    "CSV zero bytes": (["prepare", *own("test", "bad/zero_bytes.csv")], ["error: bad/zero_bytes.csv: empty; expected a header row"]),
    "ids repeated": (["prepare", *own("pool", "bad/dup_ids.csv")], ["bad/dup_ids.csv", "column 'id' repeats 'p'", "unique"]),
    "query made of test rows": (["prepare", *own("query", "bad/query_is_test.csv")], ["bad/query_is_test.csv", "every row repeats a text of files/test.parquet", "give examples of the task that the test set does not hold"]),
    "JSONL broken line": (["prepare", *own("query", "bad/broken.jsonl")], ["bad/broken.jsonl: line 3", "not valid JSON"]),
    "JSONL array line": (["prepare", *own("query", "bad/array_line.jsonl")], ["bad/array_line.jsonl: line 5", "expected a JSON object per line, got list"]),
    "JSONL null label": (["prepare", *own("query", "bad/null_label.jsonl")], ["bad/null_label.jsonl", "column 'label', row 2", "expected a label", "an empty cell"]),
    "JSONL number as text": (["prepare", *own("query", "bad/number_text.jsonl")], ["bad/number_text.jsonl", "column 'text', row 3", "expected non-empty text, got the number 42"]),
    "JSONL list as label": (["prepare", *own("query", "bad/list_label.jsonl")], ["bad/list_label.jsonl", "column 'label', row 4", "got a list ['a', 'b']"]),
    "JSONL missing key": (["prepare", *own("query", "bad/missing_key.jsonl")], ["bad/missing_key.jsonl", "column 'label', row 3", "an empty cell"]),
    "CSV with semicolons": (["prepare", *own("pool", "bad/semicolons.csv")], ["bad/semicolons.csv", "separates its columns with semicolons, not commas"]),
    "TSV named .csv": (["prepare", *own("pool", "bad/tabs.csv")], ["error: bad/tabs.csv: its header separates its columns with tabs", "name it .tsv"]),
    "CSV not UTF-8": (["prepare", *own("pool", "bad/cp1252.csv")], ["bad/cp1252.csv", "not UTF-8 text", "0x80", "save it as UTF-8"]),
    "JSONL not UTF-8": (["prepare", *own("query", "bad/latin1.jsonl")], ["bad/latin1.jsonl: line 3", "not UTF-8"]),
    "JSONL blank lines only": (["prepare", *own("query", "bad/empty.jsonl")], ["bad/empty.jsonl", "no rows", "query set"]),
    "Parquet list column as text": (["prepare", *own("test", "bad/list_text.parquet")], ["bad/list_text.parquet", "column 'text', row 1", "expected non-empty text, got a list"]),
    "Parquet null text": (["prepare", *own("test", "bad/null_text.parquet")], ["bad/null_text.parquet", "column 'text', row 4", "an empty cell"]),
    "Parquet null label": (["prepare", *own("test", "bad/null_label.parquet")], ["bad/null_label.parquet", "column 'label', row 6", "an empty cell"]),
    "Parquet that is text": (["prepare", *own("test", "bad/garbage.parquet")], ["bad/garbage.parquet", "cannot read as Parquet"]),
    # -- your own files: label spaces that would make macro-F1 silently wrong
    "one test class": (["prepare", *own("test", "bad/one_class_test.csv")], ["bad/one_class_test.csv", "one class only ('negative')", "at least 2"]),
    "test label never in the pool": (["prepare", *own("test", "bad/unseen_test_label.csv")], ["bad/unseen_test_label.csv", "label 'furious' (1 row)", "never occurs in files/pool.csv", "no selection can learn it", "remove its test rows or add pool rows of it"]),
    "query label never in the test set": (["prepare", *own("query", "bad/extra_query_label.csv")], ["bad/extra_query_label.csv", "label 'sarcastic' (1 row)", "never occurs in files/test.parquet", "macro-F1", "remove its query rows or add test rows of it"]),
    "float labels against int labels": (["prepare", *own("test", "bad/float_test.parquet", NUM)], ["bad/float_test.parquet", "'0.0'", "files/num_pool.csv has '0'", "compared as text"]),
    "0 and 0.0 in one file": (["prepare", *own("query", "bad/mixed_numbers.jsonl", NUM)], ["bad/mixed_numbers.jsonl", "label '0.0'", "has '0'"]),
    "0.0 spelt in one query row": (["prepare", *own("query", "bad/float_spelling_query.csv", NUM)], ["bad/float_spelling_query.csv", "label '0.0'", "files/num_pool.csv has '0'"]),
    # -- what the run plans against the pool: refused before prepare replaces anything
    "budget larger than your pool (prepare)": (["prepare", *OWN, "-S", "select.budgets=[500]"], ["select.budgets", "budget 500: 500 rows requested but the pool has 105", "data.pool"]),
    "budget larger than your pool (run)": (["run", *OWN, "--budgets", "0.05,500"], ["select.budgets", "budget 500", "the pool has 105"]),
    "budget larger than the benchmark (prepare)": (["prepare", "-S", "select.budgets=[0.1, 5000]"], ["select.budgets", "budget 5000", f"the pool has {POOL_ROWS}", "benchmark airline_sentiment"]),
    "budget larger than the benchmark (run)": (["run", "--budgets", "5000"], ["budget 5000", f"the pool has {POOL_ROWS}"]),
    "a filter keeping fewer rows than the budget (run)": (["run", "--budgets", "0.05", "-S", "select.filter.method=negcliploss",
                                                            "-S", "select.filter.keep=0.01"],
                                                           ["select.filter.keep 0.01: keeps", "fewer than the", "raise keep or lower the budget"]),
    "run with an unknown method": (["run", "--methods", "tsds,magic"], ["--methods 'magic'", "expected one of", "tsds"]),
    "run with an unknown target": (["run", "--target", "imdb"], ["data.target", "'imdb'"]),
    "run with a target and your files": (["run", "--target", "trec", *OWN], ["--target with --pool", "not both"]),
    "run with a budget of one row": (["run", "--budgets", "1"], ["--budgets '1'", "the whole pool is the method full"]),
    "run with the whole pool as a budget": (["run", "--budgets", "100%"], ["--budgets '100%'", "budget 1.0: the whole pool is the method full"]),
    "budget of one row in the parameters": (["prepare", "-S", "select.budgets=[0.05, 1]"], ["select.budgets", "budget 1: the whole pool is the method full"]),
    "export a budget in words": (["export", "--budget", "five", "--out", "x.csv"], ["--budget 'five'", "a percentage (5%)"]),
    "run with a budget in words": (["run", "--budgets", "5%,ten"], ["--budgets 'ten'", "percentage (5%)", "not a number"]),
    "run with a seed in words": (["run", "--seeds", "0,one"], ["--seeds '0,one'", "whole numbers"]),
    "bench with a budget in words": (["bench", "--budgets", "5%,ten"], ["--budgets 'ten'", "percentage (5%)", "not a number"]),
    "bench with a fractional seed": (["bench", "--transformer-seeds", "0.5"], ["--transformer-seeds '0.5'", "whole numbers"]),
    # an earlier run's files in the parameters: the data options describe the data whole
    "a new pool alone, the earlier query kept": (["prepare", "--params", "bad/earlier_run.yaml", "--pool", "files/num_pool.csv"], ["data.query: missing"]),
    "a target after your files": (["run", "--params", "bad/earlier_run.yaml", "--target", "trec", "--budgets", "5000"], ["budget 5000", "benchmark trec"]),
    "run with a data dir that is a file": (["run", "--data-dir", "bad/a_file"], ["bad/a_file", "--data-dir", "expected a directory"]),
    "run with results under a file": (["run", "--out", "bad/a_file/results"], ["bad/a_file/results", "--out", "is a file"]),
    "auto with more folds than query rows (run)": (["run", *OWN, "--methods", "tsds,auto", "-S", "select.auto.folds=20"], ["select.auto.folds 20", "there are 15", "data.query"]),
    "auto with more folds than prepared query rows (select)": (["select", "-S", "select.methods=[auto]", "-S", "select.auto.folds=999"], ["select.auto.folds 999", "data/prepared"]),
    "run with a query label the test lacks": (["run", *own("query", "bad/extra_query_label.csv")], ["label 'sarcastic'", "never occurs in files/test.parquet"]),
    # -- stage commands (what DVC runs) on the prepared workspace
    "select budget text": (["select", "--budget", "abc"], ["--budget 'abc'", "expected a row count", "not a number"]),
    "select budget 1e9": (["select", "--budget", "1e9"], ["budget 1000000000", f"the pool has {POOL_ROWS}"]),
    "select budget negative": (["select", "--budget", "-3"], ["--budget '-3'", "greater than 0"]),
    "select budget zero": (["select", "--budget", "0"], ["--budget '0'", "greater than 0"]),
    "select budget 12.5": (["select", "--budget", "12.5"], ["--budget '12.5'", "neither a whole row count nor a fraction"]),
    "select budget infinite": (["select", "--budget", "inf"], ["--budget 'inf'", "finite number"]),
    "select method unknown": (["select", "--method", "magic"], ["--method 'magic'", "expected one of", "tsds"]),
    "select budget not planned": (["select", "--budget", "0.2"], ["no run matches", "budget=0.2"]),
    "select budgets too large": (["select", "-S", "select.budgets=[99999]"], ["budget 99999", f"the pool has {POOL_ROWS}", "data/prepared"]),
    "DVC matrix run too large": (["select", "--method", "tsds", "--budget", "99999", "--seed", "0"], ["budget 99999", f"the pool has {POOL_ROWS}"]),
    "finetune budget text": (["finetune", "--budget", "abc"], ["--budget 'abc'"]),
    "evaluate budget 1e9": (["evaluate", "--method", "tsds", "--budget", "1e9", "--seed", "0"], ["budget 1000000000", f"the pool has {POOL_ROWS}"]),
    "embed with a budget the pool cannot hold": (["embed", "-S", "select.budgets=[99999]"], ["budget 99999", f"the pool has {POOL_ROWS}"]),
    "index with an infinite C": (["index", "-S", "select.tsds.C=.inf"], ["select.tsds.C", "finite number"]),
    "report into a file": (["report", "--out", "bad/a_file"], ["bad/a_file", "--out", "expected a directory"]),
    # -- TSDS on your own arrays
    "text file as .npy": (emb(query="bad/text.npy"), ["bad/text.npy", "not a .npy array (--query)", ".npy header"]),
    "candidates missing": (emb(candidates="bad/none.npy"), ["bad/none.npy", "file not found (--candidates)"]),
    "archive as .npy": (emb(candidates="bad/archive.npy"), ["bad/archive.npy", "expected one array", ".npz archive"]),
    "pickled objects": (emb(candidates="bad/pickled.npy"), ["bad/pickled.npy", "not a readable .npy array (--candidates)", "Python objects"]),
    "truncated array": (emb(candidates="bad/truncated.npy"), ["bad/truncated.npy", "(--candidates)"]),
    "one-dimensional query": (emb(query="bad/flat.npy"), ["bad/flat.npy (--query)", "expected a 2-D array"]),
    "NaN in candidates": (emb(candidates="bad/nan.npy"), ["bad/nan.npy (--candidates)", "row 7", "NaN or infinite"]),
    "dimensions differ": (emb(query="bad/q.npy", candidates="bad/dim16.npy"), ["bad/q.npy (--query)", "dimension 8", "16"]),
    "strings as embeddings": (emb(candidates="bad/strings.npy"), ["bad/strings.npy (--candidates)", "expected numbers"]),
    "no candidates": (emb(candidates="bad/empty.npy"), ["bad/empty.npy (--candidates)", "non-empty array"]),
    "out is an existing file": (emb("bad/q.npy", "bad/c.npy", "--out", "bad/a_file"), ["bad/a_file", "--out", "expected a directory"]),
    "out under a file": (emb("bad/q.npy", "bad/c.npy", "--out", "bad/a_file/sel"), ["bad/a_file/sel", "--out", "is a file"]),
    "C infinite option": (emb("bad/q.npy", "bad/c.npy", "--C", "inf"), ["--C inf", "finite number"]),
    "alpha option above 1": (emb("bad/q.npy", "bad/c.npy", "--alpha", "2"), ["--alpha 2.0", "less than or equal to 1"]),
    "sigma option NaN": (emb("bad/q.npy", "bad/c.npy", "--sigma", "nan"), ["--sigma nan", "finite number"]),
    "metric option unknown": (emb("bad/q.npy", "bad/c.npy", "--metric", "manhattan"), ["--metric 'manhattan'", "'l2' or 'cosine'"]),
    "index option unknown": (emb("bad/q.npy", "bad/c.npy", "--index", "annoy"), ["--index 'annoy'", "flat, ivf or hnsw"]),
    "size zero": ([*emb(), "--size", "0"], ["size 0", "expected at least 1 row"]),
    "size above the candidates": ([*emb(), "--size", "41"], ["size 41", "more than the 40 candidates"]),
    "max-k above the candidates": (emb("bad/q.npy", "bad/c.npy", "--max-k", "41"), ["--max-k 41", "more than the 40 candidates"]),
    # -- comparing runs in MLflow
    "filter without a value": (["compare", "--filter", "params.method ="], ["--filter 'params.method ='", "not an MLflow run filter"]),
    "filter in plain words": (["compare", "--filter", "tsds only please"], ["--filter 'tsds only please'", "not an MLflow run filter"]),
    "format unknown": (["compare", "--format", "xml"], ["--format 'xml'", "table, csv, markdown or json"]),
}

# A handful run as real processes: the exit code and output a user sees, not a Python call's.
SUBPROCESS = ("budget larger than your pool (run)", "unclosed list (bad YAML)", "select budget text",
              "duplicate key", "text file as .npy", "Parquet list column as text")


def in_process(args: list[str], capsys) -> tuple[int, str]:
    """`taskselect ARGS` through its real entry point in this process: (exit code, stdout + stderr)."""
    from taskselect.cli import main

    argv = sys.argv
    sys.argv = ["taskselect", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
    out, err = capsys.readouterr()
    return code, out + err


def test_the_corpus_is_large_enough_and_the_readme_counts_it():
    assert len(CASES) >= 100
    assert set(SUBPROCESS) <= set(CASES)
    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    assert f"`tests/test_bad_input.py` checks {len(CASES)} cases" in readme


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_clear_line_and_touches_nothing(case, workspace, capsys, monkeypatch):
    args, fragments = CASES[case]
    monkeypatch.chdir(workspace)
    before = state(workspace)
    if case in SUBPROCESS:
        result = taskselect(*args, cwd=workspace)
        code, output = result.returncode, result.stdout + result.stderr
    else:
        code, output = in_process(args, capsys)
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert "Traceback" not in output, output
    assert code == 2, output
    assert len(errors) == 1, output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert state(workspace) == before
    assert not (workspace / "sel").exists()


def test_a_model_that_predicts_one_class_is_scored_with_a_warning(caplog):
    """A one-class selection trains a constant model: its macro-F1 is reported (it is that
    selection's true score) but never silently: metrics.json carries the warning, and it is logged."""
    from taskselect.metrics import classification_metrics

    scored = classification_metrics(["pos", "neg", "neg", "neu"], ["neg"] * 4, ["neg", "neu", "pos"])
    assert scored["warnings"] and "every test row is predicted 'neg'" in scored["warnings"][0]
    assert any(r.levelname == "WARNING" and "one class only" in r.getMessage() for r in caplog.records)
    assert classification_metrics(["pos", "neg"], ["pos", "neg"], ["neg", "pos"])["warnings"] == []
