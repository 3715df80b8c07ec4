import json
import warnings

import numpy as np
import pandas as pd
import pytest

from taskselect.index import build_index, read_index, write_index
from taskselect.metrics import (classification_metrics, macro_f1_bootstrap, macro_f1_resamples, predict_within,
                                stratified_draws)
from taskselect.selectors import budget_share, resolve_budget
from taskselect.selectors.tsds import TSDSSelector
from taskselect import stages
from taskselect.config import EvaluateParams, FinetuneParams
from taskselect.errors import TaskselectError
from taskselect.io import write_json, write_npy, write_parquet
from taskselect.trainers import Examples, HeadTrainer


def blobs(n=60, seed=0):
    """Three well-separated clusters of unit vectors with an off-task fourth label."""
    rng = np.random.default_rng(seed)
    centres = np.eye(8)[:4] * 3
    labels = np.array(["negative", "neutral", "positive", "sms:spam"])[rng.integers(0, 4, n)]
    x = centres[np.searchsorted(["negative", "neutral", "positive", "sms:spam"], labels)] + rng.normal(size=(n, 8))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return Examples(embeddings=x, labels=labels)


def test_head_learns_and_round_trips(tmp_path):
    train, test = blobs(200, 0), blobs(100, 1)
    head = HeadTrainer(C=10.0).fit(train)
    assert head.classes_ == ["negative", "neutral", "positive", "sms:spam"]
    predicted = np.asarray(head.classes_)[head.predict_scores(test).argmax(axis=1)]
    assert (predicted == test.labels).mean() > 0.9
    head.save(tmp_path)
    np.testing.assert_array_equal(HeadTrainer.load(tmp_path).predict_scores(test), head.predict_scores(test))


def test_the_head_stages_read_embeddings_and_no_texts(tmp_path):
    """The head consumes embeddings: finetune and evaluate run with no pool file and a test file
    without a text column."""
    ws = stages.Workspace(tmp_path / "data")
    train, test = blobs(200, 0), blobs(100, 1)
    write_npy(ws.embedding("pool"), train.embeddings)
    write_npy(ws.embedding("test"), test.embeddings)
    run = stages.Run("random", 0.5, 0)
    rows = np.arange(0, 200, 2)
    write_parquet(ws.selection(run) / "selection.parquet",
                  pd.DataFrame({"pool_row": rows, "label": train.labels[rows], "count": 1}))
    write_parquet(ws.prepared / "test.parquet", pd.DataFrame({"label": test.labels}))
    write_json(ws.prepared / "benchmark.json", {"task": "blobs", "target_labels": ["negative", "neutral", "positive"]})
    trained = stages.finetune(FinetuneParams(), run, ws)
    metrics = stages.evaluate(EvaluateParams(n_boot=20), run, ws)
    assert trained["n_train"] == 100 and metrics["f1_macro"] > 0.8


def test_a_model_trained_from_the_same_rows_trainer_and_seed_is_copied_not_trained_again(tmp_path):
    """The full pool at two budgets: one model trained, the other copied byte for byte; another
    seed, or other trainer parameters, train their own."""
    ws = stages.Workspace(tmp_path / "data")
    train = blobs(200, 0)
    write_npy(ws.embedding("pool"), train.embeddings)
    write_json(ws.prepared / "benchmark.json", {"task": "blobs", "target_labels": ["negative", "neutral", "positive"]})
    everything = pd.DataFrame({"pool_row": np.arange(200), "label": train.labels, "count": 1})
    runs = [stages.Run("full", 0.1, 0), stages.Run("full", 0.5, 0), stages.Run("full", 0.5, 1)]
    for run in runs:
        write_parquet(ws.selection(run) / "selection.parquet", everything)
    first = stages.finetune(FinetuneParams(), runs[0], ws)
    assert stages.finetune(FinetuneParams(), runs[1], ws) == first
    assert json.loads(ws.timing("finetune-full-0.5-0").read_text())["copied_from"] == "full-0.1-0"
    assert {p.name: p.read_bytes() for p in ws.model(runs[1]).iterdir()} == \
        {p.name: p.read_bytes() for p in ws.model(runs[0]).iterdir()}
    stages.finetune(FinetuneParams(), runs[2], ws)
    assert "copied_from" not in json.loads(ws.timing("finetune-full-0.5-1").read_text())
    stages.finetune(FinetuneParams(head={"C": 0.5}), runs[1], ws)
    assert "copied_from" not in json.loads(ws.timing("finetune-full-0.5-0").read_text())


