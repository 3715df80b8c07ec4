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
