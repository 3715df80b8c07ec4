"""A selector declared in one module and registered reaches every front end and check."""

import json
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

# Run in a fresh process: the toy must be registered before taskselect.config is built from
# the registry (as the selector modules are, by taskselect.selectors' imports).
TOY = '''
import json, sys
from dataclasses import dataclass

import numpy as np
from pydantic import Field

from taskselect.sections import Section
from taskselect.selectors.base import Selection, register


class ToyParams(Section):
    """toy: every query's first rows (a test's selector)."""

    width: int = Field(3, ge=1, description="Rows per query.")


@register("toy", ToyParams, reads="corpus")
@dataclass
class ToySelector:
    width: int = ToyParams.default("width")

    def select(self, query, candidates, size, seed, index=None, corpus=None):
        return Selection(indices=np.arange(size, dtype=np.int64))


sys.path.insert(0, sys.argv[1])
from prefect.utilities.callables import parameter_schema
from typer.testing import CliRunner

from flows.pipeline import pipeline
from registry_checks import dvc_select_problems, params_file_problems
from taskselect.cli import app
from taskselect.config import load_params
from taskselect.selectors import make_selector, spec

definitions = parameter_schema(pipeline.fn).model_dump()["definitions"]
select = definitions["SelectParams"]["properties"]
toy = definitions[select["toy"]["$ref"].rsplit("/", 1)[-1]]
params = load_params(None, ["select.methods=[toy, tsds]", "select.toy.width=5"])
print(json.dumps({
    "cli_run_help": CliRunner().invoke(app, ["run", "--help"], terminal_width=200).output,
    "cli_select_help": CliRunner().invoke(app, ["select", "--help"], terminal_width=200).output,
    "form_methods": select["methods"]["items"]["enum"],
    "form_toy": toy,
    "params_problems": params_file_problems(),
    "dvc_problems": dvc_select_problems(),
    "width": make_selector("toy", params.select).width,
    "reads_corpus": spec("toy").reads_corpus,
}))
'''


def test_a_toy_selector_appears_in_the_cli_the_form_and_the_file_checks():
    result = subprocess.run([sys.executable, "-c", TOY, str(TESTS)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert "toy" in seen["cli_run_help"] and "toy" in seen["cli_select_help"]
    assert seen["form_methods"][-1] == "toy" and "tsds" in seen["form_methods"]
    assert seen["form_toy"]["description"] == "toy: every query's first rows (a test's selector)."
    assert seen["form_toy"]["properties"]["width"]["description"] == "Rows per query."
    assert seen["params_problems"] == ["select.toy.width: missing"]
    assert seen["dvc_problems"] == ["select.toy: missing from the select stage's params"]
    assert seen["width"] == 5 and seen["reads_corpus"] is True


def test_a_selector_built_directly_has_its_sections_defaults_and_constraints():
    """Each selector's parameters are declared on its section (defaults, bounds): the selector
    built with no more arguments than it requires is the one params.yaml's defaults build, and a
    bad value is refused with the section's message, as params.yaml's is."""
    import dataclasses
    from collections import Counter

    import pytest

    from taskselect.config import SelectParams, load_params
    from taskselect.errors import TaskselectError
    from taskselect.selectors import REGISTRY, make_selector

    built = {method: make_selector(method, SelectParams()) for method in REGISTRY}
    owners = Counter(type(selector) for selector in built.values())
    compared = []
    for method, selector in built.items():
        spec = REGISTRY[method]
        if spec.params is None or not dataclasses.is_dataclass(selector) or owners[type(selector)] > 1:
            continue  # no parameters; knn-kde and knn-uniform share one class, set by their builds
        fields = dataclasses.fields(selector)
        required = {f.name: getattr(selector, f.name) for f in fields
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        shared = [f.name for f in fields if f.name in spec.params.model_fields and f.name not in required]
        direct = type(selector)(**required)
        assert {k: getattr(direct, k) for k in shared} == {k: getattr(selector, k) for k in shared}, method
        compared.append(method)
        key, value = next((k, v) for k, v in [("neighbourhood", 0.5), ("ngrams", 0), ("metric", "ip"), ("p", 0.5),
                                              ("folds", 1)] if k in shared)
        with pytest.raises(TaskselectError) as direct_error:
            dataclasses.replace(direct, **{key: value})
        with pytest.raises(TaskselectError) as file_error:
            load_params(None, [f"select.{spec.section}.{key}={value}"])
        assert str(direct_error.value).startswith(f"{method}: {key}: ")
        assert str(file_error.value).endswith(str(direct_error.value).removeprefix(f"{method}: "))
    assert {"tsds", "knn", "kcenter", "dsir", "loss", "s2l", "mates", "negcliploss", "auto"} <= set(compared)