def test_a_single_label_selection_predicts_that_label():
    only = Examples(embeddings=np.ones((2, 3), np.float32), labels=np.array(["positive"] * 2))
    head = HeadTrainer().fit(only)
    assert head.classes_ == ["positive"] and head.predict_scores(only).shape == (2, 1)


def test_predictions_are_restricted_to_the_target_labels():
    scores = np.array([[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]])
    classes = ["negative", "positive", "sms:spam"]
    assert predict_within(scores, classes, ["negative", "positive"]).tolist() == ["positive", "negative"]
    assert predict_within(scores, ["sms:ham", "sms:spam", "x"], ["negative", "positive"]).tolist() == ["negative"] * 2


def test_macro_f1_counts_a_never_predicted_label_as_zero():
    m = classification_metrics(["a", "b", "c", "c"], ["a", "b", "b", "b"], labels=["a", "b", "c"])
    assert m["f1_per_class"] == {"a": 1.0, "b": pytest.approx(0.5), "c": 0.0}
    assert m["f1_macro"] == pytest.approx(0.5) and m["accuracy"] == 0.5


def test_index_search_equals_brute_force_and_survives_a_round_trip(tmp_path):
    x = blobs(300).embeddings
    write_index(build_index(x), tmp_path / "pool.faiss")
    index = read_index(tmp_path / "pool.faiss")
    sims, ids = index.search(x[:5], 10)
    np.testing.assert_array_equal(ids, np.argsort(-(x[:5] @ x.T), axis=1, kind="stable")[:, :10])
    with_index = TSDSSelector(max_k=50, kde_k=20).probabilities(x[:5], x, index=index)
    np.testing.assert_allclose(with_index, TSDSSelector(max_k=50, kde_k=20).probabilities(x[:5], x), atol=1e-9)


@pytest.mark.parametrize("budget, pool, size", [(0.05, 1000, 50), (0.0001, 1000, 1), (1.0, 1000, 1000), (250, 1000, 250)])
def test_budget_is_a_count_or_a_fraction(budget, pool, size):
    assert resolve_budget(budget, pool) == size


@pytest.mark.parametrize("budget, share", [(0.05, 0.05), (250, 0.25), (250.0, 0.25), (np.int64(500), 0.5)])
def test_a_budget_as_a_share_of_the_pool(budget, share):
    """A fraction as it is; a row count, also one a pandas column made a float, over the pool's rows."""
    assert budget_share(budget, 1000) == share


def test_budget_larger_than_the_pool_is_refused():
    with pytest.raises(TaskselectError, match="budget 2000: 2000 rows requested but the pool has 1000"):
        resolve_budget(2000, 1000)


def test_bootstrap_interval_brackets_macro_f1_and_narrows_with_more_rows():
    rng = np.random.default_rng(0)
    labels = ["a", "b", "c"]

    def noisy(n):
        truth = np.asarray(labels)[rng.integers(0, 3, n)]
        return truth, np.where(rng.random(n) < 0.7, truth, np.asarray(labels)[rng.integers(0, 3, n)])

    truth, predicted = noisy(300)
    point = classification_metrics(truth, predicted, labels)["f1_macro"]
    low, high = macro_f1_bootstrap(truth, predicted, labels, n_boot=500, seed=1)
    assert low < point < high
    assert (low, high) == macro_f1_bootstrap(truth, predicted, labels, n_boot=500, seed=1)
    assert macro_f1_bootstrap(truth, predicted, labels, n_boot=500, seed=2) != (low, high)
    big_low, big_high = macro_f1_bootstrap(*noisy(3000), labels, n_boot=500, seed=1)
    assert big_high - big_low < (high - low) / 2  # ~ 1 / sqrt(n)


def test_bootstrap_resample_scores_as_sklearn_does():
    """A resample's macro-F1 is sklearn's on its rows, including a label never predicted and a
    true label outside the task's labels; each resample keeps every true label's row count."""
    from sklearn.metrics import f1_score

    truth = np.array(["a", "b", "c", "c", "x", "a", "b", "b"])
    predicted = np.array(["a", "b", "b", "b", "a", "a", "a", "b"])
    draws = stratified_draws(truth, 20, np.random.default_rng(4))
    for rows, value in zip(draws, macro_f1_resamples(truth, predicted, ["a", "b", "c"], draws)):
        assert sorted(truth[rows]) == sorted(truth)
        expected = f1_score(truth[rows], predicted[rows], labels=["a", "b", "c"], average="macro", zero_division=0)
        assert value == pytest.approx(expected)
    assert len({tuple(rows) for rows in draws}) > 1
    low, high = macro_f1_bootstrap(truth, predicted, ["a", "b", "c"], n_boot=20, confidence=1e-9, seed=4)
    assert low == pytest.approx(high) and low == pytest.approx(
        np.median(macro_f1_resamples(truth, predicted, ["a", "b", "c"], draws)))


