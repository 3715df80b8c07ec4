"""The scores auto ranks its candidates by (taskselect.metrics), against direct computations."""

import numpy as np

from taskselect.metrics import QUERY_SCORES, label_balanced_mean, query_scores
from taskselect.selectors.auto import SCORES


def test_query_scores_renormalise_over_the_task_labels():
    classes = ["t:a", "other:x", "t:b"]
    scores = np.array([[0.2, 0.6, 0.2], [0.1, 0.0, 0.9], [0.0, 1.0, 0.0]])
    labels = ["t:a", "t:b", "t:c"]
    got = query_scores(scores, classes, labels, ["t:a", "t:b", "t:c"])
    # over the task labels: row 0 (0.5, 0.5, 0), row 1 (0.1, 0.9, 0), row 2 uniform (no mass on them)
    np.testing.assert_allclose(got["probability"], [0.5, 0.9, 1 / 3])
    np.testing.assert_allclose(got["brier"], [1 - 0.5 * (0.25 + 0.25), 1 - 0.5 * (0.01 + 0.01), 1 - 0.5 * (2 / 9 + 4 / 9)])
    np.testing.assert_allclose(got["log"], np.log([0.5, 0.9, 1 / 3]))
    # a label the model never saw: probability 0, the log score at its floor
    unseen = query_scores(np.array([[0.3, 0.0, 0.7]]), classes, labels, ["t:c"])
    assert unseen["probability"][0] == 0 and unseen["log"][0] == np.log(1e-3)


def test_proper_scores_prefer_the_calibrated_model_the_probability_does_not():
    # 10 queries of which the model is right on 7: stating 0.7 beats stating 1.0 under a proper
    # score; the own label's probability prefers the overconfident model.
    truth = ["t:a"] * 7 + ["t:b"] * 3
    classes, labels = ["t:a", "t:b"], ["t:a", "t:b"]
    calibrated = query_scores(np.tile([0.7, 0.3], (10, 1)), classes, labels, truth)
    sure = query_scores(np.tile([1.0, 0.0], (10, 1)), classes, labels, truth)
    assert sure["probability"].mean() > calibrated["probability"].mean()
    assert calibrated["brier"].mean() > sure["brier"].mean()
    assert calibrated["log"].mean() > sure["log"].mean()


def test_auto_offers_every_query_score():
    assert SCORES == ("f1", *QUERY_SCORES)


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
