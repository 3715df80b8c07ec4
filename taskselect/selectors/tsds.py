"""TSDS: task-specific data selection (Liu, Karbasi, Rekatsinas, NeurIPS 2024).

Find a distribution p over the candidates that is close, in optimal-transport cost, to the
query set, while a KDE term keeps mass off dense regions (near-duplicates). Restricted to
each query's K nearest candidates the problem is the linear program

    min  (alpha / C) sum_ik d_ik g_ik + (1 - alpha) M max_ik rho_ik g_ik
    s.t. sum_k g_ik = 1/M,  g >= 0

(d: distance of query i to its k-th neighbour, rho: that neighbour's kernel density), and
p_j = sum of g_ik over the entries pointing at candidate j. `WaterFilling` solves it exactly.

A selection has an expensive part that depends only on the embeddings and on max_k, kde_k,
sigma and metric (neighbour search and densities: a `TSDSPlan`, which can be saved and
reused) and a cheap part (solving for alpha, sampling a budget with a seed).
"""

from __future__ import annotations

import json
import logging
import os
import time
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np
from pydantic import Field, model_validator
from tqdm.auto import tqdm

from taskselect.errors import TaskselectError
from taskselect.index import KMEANS_ITERATIONS, KMEANS_POINTS_PER_CELL, Metric, nearest, unit_rows
from taskselect.io import atomic_path
from taskselect.sections import Section
from taskselect.selectors.base import Selection, SubsetSelect, first_copies, register
from taskselect.selectors.representation import LEXICAL_WEIGHT_HELP, REPRESENTATION_HELP, Representation, represent
from taskselect.selectors.sampling import sample_with_replacement, sample_without_replacement

log = logging.getLogger(__name__)

KDE_PAIRS_AT_ONCE = 1 << 24  # distances held at once by the KDE: bounds its memory (64 MiB float32)


