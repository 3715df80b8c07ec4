from pathlib import Path

import pytest
import yaml

from registry_checks import dvc_select_problems, params_file_problems
from taskselect.config import load_params
from taskselect.errors import TaskselectError

ROOT = Path(__file__).resolve().parents[1]


def test_params_yaml_states_every_default():
    assert params_file_problems() == []


def test_dvc_select_stage_lists_every_selector_section():
    assert dvc_select_problems() == []


def test_the_checks_see_a_section_missing_or_stale(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    del params["select"]["dsir"]["ngrams"]
    params["select"]["kcenter"]["radius"] = 1.0
    params["select"]["tsds"]["alpha"] = 0.5
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert params_file_problems(tmp_path / "params.yaml") == [
        "select.dsir.ngrams: missing", "select.kcenter.radius: not a parameter", "select.tsds.alpha: 0.5, default 0.9",
    ]
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    dvc["stages"]["select"]["params"].remove("select.loss")
    dvc["stages"]["select"]["params"].append("select.magic")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(dvc))
    assert dvc_select_problems(tmp_path / "dvc.yaml") == [
        "select.loss: missing from the select stage's params", "select.magic: not a selector's parameter",
    ]


def test_overrides_are_typed_and_win(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("select:\n  tsds:\n    alpha: 0.3\n")
    params = load_params(path, ["select.tsds.C=2", "select.budgets=[0.01, 500]"])
    assert params.select.tsds.alpha == 0.3
    assert params.select.tsds.C == 2.0
    assert params.select.budgets == [0.01, 500]


@pytest.mark.parametrize(
    "override, message",
    [
        ("select.tsds.alpha=2", "select.tsds.alpha: Input should be less than or equal to 1"),
        ("select.tsds.alhpa=0.5", "select.tsds.alhpa: unknown parameter"),
        ("data.target=imdb", "data.target: Input should be 'airline_sentiment'"),
        ("select.methods=[tsds, magic]", "select.methods.1"),
        ("select.budgets=[12.5]", "neither a whole row count nor a fraction"),
        ("no-equals-sign", "expected KEY=VALUE"),
        ("finetune.trainer=bert", "finetune.trainer: Input should be 'head' or 'transformer'"),
        ("finetune.transformer.val_fraction=1", "finetune.transformer.val_fraction: Input should be less than 1"),
    ],
)
def test_bad_parameters_name_the_parameter(override, message):
    with pytest.raises(TaskselectError, match=message.replace("[", r"\[").replace(".", r"\.")):
        load_params(None, [override])


def test_missing_params_file_is_named(tmp_path):
    with pytest.raises(TaskselectError, match="nope.yaml: parameters file not found"):
        load_params(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    "text, message",
    [
        ("select:\n  tsds:\n    alpha: 0.5\n    alpha: 0.9\n", r"line 4, column 5: not valid YAML: duplicate key 'alpha' \(first at line 3\)"),
        ("data:\n  seed: 1\ndata:\n  seed: 2\n", r"line 3, column 1: not valid YAML: duplicate key 'data' \(first at line 1\)"),
        ("select:\n  tsds:\n    alpha: 0.5\n   C: 1\n", r"line 4, column \d+: not valid YAML"),
        ("select:\n  tsds:\n    C: .inf\n", r"select\.tsds\.C: Input should be a finite number"),
    ],
)
def test_params_file_problems_name_the_line_or_parameter(tmp_path, text, message):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(TaskselectError, match=message):
        load_params(path)


@pytest.mark.parametrize(
    "override, message",
    [
        ("select.budgets=[0.1,", r"override 'select\.budgets=\[0\.1,': not valid YAML"),
        ("select.tsds.C=.inf", r"select\.tsds\.C: Input should be a finite number"),
        ("select.budgets=[.nan]", r"select\.budgets\.0: Input should be a finite number"),
        ("finetune.head.C=-.inf", r"finetune\.head\.C: Input should be a finite number"),
    ],
)
def test_non_finite_numbers_and_bad_yaml_in_overrides_are_refused(override, message):
    with pytest.raises(TaskselectError, match=message):
        load_params(None, [override])
