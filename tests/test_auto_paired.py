"""benchmarks/auto_paired.py's section: which of auto's runs differ from the best other selector's
on the test set, counted from the paired intervals."""


def test_a_run_counts_as_below_or_above_only_when_its_whole_interval_is():
    from benchmarks.auto_paired import render

    run = {"target": "trec", "budget": 0.05, "best_other": "dsir"}
    records = [run | {"seed": 0, "auto": 0.80, "other": 0.83, "low": -0.05, "high": -0.01},  # holds below
               run | {"seed": 1, "auto": 0.82, "other": 0.83, "low": -0.04, "high": 0.02},  # cannot tell
               run | {"seed": 2, "auto": 0.85, "other": 0.83, "low": 0.001, "high": 0.04}]  # holds above
    held = {"target": "movies", "budget": 0.02, "best_other": "dsir", "seed": 0, "auto": 0.6, "other": 0.7,
            "low": -0.12, "high": -0.08}
    meta = {"confidence": 0.95, "n_boot": 1000, "seconds": 1, "load_before": 0, "load_after": 0,
            "machine": {"cpu": "cpu", "cores": 2}}
    text = render({"targets": meta | {"records": records}, "held-out": meta | {"records": [held]}})
    assert "| trec | 5% | dsir | -3.0 [-5.0, -1.0], -1.0 [-4.0, +2.0], +2.0 [+0.1, +4.0] | 1 / 1 of 3 |" in text
    assert "| movies | 2% | dsir | -10.0 [-12.0, -8.0] | 1 / 0 of 1 |" in text
    assert ("four targets, 2-10%: below 0 in **1** and above 0 in **1** of 3; held-out tasks: below 0 in **1** and "
            "above 0 in **0** of 1") in text