class WaterFilling:
    """Exact solution of the kNN-restricted TSDS program for every alpha.

    At the optimum every query fills a prefix of its sorted neighbours at one common level s
    (neighbour k gets w_ik / (M s), w = 1 / rho) and gives what is left of its 1/M to the next
    one. Raising s lengthens prefixes; it pays while the alignment cost it adds,
    (alpha / C) * sum_i sum_{k<L_i} w_ik (d_{i,L_i} - d_ik), stays below (1 - alpha) * M.
    The breakpoints of s are the prefix sums of w; sorting all of them once makes solving for
    any alpha a search over that sorted list (no Python loop over queries or neighbours).
    Neighbours of one query at exactly the same distance (duplicates) share their mass in
    proportion to w, which keeps the plan optimal and treats them alike.

    distances: (M, K) float, each row sorted ascending (not squared).
    densities: (M, K) float > 0, the KDE rho of each neighbour (1 everywhere = KNN-Uniform).
    C: distance scale, > 0.
    """

    def __init__(self, distances: np.ndarray, densities: np.ndarray, C: float):
        d = np.asarray(distances, dtype=np.float64)
        rho = np.asarray(densities, dtype=np.float64)
        self.M, self.K = d.shape
        self.C = float(C)
        self.w = 1.0 / rho
        self.S = np.cumsum(self.w, axis=1)  # S[i, c]: weight of query i's first c + 1 neighbours
        dw = np.cumsum(d * self.w, axis=1)
        # spread[i, c]: alignment slope once query i's prefix holds its first c + 1 neighbours;
        # a query whose whole list is in its prefix cannot go on (infinite slope).
        spread = np.full((self.M, self.K), np.inf)
        spread[:, :-1] = d[:, 1:] * self.S[:, :-1] - dw[:, :-1]
        # rows of S are sorted, so sorting all M K breakpoints merges M sorted runs (timsort)
        self.order = np.argsort(self.S, axis=None, kind="stable")
        increments = np.diff(spread, axis=1, prepend=0.0).ravel()[self.order]
        self.total_spread = np.cumsum(increments)
        # tie groups: first column of the run of equal distances each entry belongs to
        starts = np.ones((self.M, self.K), dtype=bool)
        starts[:, 1:] = d[:, 1:] != d[:, :-1]
        self.group_first = None if starts.all() else np.maximum.accumulate(
            np.where(starts, np.arange(self.K), 0), axis=1
        )

    def level(self, alpha: float) -> float:
        """The optimal level s for this alpha."""
        with np.errstate(invalid="ignore"):  # 0 * inf at alpha = 0: the isinf test decides
            stops = np.isinf(self.total_spread) | (
                alpha * self.total_spread >= (1.0 - alpha) * self.M * self.C
            )
        return float(self.S.flat[self.order[int(np.argmax(stops))]])

    def masses(self, alpha: float) -> np.ndarray:
        """(M, K) float64 transport plan g: mass query i sends to its k-th neighbour.

        Each row sums to exactly 1/M (up to round-off); a query whose nearest neighbour alone
        can hold its 1/M sends all of it there.
        """
        s = self.level(alpha)
        M, K = self.M, self.K
        prefix = (self.S <= s).sum(axis=1)
        cols = np.arange(K)
        g = np.where(cols < prefix[:, None], self.w / (M * s), 0.0)
        rows = np.flatnonzero(prefix < K)
        held = np.where(prefix[rows] > 0, self.S[rows, prefix[rows] - 1], 0.0)
        # (s - held) is exact when held is close to s: positive exactly when held < s
        g[rows, prefix[rows]] = np.maximum(0.0, s - held) / (M * s)
        if self.group_first is not None:
            g = self._share_ties(g)
        g /= g.sum(axis=1, keepdims=True) * M  # remove round-off: each query carries 1/M
        return g

    def _share_ties(self, g: np.ndarray) -> np.ndarray:
        label = (np.arange(self.M)[:, None] * self.K + self.group_first).ravel()
        mass = np.bincount(label, weights=g.ravel(), minlength=g.size)
        weight = np.bincount(label, weights=self.w.ravel(), minlength=g.size)
        return self.w * (mass[label] / weight[label]).reshape(g.shape)

    def entry_levels(self) -> np.ndarray:
        """(M, K): the level s above which each neighbour receives mass.

        That is the weight its query's nearer neighbours hold (S of the previous column), taken
        at the first column of its tie group since a group receives mass together.
        """
        before = np.zeros((self.M, self.K))
        before[:, 1:] = self.S[:, :-1]
        if self.group_first is not None:
            before = np.take_along_axis(before, self.group_first, axis=1)
        return before

    def largest_alpha_above(self, level: float) -> float | None:
        """The largest alpha whose optimal level exceeds `level`; None if even alpha = 0's does not.

        The level for alpha stops at the first breakpoint p with alpha * T[p] >= (1 - alpha) M C
        (T: total spread). It exceeds `level` iff no breakpoint at or below `level` stops,
        i.e. alpha < M C / (max T + M C) over those breakpoints.
        """
        below = int(np.searchsorted(self.S.flat[self.order], level, side="right"))
        if below == self.order.size or np.isinf(self.total_spread[:below]).any():
            return None
        top = max(0.0, float(self.total_spread[:below].max())) if below else 0.0
        alpha = np.nextafter(self.M * self.C / (top + self.M * self.C), 0.0)
        for _ in range(100):  # the bound is exact; round-off in the stop test may need a step down
            if self.level(alpha) > level:
                return float(alpha)
            alpha = np.nextafter(alpha, 0.0)
        return 0.0


