"""Selectors: given query and pool embeddings (and, for some, texts and labels) and a budget,
choose training rows. `make_selector` builds any of them by name from the select parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import get_args

from taskselect.config import Method, SelectParams
from taskselect.errors import TaskselectError
from taskselect.selectors.auto import AutoSelector
from taskselect.selectors.base import Corpus, Selection, Selector, budget_label, resolve_budget
from taskselect.selectors.baselines import FullSelector, RandomSelector
from taskselect.selectors.dsir import DSIRSelector
from taskselect.selectors.kcenter import KCenterSelector
from taskselect.selectors.knn import KNNDensitySelector, KNNSelector
from taskselect.selectors.loss import LossSelector
from taskselect.selectors.s2l import S2LSelector
from taskselect.selectors.tsds import TSDSPlan, TSDSSelector


def _knn_density(params: SelectParams, k: int, sigma: float) -> KNNDensitySelector:
    """KNN-Uniform / KNN-KDE with TSDS's search and density settings."""
    tsds = params.tsds
    return KNNDensitySelector(k=k, sigma=sigma, kde_k=tsds.kde_k, metric=tsds.metric, replace=tsds.replace,
                              kde_exact_max=tsds.kde_exact_max, kde_nprobe=tsds.kde_nprobe)


REGISTRY: dict[str, Callable[[SelectParams], Selector]] = {
    "tsds": lambda p: TSDSSelector(**p.tsds.model_dump(exclude={"preset"})),  # the preset set alpha, C, sigma
    "random": lambda p: RandomSelector(),
    "full": lambda p: FullSelector(),
    "knn": lambda p: KNNSelector(**p.knn.model_dump()),
    "knn-uniform": lambda p: _knn_density(p, p.knn_uniform.k, 0.0),
    "knn-kde": lambda p: _knn_density(p, p.knn_kde.k, p.knn_kde.sigma),
    "dsir": lambda p: DSIRSelector(**p.dsir.model_dump()),
    "kcenter": lambda p: KCenterSelector(**p.kcenter.model_dump()),
    "s2l": lambda p: S2LSelector(**p.s2l.model_dump()),
    "loss": lambda p: LossSelector(**p.loss.model_dump()),
    "auto": lambda p: AutoSelector(params=p, **p.auto.model_dump()),
}
METHODS: tuple[str, ...] = get_args(Method)
# The selectors that read the Corpus (texts and labels), not only embeddings.
CORPUS_METHODS = ("dsir", "s2l", "loss", "auto")


def make_selector(method: str, params: SelectParams) -> Selector:
    """The selector named `method`, configured from its section of the select parameters."""
    if method not in REGISTRY:
        raise TaskselectError(f"method {method!r}: expected one of {', '.join(METHODS)}")
    return REGISTRY[method](params)


__all__ = [
    "AutoSelector", "CORPUS_METHODS", "METHODS", "REGISTRY", "Corpus", "DSIRSelector", "FullSelector", "KCenterSelector", "KNNDensitySelector", "KNNSelector",
    "LossSelector", "RandomSelector", "S2LSelector", "Selection", "Selector", "TSDSPlan", "TSDSSelector",
    "budget_label", "make_selector", "resolve_budget",
]
