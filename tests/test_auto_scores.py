"""The scores auto ranks its candidates by (taskselect.metrics), against direct computations."""

import numpy as np

from taskselect.metrics import (QUERY_SCORES, label_balanced_mean, macro_f1_resamples, query_scores, soft_macro_f1,
                                task_label_probabilities)
from taskselect.selectors.auto import SCORES


def test_query_scores_renormalise_over_the_task_labels():
    classes = ["t:a", "other:x", "t:b"]
    scores = np.array([[0.2, 0.6, 0.2], [0.1, 0.0, 0.9], [0.0, 1.0, 0.0]])
    labels = ["t:a", "t:b", "t:c"]
    got = query_scores(task_label_probabilities(scores, classes, labels), labels, ["t:a", "t:b", "t:c"])
    # over the task labels: row 0 (0.5, 0.5, 0), row 1 (0.1, 0.9, 0), row 2 uniform (no mass on them)
    np.testing.assert_allclose(got["probability"], [0.5, 0.9, 1 / 3])
    np.testing.assert_allclose(got["brier"], [1 - 0.5 * (0.25 + 0.25), 1 - 0.5 * (0.01 + 0.01), 1 - 0.5 * (2 / 9 + 4 / 9)])
    np.testing.assert_allclose(got["log"], np.log([0.5, 0.9, 1 / 3]))
    # a label the model never saw: probability 0, the log score at its floor
    unseen = query_scores(task_label_probabilities(np.array([[0.3, 0.0, 0.7]]), classes, labels), labels, ["t:c"])
    assert unseen["probability"][0] == 0 and unseen["log"][0] == np.log(1e-3)


def test_proper_scores_prefer_the_calibrated_model_the_probability_does_not():
    # 10 queries of which the model is right on 7: stating 0.7 beats stating 1.0 under a proper
    # score; the own label's probability prefers the overconfident model.
    truth = ["t:a"] * 7 + ["t:b"] * 3
    labels = ["t:a", "t:b"]
    calibrated = query_scores(np.tile([0.7, 0.3], (10, 1)), labels, truth)
    sure = query_scores(np.tile([1.0, 0.0], (10, 1)), labels, truth)
    assert sure["probability"].mean() > calibrated["probability"].mean()
    assert calibrated["brier"].mean() > sure["brier"].mean()
    assert calibrated["log"].mean() > sure["log"].mean()


def test_auto_offers_every_query_score():
    assert SCORES == ("f1", "soft_f1", *QUERY_SCORES)


def test_label_balanced_mean_weighs_each_label_equally_and_resamples_rows():
    truth = np.array(["a", "a", "a", "b"])
    values = np.array([1.0, 1.0, 1.0, 0.0])
    # a's mean 1, b's mean 0: 0.5 whatever the label sizes (plain mean: 0.75)
    assert float(label_balanced_mean(truth, values, ["a", "b"])) == 0.5
    draws = np.random.default_rng(0).integers(0, 4, (50, 4))
    by_draw = label_balanced_mean(truth, values, ["a", "b"], draws)
    for d, value in zip(draws, by_draw):
        present = [label for label in ("a", "b") if (truth[d] == label).any()]
        expected = np.mean([values[d][truth[d] == label].mean() for label in present])
        assert value == expected


def test_soft_f1_is_macro_f1_for_sure_predictions_and_resamples_as_it_does():
    truth = np.array(["a", "a", "b", "c", "c", "a"])
    predicted = np.array(["a", "b", "b", "c", "a", "a"])
    labels = ["a", "b", "c"]
    sure = (predicted[:, None] == np.array(labels)[None, :]).astype(float)
    draws = np.random.default_rng(0).integers(0, len(truth), (40, len(truth)))
    np.testing.assert_allclose(soft_macro_f1(truth, sure, labels),
                               macro_f1_resamples(truth, predicted, labels, np.arange(len(truth))[None]))
    np.testing.assert_allclose(soft_macro_f1(truth, sure, labels, draws), macro_f1_resamples(truth, predicted, labels, draws))


def test_soft_f1_weighs_the_false_positives_a_frequent_label_sends_to_a_rare_one():
    # 8 rows of a, 2 of b. Both models give each label's rows the same mean own-label probability
    # (0.8 and 0.8 against 0.9 and 0.7), so the per-label probability ties them; the second sends
    # the eight a rows half the mass towards b, and macro-F1's precision of b sees it.
    truth = np.array(["a"] * 8 + ["b"] * 2)
    labels = ["a", "b"]
    loose = np.array([[0.8, 0.2]] * 8 + [[0.2, 0.8]] * 2)
    tight = np.array([[0.9, 0.1]] * 8 + [[0.3, 0.7]] * 2)
    by_label = [float(label_balanced_mean(truth, query_scores(p, labels, truth)["probability"], labels)) for p in (loose, tight)]
    assert np.isclose(by_label[0], by_label[1])
    assert soft_macro_f1(truth, tight, labels) > soft_macro_f1(truth, loose, labels) + 0.04


def test_a_fold_model_predicting_one_label_is_scored_without_the_test_set_warning(caplog):
    # the held-out queries are not the test set: the evaluate stage's "every test row is
    # predicted ..." warning would mislead there, and the score is the same macro-F1
    from taskselect.metrics import classification_metrics
    from taskselect.selectors.auto import AutoSelector

    truth = np.array(["a", "a", "b", "c"])
    labels = ["a", "b", "c"]
    predicted = np.array([["a"] * 4, ["a", "b", "b", "c"]], dtype=object)
    probabilities = np.stack([np.tile([1.0, 0.0, 0.0], (4, 1)), np.eye(3)[[0, 1, 1, 2]]])
    draws = np.random.default_rng(0).integers(0, 4, (20, 4))
    with caplog.at_level("WARNING", logger="taskselect"):
        scores, _ = AutoSelector._scores(predicted, probabilities, truth, labels, draws)
    assert caplog.records == []
    assert scores["f1"] == [classification_metrics(truth, p, labels)["f1_macro"] for p in predicted]
    assert scores["f1"][0] < scores["f1"][1]
