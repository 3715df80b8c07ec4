"""The pipeline's stages: the one implementation that the CLI, DVC and Prefect all run.

Each stage reads its inputs from and writes its outputs to a `Workspace` (the artifact tree
under data/), atomically, and returns a small summary. Nothing here knows about Prefect.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from taskselect.config import DataParams, EmbedParams, FinetuneParams, IndexParams, SelectParams
from taskselect.data import Benchmark, prepare_benchmark
from taskselect.embedding import Embedder
from taskselect.errors import TaskselectError
from taskselect.index import build_index, read_index, write_index
from taskselect.io import atomic_dir, read_json, write_json, write_npy, write_parquet
from taskselect.metrics import classification_metrics, predict_within
from taskselect.selectors import budget_label, make_selector, resolve_budget
from taskselect.trainers import Examples, load_trainer, make_trainer

log = logging.getLogger(__name__)

SPLITS = ("pool", "query", "test")


@dataclass(frozen=True)
class Run:
    """One selection to make and score: a method at a budget with a seed."""

    method: str
    budget: float
    seed: int

    @property
    def slug(self) -> str:
        return f"{self.method}-{self.budget:g}-{self.seed}"


def plan_runs(params: SelectParams) -> list[Run]:
    """Every (method, budget, seed) to run; `full` ignores the budget, so it runs once per seed."""
    runs = []
    for method in params.methods:
        budgets = [1.0] if method == "full" else params.budgets
        runs += [Run(method, b, s) for b in budgets for s in params.seeds]
    return runs


@dataclass(frozen=True)
class Workspace:
    """Where each artifact lives under `root` (DVC tracks these paths)."""

    root: Path = Path("data")

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
        return self.root / "selections" / run.slug

    def model(self, run: Run) -> Path:
        return self.root / "models" / run.slug

    def evaluation(self, run: Run) -> Path:
        return self.root / "evaluations" / f"{run.slug}.json"

    def load_embeddings(self, split: str) -> np.ndarray:
        path = self.embedding(split)
        if not path.is_file():
            raise TaskselectError(f"{path}: embeddings not found; run `taskselect embed` first")
        return np.load(path, mmap_mode="r")


def prepare(params: DataParams, ws: Workspace) -> dict:
    """Build the benchmark (or read the user's files) into ws.prepared."""
    benchmark = prepare_benchmark(params)
    benchmark.save(ws.prepared)
    summary = {split: len(getattr(benchmark, split)) for split in SPLITS}
    log.info("prepared %s: %s, %d target labels", benchmark.task, summary, len(benchmark.target_labels))
    return summary


def embed(params: EmbedParams, ws: Workspace) -> dict:
    """Embed pool, query and test texts into ws.embeddings (unit-normalised float32 .npy)."""
    benchmark = Benchmark.load(ws.prepared)
    embedder = Embedder(params.model, params.batch_size, params.max_seq_length, params.cache_dir)
    started = time.perf_counter()
    for split in SPLITS:
        texts = getattr(benchmark, split)["text"].tolist()
        write_npy(ws.embedding(split), embedder.encode(texts, desc=f"embedding {split}"))
    summary = {"embedded": embedder.n_embedded, "seconds": round(time.perf_counter() - started, 2)}
    log.info("embeddings written to %s (%d texts newly embedded)", ws.embeddings, embedder.n_embedded)
    return summary


def index(params: IndexParams, ws: Workspace) -> dict:
    """Index the pool embeddings with faiss into ws.index."""
    pool = ws.load_embeddings("pool")
    write_index(build_index(pool, params), ws.index)
    return {"rows": int(pool.shape[0]), "kind": params.kind}


def select(params: SelectParams, run: Run, ws: Workspace) -> dict:
    """Choose training rows for `run` into ws.selection(run): selection.parquet (+ probs.npy)."""
    benchmark = Benchmark.load(ws.prepared)
    pool = ws.load_embeddings("pool")
    size = resolve_budget(run.budget, len(pool)) if run.method != "full" else len(pool)
    started = time.perf_counter()
    selection = make_selector(run.method, params).select(
        ws.load_embeddings("query"), pool, size, run.seed, index=read_index(ws.index)
    )
    seconds = time.perf_counter() - started
    rows, counts = np.unique(selection.indices, return_counts=True)
    chosen = benchmark.pool.iloc[rows][["id", "label", "source"]].reset_index(drop=True)
    chosen.insert(0, "pool_row", rows)
    chosen["count"] = counts
    summary = {
        "method": run.method, "budget": run.budget, "seed": run.seed, "size": size,
        "n_selected": selection.n_selected, "n_unique": selection.n_unique,
        "target_share": float(np.average(chosen["label"].isin(benchmark.target_labels), weights=counts)),
        "seconds": round(seconds, 3), **selection.info,
    }
    with atomic_dir(ws.selection(run)) as out:
        write_parquet(out / "selection.parquet", chosen)
        if selection.probs is not None:
            write_npy(out / "probs.npy", selection.probs)
        write_json(out / "selection.json", summary)
    log.info("%s: %d rows selected (%d distinct) in %.2fs", run.slug, summary["n_selected"], summary["n_unique"], seconds)
    return summary


def load_selection(ws: Workspace, run: Run) -> pd.DataFrame:
    path = ws.selection(run) / "selection.parquet"
    if not path.is_file():
        raise TaskselectError(f"{path}: selection not found; run `taskselect select` first")
    return pd.read_parquet(path)


def finetune(params: FinetuneParams, run: Run, ws: Workspace) -> dict:
    """Train params.trainer on exactly the selected rows (a row drawn twice counts twice)."""
    benchmark = Benchmark.load(ws.prepared)
    chosen = load_selection(ws, run)
    rows = np.repeat(chosen["pool_row"].to_numpy(), chosen["count"].to_numpy())
    examples = Examples(
        texts=benchmark.pool["text"].iloc[rows].tolist(),
        embeddings=np.asarray(ws.load_embeddings("pool")[rows]),
        labels=benchmark.pool["label"].to_numpy()[rows],
    )
    started = time.perf_counter()
    trainer = make_trainer(params, seed=run.seed).fit(examples)
    summary = {
        "trainer": params.trainer, "n_train": len(examples), "classes": trainer.classes_,
        "seconds": round(time.perf_counter() - started, 3),
    }
    with atomic_dir(ws.model(run)) as out:
        trainer.save(out)
        write_json(out / "model.json", summary)
    log.info("%s: %s trained on %d rows in %.2fs", run.slug, params.trainer, len(examples), summary["seconds"])
    return summary


def evaluate(run: Run, ws: Workspace) -> dict:
    """Score the run's model on the target test set; predictions restricted to target labels."""
    benchmark = Benchmark.load(ws.prepared)
    model_dir = ws.model(run)
    if not (model_dir / "model.json").is_file():
        raise TaskselectError(f"{model_dir}: no trained model; run `taskselect finetune` first")
    trainer = load_trainer(read_json(model_dir / "model.json")["trainer"], model_dir)
    test = Examples(texts=benchmark.test["text"].tolist(), embeddings=np.asarray(ws.load_embeddings("test")))
    predicted = predict_within(trainer.predict_scores(test), trainer.classes_, benchmark.target_labels)
    metrics = classification_metrics(benchmark.test["label"], predicted, benchmark.target_labels)
    write_json(ws.evaluation(run), metrics)
    log.info("%s: macro-F1 %.4f, accuracy %.4f", run.slug, metrics["f1_macro"], metrics["accuracy"])
    return metrics


def collect(runs: list[Run], ws: Workspace) -> list[dict]:
    """One record per run: what was selected and how the model scored."""
    records = []
    for run in runs:
        path = ws.evaluation(run)
        if not path.is_file():
            raise TaskselectError(f"{path}: evaluation not found; run `taskselect evaluate` first")
        metrics = read_json(path)
        selection = read_json(ws.selection(run) / "selection.json")
        records.append({
            "method": run.method, "budget": run.budget, "budget_label": budget_label(run.budget),
            "seed": run.seed, "n_selected": selection["n_selected"], "n_unique": selection["n_unique"],
            "target_share": selection["target_share"], "f1_macro": metrics["f1_macro"],
            "f1_micro": metrics["f1_micro"], "accuracy": metrics["accuracy"],
            "f1_per_class": metrics["f1_per_class"], "select_seconds": selection["seconds"],
        })
    return records


def report(runs: list[Run], ws: Workspace, out_dir: Path) -> list[dict]:
    """Write out_dir/results.json (a record per run) and out_dir/metrics.json (for DVC)."""
    records = collect(runs, ws)
    write_json(Path(out_dir) / "results.json", records)
    metrics: dict[str, dict] = {}
    for r in records:
        key = r["method"] if r["method"] == "full" else f"{r['method']}@{r['budget_label']}"
        metrics.setdefault(key, {"f1_macro": [], "accuracy": []})
        metrics[key]["f1_macro"].append(r["f1_macro"])
        metrics[key]["accuracy"].append(r["accuracy"])
    write_json(Path(out_dir) / "metrics.json", {
        key: {name: round(float(np.mean(v)), 4) for name, v in values.items()} for key, values in metrics.items()
    })
    return records
