"""`dvc repro` on a fresh copy of the project runs the same stages through the CLI."""

import json
import os
import subprocess

import pytest
import yaml

from conftest import BIN, copy_project, small_profile
from taskselect.config import apply_overrides

pytestmark = pytest.mark.e2e


def dvc(*args, cwd):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([str(BIN / "dvc"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def test_dvc_repro_reproduces_the_pipeline_and_then_has_nothing_to_do(tmp_path, embedding_cache):
    project = copy_project(tmp_path / "project")
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    params = yaml.safe_load((project / "params.yaml").read_text())
    apply_overrides(params, small_profile(project, embedding_cache))
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    first = dvc("repro", cwd=project)
    assert first.returncode == 0, first.stdout + first.stderr
    for stage in ("prepare", "embed", "index", "select", "finetune", "evaluate", "report"):
        assert f"Running stage '{stage}'" in first.stdout
    records = json.loads((project / "data" / "results" / "results.json").read_text())
    assert {r["method"] for r in records} == {"tsds", "random", "full"}

    second = dvc("repro", cwd=project)
    assert second.returncode == 0
    assert "Running stage" not in second.stdout
    assert "up to date" in second.stdout

    metrics = dvc("metrics", "show", "--json", cwd=project)
    shown = json.loads(metrics.stdout)
    values = next(iter(shown.values()))["data"]["data/results/metrics.json"]["data"]
    assert values["tsds@10%"]["f1_macro"] == pytest.approx(
        next(r["f1_macro"] for r in records if r["method"] == "tsds"), abs=1e-4)
