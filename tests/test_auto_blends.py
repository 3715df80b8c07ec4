"""The blends benchmarks/auto_blends.py measures against auto's equal shares: what each takes."""

from collections import Counter

import numpy as np

from benchmarks.auto_blends import vote_blend, weighted_turns


def test_vote_takes_the_rows_more_selections_hold_first_each_as_often_as_one_selection_draws_it():
    a, b, c = np.array([1, 2, 3, 4]), np.array([3, 4, 5, 6]), np.array([4, 7, 7, 8])
    for seed in range(5):
        four = vote_blend([a, b, c], 4, seed)
        assert len(four) == 4 and {4, 3} <= set(four.tolist())  # held by three, then two selections
        everything = Counter(vote_blend([a, b, c], 9, seed).tolist())
        assert everything == Counter([1, 2, 3, 4, 5, 6, 7, 7, 8])  # 7 twice: c draws it twice
    assert np.array_equal(vote_blend([a, b, c], 5, 0), vote_blend([a, b, c], 5, 0))
    # the rows held once are taken in a seeded order: some seed takes others than seed 0
    assert any(not np.array_equal(vote_blend([a, b, c], 4, 0), vote_blend([a, b, c], 4, s)) for s in range(1, 10))


def test_weighted_turns_share_the_budget_by_weight_and_a_weight_of_zero_gives_nothing():
    first, second, third = np.arange(0, 100), np.arange(100, 200), np.arange(200, 300)
    rows = weighted_turns([first, second, third], [3, 1, 0], 80, seed=0)
    assert len(rows) == 80
    assert (rows < 100).sum() == 60 and ((rows >= 100) & (rows < 200)).sum() == 20 and (rows >= 200).sum() == 0
