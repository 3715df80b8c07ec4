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


def test_the_rendered_table_has_a_cell_per_column_and_says_not_run_where_a_variant_was_not_run():
    """The section from the committed records, one group's records without a variant: every row
    has as many cells as the header, and that group's cell for the variant reads 'not run'."""
    from pathlib import Path

    from benchmarks.auto_blends import NAMES, OUT, RULE, render
    from taskselect.io import read_json

    found = {p.stem: read_json(p) for p in sorted(OUT.glob("*.json"))}
    held_out = next(g for g in found if g not in RULE)
    for record in found[held_out]["records"]:
        record.pop("vote", None)
    rows = [line for line in render(found, Path("benchmarks/quality")).splitlines() if line.startswith("|")]
    header = rows[0].split(" | ")
    assert all(len(row.split(" | ")) == len(header) for row in rows[2:])
    vote = next(row for row in rows if row.startswith("| the rows most close candidates hold first"))
    assert vote.split(" | ")[header.index(NAMES[held_out])] == "not run"
