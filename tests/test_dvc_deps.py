"""dvc.yaml's code deps are the files each stage runs (taskselect.codedeps), no more, no less."""

from pathlib import Path

import pytest
import yaml

from taskselect.codedeps import PACKAGE, STAGES, dvc_deps, stage_code

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("stage", STAGES)
def test_dvc_yaml_lists_the_code_each_stage_runs(stage):
    deps = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]["deps"]
    assert [d for d in deps if d.startswith("taskselect/")] == dvc_deps(stage)


def test_the_code_of_a_stage_follows_its_imports():
    select, evaluate, embed = set(stage_code("select")), set(stage_code("evaluate")), set(stage_code("embed"))
    assert {PACKAGE / "stages.py", PACKAGE / "index.py", PACKAGE / "selectors" / "tsds.py"} <= select
    assert PACKAGE / "trainers" / "head.py" in evaluate
    assert PACKAGE / "trainers" / "transformer.py" in evaluate  # named by the trainers' lazy registry
    assert PACKAGE / "embedding.py" in evaluate  # the transformer trainer resolves its model there
    assert not any("selectors" in p.parts or "trainers" in p.parts for p in embed)
    assert PACKAGE / "config.py" not in select | evaluate  # parameters: DVC tracks their values


@pytest.mark.parametrize("stage", ["embed", "index", "finetune", "evaluate"])
def test_a_stage_tracks_its_sections_parameters_but_the_runtime_ones(stage):
    """Another embed.cache_dir or batch_size must not rerun `dvc repro`'s embed (minutes, for the
    same vectors); any other parameter of a stage's section must. (prepare reads the files at the
    data paths, and report writes the plan lists and track into run.json: they keep theirs.)"""
    from registry_checks import stage_params

    from taskselect.config import Params

    listed = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]["params"]
    assert listed == stage_params(Params.model_fields[stage].annotation, stage)


def test_the_report_stage_tracks_what_its_comparison_reads():
    """report sets each run against the baselines and report.against's selectors on evaluate's
    resamples (n_boot, confidence, seed): another of either must rerun it, not only new evaluations."""
    listed = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["report"]["params"]
    assert {"evaluate", "report", "select.methods", "select.budgets", "select.seeds"} <= set(listed)
