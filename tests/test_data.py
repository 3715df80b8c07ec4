"""Packaged sources and benchmarks, on small profiles of the real packaged data."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from taskselect.config import DataParams
from taskselect.data import (
    SENTIMENT_LABELS,
    SOURCES,
    TARGET_SOURCES,
    Benchmark,
    build_benchmark,
    load_custom_benchmark,
    normalize_text,
    prepare_benchmark,
)
from taskselect.errors import TaskselectError

CAP, N_QUERY, MAX_TEST = 60, 20, 50
COLUMNS = ["id", "text", "label", "source"]

# Rows in the packaged file (before dropping empty and repeated texts) and number of classes.
RAW_ROWS_AND_CLASSES = {
    "airline": (14638, 3),
    "tweets": (23520, 3),
    "sms": (4837, 2),
    "trec": (5952, 6),
    "movies": (10568, 2),
    "amazon": (3610, 2),
    "nyt": (4946, 2),
    "vader_tweets": (4196, 2),
    "disaster": (7613, 2),
    "20ng": (18821, 20),
    "r8": (7674, 8),
    "election": (6444, 2),
    "bbc": (2225, 5),
    "drugs": (979, 3),
}
OFFICIAL_TEST_ROWS = {"trec": 500, "20ng": 7528, "r8": 2189, "drugs": 379}


def test_registry_covers_all_sources():
    assert set(SOURCES) == set(RAW_ROWS_AND_CLASSES)
    assert set(TARGET_SOURCES.values()) <= set(SOURCES)


@pytest.mark.parametrize("name", sorted(RAW_ROWS_AND_CLASSES))
def test_source_parses_into_tidy_rows(name):
    source = SOURCES[name]
    rows = source.load()
    raw_rows, n_classes = RAW_ROWS_AND_CLASSES[name]

    assert list(rows.columns) == ["id", "text", "label", "split"]
    assert 0.9 * raw_rows <= len(rows) <= raw_rows
    assert rows["id"].is_unique
    assert rows["id"].str.startswith(f"{name}:").all()
    assert (rows["text"] == rows["text"].str.strip()).all()
    assert (rows["text"].str.len() > 0).all()
    assert rows["text"].map(normalize_text).is_unique
    assert not rows["text"].str.contains("\ufffd").any(), "undecoded bytes"
    assert rows["label"].nunique() == n_classes
    if source.kind == "sentiment":
        assert set(rows["label"]) <= set(SENTIMENT_LABELS)
    else:
        assert rows["label"].str.startswith(f"{name}:").all()

    test_rows = (rows["split"] == "test").sum()
    if name in OFFICIAL_TEST_ROWS:
        assert 0.95 * OFFICIAL_TEST_ROWS[name] <= test_rows <= OFFICIAL_TEST_ROWS[name]
        assert set(rows.loc[rows["split"] == "test", "label"]) == set(rows["label"])
    else:
        assert test_rows == 0


def test_parsing_details_survive_the_odd_bytes_and_quoting():
    airline, tweets = SOURCES["airline"].load(), SOURCES["tweets"].load()
    handles = r"@(?:united|usairways|americanair|southwestair|jetblue|virginamerica)"
    assert airline["text"].str.contains(handles, case=False).all()
    assert not tweets["text"].str.contains(handles, case=False).any()

    trec = SOURCES["trec"].load().set_index("text")["label"]
    assert trec["Who was Galileo ?"] == "trec:HUM"
    assert trec["How far is it from Denver to Aspen ?"] == "trec:NUM"
    assert trec["What does NASA stand for ?"] == "trec:ABBR"

    drugs = SOURCES["drugs"].load()["text"]
    assert not drugs.str.startswith('"').any()
    assert drugs.str.endswith('What a wonderful "side-effect"').sum() == 1  # a quote of its own
    assert not drugs.str.contains(r"&#\d+;|&[a-z]+;").any()

    assert SOURCES["movies"].load()["text"].str.contains("Münch's genuine insight").any()
    assert SOURCES["bbc"].load().set_index("id").loc["bbc:sports/199", "text"].count("£") > 0
    election = SOURCES["election"].load()["text"]
    quoted = 'Last night, Donald Trump said not paying taxes was "smart."'
    assert election.str.startswith(quoted).any()


def test_loaded_frames_are_copies_of_the_cache():
    rows = SOURCES["sms"].load()
    rows.loc[0, "text"] = "changed"
    rows.drop(index=rows.index, inplace=True)
    assert SOURCES["sms"].load().loc[0, "text"] != "changed"


@pytest.fixture(scope="module")
def small_benchmarks():
    return {
        target: build_benchmark(target, CAP, N_QUERY, MAX_TEST, seed=0) for target in TARGET_SOURCES
    }


@pytest.mark.parametrize("target", sorted(TARGET_SOURCES))
def test_packaged_benchmark_hides_target_in_a_capped_pool(small_benchmarks, target):
    bench = small_benchmarks[target]
    target_source = TARGET_SOURCES[target]
    source_rows = SOURCES[target_source].load()

    assert bench.task == target
    for frame in (bench.pool, bench.query, bench.test):
        assert list(frame.columns) == COLUMNS
        assert frame["id"].is_unique
    assert len(bench.query) == N_QUERY
    assert len(bench.test) == MAX_TEST or len(bench.test) == OFFICIAL_TEST_ROWS.get(target_source)
    assert bench.target_labels == sorted(source_rows["label"].unique())
    assert set(bench.query["label"]) | set(bench.test["label"]) <= set(bench.target_labels)
    assert (bench.query["source"] == target_source).all()
    assert (bench.test["source"] == target_source).all()

    per_source = bench.pool["source"].value_counts()
    assert len(per_source) >= 10
    assert per_source.max() <= CAP
    assert per_source[target_source] == CAP

    frames = (bench.pool, bench.query, bench.test)
    ids = [set(frame["id"]) for frame in frames]
    texts = [set(frame["text"].map(normalize_text)) for frame in frames]
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert not ids[a] & ids[b]
        assert not texts[a] & texts[b]

    split_of = pd.concat(s.load() for s in SOURCES.values()).set_index("id")["split"]
    assert (split_of[bench.pool["id"]] == "train").all()
    assert (split_of[bench.query["id"]] == "train").all()
    expected_test_split = "test" if target_source in OFFICIAL_TEST_ROWS else "train"
    assert (split_of[bench.test["id"]] == expected_test_split).all()


def test_pool_rows_are_real_rows_of_their_source(small_benchmarks):
    pool = small_benchmarks["trec"].pool
    every_row = pd.concat(s.load() for s in SOURCES.values()).set_index("id")
    assert (every_row.loc[pool["id"], "text"].to_numpy() == pool["text"].to_numpy()).all()
    assert (every_row.loc[pool["id"], "label"].to_numpy() == pool["label"].to_numpy()).all()


def test_same_seed_same_benchmark_other_seed_other_benchmark(small_benchmarks):
    first = small_benchmarks["airline_sentiment"]
    again = build_benchmark("airline_sentiment", CAP, N_QUERY, MAX_TEST, seed=0)
    other = build_benchmark("airline_sentiment", CAP, N_QUERY, MAX_TEST, seed=1)
    for role in ("pool", "query", "test"):
        pd.testing.assert_frame_equal(getattr(first, role), getattr(again, role))
        assert set(getattr(first, role)["id"]) != set(getattr(other, role)["id"])


def test_pool_drops_other_sources_rows_that_repeat_a_query_text():
    # "So far so good." is both a drug review and an NYT snippet; with every drug training
    # row in the query set and no effective cap, only the leakage guard keeps it out.
    n_train = (SOURCES["drugs"].load()["split"] == "train").sum()
    bench = build_benchmark("drug_reviews", 100_000, n_query=n_train, max_test=MAX_TEST, seed=0)
    assert "So far so good." in set(bench.query["text"])
    assert "So far so good." not in set(bench.pool["text"])
    assert (bench.pool["source"] == "nyt").sum() == len(SOURCES["nyt"].load()) - 1
    assert "drugs" not in set(bench.pool["source"])


def test_small_official_test_split_is_kept_whole():
    bench = build_benchmark("drug_reviews", CAP, N_QUERY, max_test=10_000, seed=0)
    assert len(bench.test) == (SOURCES["drugs"].load()["split"] == "test").sum()


def test_unknown_target_lists_the_valid_ones():
    valid = "airline_sentiment, trec, 20newsgroups, drug_reviews"
    with pytest.raises(TaskselectError, match=f"'imdb'.*{valid}"):
        build_benchmark("imdb", CAP, N_QUERY, MAX_TEST, seed=0)


def test_query_larger_than_target_train_rows_is_refused():
    n_train = (SOURCES["drugs"].load()["split"] == "train").sum()
    with pytest.raises(TaskselectError, match=f"n_query: 5000 exceeds the {n_train} training rows"):
        build_benchmark("drug_reviews", CAP, 5000, MAX_TEST, seed=0)


def test_save_and_load_round_trip(small_benchmarks, tmp_path):
    bench = small_benchmarks["20newsgroups"]
    bench.save(tmp_path / "bench")
    loaded = Benchmark.load(tmp_path / "bench")

    assert loaded.task == bench.task
    assert loaded.target_labels == bench.target_labels
    for role in ("pool", "query", "test"):
        pd.testing.assert_frame_equal(getattr(loaded, role), getattr(bench, role))
    meta = json.loads((tmp_path / "bench" / "benchmark.json").read_text())
    assert meta["rows"] == {"pool": len(bench.pool), "query": N_QUERY, "test": MAX_TEST}
    assert meta["pool_rows_per_source"] == bench.pool["source"].value_counts().to_dict()
    assert not [p for p in (tmp_path / "bench").iterdir() if p.name.startswith(".")]


def test_load_without_prepare_says_what_to_run(tmp_path):
    with pytest.raises(TaskselectError, match=r"pool\.parquet: not found; run `taskselect prepare`"):
        Benchmark.load(tmp_path)


def real_rows(source: str, n: int) -> pd.DataFrame:
    """`n` rows of a packaged source, every label represented."""
    rows = SOURCES[source].load()
    per_label = n // rows["label"].nunique() + 1
    return rows.groupby("label", group_keys=False).head(per_label).head(n)


def as_user_table(rows: pd.DataFrame, **extra) -> pd.DataFrame:
    """Real rows under the column names of a user's file."""
    return pd.DataFrame({"body": rows["text"], "category": rows["label"], **extra})