def test_the_interval_of_a_task_with_many_rare_labels_holds_its_macro_f1():
    """40 labels, 38 of them with one test row each, all of those predicted right: a resample
    misses about a third of them, which must not count as misses."""
    labels = [f"l{i}" for i in range(40)]
    rng = np.random.default_rng(0)
    truth = np.array(["l0"] * 200 + ["l1"] * 200 + labels[2:])
    predicted = truth.copy()
    wrong = rng.random(400) < 0.3
    predicted[:400][wrong] = np.where(truth[:400][wrong] == "l0", "l1", "l0")
    point = classification_metrics(truth, predicted, labels)["f1_macro"]
    low, high = macro_f1_bootstrap(truth, predicted, labels, n_boot=500, seed=0)
    assert low < point <= high


def test_confusion_matrix_rows_are_true_labels():
    m = classification_metrics(["a", "a", "b", "c"], ["a", "b", "b", "b"], labels=["a", "b", "c"])
    assert m["confusion"] == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
    # a label outside the task's (a prediction of another source's label) is not counted
    m = classification_metrics(["a", "b", "x"], ["x", "b", "a"], labels=["a", "b"])
    assert m["confusion"] == [[0, 0], [0, 1]]


def test_a_one_label_task_is_scored_without_a_warning():
    # auto scores a query set of one label; scikit-learn's confusion_matrix warns there
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = classification_metrics(["a", "a", "a"], ["a", "a", "b"], labels=["a"])
    assert m["confusion"] == [[2]] and m["f1_macro"] == pytest.approx(0.8)  # recall 2/3, precision 1


def test_summary_is_mean_and_sample_std_over_seeds_with_deltas():
    from taskselect.report import summarize

    def record(method, budget, seed, f1):
        return {"method": method, "budget": budget, "budget_label": "x", "seed": seed, "f1_macro": f1,
                "f1_micro": f1, "accuracy": f1, "n_selected": 10, "n_unique": 10, "n_on_task": 5, "target_share": 0.5}

    records = [record("tsds", 0.05, s, f) for s, f in enumerate([0.6, 0.7, 0.8])]
    records += [record("random", 0.05, s, f) for s, f in enumerate([0.5, 0.5, 0.5])] + [record("full", 0.05, 0, 0.9)]
    tsds, rand, full = summarize(records).to_dict("records")
    assert tsds["seeds"] == 3 and tsds["f1_macro"] == pytest.approx(0.7) and tsds["n_on_task"] == 5
    assert tsds["f1_macro_std"] == pytest.approx(0.1) and tsds["accuracy_std"] == pytest.approx(0.1)
    assert tsds["delta_random"] == pytest.approx(0.2) and tsds["delta_full"] == pytest.approx(-0.2)
    assert full["f1_macro"] == 0.9 and full["f1_macro_std"] == 0.0 and rand["f1_macro_std"] == 0.0


def test_labels_the_figures_font_cannot_draw_are_said_once_not_warned_per_glyph(tmp_path, caplog):
    from taskselect.plots import plot_confusion

    labels = ["sport ⚽", "技术", "business"]
    with warnings.catch_warnings(record=True) as warned, caplog.at_level("WARNING", logger="taskselect.plots"):
        for i in range(3):  # one figure per run: said the first time only
            plot_confusion(np.eye(3, dtype=int), labels, tmp_path / f"confusion{i}.png", title="custom")
    assert not [w for w in warned if "Glyph" in str(w.message)]
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and said[0].endswith("has no ⚽ 技 术: drawn as □ in the plots"), said
    assert all((tmp_path / f"confusion{i}.png").stat().st_size for i in range(3))


def test_a_trainer_built_in_python_is_held_to_its_sections_constraints():
    """Trainers take their defaults and their checks from finetune.head / finetune.transformer."""
    from taskselect.trainers.transformer import TransformerTrainer

    with pytest.raises(TaskselectError, match="finetune.head: C: Input should be greater than 0"):
        HeadTrainer(C=0)
    with pytest.raises(TaskselectError, match="finetune.transformer: dropout: Input should be less than 1"):
        TransformerTrainer(dropout=2.0)
