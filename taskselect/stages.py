"""The pipeline's stages: the one implementation that the CLI, DVC and Prefect all run.

Each stage reads its inputs from and writes its outputs to a `Workspace` (the artifact tree
under data/), atomically, and returns a small summary. Nothing here knows about Prefect.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from pydantic import BaseModel
from tqdm.auto import tqdm

from taskselect.codedeps import stage_code
from taskselect.config import DataParams, EmbedParams, EvaluateParams, FinetuneParams, IndexParams, Params, SelectParams
from taskselect.data import prepare_benchmark
from taskselect.embedding import Embedder
from taskselect.errors import TaskselectError
from taskselect.index import INDEX_RECALL_K, build_index, index_kind, index_recall, read_index, write_index
from taskselect.io import atomic_dir, atomic_path, file_hash, read_json, required, write_json, write_npy, write_parquet
from taskselect.plots import plot_confusion, plot_f1_vs_budget, plot_note
from taskselect.report import baselines, f1_by_budget, metrics_tree, summarize, summarize_selections
from taskselect.sections import runtime_keys
from taskselect.selectors import Corpus, Selector, budget_label, budget_share, filtered, make_selector, spec
from taskselect.shards import Shard, plan_shards, read_column, write_rows
from taskselect.threads import fixed_threads
from taskselect.trainers import Consumes, Examples, load_trainer, make_trainer, trainer_class
from taskselect.validate import check_benchmark
from taskselect.versioning import check_own_files

log = logging.getLogger(__name__)

SPLITS = ("pool", "query", "test")
MADE_FROM = "made_from.json"  # in each artifact's directory: the content hashes of what it was made from
PREDICTIONS = "predictions.parquet"  # in an evaluation's directory: the label predicted for each test row
# A selection's per-row numbers, by column, and their files beside selection.parquet.
ROW_VALUES = {"probability": "probs.npy", "score": "scores.npy"}
# Why finetune and evaluate leave a note instead of a model and scores: said the same way in the
# stages' logs, the records, the printed table, the Prefect artifacts and MLflow.
UNLABELLED = "nothing trained or evaluated: the pool has no labels (selection only)"


@dataclass(frozen=True)
class Run:
    """One selection to make and score: a method at a budget with a seed."""

    method: str
    budget: int | float
    seed: int

    @property
    def slug(self) -> str:
        """'tsds-0.05-0', 'tsds-30-0': the budget as params.yaml writes it, as DVC's matrix
        stages name their outputs (so 30 rows and 30.0 rows are two names)."""
        return f"{self.method}-{self.budget}-{self.seed}"


def plan_runs(params: SelectParams) -> list[Run]:
    """Every (method, budget, seed) to run, in the order of params.yaml's lists.

    A method that uses no budget (the full pool) runs at every budget all the same: it is the
    reference each budget's selections are compared against (and dvc.yaml's matrix stages
    expect one per budget).
    """
    return [Run(m, b, s) for m in params.methods for b in params.budgets for s in params.seeds]


@contextmanager
def timed(ws: "Workspace", name: str, earlier_seconds: float = 0.0, **facts):
    """Record the block's wall time (plus `earlier_seconds` the stage spent before it, e.g. in
    other tasks) and `facts`, filled in by the block, in ws.timing(name)."""
    started = time.perf_counter()
    yield facts
    write_json(ws.timing(name), {"seconds": round(time.perf_counter() - started + earlier_seconds, 3), **facts})


@dataclass(frozen=True)
class Workspace:
    """Where each artifact lives under `root` (DVC tracks these paths).

    runs_root: where selections, models and evaluations go (default: root); runs with other
        selection or training parameters can share root's prepared data, embeddings and index.
    """

    root: Path = Path("data")
    runs_root: Path | None = None

    @property
    def runs(self) -> Path:
        return self.root if self.runs_root is None else self.runs_root

    @property
    def prepared(self) -> Path:
        return self.root / "prepared"

    @property
    def embeddings(self) -> Path:
        return self.root / "embeddings"

    def embedding(self, split: str) -> Path:
        return self.embeddings / f"{split}.npy"

    @property
    def index(self) -> Path:
        return self.root / "index" / "pool.faiss"

    def selection(self, run: Run) -> Path:
        return self.runs / "selections" / run.slug

    def model(self, run: Run) -> Path:
        return self.runs / "models" / run.slug

    def evaluation(self, run: Run) -> Path:
        """Directory of metrics.json, predictions.parquet (paired_deltas reads them), confusion.png
        and made_from.json."""
        return self.runs / "evaluations" / run.slug

    def timing(self, name: str) -> Path:
        """Wall times live apart from the artifacts: a rerun that reproduces an artifact byte
        for byte must not look changed to DVC (and retrain everything downstream)."""
        return self.root / "timings" / f"{name}.json"

    def manifest(self, stage: str) -> Path:
        """What a stage last made its outputs from (see `outputs_current`); outside DVC's outputs."""
        return self.root / "manifests" / f"{stage}.json"

    def benchmark(self) -> dict:
        """The prepared benchmark's description (benchmark.json: task, target labels, rows)."""
        return read_json(required(self.prepared / "benchmark.json", "prepare"))

    def pool_labelled(self) -> bool:
        """Whether the prepared pool has labels (see taskselect.data.load_custom_benchmark); a
        benchmark.json that does not say was written before unlabelled pools were accepted."""
        return self.benchmark().get("pool_labelled", True)

    def load_embeddings(self, split: str) -> np.ndarray:
        return np.load(required(self.embedding(split), "embed", "embeddings"), mmap_mode="r")