def load_files(files: dict) -> Benchmark:
    return load_custom_benchmark(files["pool"], files["query"], files["test"], "body", "category")


@pytest.fixture
def custom_files(tmp_path):
    """Pool (Parquet), query (JSONL) and test (CSV) named body/category, from real rows."""
    trec = SOURCES["trec"].load().groupby("label", group_keys=False).head(6)
    code = {label: i for i, label in enumerate(sorted(trec["label"].unique()))}
    trec = trec.assign(label=trec["label"].map(code))  # integer labels, as users often have
    part = trec.groupby("label").cumcount().to_numpy() // 2  # per label: 2 query, 2 test, 2 pool rows
    # The pool holds every test label (here written as text: labels are compared as text).
    pool = pd.concat([real_rows("sms", 6), real_rows("bbc", 6), trec[part == 2].astype({"label": str})])
    trec = pd.concat([trec[part == 0], trec[part == 1]])
    paths = {
        "pool": tmp_path / "pool.parquet",
        "query": tmp_path / "query.jsonl",
        "test": tmp_path / "test.csv",
    }
    as_user_table(pool, source=pool["id"].str.split(":").str[0]).to_parquet(paths["pool"], index=False)
    as_user_table(trec[:12], id=trec["id"][:12]).to_json(
        paths["query"], orient="records", lines=True
    )
    as_user_table(trec[12:]).to_csv(paths["test"], index=False)
    return paths


