"""benchmarks/sensitivity_held_out.py: what its section says of the defaults, and its check that
the grid scores the default setting as `taskselect run` did."""

import pytest

from taskselect.config import Params


def records(task: str, f1: dict[tuple[float, float, float], list[float]]) -> list[dict]:
    """A record per setting, budget and seed: f1[setting] lists the 2% then the 5% runs' F1."""
    out = []
    for (alpha, C, sigma), values in f1.items():
        for i, value in enumerate(values):
            out.append({"target": task, "alpha": alpha, "C": C, "sigma": sigma, "budget": (0.02, 0.05)[i // 3],
                        "seed": i % 3, "f1": value})
    return out


def test_the_section_measures_the_default_against_the_best_single_setting_and_each_cells_best():
    from benchmarks.sensitivity_held_out import render

    default, other = (0.9, 5.0, 0.1), (0.6, 1.0, 0.75)
    machine = {"cpu": "cpu", "cores": 2}
    found = [{"target": "a", "seconds": 1, "load_before": 0, "load_after": 0, "machine": machine, "checked_runs": 4,
              "records": records("a", {default: [0.70] * 6, other: [0.72] * 6})},
             {"target": "b", "seconds": 1, "load_before": 0, "load_after": 0, "machine": machine, "checked_runs": 4,
              "records": records("b", {default: [0.60] * 3 + [0.64] * 3, other: [0.61] * 6})}]
    text = render(found, Params())
    # mean macro-F1 over the four cells: default 0.66, other 0.665; cells' best: a 0.72 / 0.72, b 0.61 / 0.64
    assert "| **0.9** | 5 | 0.1 (default) | 0.700 | 0.620 | 0.660 | 1.8 | 1.3 |" in text
    assert ("The default (alpha 0.9, C 5, sigma 0.1): 0.50 points below the best single setting on these tasks "
            "(alpha 0.6, C 1, sigma 0.75, mean macro-F1 0.665 against 0.660); 1.25 points below each cell's best "
            "setting on average; 2 of 2 by mean rank.") in text
    assert "(8 runs) have the macro-F1" in text


def test_a_default_run_that_differs_from_the_recorded_tsds_run_stops_the_script(tmp_path, monkeypatch):
    import benchmarks.sensitivity_held_out as script
    from taskselect.io import write_json

    write_json(tmp_path / "t.json", {"records": [{"method": "tsds", "budget": 0.02, "seed": 0, "f1": 0.5},
                                                 {"method": "auto", "budget": 0.02, "seed": 1, "f1": 0.9}]})
    monkeypatch.setattr(script, "RECORDED", (tmp_path,))
    default = (0.9, 5.0, 0.1)
    runs = records("t", {default: [0.5, 0.7, 0.7, 0.6, 0.6, 0.6]})
    assert script.check_against_recorded("t", runs, default) == 1
    with pytest.raises(SystemExit, match="t: the default setting's macro-F1 differs"):
        script.check_against_recorded("t", records("t", {default: [0.51] * 6}), default)