def stage_files(stage: str, ws: Workspace) -> tuple[list[Path], list[Path]]:
    """(files read, files written) of a stage whose outputs can be reused across runs. What it
    reads includes its code, as in the stage's deps in dvc.yaml: new code makes new outputs."""
    if stage == "embed":
        reads = [ws.prepared / f"{split}.parquet" for split in SPLITS] + list(stage_code("embed"))
        return reads, [ws.embedding(split) for split in SPLITS]
    if stage == "index":
        return [ws.embedding("pool"), *stage_code("index")], [ws.index]
    raise ValueError(f"stage {stage!r} keeps no manifest")


_hashes: dict[tuple, str] = {}


def content_hash(path: Path) -> str | None:
    """sha256 of a file's content, or of a directory's file names and contents (its MADE_FROM
    aside); None if missing. Remembered per (inode, size, mtime): a process checking the same
    inputs for many runs reads each once."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name != MADE_FROM)
        listing = "\n".join(f"{p.relative_to(path)} {content_hash(p)}" for p in files)
        return hashlib.sha256(listing.encode()).hexdigest()
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    key = (str(path), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key not in _hashes:
        _hashes[key] = file_hash(path)
    return _hashes[key]


def fingerprint(paths: list[Path]) -> dict[str, str | None]:
    """{'directory/name': sha256 of the file's content, None if missing}; where the workspace
    is does not matter, only what is in it."""
    return {f"{p.parent.name}/{p.name}": content_hash(p) for p in paths}


def _command(ws: Workspace, stage: str, run: Run | None = None) -> str:
    """The command that remakes a stage's artifact in `ws`."""
    args = [f"taskselect {stage}"]
    if run is not None:
        args.append(f"--method {run.method} --budget {run.budget} --seed {run.seed}")
    if ws.root != Path("data"):
        args.append(f"--data-dir {ws.root}")
    return " ".join(args)


def _artifact(kind: str, ws: Workspace, run: Run | None = None) -> tuple[Path, dict[str, Path], str]:
    """An artifact's directory, {name: path} of what it is made from, and the command that remakes it."""
    prepared = {f"prepared/{split}.parquet": ws.prepared / f"{split}.parquet" for split in SPLITS}
    vectors = {f"embeddings/{split}.npy": ws.embedding(split) for split in SPLITS}
    if kind == "embeddings":
        return ws.embeddings, prepared, _command(ws, "embed")
    if kind == "index":
        return ws.index.parent, {"embeddings/pool.npy": ws.embedding("pool")}, _command(ws, "index")
    if kind == "selection":
        made_from = {"prepared/pool.parquet": ws.prepared / "pool.parquet", "embeddings/pool.npy": ws.embedding("pool"),
                     "embeddings/query.npy": ws.embedding("query"), "index/pool.faiss": ws.index}
        return ws.selection(run), made_from, _command(ws, "select", run)
    if kind == "model":
        made_from = {"selection": ws.selection(run) / "selection.parquet", "prepared/pool.parquet": prepared["prepared/pool.parquet"],
                     "embeddings/pool.npy": vectors["embeddings/pool.npy"]}
        return ws.model(run), made_from, _command(ws, "finetune", run)
    if kind == "evaluation":
        made_from = {"model": ws.model(run), "prepared/test.parquet": prepared["prepared/test.parquet"],
                     "prepared/benchmark.json": ws.prepared / "benchmark.json", "embeddings/test.npy": vectors["embeddings/test.npy"]}
        return ws.evaluation(run), made_from, _command(ws, "evaluate", run)
    raise ValueError(f"unknown artifact {kind!r}")


def made_from(kind: str, ws: Workspace, run: Run | None = None) -> dict[str, str | None]:
    """What an artifact made now from `ws` would be made from: {name: content hash}."""
    _, sources, _ = _artifact(kind, ws, run)
    return {name: content_hash(path) for name, path in sources.items()}


def record_made_from(kind: str, ws: Workspace, run: Run | None = None) -> None:
    """Record that the artifact of `kind` in `ws` is made from what `ws` holds now, as its stage
    does: for an artifact put there by other means whose inputs are known to give the same one."""
    write_json(_artifact(kind, ws, run)[0] / MADE_FROM, made_from(kind, ws, run))


def check_made_from(kind: str, ws: Workspace, run: Run | None = None) -> None:
    """Refuse an input whose own inputs have changed since it was made (an interrupted run, or
    another one, replaced them): one line naming it and the command that remakes it.

    An artifact without a record (made by hand, or by an older taskselect) is checked by what
    can be: embeddings by their row counts. A missing artifact is left to its reader.
    """
    directory, sources, command = _artifact(kind, ws, run)
    record = directory / MADE_FROM
    if record.is_file():
        recorded = read_json(record)
        for name, path in sources.items():
            # a missing input is left to its reader: a stage that does not read it (the
            # transformer reads no embeddings) must not be refused for its absence
            if (now := content_hash(path)) is not None and recorded.get(name) != now:
                raise TaskselectError(f"{directory}: made from another {path} than the one there now "
                                      f"(left by an interrupted or another run); remake it: {command}")
    elif kind == "embeddings" and directory.is_dir():
        for split in SPLITS:
            table, vectors = ws.prepared / f"{split}.parquet", ws.embedding(split)
            if table.is_file() and vectors.is_file():
                rows, embedded = pq.ParquetFile(table).metadata.num_rows, len(np.load(vectors, mmap_mode="r"))
                if rows != embedded:
                    raise TaskselectError(f"{vectors}: {embedded} rows, but {table} has {rows} (left by an "
                                          f"interrupted or another run); remake it: {command}")


def stage_inputs(stage: str, params: BaseModel, ws: Workspace) -> dict:
    """What a stage's outputs are a function of: its parameters but the runtime ones (another
    cache directory or batch size makes the same vectors) and the content of what it reads."""
    reads, _ = stage_files(stage, ws)
    # embed's and index's sections are flat: their runtime keys are field names
    return {"params": params.model_dump(mode="json", exclude=runtime_keys(type(params))), "inputs": fingerprint(reads)}


def _write_manifest(stage: str, made_from: dict, ws: Workspace) -> None:
    _, outputs = stage_files(stage, ws)
    write_json(ws.manifest(stage), {**made_from, "outputs": fingerprint(outputs)})


def outputs_current(stage: str, params: BaseModel, ws: Workspace) -> bool:
    """True if the stage's outputs in `ws` are exactly what it made from its current inputs
    and `params`: the stage may then be skipped. False when an output is missing or was
    since overwritten (another run, `dvc checkout`), or the inputs or parameters changed."""
    path = ws.manifest(stage)
    if not path.is_file():
        return False
    manifest = read_json(path)
    _, outputs = stage_files(stage, ws)
    made_from = {k: manifest.get(k) for k in ("params", "inputs")}
    return made_from == stage_inputs(stage, params, ws) and manifest.get("outputs") == fingerprint(outputs)


def prepare(params: DataParams, ws: Workspace, select: SelectParams | None = None) -> dict:
    """Build the benchmark (or read the user's files) into ws.prepared.

    select: when given, the selections it plans are checked against the pool before anything
        is saved (a budget larger than the pool must not replace the last run's data).
    In a DVC project's data/, the user's files must be in data/own (versioning.check_own_files).
    """
    check_own_files(params, ws.root)
    with timed(ws, "prepare"):
        benchmark = prepare_benchmark(params)
        if select is not None:
            check_benchmark(benchmark, select)
        with atomic_dir(ws.prepared) as out:  # the splits change together or not at all
            benchmark.save(out)
    summary = {split: len(getattr(benchmark, split)) for split in SPLITS}
    log.info("prepared %s: %s, %d target labels", benchmark.task, summary, len(benchmark.target_labels))
    return summary


def embed_shards(params: EmbedParams, ws: Workspace) -> list[Shard]:
    """Every shard of pool, query and test, in order (reads only the Parquet files' metadata)."""
    return [shard for split in SPLITS for shard in plan_shards(ws.prepared / f"{split}.parquet", split, params.shard_rows)]


def make_embedder(params: EmbedParams) -> Embedder:
    return Embedder(params.model, params.batch_size, params.max_seq_length, params.cache_dir, backend=params.backend)


def _shard_vectors(embedder: Embedder, ws: Workspace, shard: Shard) -> tuple[np.ndarray, bool]:
    """The shard's vectors, memory-mapped from the cache (embedded first unless already there),
    and whether they were embedded now."""
    texts = read_column(ws.prepared / f"{shard.split}.parquet", "text", shard.start, shard.stop)
    return embedder.encode_shard(texts, desc=f"embedding {shard.name}")


def embed_shard(params: EmbedParams, ws: Workspace, shard: Shard) -> dict:
    """Embed one shard's texts into the shard cache, unless a finished run already did (the
    unit of work a cluster's workers share; `embed` then assembles the splits).

    Returns {"shard", "rows", "embedded": whether it was embedded now, "texts": texts newly
    run through the model (fewer than rows when the text cache has some)}.
    """
    embedder = make_embedder(params)
    _, made = _shard_vectors(embedder, ws, shard)
    return {"shard": shard.name, "rows": shard.rows, "embedded": made, "texts": embedder.n_embedded}


def embed(params: EmbedParams, ws: Workspace, fanned_out: dict | None = None) -> dict:
    """Embed pool, query and test texts into ws.embeddings (unit-normalised float32 .npy).

    Shard by shard: a shard already in the cache (embedded by a cluster's workers, or by a run
    that was stopped part-way) is not embedded again. Each split's .npy is assembled from its
    shards' memory-mapped vectors, one shard in memory at a time.

    fanned_out: what embed_shard tasks did for this stage just before (the flow fans the shards
        out): {"shards_embedded", "embedded", "seconds"}, counted into the stage's timing.
    """
    made_from_inputs = stage_inputs("embed", params, ws)
    sources = made_from("embeddings", ws)
    shards = embed_shards(params, ws)
    embedder = make_embedder(params)
    earlier = fanned_out or {"shards_embedded": 0, "embedded": 0, "seconds": 0.0}
    with timed(ws, "embed", earlier["seconds"]) as facts:
        done = [_shard_vectors(embedder, ws, shard) for shard in tqdm(shards, desc="shards", unit="shard")]
        facts |= {"shards": len(shards), "shards_embedded": earlier["shards_embedded"] + sum(made for _, made in done),
                  "embedded": earlier["embedded"] + embedder.n_embedded}
        with atomic_dir(ws.embeddings) as out:  # the splits change together or not at all
            for split in SPLITS:
                vectors = [v for shard, (v, _) in zip(shards, done) if shard.split == split]
                dim = vectors[0].shape[1] if vectors else embedder.dim  # memory-mapped: nothing is read yet
                write_rows(out / f"{split}.npy", vectors, sum(len(v) for v in vectors), dim)
            write_json(out / MADE_FROM, sources)
    _write_manifest("embed", made_from_inputs, ws)
    # a shard new to the cache may be built from texts the text cache holds: counted apart
    log.info("embeddings written to %s: %d texts run through the model; %d of %d shards built now (from them and "
             "the text cache), the others cached whole", ws.embeddings, facts["embedded"], facts["shards_embedded"], len(shards))
    return facts


def index(params: IndexParams, ws: Workspace) -> dict:
    """Index the pool embeddings with faiss into ws.index; an approximate index's recall@100
    against exact search (on 100 pool rows) is logged and returned."""
    check_made_from("embeddings", ws)
    made_from_inputs = stage_inputs("index", params, ws)
    sources = made_from("index", ws)
    with timed(ws, "index") as facts, fixed_threads():
        pool = ws.load_embeddings("pool")
        built = build_index(pool, params)
        facts |= {"rows": int(pool.shape[0]), "kind": index_kind(built)}
        if facts["kind"] != "flat":  # logged by nearest(), kept with the stage's timing
            facts[f"recall@{INDEX_RECALL_K}"] = index_recall(built, pool)
        with atomic_dir(ws.index.parent) as out:
            write_index(built, out / ws.index.name)
            write_json(out / MADE_FROM, sources)
    _write_manifest("index", made_from_inputs, ws)
    return facts


def select(params: SelectParams, run: Run, ws: Workspace, selector: Selector | None = None,
           finetune: FinetuneParams | None = None) -> dict:
    """Choose training rows for `run` into ws.selection(run): selection.parquet (+ probs.npy,
    scores.npy for methods that give them, named in selection.json's row_values). Selectors see
    the pool's texts and labels and the query texts beside the embeddings (a Corpus); an
    unlabelled pool's rows have no label, and its selections count no rows on task (n_on_task,
    target_share None).

    selector: used instead of the one `params` configure for run.method (the benchmark passes
        one that keeps its neighbour search between runs).
    finetune: the run's training parameters, for a selector that trains models (auto).
    """
    target_labels, labelled = ws.benchmark()["target_labels"], ws.pool_labelled()
    for kind in ("embeddings", "index"):
        check_made_from(kind, ws)
    sources = made_from("selection", ws, run)
    pool_rows = pd.read_parquet(ws.prepared / "pool.parquet", columns=["id", "label", "source"] if labelled else ["id", "source"])
    pool = ws.load_embeddings("pool")
    selector_spec = spec(run.method)
    size = selector_spec.size(run.budget, len(pool))
    # Texts only for the selectors that read them: for the others the stage's memory grows
    # with M x max_k, and with N only by a few numbers a row.
    if selector is None:
        selector = make_selector(run.method, params, finetune)
    corpus = None
    if selector_spec.reads_corpus or filtered(run.method, params) or getattr(selector, "needs_corpus", False):
        query_rows = pd.read_parquet(ws.prepared / "query.parquet")  # an unlabelled pool's query may have no labels
        corpus = Corpus(pd.read_parquet(ws.prepared / "pool.parquet", columns=["text"])["text"].tolist(),
                        pool_rows["label"].tolist() if labelled else [], query_rows["text"].tolist(),
                        query_rows["label"].tolist() if "label" in query_rows else [])
    with timed(ws, f"select-{run.slug}") as facts, fixed_threads():
        selection = selector.select(
            ws.load_embeddings("query"), pool, size, run.seed, index=read_index(ws.index), corpus=corpus
        )
        # Wall times go with the timing, not into selection.json: a DVC output must not change
        # when the same rows are selected again.
        facts |= {k: selection.info.pop(k) for k in [k for k in selection.info if k.endswith("_seconds")]}
    rows, counts = np.unique(selection.indices, return_counts=True)
    chosen = pool_rows.iloc[rows].reset_index(drop=True)
    chosen.insert(0, "pool_row", rows)
    chosen["count"] = counts
    on_task = int(counts[chosen["label"].isin(target_labels).to_numpy()].sum()) if labelled else None
    row_values = {column: values for column, values in (("probability", selection.probs), ("score", selection.scores))
                  if values is not None}
    summary = {
        "method": run.method, "budget": run.budget, "seed": run.seed, "size": size,
        "n_selected": selection.n_selected, "n_unique": selection.n_unique, "n_on_task": on_task,
        "target_share": None if on_task is None else on_task / selection.n_selected,
        "row_values": list(row_values), **selection.info,
    }
    with atomic_dir(ws.selection(run)) as out:
        write_parquet(out / "selection.parquet", chosen)
        for column, values in row_values.items():
            write_npy(out / ROW_VALUES[column], values)
        write_json(out / "selection.json", summary)
        write_json(out / MADE_FROM, sources)
    log.info("%s: %d rows selected (%d distinct)", run.slug, summary["n_selected"], summary["n_unique"])
    return summary


def load_selection(ws: Workspace, run: Run) -> pd.DataFrame:
    return pd.read_parquet(required(ws.selection(run) / "selection.parquet", "select", "selection"))


def load_examples(consumes: Consumes, ws: Workspace, split: str, rows: np.ndarray | None = None,
                  labels: np.ndarray | None = None) -> Examples:
    """Rows `rows` (default: all) of a split as a trainer consumes them: their texts or their
    embeddings, the other not read."""
    if consumes == "texts":
        texts = pd.read_parquet(ws.prepared / f"{split}.parquet", columns=["text"])["text"]
        return Examples(texts=(texts if rows is None else texts.iloc[rows]).tolist(), labels=labels)
    vectors = ws.load_embeddings(split)
    return Examples(embeddings=np.asarray(vectors if rows is None else vectors[rows]), labels=labels)


def finetune(params: FinetuneParams, run: Run, ws: Workspace) -> dict:
    """Train params.trainer on exactly the selected rows (a row drawn twice counts twice).

    On an unlabelled pool nothing is trained: the model's directory holds only the note why
    (model.json {"trainer": None, "skipped": UNLABELLED}), which evaluate and report pass on.
    """
    for kind in ("embeddings", "selection"):
        check_made_from(kind, ws, run)
    sources = made_from("model", ws, run)
    chosen = load_selection(ws, run)
    if not ws.pool_labelled():
        return _skipped(ws.model(run), "model.json", {"trainer": None}, sources, run)
    # A model is a function of its rows, the trainer's parameters, the seed and the code: one
    # that another run of this workspace trained from the same is copied, not trained again
    # (the full pool's model at every budget; a transformer on the full pool takes the longest).
    sources = {**sources, "trained_as": hashlib.sha256(json.dumps(
        [params.model_dump(mode="json"), run.seed, fingerprint(list(stage_code("finetune")))]).encode()).hexdigest()}
    twin = _trained_twin(ws.model(run), sources)
    if twin is not None:
        with timed(ws, f"finetune-{run.slug}", copied_from=twin.name), atomic_dir(ws.model(run)) as out:
            for path in twin.iterdir():
                shutil.copy2(path, out / path.name)
        log.info("%s: the model of %s copied (the same rows, trainer, seed and code)", run.slug, twin.name)
        return read_json(ws.model(run) / "model.json")
    counts = chosen["count"].to_numpy()
    rows = np.repeat(chosen["pool_row"].to_numpy(), counts)
    examples = load_examples(trainer_class(params.trainer).consumes, ws, "pool", rows,
                             np.repeat(chosen["label"].to_numpy(), counts))
    with timed(ws, f"finetune-{run.slug}"), fixed_threads():
        trainer = make_trainer(params, seed=run.seed).fit(examples)
    summary = {"trainer": params.trainer, "n_train": len(examples), "classes": trainer.classes_,
               "history": trainer.history_}
    with atomic_dir(ws.model(run)) as out:
        trainer.save(out)
        write_json(out / "model.json", summary)
        write_json(out / MADE_FROM, sources)
    log.info("%s: %s trained on %d rows", run.slug, params.trainer, len(examples))
    return summary


def _trained_twin(directory: Path, record: dict) -> Path | None:
    """A model beside `directory` made from exactly `record` (MADE_FROM: its rows' files and how
    it was trained), else None. Models are written whole (atomic_dir), so one found is complete."""
    if not directory.parent.is_dir():
        return None
    for other in sorted(directory.parent.iterdir()):
        made = other / MADE_FROM
        if other != directory and made.is_file() and (other / "model.json").is_file() and read_json(made) == record:
            return other
    return None


def evaluate(params: EvaluateParams, run: Run, ws: Workspace) -> dict:
    """Score the run's model on the target test set into ws.evaluation(run).

    Predictions are restricted to the target labels. Writes metrics.json (macro- and micro-F1,
    accuracy, F1 per label, a bootstrap interval of macro-F1, the confusion matrix),
    predictions.parquet (column "predicted", in the test set's row order) and confusion.png.
    """
    for kind in ("embeddings", "model"):
        check_made_from(kind, ws, run)
    sources = made_from("evaluation", ws, run)
    meta = ws.benchmark()
    model_dir = ws.model(run)
    if not (model_dir / "model.json").is_file():
        raise TaskselectError(f"{model_dir}: no trained model; run `taskselect finetune` first")
    trained = read_json(model_dir / "model.json")
    if "skipped" in trained:
        return _skipped(ws.evaluation(run), "metrics.json", {}, sources, run)
    # scikit-learn's metrics take a second to import: only this stage's process pays for them
    from taskselect.metrics import classification_metrics, macro_f1_bootstrap, predict_within

    trainer = load_trainer(trained["trainer"], model_dir)
    test = load_examples(trainer.consumes, ws, "test")
    truth = pd.read_parquet(ws.prepared / "test.parquet", columns=["label"])["label"]
    labels = meta["target_labels"]
    with timed(ws, f"evaluate-{run.slug}"), fixed_threads():
        predicted = predict_within(trainer.predict_scores(test), trainer.classes_, labels)
    metrics = classification_metrics(truth, predicted, labels)
    low, high = macro_f1_bootstrap(truth, predicted, labels, params.n_boot, params.confidence, params.seed)
    metrics.update({"f1_macro_ci": [low, high], "confidence": params.confidence, "labels": labels,
                    "trainer": trained["trainer"]})
    with atomic_dir(ws.evaluation(run)) as out:
        write_json(out / "metrics.json", metrics)
        # each test row's prediction: the report scores two runs on the same resamples (paired_deltas)
        write_parquet(out / PREDICTIONS, pd.DataFrame({"predicted": predicted.astype(str)}))
        write_json(out / MADE_FROM, sources)
        plot_confusion(
            np.asarray(metrics["confusion"]), labels, out / "confusion.png",
            title=f"{meta['task']}: {spec(run.method).label(run.budget)}, "
            f"seed {run.seed}, {trained['trainer']} (macro-F1 {metrics['f1_macro']:.3f})",
        )
    log.info("%s: macro-F1 %.4f [%.4f, %.4f], accuracy %.4f", run.slug, metrics["f1_macro"], low, high, metrics["accuracy"])
    return metrics


def _skipped(directory: Path, name: str, facts: dict, sources: dict, run: Run) -> dict:
    """The output of a stage with nothing to do on an unlabelled pool: `name` in `directory`
    holding `facts` and the note why (DVC expects the stage's output all the same)."""
    record = {**facts, "skipped": UNLABELLED}
    with atomic_dir(directory) as out:
        write_json(out / name, record)
        write_json(out / MADE_FROM, sources)
    log.info("%s: %s", run.slug, UNLABELLED)
    return record


def _seconds(ws: Workspace, name: str) -> float | None:
    path = ws.timing(name)
    return read_json(path)["seconds"] if path.is_file() else None


# What every selection.json holds; the rest is the method's own (e.g. TSDS's alpha_effective).
SELECTION_FACTS = ("method", "budget", "seed", "size", "n_selected", "n_unique", "n_on_task", "target_share",
                   "row_values")


def collect(runs: list[Run], ws: Workspace) -> list[dict]:
    """One record per run: what was selected, how the model scored (or, on an unlabelled pool,
    "skipped": the note why nothing was), how long each stage took."""
    records = []
    for run in runs:
        path = required(ws.evaluation(run) / "metrics.json", "evaluate", "evaluation")
        for kind in ("selection", "model", "evaluation"):  # the scores are of the model trained on the selection
            check_made_from(kind, ws, run)
        metrics = read_json(path)
        # the selection may have been removed since the evaluation
        selection = read_json(required(ws.selection(run) / "selection.json", "select", "selection"))
        scores = {"skipped": metrics["skipped"]} if "skipped" in metrics else {
            "trainer": metrics["trainer"], "f1_macro": metrics["f1_macro"], "f1_macro_ci": metrics["f1_macro_ci"],
            "confidence": metrics["confidence"],
            "f1_micro": metrics["f1_micro"], "accuracy": metrics["accuracy"], "f1_per_class": metrics["f1_per_class"],
        }
        records.append({
            "method": run.method, "budget": run.budget, "budget_label": budget_label(run.budget),
            "seed": run.seed, "slug": run.slug, "n_selected": selection["n_selected"],
            "n_unique": selection["n_unique"], "n_on_task": selection["n_on_task"],
            "target_share": selection["target_share"], **scores,
            "select_info": {k: v for k, v in selection.items() if k not in SELECTION_FACTS},
            **{f"{stage}_seconds": _seconds(ws, f"{stage}-{run.slug}") for stage in ("select", "finetune", "evaluate")},
        })
    return records


def paired_deltas(records: list[dict], ws: Workspace, params: EvaluateParams, against: list[str]) -> None:
    """Add to each scored record "delta_ci": {reference: [low, high]}, the percentile bootstrap
    interval of its macro-F1 minus that of the reference's run of the same budget and seed (the
    baselines random and full, then the selectors `against` names: report.against), both scored on
    the same resamples of the test rows (the draws of the runs' own intervals: stratified by label,
    params.n_boot, params.seed). The rows both runs get right or wrong move both scores alike: it
    says whether the difference holds on this test set, which the two runs' own intervals side by
    side do not."""
    from taskselect.metrics import macro_f1_resamples, percentile_interval, stratified_draws

    truth = pd.read_parquet(ws.prepared / "test.parquet", columns=["label"])["label"].to_numpy(dtype=str)
    labels = ws.benchmark()["target_labels"]
    draws = stratified_draws(truth, params.n_boot, np.random.default_rng(params.seed))
    runs = {(r["method"], r["budget"], r["seed"]): r for r in records if "f1_macro" in r}
    resampled: dict[tuple, np.ndarray] = {}

    def resamples(key: tuple) -> np.ndarray:
        if key not in resampled:
            path = required(ws.evaluation(Run(*key)) / PREDICTIONS, "evaluate", "evaluation")
            resampled[key] = macro_f1_resamples(truth, pd.read_parquet(path)["predicted"].to_numpy(dtype=str),
                                                labels, draws)
        return resampled[key]

    for (method, budget, seed), record in runs.items():
        pairs = {b: (b, budget, seed) for b in [*baselines(), *against] if b != method and (b, budget, seed) in runs}
        if pairs:
            record["delta_ci"] = {b: list(percentile_interval(resamples((method, budget, seed)) - resamples(key),
                                                               params.confidence))
                                  for b, key in pairs.items()}


def report(params: Params, ws: Workspace, out_dir: Path, runs: list[Run] | None = None) -> list[dict]:
    """Write into out_dir: results.json (a record per run), summary.csv (the comparison table),
    metrics.json (macro-F1 per method and budget, for `dvc metrics`), f1_vs_budget.csv (for
    `dvc plots`), f1_vs_budget.png, and run.json (the parameters, so the run can be logged
    to MLflow later from these files alone). On an unlabelled pool the same files hold what
    was selected (report.summarize_selections) and the note why nothing was scored.

    runs: the runs to report (default: every run params.select plans).
    """
    out_dir = Path(out_dir)
    meta = ws.benchmark()
    records = collect(plan_runs(params.select) if runs is None else runs, ws)
    pool_size, labelled = meta["rows"]["pool"], ws.pool_labelled()
    if labelled:
        paired_deltas(records, ws, params.evaluate, params.report.against)
    write_json(out_dir / "results.json", records)
    title = f"{meta['task']}: macro-F1 versus budget"
    if labelled:
        summary = summarize(records)
        write_json(out_dir / "metrics.json", metrics_tree(summary))
        curve = f1_by_budget(summary, pool_size)
        plot_f1_vs_budget(summary, pool_size, out_dir / "f1_vs_budget.png", title=title)
    else:  # the same files (DVC expects them), with what was selected and the note why there is no F1
        summary = summarize_selections(records)
        write_json(out_dir / "metrics.json", {"note": UNLABELLED} | {
            method: {row.budget_label: {"n_selected": row.n_selected, "n_unique": row.n_unique}
                     for row in rows.itertuples()} for method, rows in summary.groupby("method", sort=False)})
        curve = pd.DataFrame({"budget": sorted({budget_share(b, pool_size) for b in summary["budget"]})})
        plot_note(UNLABELLED, out_dir / "f1_vs_budget.png", title=title)
    with atomic_path(out_dir / "summary.csv") as tmp:
        summary.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(out_dir / "f1_vs_budget.csv") as tmp:
        curve.to_csv(tmp, index=False, float_format="%.6g")
    stage_seconds = {f"{stage}_seconds": _seconds(ws, stage) for stage in ("prepare", "embed", "index")}
    # data_digest: None for a workspace prepared before benchmark.json recorded it (compare --all refuses to pool it)
    write_json(out_dir / "run.json", {
        "task": meta["task"], "data_digest": meta.get("digest"), "pool_size": pool_size, "pool_labelled": labelled,
        "params": params.model_dump(mode="json"), **stage_seconds,
    })
    return records