def test_custom_files_in_three_formats(custom_files):
    files = {role: str(path) for role, path in custom_files.items()}
    bench = prepare_benchmark(DataParams(**files, text_column="body", label_column="category"))

    assert bench.task == "custom"
    assert (len(bench.pool), len(bench.query), len(bench.test)) == (24, 12, 12)
    for frame in (bench.pool, bench.query, bench.test):
        assert list(frame.columns) == COLUMNS
        assert frame["id"].is_unique
        assert (frame["text"].str.len() > 0).all()
    assert set(bench.pool["source"]) == {"sms", "bbc", "trec"}
    assert bench.query["id"].str.startswith("trec:").all()
    assert list(bench.test["id"][:2]) == ["test:1", "test:2"]
    assert (bench.test["source"] == "test").all()
    assert set(bench.query["label"]) | set(bench.test["label"]) == {"0", "1", "2", "3", "4", "5"}
    assert bench.target_labels == ["0", "1", "2", "3", "4", "5"]


def test_custom_pool_without_source_column(tmp_path, custom_files):
    plain = tmp_path / "plain.csv"
    pd.read_parquet(custom_files["pool"]).drop(columns="source").to_csv(plain, index=False)
    bench = load_files({**custom_files, "pool": plain})
    assert (bench.pool["source"] == "pool").all()
    assert list(bench.pool["id"][:2]) == ["pool:1", "pool:2"]


