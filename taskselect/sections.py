"""The base of every typed parameter section (config.py's and the selectors' own)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

from taskselect.errors import TaskselectError

# A union's member (select.budgets.0.int) is pydantic's detail, not a parameter's name.
_UNION_MEMBERS = {"int", "float", "str", "bool", "none"}


def one_line(exc: ValidationError, source: str) -> TaskselectError:
    """The first problem pydantic found, as the one-line error every bad parameter gets:
    '<source>: <dotted key>: <what was expected>; got <value>' (no key for a check of several)."""
    err = exc.errors()[0]
    loc = [p for p in err["loc"] if not (isinstance(p, str) and (p in _UNION_MEMBERS or "[" in p))]
    where = ".".join(map(str, loc)) + ": " if loc else ""  # none: a check of the whole section
    given = f"; got {err['input']!r}" if "input" in err and not isinstance(err["input"], dict) else ""
    msg = err["msg"].removeprefix("Value error, ")
    if len(loc) < len(err["loc"]) and err["type"] in ("int_parsing", "int_type", "float_parsing", "float_type"):
        msg = "Input should be a valid number"  # int | float: neither member's message alone is right
    if err["type"] == "extra_forbidden":
        msg = "unknown parameter"
    return TaskselectError(f"{source}: {where}{msg}{given}")


class Section(BaseModel):
    """A section of params.yaml: unknown keys are errors, assignments are validated, and no
    number is infinite or NaN (a C of .inf silently turned TSDS random-like)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @classmethod
    def default(cls, name: str) -> Any:
        """The default declared for parameter `name`: a selector's own field takes it from here,
        so that a selector built in Python and one built from params.yaml start alike."""
        return cls.model_fields[name].get_default(call_default_factory=True)

    @classmethod
    def check(cls, obj: Any, source: str) -> None:
        """Validate the attributes of `obj` named as this section's parameters, so that a selector
        built directly (not from params.yaml) is held to the same declared constraints; the
        first problem is raised as one line (one_line)."""
        try:
            cls.model_validate({name: getattr(obj, name) for name in cls.model_fields if hasattr(obj, name)})
        except ValidationError as exc:
            raise one_line(exc, source) from None


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
