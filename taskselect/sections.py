"""The base of every typed parameter section (config.py's and the selectors' own)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.fields import FieldInfo


class Section(BaseModel):
    """A section of params.yaml: unknown keys are errors, assignments are validated, and no
    number is infinite or NaN (a C of .inf silently turned TSDS random-like)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class Runtime:
    """Marks a parameter (`name: Annotated[int, RUNTIME] = Field(...)`) that changes where, how fast or which
    selections a run makes, never what one selection, its model or its score is: a cache directory, a thread
    count, the list of seeds; the data files' paths, whose rows the data digest stands for. Runs of several
    pipeline runs that differ only in these are one setting (`taskselect compare --all` pools them)."""


RUNTIME = Runtime()


def is_runtime(field: FieldInfo) -> bool:
    return any(isinstance(m, Runtime) for m in field.metadata)


def runtime_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    """The dotted keys ('select.auto.workers') of every parameter of `model` marked RUNTIME."""
    keys = set()
    for name, field in model.model_fields.items():
        if is_runtime(field):
            keys.add(prefix + name)
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            keys |= runtime_keys(field.annotation, f"{prefix}{name}.")
    return keys