def test_pool_rows_repeating_a_test_text_are_left_out_and_query_copies_kept(tmp_path, custom_files, caplog):
    """A pool copy of a test row (other case and spacing) would be scored as seen: left out, the
    other rows keep their file-row ids. A copy of a query row stays, with a warning."""
    test, query = pd.read_csv(custom_files["test"]), pd.read_json(custom_files["query"], lines=True)
    copied = pd.DataFrame({"body": ["  " + test["body"][0].upper(), query["body"][0]],
                           "category": [test["category"][0], query["category"][0]]})
    pool = tmp_path / "copies.csv"
    pd.concat([copied, pd.read_parquet(custom_files["pool"]).drop(columns="source")]).to_csv(pool, index=False)
    with caplog.at_level(logging.WARNING, logger="taskselect.data.benchmark"):
        bench = load_files({**custom_files, "pool": pool})
    assert len(bench.pool) == 24 + 1 and list(bench.pool["id"][:2]) == ["pool:2", "pool:3"]
    assert bench.pool["text"][0] == query["body"][0]
    warned = [r.getMessage() for r in caplog.records]
    assert any(f"{pool}: 1 pool row repeats a text of {custom_files['test']} and is left out" in w for w in warned)
    assert any(f"{pool}: 1 pool rows repeat a query text (kept" in w for w in warned)

    # the pool's only rows of a test label are copies of test rows: refused, saying so
    test_labels = pd.read_csv(custom_files["test"])["category"]
    rare = test_labels[test_labels == test["category"][0]]
    pool_rows = pd.read_parquet(custom_files["pool"]).drop(columns="source")
    alone = tmp_path / "alone.csv"
    pd.concat([copied[:1], pool_rows[pool_rows["category"].astype(str) != str(test["category"][0])]]).to_csv(alone, index=False)
    with pytest.raises(TaskselectError, match=rf"label '{test['category'][0]}' \({len(rare)} rows?\) never occurs in "
                       rf"{alone} \(without its rows that repeat a test text\)"):
        load_files({**custom_files, "pool": alone})

    only_copies = tmp_path / "only_copies.csv"
    copied[:1].to_csv(only_copies, index=False)
    with pytest.raises(TaskselectError, match=f"{only_copies}: every row repeats a text of"):
        load_files({**custom_files, "pool": only_copies})


