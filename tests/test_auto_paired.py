"""benchmarks/auto_paired.py's section: which of auto's runs differ from the best other selector's
on the test set, counted from the paired intervals."""


def test_a_run_counts_as_below_or_above_only_when_its_whole_interval_is():
    from benchmarks.auto_paired import render

    run = {"target": "trec", "budget": 0.05, "best_other": "dsir"}
    records = [run | {"seed": 0, "auto": 0.80, "other": 0.83, "low": -0.05, "high": -0.01},  # holds below
               run | {"seed": 1, "auto": 0.82, "other": 0.83, "low": -0.04, "high": 0.02},  # cannot tell
               run | {"seed": 2, "auto": 0.85, "other": 0.83, "low": 0.001, "high": 0.04}]  # holds above
    text = render({"records": records, "confidence": 0.95, "n_boot": 1000, "seconds": 1, "load_before": 0,
                   "load_after": 0, "machine": {"cpu": "cpu", "cores": 2}})
    assert "| trec | 5% | dsir | -3.0 [-5.0, -1.0], -1.0 [-4.0, +2.0], +2.0 [+0.1, +4.0] | 1 / 1 of 3 |" in text
    assert "holds below 0 in **1** and above 0 in **1**" in text
