"""Checks that the project's files agree with the selector registry (used by test_config and
by test_registry's toy selector, which runs them in a process where the toy is registered)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def params_file_problems(path: Path = ROOT / "params.yaml") -> list[str]:
    """Where `path` differs from the parameters' defaults (config.Params, built from the registry):
    each missing, unknown or different key, one line each."""
    from taskselect.config import Params, flatten

    stated = flatten(yaml.safe_load(Path(path).read_text()))
    defaults = flatten(Params().model_dump(mode="json"))
    return ([f"{key}: missing" for key in defaults if key not in stated]
            + [f"{key}: not a parameter" for key in stated if key not in defaults]
            + [f"{key}: {stated[key]!r}, default {defaults[key]!r}" for key in defaults
               if key in stated and stated[key] != defaults[key]])


def stage_params(model, key: str) -> list[str]:
    """What a DVC stage lists for the section `key` (of pydantic type `model`): the section whole,
    or, when some of its parameters are RUNTIME (taskselect.sections), each of the others: another
    cache directory or thread count makes the same outputs, and must not rerun the stage."""
    from pydantic import BaseModel

    from taskselect.sections import runtime_keys

    runtime = runtime_keys(model)  # a nested section's runtime keys are dotted: it is listed by its own
    if not runtime:
        return [key]
    return [p for name, field in model.model_fields.items() if name not in runtime
            for p in (stage_params(field.annotation, f"{key}.{name}")
                      if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
                      else [f"{key}.{name}"])]


def dvc_select_problems(path: Path = ROOT / "dvc.yaml") -> list[str]:
    """Where the select stage's params in `path` differ from the registry's sections, the filter in
    front of every selector and finetune (auto trains the run's trainer on its candidates'
    selections), each but its runtime parameters: a stage must rerun when any of them changes, and
    only then."""
    from taskselect.config import Params
    from taskselect.selectors import REGISTRY

    select = Params.model_fields["select"].annotation.model_fields
    sections = [(select[s.section].annotation, f"select.{s.section}") for s in REGISTRY.values() if s.section is not None]
    sections += [(select["filter"].annotation, "select.filter"), (Params.model_fields["finetune"].annotation, "finetune")]
    wanted = [p for model, key in sections for p in stage_params(model, key)]
    listed = yaml.safe_load(Path(path).read_text())["stages"]["select"]["params"]
    return ([f"{p}: missing from the select stage's params" for p in wanted if p not in listed]
            + [f"{p}: not a selector's parameter" for p in listed if p not in wanted])