def test_query_rows_repeating_a_test_text_are_left_out_and_all_of_them_refused(tmp_path, custom_files, caplog):
    """A query that is a test row would aim the selection at the test set itself: left out with a
    warning (other case and spacing too), the other queries keep their ids; a query set made only
    of test rows is refused in one line naming both files."""
    test, query = pd.read_csv(custom_files["test"]), pd.read_json(custom_files["query"], lines=True)
    leaked = pd.concat([pd.DataFrame({"id": ["leak"], "body": ["  " + test["body"][3].upper()],
                                      "category": [test["category"][3]]}), query])
    path = tmp_path / "leaky.jsonl"
    leaked.to_json(path, orient="records", lines=True)
    with caplog.at_level(logging.WARNING, logger="taskselect.data.benchmark"):
        bench = load_files({**custom_files, "query": path})
    assert list(bench.query["id"]) == list(query["id"])
    assert any(f"{path}: 1 query row repeats a text of {custom_files['test']} and is left out" in r.getMessage()
               for r in caplog.records)

    only_test = tmp_path / "only_test.jsonl"
    test[:5].to_json(only_test, orient="records", lines=True)
    with pytest.raises(TaskselectError, match=f"{only_test}: every row repeats a text of {custom_files['test']}; "
                       "give examples of the task that the test set does not hold"):
        load_files({**custom_files, "query": only_test})


def rewrite(change):
    """Damage: apply `change` to the table at a path, keeping its format."""

    def damage(path):
        if path.suffix == ".csv":
            change(pd.read_csv(path)).to_csv(path, index=False)
        elif path.suffix == ".jsonl":
            change(pd.read_json(path, lines=True)).to_json(path, orient="records", lines=True)
        else:
            change(pd.read_parquet(path)).to_parquet(path, index=False)

    return damage


def set_cell(column, row, value):
    def change(frame):
        frame = frame.astype({column: object})
        frame.iloc[row, frame.columns.get_loc(column)] = value
        return frame

    return rewrite(change)


