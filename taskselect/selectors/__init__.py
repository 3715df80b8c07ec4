"""Selectors: given query and pool embeddings and a budget, choose training rows."""

from __future__ import annotations

from taskselect.config import SelectParams
from taskselect.errors import TaskselectError
from taskselect.selectors.base import Selection, Selector, budget_label, resolve_budget
from taskselect.selectors.baselines import FullSelector, RandomSelector
from taskselect.selectors.tsds import TSDSPlan, TSDSSelector

METHODS = ("tsds", "random", "full")


def make_selector(method: str, params: SelectParams) -> Selector:
    """The selector named `method`, configured from its section of the select parameters."""
    if method == "tsds":
        return TSDSSelector(**params.tsds.model_dump())
    if method == "random":
        return RandomSelector()
    if method == "full":
        return FullSelector()
    raise TaskselectError(f"method {method!r}: expected one of {', '.join(METHODS)}")


__all__ = [
    "METHODS", "FullSelector", "RandomSelector", "Selection", "Selector", "TSDSPlan", "TSDSSelector",
    "budget_label", "make_selector", "resolve_budget",
]
