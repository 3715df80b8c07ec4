"""The `taskselect` command as a user runs it: bad input gives one clear line and exit code 2."""

import os

import pandas as pd
import pytest

from conftest import BIN, SMALL_AUTO, assert_one_line_error, taskselect
from taskselect.data import SOURCES


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Small real pool, query and test files: airline tweets among SMS and TREC questions."""
    tmp = tmp_path_factory.mktemp("files")
    airline = SOURCES["airline"].load().sample(120, random_state=0)
    others = pd.concat([SOURCES["sms"].load().head(60), SOURCES["trec"].load().head(60)])
    pool = pd.concat([airline.iloc[:60], others])[["text", "label"]].rename(columns={"text": "tweet"})
    pool.to_csv(tmp / "pool.csv", index=False)
    airline.iloc[60:80][["text", "label"]].rename(columns={"text": "tweet"}).to_json(
        tmp / "query.jsonl", orient="records", lines=True)
    airline.iloc[80:][["text", "label"]].rename(columns={"text": "tweet"}).to_parquet(tmp / "test.parquet")
    return tmp


def user_files(files, **extra):
    args = ["--pool", str(files / "pool.csv"), "--query", str(files / "query.jsonl"),
            "--test", str(files / "test.parquet"), "-S", "data.text_column=tweet"]
    return args + [a for k, v in extra.items() for a in ("-S", f"{k}={v}")]


def test_unknown_target_is_refused_before_anything_runs(tmp_path):
    result = taskselect("run", "--target", "imdb", "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    assert_one_line_error(result, "data.target", "'imdb'", "airline_sentiment")
    assert not (tmp_path / "data").exists()


def test_the_options_stand_for_whole_parameters():
    """--budgets takes percentages as exactly the fractions they name, and counts as ints; the data
    options describe the data whole (what params.yaml kept from an earlier run is not mixed in)."""
    from taskselect.cli import _overrides, _params

    params = _params(None, None, budgets="5%, 7%,500,0.1", seeds="0,1")
    assert params.select.budgets == [0.05, 0.07, 500, 0.1] and isinstance(params.select.budgets[2], int)
    assert params.select.seeds == [0, 1]
    assert _overrides(None, target="trec") == ["data.pool=", "data.query=", "data.test=", "data.target=trec"]
    earlier = ["data.query=q.jsonl", "data.test=t.csv"]  # -S after the options still wins
    assert _overrides(earlier, pool="p.csv") == ["data.query=", "data.test=", "data.pool=p.csv", *earlier]
    assert _overrides(None, methods="tsds") == ["select.methods=[tsds]"]


def test_unknown_method_is_named(tmp_path):
    result = taskselect("run", "--methods", "tsds,magic", cwd=tmp_path)
    assert_one_line_error(result, "--methods 'magic'", "expected one of")


def test_missing_file_is_named_and_nothing_is_written(tmp_path, files):
    args = ["prepare", "--data-dir", str(tmp_path / "data"), "--pool", str(tmp_path / "missing.csv"),
            "--query", str(files / "query.jsonl"), "--test", str(files / "test.parquet")]
    assert_one_line_error(taskselect(*args, cwd=tmp_path), "missing.csv: file not found")
    assert not (tmp_path / "data" / "prepared").exists()


def test_unknown_column_is_named(tmp_path, files):
    args = ["prepare", "--data-dir", str(tmp_path / "data"), *user_files(files)]
    result = taskselect(*args[:-2], "-S", "data.text_column=body", cwd=tmp_path)
    assert_one_line_error(result, "pool.csv", "no column 'body'", "columns are tweet, label")


def test_non_text_rows_and_single_class_labels_are_named(tmp_path, files):
    bad = pd.read_csv(files / "pool.csv")
    bad.loc[3, "tweet"] = None
    bad.to_csv(tmp_path / "pool.csv", index=False)
    args = ["prepare", "--data-dir", str(tmp_path / "data"), *user_files(files)]
    args[args.index(str(files / "pool.csv"))] = str(tmp_path / "pool.csv")
    assert_one_line_error(taskselect(*args, cwd=tmp_path), "pool.csv", "column 'tweet', row 4")

    one_class = pd.read_parquet(files / "test.parquet").assign(label="negative")
    one_class.to_parquet(tmp_path / "test.parquet")
    args = ["prepare", "--data-dir", str(tmp_path / "data"), *user_files(files)]
    args[args.index(str(files / "test.parquet"))] = str(tmp_path / "test.parquet")
    assert_one_line_error(taskselect(*args, cwd=tmp_path), "test.parquet", "one class")


def test_your_own_files_run_stage_by_stage_and_a_bad_budget_corrupts_nothing(tmp_path, files, embedding_cache):
    common = ["--data-dir", str(tmp_path / "data"), "-S", f"embed.cache_dir={embedding_cache}",
              "-S", "select.tsds.max_k=100", "-S", "select.tsds.kde_k=50", "-S", "track.enabled=false",
              *[arg for setting in SMALL_AUTO for arg in ("-S", setting)]]
    assert taskselect("prepare", *common, *user_files(files), cwd=tmp_path).returncode == 0
    for stage in ("embed", "index"):
        result = taskselect(stage, *common, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    assert taskselect("select", *common, "-S", "select.budgets=[30]", cwd=tmp_path).returncode == 0
    selection = tmp_path / "data" / "selections" / "tsds-30-0" / "selection.parquet"
    before = selection.read_bytes()

    result = taskselect("select", *common, "-S", "select.budgets=[999999]", cwd=tmp_path)
    assert_one_line_error(result, "budget 999999", "the pool has 180")
    assert selection.read_bytes() == before
    assert not (tmp_path / "data" / "selections" / "tsds-999999-0").exists()

    for stage in ("finetune", "evaluate"):
        result = taskselect(stage, *common, "-S", "select.budgets=[30]", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    result = taskselect("report", *common, "-S", "select.budgets=[30]", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = pd.read_json(tmp_path / "out" / "results.json")
    assert set(records["method"]) == {"tsds", "auto", "random", "full"}
    assert "macro-F1" in result.stdout
    # without --out the results go beside their data (DATA_DIR/results), never to another
    # workspace's data/results under the working directory
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = taskselect("report", *common, "-S", "select.budgets=[30]", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert pd.read_json(tmp_path / "data" / "results" / "results.json").equals(records)
    assert not (elsewhere / "data").exists()


def test_params_command_shows_overrides(tmp_path):
    result = taskselect("params", "-S", "select.tsds.alpha=0.25", cwd=tmp_path)
    assert result.returncode == 0
    assert "alpha: 0.25" in result.stdout
    assert os.access(BIN / "taskselect", os.X_OK)


def test_an_error_inside_the_flow_reaches_the_user_once(tmp_path, files, embedding_cache):
    """A TaskselectError raised in a Prefect task (TSDS may not lower alpha, and alpha 1 puts the
    mass on at most one row per query, fewer than the budget) is one `error:` line, without
    Prefect's tracebacks of the task and the flow. A warning of the data (here: a pool row that
    repeats a test text, left out) is said once too, though the run checks its data before the
    flow builds it again."""
    test_text = pd.read_parquet(files / "test.parquet")["tweet"].iloc[0]
    pd.concat([pd.read_csv(files / "pool.csv"), pd.DataFrame({"tweet": [test_text], "label": ["neutral"]})]).to_csv(
        tmp_path / "pool.csv", index=False)
    args = user_files(files)
    args[args.index(str(files / "pool.csv"))] = str(tmp_path / "pool.csv")
    result = taskselect(
        "run", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out"), *args,
        "--methods", "tsds", "--budgets", "30", "-S", f"embed.cache_dir={embedding_cache}",
        "-S", "select.tsds.max_k=100", "-S", "select.tsds.kde_k=50", "-S", "select.tsds.alpha=1",
        "-S", "select.tsds.lower_alpha=false", "-S", "track.enabled=false", cwd=tmp_path)
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    assert len(errors) == 1 and "lower_alpha=true" in errors[0], output
    warned = [line for line in output.splitlines() if "1 pool row repeats a text of" in line]
    assert len(warned) == 1 and "is left out" in warned[0], output
    # Prefect's temporary server writes to a log of its own (its services may log a traceback
    # when the command's exit stops them mid-write: seen once in CI, on this very run)
    assert "a temporary server for this command at http://127.0.0.1:" in output and "temporary-server.log" in output, output


def test_the_printed_interval_is_named_at_its_confidence(capsys):
    """The run table names its interval column after evaluate.confidence, as the verdicts do."""
    from taskselect.cli import print_results

    record = {"method": "tsds", "budget": 0.05, "budget_label": "5%", "seed": 0, "n_selected": 50, "n_unique": 50,
              "n_on_task": 40, "target_share": 0.8, "f1_macro": 0.7, "f1_macro_ci": [0.65, 0.75], "accuracy": 0.72,
              "confidence": 0.9}
    print_results([record])
    out = capsys.readouterr().out
    assert "90% CI" in out and "95%" not in out
    print_results([record | {"confidence": 0.975}])
    assert "97.5% CI" in capsys.readouterr().out