# case: (file damaged, damage, expected message after the file name)
BAD_INPUTS = {
    "missing file": ("pool", Path.unlink, "file not found"),
    "missing text column": (
        "query",
        rewrite(lambda f: f.rename(columns={"body": "txt"})),
        "no column 'body'; columns are txt, category, id; set data.text_column to yours (-S data.text_column=<column>)",
    ),
    "missing label column": (
        "pool",
        rewrite(lambda f: f.drop(columns="category")),
        "no column 'category'; columns are body, source (a pool without labels is for selection only: "
        "leave data.test out); set data.label_column to yours (-S data.label_column=<column>)",
    ),
    "number as text": (
        "query",
        set_cell("body", 3, 42),
        "column 'body', row 4: expected non-empty text, got the number 42",
    ),
    "empty text": (
        "test",
        set_cell("body", 0, None),
        "column 'body', row 1: expected non-empty text, got an empty cell",
    ),
    "blank text": (
        "pool",
        set_cell("body", 5, "   "),
        "column 'body', row 6: expected non-empty text, got '   '",
    ),
    "blank texts": (
        "pool",
        lambda path: [set_cell("body", row, "   ")(path) for row in (5, 8, 11)],
        "column 'body', row 6: expected non-empty text, got '   ' (and 2 more rows: 9, 12)",
    ),
    "missing label": (
        "pool", set_cell("category", 2, None),
        "column 'category', row 3: expected a label (text or number), got an empty cell (a pool without "
        "labels has no label column at all)",
    ),
    "empty query": ("query", rewrite(lambda f: f.iloc[:0]), "no rows; the query set needs at least one"),
    "one test class": (
        "test",
        rewrite(lambda f: f.assign(category=1)),
        "column 'category' holds one class only ('1'); scoring needs at least 2",
    ),
    "repeated id": (
        "query",
        rewrite(lambda f: f.assign(id="q")),
        "column 'id' repeats 'q'; ids must be unique",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_custom_input_names_file_and_column(custom_files, case):
    role, damage, message = BAD_INPUTS[case]
    damage(custom_files[role])
    with pytest.raises(TaskselectError) as raised:
        load_files(custom_files)
    assert str(raised.value) == f"{custom_files[role]}: {message}"


def test_custom_files_must_come_together(custom_files):
    with pytest.raises(TaskselectError, match=r"data\.query: missing"):
        prepare_benchmark(DataParams(pool=str(custom_files["pool"])))


def test_a_text_in_both_splits_stays_in_the_official_test_split():
    # TREC's official test set has 500 questions; 11 of them repeat a training question.
    rows = SOURCES["trec"].load()
    assert (rows["split"] == "test").sum() == 500


def test_targets_share_the_rows_of_the_sources_they_do_not_target():
    # So that a second target's pool is mostly served from the embedding cache.
    airline = build_benchmark("airline_sentiment", CAP, N_QUERY, MAX_TEST, seed=0)
    trec = build_benchmark("trec", CAP, N_QUERY, MAX_TEST, seed=0)
    for source in ("sms", "20ng", "bbc"):
        ids = lambda b: set(b.pool.loc[b.pool["source"] == source, "id"])  # noqa: E731
        assert ids(airline) == ids(trec)


def test_texts_and_labels_are_read_as_written(tmp_path, custom_files):
    """`NA`, `None`, `null` and `nan` are words, not missing values, in CSV and JSONL."""
    words = ["NA", "None", "null", "nan", "N/A", "NULL"]
    pool = pd.read_parquet(custom_files["pool"])
    pool.loc[:len(words) - 1, "body"] = words
    pool.loc[0, "category"] = "None"
    pool.to_csv(tmp_path / "pool.csv", index=False)
    query = pd.read_json(custom_files["query"], lines=True).astype({"category": str})
    query.loc[0, "category"] = "None"
    query.to_json(tmp_path / "query.jsonl", orient="records", lines=True)
    test = pd.read_csv(custom_files["test"], dtype=str)
    test.loc[0, "category"] = "None"
    test.to_csv(tmp_path / "test.csv", index=False)

    bench = load_files({"pool": tmp_path / "pool.csv", "query": tmp_path / "query.jsonl", "test": tmp_path / "test.csv"})
    assert bench.pool["text"].tolist()[:len(words)] == words
    assert "None" in bench.target_labels and bench.pool["label"].iloc[0] == "None"


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_texts_holding_a_carriage_return_survive_a_csv_written_by_pandas(tmp_path, custom_files, ending):
    """pandas' to_csv with its default LF rows leaves a text holding a bare CR unquoted; a reader
    ending rows at any CR (pandas' default) would cut it in two and leave a label cell empty."""
    airline = SOURCES["airline"].load()
    held = airline[airline["text"].str.contains("\r")].head(3)
    pool = pd.concat([pd.read_parquet(custom_files["pool"]), as_user_table(held, source="airline")])
    pool.to_csv(tmp_path / "pool.csv", index=False, lineterminator=ending)
    if ending == "\n":  # the case this guards: pandas' own reader does not read back what it wrote
        assert len(pd.read_csv(tmp_path / "pool.csv")) > len(pool)

    bench = load_files({**custom_files, "pool": tmp_path / "pool.csv"})
    assert bench.pool["text"].tolist()[-3:] == held["text"].tolist()
    assert bench.pool["label"].tolist()[-3:] == held["label"].tolist()
    assert len(bench.pool) == len(pool)


def test_a_json_array_of_rows_reads_as_the_same_rows_in_json_lines(tmp_path, custom_files):
    query = pd.read_json(custom_files["query"], lines=True)
    query.to_json(tmp_path / "query.json", orient="records", indent=2)  # pandas' records, pretty-printed
    as_lines, as_array = load_files(custom_files), load_files({**custom_files, "query": tmp_path / "query.json"})
    pd.testing.assert_frame_equal(as_array.query, as_lines.query)

    query.to_json(tmp_path / "columns.json")  # pandas' default: one object of columns
    with pytest.raises(TaskselectError, match=r"columns\.json: one object of columns .*orient='records'"):
        load_files({**custom_files, "query": tmp_path / "columns.json"})


def test_labels_written_as_numbers_two_ways_are_refused(tmp_path, custom_files):
    test = pd.read_csv(custom_files["test"])
    test.assign(category=test["category"].astype(float)).to_parquet(tmp_path / "test.parquet")
    with pytest.raises(TaskselectError, match=r"test\.parquet: column 'category' has label '\d\.0' where .* has '\d'"):
        load_files({**custom_files, "test": tmp_path / "test.parquet"})


def test_broken_jsonl_names_the_line(custom_files):
    lines = custom_files["query"].read_text().splitlines()
    custom_files["query"].write_text("\n".join(lines[:5] + ['{"body": "x", "category": 1'] + lines[5:]) + "\n")
    with pytest.raises(TaskselectError, match=r"query\.jsonl: line 6: not valid JSON"):
        load_files(custom_files)


def test_test_labels_without_a_query_example_are_loaded_with_a_warning(tmp_path, custom_files, caplog):
    query = pd.read_json(custom_files["query"], lines=True)
    query[~query["category"].isin([4, 5])].to_json(tmp_path / "fewer.jsonl", orient="records", lines=True)
    with caplog.at_level("WARNING", logger="taskselect.data.benchmark"):
        bench = load_files({**custom_files, "query": tmp_path / "fewer.jsonl"})
    assert bench.target_labels == ["0", "1", "2", "3", "4", "5"]
    assert "test.csv: labels '4', '5' (4 test rows) never occur in" in caplog.text
    assert "auto cannot score them" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="taskselect.data.benchmark"):
        load_files(custom_files)
    assert "never occur" not in caplog.text


def test_a_test_set_too_small_to_resolve_a_point_is_named_with_a_warning(tmp_path, custom_files, caplog):
    files = {role: str(path) for role, path in custom_files.items()}
    params = DataParams(**files, text_column="body", label_column="category")
    with caplog.at_level("WARNING", logger="taskselect.data.benchmark"):
        prepare_benchmark(params)
    # 2 test rows of each of 6 labels: one row moves macro-F1 by 100 / (3 * 6) points; the rarest
    # label is named, and how many are as rare
    assert f"{custom_files['test']}: label '0' (and 5 more labels) has 2 test rows: one of them predicted otherwise moves macro-F1 " \
           "by about 5.6 points" in caplog.text
    caplog.clear()
    # 9 rows of each label, from trec rows the fixture's files do not hold: a step under one point
    trec = SOURCES["trec"].load()
    code = {label: str(i) for i, label in enumerate(sorted(trec["label"].unique()))}
    more = trec[trec.groupby("label").cumcount().between(6, 14)]
    as_user_table(more.assign(label=more["label"].map(code))).to_csv(tmp_path / "larger.csv", index=False)
    with caplog.at_level("WARNING", logger="taskselect.data.benchmark"):
        bench = prepare_benchmark(params.model_copy(update={"test": str(tmp_path / "larger.csv")}))
    assert bench.test["label"].value_counts().min() == 9
    assert "predicted otherwise" not in caplog.text


def test_a_tsv_file_reads_as_the_same_rows_as_its_csv(tmp_path, custom_files):
    """Tab-separated files (.tsv), quoted where a text holds a tab, quote or line break as pandas
    and Python's csv module write them, hold the same rows as the CSV."""
    test = pd.read_csv(custom_files["test"], dtype=str)
    test.loc[0, "body"] = 'a text with\ta tab, a "quote" and\na line break'
    test.to_csv(tmp_path / "test.csv", index=False)
    test.to_csv(tmp_path / "test.tsv", index=False, sep="\t")
    as_csv = load_files({**custom_files, "test": tmp_path / "test.csv"})
    as_tsv = load_files({**custom_files, "test": tmp_path / "test.tsv"})
    pd.testing.assert_frame_equal(as_tsv.test, as_csv.test)
    assert as_tsv.test["text"].iloc[0] == 'a text with\ta tab, a "quote" and\na line break'
