"""The scores auto ranks its candidates by (taskselect.metrics), against direct computations."""

import numpy as np

from taskselect.metrics import label_balanced_mean, own_label_probability


def test_own_label_probability_is_renormalised_over_the_task_labels():
    classes = ["t:a", "other:x", "t:b"]
    scores = np.array([[0.2, 0.6, 0.2], [0.1, 0.0, 0.9], [0.0, 1.0, 0.0]])
    own = own_label_probability(scores, classes, ["t:a", "t:b", "t:c"], ["t:a", "t:b", "t:c"])
    # row 0: 0.2 of the 0.4 on task labels; row 1: 0.9 of 1.0; row 2: a label the model never saw
    np.testing.assert_allclose(own, [0.5, 0.9, 0.0])


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
