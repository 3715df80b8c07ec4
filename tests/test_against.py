"""benchmarks/against.py's section: each selector's difference from the reference per cell, and
in how many runs its paired interval lies wholly on that side of 0."""


def test_a_cell_counts_the_runs_whose_interval_is_wholly_on_the_mean_differences_side():
    from benchmarks.against import render

    def run(method, target, budget, seed, f1, low, high):
        return {"target": target, "method": method, "budget": budget, "seed": seed, "f1": f1, "reference": 0.80,
                "low": low, "high": high}
    records = [run("dsir", "trec", b, s, f1, low, high) for b in (0.02, 0.05, 0.1) for s, f1, low, high in [
        (0, 0.85, 0.02, 0.08),  # holds above
        (1, 0.83, 0.005, 0.06),  # holds above
        (2, 0.79, -0.03, 0.01)]]  # cannot tell
    records += [run("knn", "trec", b, s, 0.78, -0.04, -0.001 if s == 0 else 0.01) for b in (0.02, 0.05, 0.1)
                for s in range(3)]
    # kcenter holds above at 2% and 5% in every run, at 10% in one
    records += [run("kcenter", "trec", b, s, 0.85, 0.01 if b < 0.1 or s == 0 else -0.01, 0.08)
                for b in (0.02, 0.05, 0.1) for s in range(3)]
    # s2l holds above at 2% only
    records += [run("s2l", "trec", b, s, 0.85, 0.01 if b == 0.02 else -0.01, 0.08) for b in (0.02, 0.05, 0.1)
                for s in range(3)]
    meta = {"reference": "tsds", "confidence": 0.95, "n_boot": 1000, "seconds": 1, "load_before": 0, "load_after": 0,
            "machine": {"cpu": "cpu", "cores": 2}}
    text = render(meta | {"records": records})
    assert "| method | trec 2% | trec 5% | trec 10% |" in text
    assert "| dsir | +2.3 (2/3) | +2.3 (2/3) | +2.3 (2/3) |" in text  # mean of +5, +3, -1 points
    assert "| knn | -2.0 (1/3) | -2.0 (1/3) | -2.0 (1/3) |" in text
    assert "| kcenter | +5.0 (3/3) | +5.0 (3/3) | +5.0 (1/3) |" in text
    assert "dsir 6 / 0 of 9; knn 0 / 3 of 9; kcenter 7 / 0 of 9; s2l 3 / 0 of 9" in text
    # the cells listed, or, when a selector holds above in most cells, the others
    assert ("at least two of the three runs: dsir: every cell; kcenter: every cell but trec 10%; "
            "s2l: trec 2%.") in text
