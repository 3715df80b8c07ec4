"""Selectors: given query and pool embeddings (and, for some, texts and labels) and a budget,
choose training rows.

Each selector module declares, next to its code, everything the pipeline needs to know about
it, and registers itself with the `register` class decorator (taskselect.selectors.base):

    class ToyParams(Section):                      # its section select.toy of params.yaml
        \"\"\"toy: what it does (the Prefect form shows this).\"\"\"
        width: int = Field(3, ge=1, description="... (rows).")

    @register("toy", ToyParams, reads="embeddings", uses_budget=True)
    @dataclass
    class ToySelector:
        width: int = ToyParams.default("width")    # the section's parameters and defaults
        def __post_init__(self): ToyParams.check(self, "toy")   # and its constraints
        def select(self, query, candidates, size, seed, index=None, corpus=None) -> Selection: ...

- name: the method name in select.methods; its section is select.<name with - as _>;
- params: a taskselect.sections.Section subclass, or None for a selector without parameters;
- reads: "embeddings"; "texts" if it also reads the pool's and the query's texts; "corpus" if
  it also reads the pool's labels (it then cannot select from an unlabelled pool);
- uses_budget: False for a selector that takes the whole pool whatever the budget;
- build: how to make it from the whole select section (default: cls(**its section)).

Then add one `from taskselect.selectors import <module>` line below. Everything else follows
from REGISTRY: config.SelectParams (select.methods' choices and one section per selector, hence
the CLI, the Prefect form and the parameter checks), the select stage, and the checks in
tests/ that params.yaml and dvc.yaml agree with it. A selector module must not import
taskselect.config at import time: config is built from this registry.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

# One import per selector module, in the order their methods are listed; importing registers them.
from taskselect.selectors import tsds  # noqa: F401
from taskselect.selectors import baselines  # noqa: F401
from taskselect.selectors import knn  # noqa: F401
from taskselect.selectors import dsir  # noqa: F401
from taskselect.selectors import kcenter  # noqa: F401
from taskselect.selectors import s2l  # noqa: F401
from taskselect.selectors import loss  # noqa: F401
from taskselect.selectors import mates  # noqa: F401
from taskselect.selectors import negcliploss  # noqa: F401
from taskselect.selectors import auto  # noqa: F401
from taskselect.errors import TaskselectError
from taskselect.selectors.base import (
    REGISTRY, Corpus, Selection, Selector, SelectorSpec, budget_label, budget_share, register, resolve_budget,
)
from taskselect.selectors.auto import AutoSelector
from taskselect.selectors.baselines import FullSelector, RandomSelector
from taskselect.selectors.dsir import DSIRSelector
from taskselect.selectors.filtering import FilteredSelector, FilterParams
from taskselect.selectors.kcenter import KCenterSelector
from taskselect.selectors.knn import KNNDensitySelector, KNNSelector
from taskselect.selectors.loss import LossSelector
from taskselect.selectors.mates import MATESSelector
from taskselect.selectors.negcliploss import NegCLIPLoss, NegCLIPLossSelector
from taskselect.selectors.s2l import S2LSelector
from taskselect.selectors.tsds import TSDSPlan, TSDSSelector

if TYPE_CHECKING:
    from taskselect.config import FinetuneParams, SelectParams


def methods() -> tuple[str, ...]:
    """Every registered method name, in registration order."""
    return tuple(REGISTRY)


def spec(method: str) -> SelectorSpec:
    """The registered facts of `method`; a clear error for an unknown name."""
    if method not in REGISTRY:
        raise TaskselectError(f"method {method!r}: expected one of {', '.join(REGISTRY)}")
    return REGISTRY[method]


def filtered(method: str, params: SelectParams) -> bool:
    """Whether select.filter is set and applies to `method`: every selector that uses the budget
    (not the full pool, the reference)."""
    return params.filter.method != "none" and spec(method).uses_budget


def with_filter(selector: Selector, method: str, params: SelectParams) -> Selector:
    """`selector` behind select.filter, when it applies to `method` (it then needs a Corpus)."""
    if not filtered(method, params):
        return selector
    return FilteredSelector(selector, filter_scorer(params), params.filter.keep, params.filter.method)


def filter_scorer(params: SelectParams) -> NegCLIPLoss:
    """select.filter's scorer: negCLIPLoss with select.negcliploss's scoring settings."""
    scoring = params.negcliploss
    return NegCLIPLoss(scoring.batch_size, scoring.partitions, scoring.tau, symmetric=params.filter.symmetric)


def make_selector(method: str, params: SelectParams, finetune: FinetuneParams | None = None) -> Selector:
    """The selector named `method`, configured from the select parameters (behind select.filter).

    finetune: the run's training parameters, for a selector that trains models (auto trains the
    run's trainer); ignored by the others.
    """
    selector = spec(method).build(params)
    if finetune is not None and getattr(selector, "finetune", finetune) != finetune:
        selector = replace(selector, finetune=finetune)
    return with_filter(selector, method, params)


__all__ = [
    "REGISTRY", "AutoSelector", "Corpus", "DSIRSelector", "FilterParams", "FilteredSelector", "FullSelector",
    "KCenterSelector", "KNNDensitySelector", "KNNSelector", "LossSelector", "MATESSelector", "NegCLIPLossSelector",
    "RandomSelector", "S2LSelector", "Selection", "Selector", "SelectorSpec", "TSDSPlan", "TSDSSelector", "budget_label", "budget_share",
    "filter_scorer", "filtered", "make_selector", "methods", "register", "resolve_budget", "spec", "with_filter",
]