def check_embeddings(name: str, array: np.ndarray, dim: int | None = None) -> np.ndarray:
    """Validate a (rows, dim) embedding matrix at the boundary; return it as float32.

    Values must be finite and small enough that squared distances fit in float32 (faiss).
    """
    array = np.asarray(array)
    if array.ndim != 2:
        raise TaskselectError(f"{name}: expected a 2-D array (rows, dim), got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise TaskselectError(f"{name}: expected a non-empty array, got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise TaskselectError(f"{name}: expected numbers, got dtype {array.dtype}")
    if dim is not None and array.shape[1] != dim:
        raise TaskselectError(f"{name}: dimension {array.shape[1]} does not match the other embeddings' {dim}")
    limit = np.sqrt(np.finfo(np.float32).max / array.shape[1]) / 4
    for start in range(0, array.shape[0], 1 << 16):  # blocks: no full-size temporaries
        block = array[start:start + (1 << 16)]
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            raise TaskselectError(f"{name}: row {start + int(np.argmin(finite))} holds NaN or infinite values")
        big = np.abs(block).max(axis=1) > limit
        if big.any():
            raise TaskselectError(
                f"{name}: row {start + int(np.argmax(big))} holds values beyond {limit:.3g}; "
                "squared distances would overflow float32 (rescale the embeddings)"
            )
    return np.ascontiguousarray(array, dtype=np.float32)


def kde_densities(
    points: np.ndarray, sigma: float, kde_k: int, metric: Metric,
    exact_max: int = 50000, nprobe: int = 8, seed: int = 0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """(U,) float64 kernel density of each point among its kde_k nearest points, and how it was found.

    kde(x) = sum over those neighbours y (x itself included) of max(0, 1 - d(x, y)^2 / sigma^2),
    so kde >= 1; sigma = 0 gives 1 everywhere. The kernel is 0 beyond sigma, so only pairs
    closer than sigma count. Up to `exact_max` points every pair is examined (blocked matrix
    products); above, the points are clustered into cells (k-means, seeded) and each point
    examines the points of its `nprobe` nearest cells, as an IVF index would: neighbours in
    other cells are missed, so approximate densities can only come out lower. A point with more
    than kde_k - 1 others within sigma keeps only its kde_k nearest (a k-nearest search of those
    points alone). Memory is bounded by KDE_PAIRS_AT_ONCE distances at a time, whatever U.
    points: (U, dim) float32.
    """
    u = len(points)
    if sigma == 0:
        return np.ones(u), {"kde": "off"}
    x = unit_rows(points) if metric == "cosine" else np.ascontiguousarray(points, dtype=np.float32)
    radius = sigma**2 if metric == "l2" else 2.0 * sigma  # in squared L2; cosine d = |x - y|^2 / 2

    def kernel(squared: np.ndarray) -> np.ndarray:
        squared = np.clip(squared.astype(np.float64), 0.0, None)
        dist_sq = squared if metric == "l2" else (squared / 2.0) ** 2
        return np.clip(1.0 - dist_sq / sigma**2, 0.0, None)

    exact = u <= exact_max
    started = time.perf_counter()
    cells = _Cells.whole(u) if exact else _Cells.kmeans(x, nprobe, seed)
    total, count = cells.sums_within(x, radius, kernel)
    density = 1.0 + total
    crowded = np.flatnonzero(count > kde_k - 1)
    if crowded.size:  # more neighbours within sigma than kde_k counts: keep the kde_k nearest
        squared = cells.nearest_squared(x, crowded, kde_k)
        density[crowded] = kernel(np.where(squared < radius, squared, np.inf)).sum(axis=1)
    info = {"kde": "exact" if exact else "approximate", "kde_seconds": round(time.perf_counter() - started, 3),
            "near_duplicates_mean": float(count.mean()), "kde_capped": int(crowded.size)}
    if not exact:
        info |= {"kde_cells": cells.n_cells, "kde_nprobe": cells.nprobe}
    log.info("KDE (%s) over %d rows: %.2f neighbours within sigma on average (%d rows capped at kde_k), %.1fs",
             info["kde"], u, info["near_duplicates_mean"], crowded.size, info["kde_seconds"])
    return density, info


def _squared_distances(a: np.ndarray, a_norms: np.ndarray, b: np.ndarray, b_norms: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) float32 squared L2 distances |a|^2 + |b|^2 - 2 a.b, built in place."""
    squared = a @ b.T
    squared *= -2.0
    squared += a_norms[:, None]
    squared += b_norms[None, :]
    return squared


@dataclass(frozen=True)
class _Cells:
    """Points grouped into cells; point i looks for neighbours in cells probes[i] (its own first).

    centroids None: one cell holding every point (exact).
    """

    probes: np.ndarray
    centroids: np.ndarray | None = None

    @property
    def n_cells(self) -> int:
        return 1 if self.centroids is None else len(self.centroids)

    @property
    def nprobe(self) -> int:
        return self.probes.shape[1]

    @classmethod
    def whole(cls, u: int) -> _Cells:
        return cls(np.zeros((u, 1), dtype=np.int64))

    @classmethod
    def kmeans(cls, x: np.ndarray, nprobe: int, seed: int) -> _Cells:
        """sqrt(nprobe * U) k-means cells: balances assigning points to cells against comparing them."""
        u, dim = x.shape
        n_cells = max(1, min(round(np.sqrt(nprobe * u)), u // KMEANS_POINTS_PER_CELL))
        km = faiss.Kmeans(dim, n_cells, niter=KMEANS_ITERATIONS, seed=seed,
                          max_points_per_centroid=KMEANS_POINTS_PER_CELL, min_points_per_centroid=1)
        km.train(x)
        _, probes = km.index.search(x, min(nprobe, n_cells))
        return cls(probes.astype(np.int64), km.centroids)

    def sums_within(self, x: np.ndarray, radius: float, kernel) -> tuple[np.ndarray, np.ndarray]:
        """For every point: the sum of kernel(squared distance) and the count of the other points
        closer than sqrt(radius) among the cells it probes.

        Cell by cell: the points probing a cell against the cell's members, one matrix product
        per block of at most KDE_PAIRS_AT_ONCE distances (one cell: the upper triangle only).
        """
        u = len(x)
        norms = np.einsum("ij,ij->i", x, x)
        total, count = np.zeros(u), np.zeros(u, dtype=np.int64)
        if self.centroids is None:  # one cell: each pair once, credited to both (half the products)
            step = max(1, KDE_PAIRS_AT_ONCE // u)
            for start in tqdm(range(0, u, step), desc="KDE", unit="block", disable=u <= step):
                rows, cols = np.arange(start, min(u, start + step)), np.arange(start, u)
                squared = _squared_distances(x[start:start + rows.size], norms[rows], x[start:], norms[start:])
                i, j = np.nonzero(squared < radius)
                pair = cols[j] > rows[i]
                i, j = i[pair], j[pair]
                values = kernel(squared[i, j])
                for ends, at in ((i, rows), (j, cols)):
                    total[at] += np.bincount(ends, weights=values, minlength=at.size)
                    count[at] += np.bincount(ends, minlength=at.size)
            return total, count
        cell = self.probes.ravel()
        by_cell = np.argsort(cell, kind="stable")
        probers = by_cell // self.nprobe  # the points probing each cell, cell after cell
        bounds = np.searchsorted(cell[by_cell], np.arange(self.n_cells + 1))
        members = np.argsort(self.probes[:, 0], kind="stable")
        member_bounds = np.searchsorted(self.probes[members, 0], np.arange(self.n_cells + 1))
        for c in tqdm(range(self.n_cells), desc="KDE", unit="cell"):
            cols = members[member_bounds[c]:member_bounds[c + 1]]
            y, y_norms = x[cols], norms[cols]
            rows_of_cell = probers[bounds[c]:bounds[c + 1]]
            step = max(1, KDE_PAIRS_AT_ONCE // max(1, cols.size))
            for s in range(0, rows_of_cell.size, step):
                rows = rows_of_cell[s:s + step]
                squared = _squared_distances(x[rows], norms[rows], y, y_norms)
                i, j = np.nonzero(squared < radius)
                others = rows[i] != cols[j]  # the point itself is the 1 every density starts from
                i, values = i[others], kernel(squared[i[others], j[others]])
                total[rows] += np.bincount(i, weights=values, minlength=rows.size)
                count[rows] += np.bincount(i, minlength=rows.size)
        return total, count

    def nearest_squared(self, x: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
        """(len(rows), k) squared L2 distances from x[rows] to their k nearest points, searched
        where the cells search (all points, or the nprobe probed cells: an IVF index over them)."""
        if self.centroids is None:
            return faiss.knn(x[rows], x, k, metric=faiss.METRIC_L2)[0]
        dim = x.shape[1]
        quantizer = faiss.IndexFlatL2(dim)
        quantizer.add(self.centroids)
        index = faiss.IndexIVFFlat(quantizer, dim, self.n_cells, faiss.METRIC_L2)
        index.is_trained = True
        assign = np.ascontiguousarray(self.probes[:, 0])
        index.add_core(len(x), faiss.swig_ptr(x), None, faiss.swig_ptr(assign))  # cells already known
        index.nprobe = self.nprobe
        return index.search(x[rows], k)[0]


@dataclass(frozen=True)
class TSDSPlan:
    """The alpha-, budget- and seed-independent part of a TSDS selection.

    ids: (M, K) int64 candidate rows, each query's K nearest, nearest first.
    distances: (M, K) float64, ascending per row (l2: Euclidean; cosine: 1 - cosine similarity).
    densities: (M, K) float64 >= 1, the KDE of each neighbour (1 everywhere when sigma = 0).
    n_candidates: N, the number of candidate rows the ids point into.
    twins: (T, 2) int64 [row, first row] pairs: a neighbour whose vector is byte-identical to an
        earlier row's (the same text twice, or two texts alike up to the model's token limit);
        the draw counts them as that row.
    info: JSON-serialisable facts about how it was made: the parameters it depends on
        (max_k, kde_k, sigma, metric, kde_exact_max, kde_nprobe), the index and its recall,
        the size of the neighbour union, how the densities were computed.
    """

    ids: np.ndarray
    distances: np.ndarray
    densities: np.ndarray
    n_candidates: int
    info: dict[str, Any] = field(default_factory=dict)
    twins: np.ndarray = field(default_factory=lambda: np.empty((0, 2), dtype=np.int64))

    def __post_init__(self):
        ids = np.asarray(self.ids)
        dist = np.asarray(self.distances, dtype=np.float64)
        dens = np.asarray(self.densities, dtype=np.float64)
        if ids.ndim != 2 or ids.size == 0 or dist.shape != ids.shape or dens.shape != ids.shape:
            raise TaskselectError(
                f"plan: expected ids, distances and densities of one (M, K) shape, got "
                f"{ids.shape}, {dist.shape}, {dens.shape}"
            )
        if not np.issubdtype(ids.dtype, np.integer) or ids.min() < 0 or ids.max() >= self.n_candidates:
            raise TaskselectError(f"plan: ids must be integers in [0, {self.n_candidates})")
        if not np.isfinite(dist).all() or (np.diff(dist, axis=1) < 0).any():
            raise TaskselectError("plan: distances must be finite and ascending in each row")
        if not np.isfinite(dens).all() or (dens <= 0).any():
            raise TaskselectError("plan: densities must be finite and > 0")
        object.__setattr__(self, "ids", ids.astype(np.int64, copy=False))
        object.__setattr__(self, "distances", dist)
        object.__setattr__(self, "densities", dens)
        object.__setattr__(self, "n_candidates", int(self.n_candidates))
        twins = np.asarray(self.twins, dtype=np.int64).reshape(-1, 2)
        if twins.size and (twins.min() < 0 or twins.max() >= self.n_candidates or (twins[:, 1] >= twins[:, 0]).any()):
            raise TaskselectError(f"plan: twins must be [row, earlier row] pairs in [0, {self.n_candidates})")
        object.__setattr__(self, "twins", twins)

    def save(self, path: str | os.PathLike) -> None:
        """Write the plan to one .npz file, atomically."""
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, ids=self.ids, distances=self.distances, densities=self.densities, twins=self.twins,
                     n_candidates=np.int64(self.n_candidates), info=np.array(json.dumps(self.info)))

    @classmethod
    def load(cls, path: str | os.PathLike) -> TSDSPlan:
        if not Path(path).is_file():
            raise TaskselectError(f"{path}: TSDS plan not found")
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(z["ids"], z["distances"], z["densities"], int(z["n_candidates"]),
                           json.loads(str(z["info"])), z["twins"])
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise TaskselectError(f"{path}: not a TSDS plan ({exc})") from None


# The TSDS paper's two settings (Liu et al. 2024, Section 5): KNN-KDE with C = 5 and kernel
# width h (our sigma) for instruction tuning and for continued pretraining.
PRESETS = {
    "paper-instruction": {"alpha": 0.075, "C": 5.0, "sigma": 0.2},
    "paper-pretraining": {"alpha": 0.6, "C": 5.0, "sigma": 0.1},
}


class TSDSParams(Section):
    """TSDS (Liu et al., NeurIPS 2024): optimal-transport alignment plus KDE diversity. The defaults
    (alpha 0.9, C 5, sigma 0.1) have the best mean rank of 40 settings over four targets at 2% and
    5% (BENCHMARKS.md, "TSDS sensitivity")."""

    preset: Literal["custom", "paper-instruction", "paper-pretraining"] = Field(
        "custom",
        description="'custom': alpha, C and sigma as given; 'paper-instruction' (alpha 0.075, C 5, "
        "sigma 0.2) or 'paper-pretraining' (alpha 0.6, C 5, sigma 0.1): the TSDS paper's settings, "
        "which then replace alpha, C and sigma (left at their defaults or a preset's values; another "
        "value is refused, not ignored).",
    )

    alpha: float = Field(
        0.9, ge=0, le=1, description="Alignment vs diversity: 1 = each query's nearest row only."
    )
    C: float = Field(5.0, gt=0, description="Distance scale against the diversity term.")
    sigma: float = Field(
        0.1, ge=0, description="KDE kernel width (in the distance of metric); 0 disables KDE (KNN-Uniform)."
    )
    max_k: int = Field(5000, ge=1, description="Neighbours considered per query (rows).")
    kde_k: int = Field(1000, ge=1, description="Neighbours counted in each density estimate.")
    metric: Literal["l2", "cosine"] = Field("l2", description="Distance between embeddings.")
    replace: bool = Field(
        False,
        description="Draw with replacement as the paper (duplicates possible); "
        "False spends the whole budget on distinct rows.",
    )
    lower_alpha: bool = Field(
        True,
        description="Without replacement, when fewer rows than the budget have non-zero "
        "probability: lower alpha until enough do (true) or stop with an error (false).",
    )
    kde_exact_max: int = Field(
        50000,
        ge=0,
        description="Densities are exact while the queries' neighbours number at most this many "
        "distinct rows; above, each row compares itself only with rows in its kde_nprobe "
        "nearest k-means cells (approximate, much faster) (rows).",
    )
    kde_nprobe: int = Field(
        8, ge=1, description="Cells each row searches for the densities above kde_exact_max."
    )
    representation: Representation = Field("semantic", description=REPRESENTATION_HELP)
    lexical_weight: float = Field(0.5, ge=0, le=1, description=LEXICAL_WEIGHT_HELP)

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        """A preset replaces alpha, C and sigma where they hold their defaults or a preset's values
        (what params.yaml keeps after a run); any other value was asked for and would be ignored."""
        if not (isinstance(data, dict) and isinstance(data.get("preset"), str) and data["preset"] in PRESETS):
            return data  # pydantic refuses a preset of another type
        for name, value in PRESETS[data["preset"]].items():
            given = data.get(name, value)
            if not (isinstance(given, (int, float)) and given in {cls.default(name), *(p[name] for p in PRESETS.values())}):
                raise ValueError(f"{name} {given!r} would be ignored: preset {data['preset']!r} sets {name} {value:g}; "
                                 f"choose {name} with preset 'custom'")
        return {**data, **PRESETS[data["preset"]]}


# the preset has set alpha, C and sigma
@register("tsds", TSDSParams, default=True, build=lambda p: TSDSSelector(**p.tsds.model_dump(exclude={"preset"})))
@dataclass
class TSDSSelector:
    """TSDS selection: KNN-KDE (sigma > 0) or KNN-Uniform (sigma = 0).

    alpha: in [0, 1]; 1 sends each query's mass to its nearest candidate, lower values spread
        it for diversity.
    C: > 0, scale of distances against the diversity term (L2 distances of unit vectors lie in
        [0, 2]).
    sigma: >= 0, KDE kernel width in distance units; 0 turns the KDE off.
    max_k: neighbours per query; a pool smaller than max_k is used whole (logged).
    kde_k: neighbours counted in each density (the row itself included).
    metric: "l2" (Euclidean) or "cosine" (1 - cosine similarity).
    replace: True draws i.i.d. from p as the paper does; False draws `size` distinct rows with
        inclusion probabilities min(1, c p).
    lower_alpha: without replacement, if p has fewer than `size` non-zero rows, lower alpha
        (widening p) to the largest value whose support is large enough; False raises instead.
    kde_exact_max, kde_nprobe: densities are exact for neighbour unions up to kde_exact_max
        rows, approximate above (each row searches its kde_nprobe nearest k-means cells).
    representation, lexical_weight: what `select` measures distances on (see
        taskselect.selectors.representation); 'lexical' and 'hybrid' read the corpus' texts.
    """

    alpha: float = TSDSParams.default("alpha")
    C: float = TSDSParams.default("C")
    sigma: float = TSDSParams.default("sigma")
    max_k: int = TSDSParams.default("max_k")
    kde_k: int = TSDSParams.default("kde_k")
    metric: Metric = TSDSParams.default("metric")
    replace: bool = TSDSParams.default("replace")
    lower_alpha: bool = TSDSParams.default("lower_alpha")
    kde_exact_max: int = TSDSParams.default("kde_exact_max")
    kde_nprobe: int = TSDSParams.default("kde_nprobe")
    representation: Representation = TSDSParams.default("representation")
    lexical_weight: float = TSDSParams.default("lexical_weight")

    def __post_init__(self):
        TSDSParams.check(self, "tsds")

    @property
    def plan_params(self) -> dict[str, Any]:
        """The parameters a plan depends on (alpha, C, replace do not)."""
        return {"max_k": self.max_k, "kde_k": self.kde_k, "sigma": self.sigma, "metric": self.metric,
                "kde_exact_max": self.kde_exact_max, "kde_nprobe": self.kde_nprobe}

    def plan(self, query: np.ndarray, candidates: np.ndarray, index: faiss.Index | None = None) -> TSDSPlan:
        """Neighbour search and densities: everything before choosing alpha and drawing.

        query: (M, dim), candidates: (N, dim) embeddings; index: an optional faiss index over the
        candidates (see taskselect.index.nearest), exact search without one.
        """
        candidates = check_embeddings("candidates", candidates)
        query = check_embeddings("query", query, dim=candidates.shape[1])
        n = candidates.shape[0]
        k = min(self.max_k, n)
        if k < self.max_k:
            log.info("TSDS: max_k %d is more than the %d candidates; using all of them", self.max_k, n)
        found = nearest(candidates, query, k, self.metric, index)
        in_union = np.zeros(n, dtype=bool)
        in_union[found.ids] = True
        union = np.flatnonzero(in_union)
        position = np.cumsum(in_union) - 1  # row of the union each candidate would be
        density, kde_info = kde_densities(
            candidates[union], self.sigma, self.kde_k, self.metric, self.kde_exact_max, self.kde_nprobe
        )
        log.info("TSDS: %d queries x %d neighbours, %d distinct candidates", *found.ids.shape, union.size)
        twins = identical_rows(candidates, union)
        info = {"params": self.plan_params, "k": k, "union": int(union.size), "index": found.index,
                "recall": found.recall, "twins": len(twins), **kde_info}
        return TSDSPlan(found.ids, found.distances, density[position[found.ids]], n, info, twins)

    def _check_plan(self, plan: TSDSPlan) -> None:
        made_with = plan.info.get("params")
        if made_with is not None and made_with != self.plan_params:
            raise TaskselectError(f"plan: made with {made_with}, but this selector has {self.plan_params}")

    def distribution(self, plan: TSDSPlan, alpha: float | None = None) -> np.ndarray:
        """(N,) float64 selection distribution p (sums to 1) for alpha (default: self.alpha)."""
        self._check_plan(plan)
        solver = WaterFilling(plan.distances, plan.densities, self.C)
        return _marginal(plan.ids, solver.masses(self.alpha if alpha is None else alpha), plan.n_candidates)

    def probabilities(self, query: np.ndarray, candidates: np.ndarray, index=None) -> np.ndarray:
        """(N,) float64 selection distribution over the candidates (sums to 1)."""
        return self.distribution(self.plan(query, candidates, index))

    def draw(self, plan: TSDSPlan, size: int, seed: int) -> Selection:
        """`size` rows drawn from the plan's distribution with `seed`.

        Selection.info: alpha_effective (alpha after any lowering), support (rows with p > 0),
        and the plan's facts (k, union, index, recall, kde).
        """
        self._check_plan(plan)
        n = plan.n_candidates
        self.check_size(size, n)
        solver = WaterFilling(plan.distances, plan.densities, self.C)
        alpha = self.alpha
        # Distinct texts, not rows: a text in the pool many times is drawn at most once without
        # replacement, with the mass of all its copies (the distribution over texts is unchanged).
        p = on_first_twin(_marginal(plan.ids, solver.masses(alpha), n), plan.twins)
        if not self.replace and np.count_nonzero(p) < size:
            alpha, p = self._widen(plan, solver, size, support=int(np.count_nonzero(p)))
        draw = sample_with_replacement if self.replace else sample_without_replacement
        indices = draw(p, size, np.random.default_rng(seed))
        info = {"alpha_effective": alpha, "support": int(np.count_nonzero(p)),
                **{key: value for key, value in plan.info.items() if key != "params"}}
        return Selection(indices=indices, probs=p, info=info)

    def query_subsets(self, query: np.ndarray, candidates: np.ndarray, index=None, corpus=None) -> SubsetSelect:
        """One plan over every query; a subset of the queries draws from its rows of it (their
        densities stay the pool's around all the queries: a subset's own plan would count the
        same neighbours within a smaller union)."""
        query, candidates, index = represent(self.representation, query, candidates, index, corpus, self.lexical_weight)
        plan = self.plan(query, candidates, index)

        def select(rows: np.ndarray, size: int, seed: int) -> Selection:
            part = plan if rows.size == len(query) else replace(
                plan, ids=plan.ids[rows], distances=plan.distances[rows], densities=plan.densities[rows])
            return self.draw(part, size, seed)
        return select

    @property
    def needs_corpus(self) -> bool:
        """True when `select` reads the texts (a lexical or hybrid representation)."""
        return self.representation != "semantic"

    def select(
        self, query: np.ndarray, candidates: np.ndarray, size: int, seed: int, index=None, corpus=None
    ) -> Selection:
        self.check_size(size, len(candidates))  # fail before the search
        query, candidates, index = represent(self.representation, query, candidates, index, corpus, self.lexical_weight)
        return self.draw(self.plan(query, candidates, index), size, seed)

    def check_size(self, size: int, n: int) -> None:
        """Refuse a budget that cannot be drawn from n candidates."""
        if size < 1:
            raise TaskselectError(f"size {size}: expected at least 1 row")
        if size > n and not self.replace:
            raise TaskselectError(
                f"size {size}: more than the {n} candidates; without replacement at most {n} distinct rows"
            )

    def _widen(self, plan: TSDSPlan, solver: WaterFilling, size: int, support: int):
        """The largest alpha' < alpha whose distribution has at least `size` non-zero rows, and p."""
        if not self.lower_alpha:
            raise TaskselectError(
                f"size {size}: alpha {self.alpha} puts mass on only {support} distinct rows; lower "
                "alpha, allow lowering it (lower_alpha=true) or sample with replacement (replace=true)"
            )
        # a candidate has mass once the level passes the lowest entry level among its entries
        first = np.full(plan.n_candidates, np.inf)
        np.minimum.at(first, plan.ids.ravel(), solver.entry_levels().ravel())
        np.minimum.at(first, plan.twins[:, 1], first[plan.twins[:, 0]])
        first[plan.twins[:, 0]] = np.inf
        needed = float(np.partition(first, size - 1)[size - 1])
        alpha = solver.largest_alpha_above(needed) if np.isfinite(needed) else None
        if alpha is None or alpha >= self.alpha:
            widest = int(np.count_nonzero(on_first_twin(_marginal(plan.ids, solver.masses(0.0), plan.n_candidates), plan.twins)))
            raise TaskselectError(
                f"size {size}: TSDS puts mass on at most {widest} distinct rows (at alpha=0); "
                "raise max_k, or sample with replacement (replace=true)"
            )
        p = on_first_twin(_marginal(plan.ids, solver.masses(alpha), plan.n_candidates), plan.twins)
        log.warning(
            "TSDS: alpha %.4g puts mass on %d rows, fewer than the %d requested distinct rows; "
            "using alpha %.6g (%d rows)", self.alpha, support, size, alpha, np.count_nonzero(p),
        )
        return alpha, p


def _marginal(ids: np.ndarray, g: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(ids.ravel(), weights=g.ravel(), minlength=n)


def on_first_twin(p: np.ndarray, twins: np.ndarray) -> np.ndarray:
    """p with each twin's mass moved onto its first row (twins: (T, 2) [row, first row])."""
    if twins.size:
        np.add.at(p, twins[:, 1], p[twins[:, 0]])
        p[twins[:, 0]] = 0.0
    return p


def identical_rows(candidates: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(T, 2) int64 [row, first row] for each of `rows` (ascending) whose vector is byte-identical
    to an earlier one of `rows`; the first row is the earliest with that vector."""
    representative = first_copies(candidates, rows)
    copy = representative != rows
    return np.stack([rows[copy], representative[copy]], axis=1).astype(np.int64)
