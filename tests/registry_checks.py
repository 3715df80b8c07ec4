"""Checks that the project's files agree with the selector registry (used by test_config and
by test_registry's toy selector, which runs them in a process where the toy is registered)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def params_file_problems(path: Path = ROOT / "params.yaml") -> list[str]:
    """Where `path` differs from the parameters' defaults (config.Params, built from the registry):
    each missing, unknown or different key, one line each."""
    from taskselect.config import Params

    stated = _flatten(yaml.safe_load(Path(path).read_text()))
    defaults = _flatten(Params().model_dump(mode="json"))
    return ([f"{key}: missing" for key in defaults if key not in stated]
            + [f"{key}: not a parameter" for key in stated if key not in defaults]
            + [f"{key}: {stated[key]!r}, default {defaults[key]!r}" for key in defaults
               if key in stated and stated[key] != defaults[key]])


def dvc_select_problems(path: Path = ROOT / "dvc.yaml") -> list[str]:
    """Where the select stage's params in `path` differ from the registry's sections and the filter
    in front of every selector: a stage must rerun when any of them changes, and only then."""
    from taskselect.selectors import REGISTRY

    listed = yaml.safe_load(Path(path).read_text())["stages"]["select"]["params"]
    wanted = [f"select.{s.section}" for s in REGISTRY.values() if s.section is not None] + ["select.filter"]
    listed = [p for p in listed if p != "finetune"]  # auto trains the run's trainer on its candidates' selections
    return ([f"{p}: missing from the select stage's params" for p in wanted if p not in listed]
            + [f"{p}: not a selector's section" for p in listed if p not in wanted])
