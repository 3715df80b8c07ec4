"""`taskselect export` on a real run of the small profile: the selected rows with their texts."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import assert_one_line_error, taskselect
from taskselect import stages
from taskselect.config import Params
from taskselect.export import export_selection
from taskselect.stages import Run, Workspace

pytestmark = pytest.mark.e2e


def test_the_exported_texts_are_exactly_the_selected_pool_rows(small_run, tmp_path):
    data = small_run.dir / "data"
    result = taskselect("export", "--data-dir", str(data), "--method", "tsds", "--budget", "10%",
                        "--out", str(tmp_path / "tsds.jsonl"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    exported = pd.read_json(tmp_path / "tsds.jsonl", lines=True, dtype={"id": str}, precise_float=True)

    pool = pd.read_parquet(data / "prepared" / "pool.parquet")
    selection = pd.read_parquet(data / "selections" / "tsds-0.1-0" / "selection.parquet")
    facts = json.loads((data / "selections" / "tsds-0.1-0" / "selection.json").read_text())
    assert len(exported) == facts["n_unique"] and exported["count"].sum() == facts["n_selected"]
    expected = pool.iloc[selection["pool_row"]]
    assert exported["text"].tolist() == expected["text"].tolist()
    assert exported["id"].tolist() == expected["id"].astype(str).tolist()
    assert exported["label"].tolist() == expected["label"].tolist()
    assert exported["source"].tolist() == expected["source"].tolist()
    probs = np.load(data / "selections" / "tsds-0.1-0" / "probs.npy")
    np.testing.assert_array_equal(exported["probability"].to_numpy(), probs[selection["pool_row"]])
    assert (exported["probability"] > 0).all()
    assert "tsds-0.1-0" in result.stdout and str(facts["n_unique"]) in result.stdout


def test_csv_and_parquet_hold_the_same_rows_and_a_method_without_probabilities_has_none(small_run, tmp_path):
    ws = Workspace(small_run.dir / "data")
    run = Run("random", 0.1, 0)
    for name in ("random.csv", "random.parquet"):
        result = taskselect("export", "--data-dir", str(ws.root), "--method", "random", "--budget", "0.1",
                            "--seed", "0", "--out", str(tmp_path / name), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    from_csv = pd.read_csv(tmp_path / "random.csv", dtype={"id": str})
    from_parquet = pd.read_parquet(tmp_path / "random.parquet")
    pd.testing.assert_frame_equal(from_csv, from_parquet.astype({"id": str}), check_dtype=False)
    assert list(from_parquet.columns) == ["pool_row", "id", "text", "label", "source", "count"]
    assert from_parquet["pool_row"].tolist() == stages.load_selection(ws, run)["pool_row"].tolist()


def test_a_scoring_method_exports_its_scores(small_run, tmp_path):
    """dsir ranks the pool by log importance weight: each exported row carries its own."""
    from taskselect.config import load_params

    ws = Workspace(small_run.dir / "data", runs_root=tmp_path)  # the shared run's selections stay as they are
    run = Run("dsir", 0.1, 0)
    stages.select(load_params(None, ["select.methods=[dsir]"]).select, run, ws)
    rows = export_selection(ws, run, tmp_path / "dsir.parquet")
    scores = np.load(ws.selection(run) / "scores.npy")
    np.testing.assert_array_equal(rows["score"].to_numpy(), scores[rows["pool_row"].to_numpy()])
    assert pd.read_parquet(tmp_path / "dsir.parquet")["score"].tolist() == rows["score"].tolist()


def test_bad_requests_are_one_line_errors_and_touch_nothing(small_run, tmp_path):
    data = str(small_run.dir / "data")
    out = tmp_path / "out.jsonl"
    assert_one_line_error(taskselect("export", "--data-dir", data, "--method", "magic", "--out", str(out), cwd=tmp_path),
                          "no selection matches --method magic", "full-0.1-0, random-0.1-0, tsds-0.1-0")
    assert_one_line_error(taskselect("export", "--data-dir", data, "--out", str(out), cwd=tmp_path),
                          f"{len(Params().select.methods)} selections match", "--method")
    assert_one_line_error(taskselect("export", "--data-dir", data, "--method", "tsds", "--out",
                                     str(tmp_path / "out.xlsx"), cwd=tmp_path), "out.xlsx", ".jsonl, .csv, .parquet")
    assert_one_line_error(taskselect("export", "--data-dir", data, "--method", "tsds", "--format", "arrow",
                                     "--out", str(out), cwd=tmp_path), "--format 'arrow'")
    assert_one_line_error(taskselect("export", "--data-dir", str(tmp_path / "nowhere"), "--out", str(out), cwd=tmp_path),
                          "no selections")
    assert not out.exists()

    out.write_text("mine\n")
    assert_one_line_error(taskselect("export", "--data-dir", data, "--method", "tsds", "--out", str(out), cwd=tmp_path),
                          "already exists", "--force")
    assert out.read_text() == "mine\n"
    forced = taskselect("export", "--data-dir", data, "--method", "tsds", "--out", str(out), "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert len(out.read_text().splitlines()) == len(stages.load_selection(Workspace(small_run.dir / "data"), Run("tsds", 0.1, 0)))

    # a selection whose rows file is gone (its selection.json left): named, not a traceback
    broken = tmp_path / "broken"
    for part in ("prepared", "selections/tsds-0.1-0"):
        shutil.copytree(small_run.dir / "data" / part, broken / part)
    (broken / "selections" / "tsds-0.1-0" / "selection.parquet").unlink()
    assert_one_line_error(taskselect("export", "--data-dir", str(broken), "--method", "tsds", "--out",
                                     str(tmp_path / "b.csv"), cwd=tmp_path), "selection.parquet: selection not found")
    assert not (tmp_path / "b.csv").exists()

    # its per-row probabilities gone: the export is refused, not written without them
    shutil.copy(small_run.dir / "data" / "selections" / "tsds-0.1-0" / "selection.parquet",
                broken / "selections" / "tsds-0.1-0")
    (broken / "selections" / "tsds-0.1-0" / "probs.npy").unlink()
    assert_one_line_error(taskselect("export", "--data-dir", str(broken), "--method", "tsds", "--out",
                                     str(tmp_path / "b.csv"), cwd=tmp_path),
                          "probs.npy: selection tsds-0.1-0's per-row probability not found", "taskselect select")
    assert not (tmp_path / "b.csv").exists()


def test_a_selection_made_from_another_pool_is_refused_not_exported(small_run, tmp_path):
    """A run on a smaller pool leaves the earlier selections: their row numbers (and the ids of a
    file without an id column, 'pool:7') may point into the new pool, and must not be exported."""
    stale = tmp_path / "stale"
    for part in ("prepared", "selections/tsds-0.1-0", "selections/random-0.1-0"):
        shutil.copytree(small_run.dir / "data" / part, stale / part)
    pool = pd.read_parquet(stale / "prepared" / "pool.parquet")
    pool.iloc[:20].to_parquet(stale / "prepared" / "pool.parquet")  # prepared again from another file
    assert_one_line_error(taskselect("export", "--data-dir", str(stale), "--method", "tsds", "--out",
                                     str(tmp_path / "t.csv"), cwd=tmp_path),
                          "selections/tsds-0.1-0: made from another", "taskselect select --method tsds --budget 0.1 --seed 0")
    # one made before taskselect recorded what a selection is made from: its rows lie beyond the pool
    (stale / "selections" / "random-0.1-0" / stages.MADE_FROM).unlink()
    assert_one_line_error(taskselect("export", "--data-dir", str(stale), "--method", "random", "--out",
                                     str(tmp_path / "r.csv"), cwd=tmp_path), "no longer match the selection random-0.1-0")
    assert not (tmp_path / "t.csv").exists() and not (tmp_path / "r.csv").exists()
