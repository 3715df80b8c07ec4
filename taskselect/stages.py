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

from taskselect.config import DataParams, EmbedParams, EvaluateParams, FinetuneParams, IndexParams, SelectParams
from taskselect.data import Benchmark, prepare_benchmark
from taskselect.embedding import Embedder
from taskselect.errors import TaskselectError
from taskselect.index import build_index, read_index, write_index
from taskselect.io import atomic_dir, read_json, write_json, write_npy, write_parquet
from taskselect.metrics import classification_metrics, macro_f1_bootstrap, predict_within
from taskselect.plots import plot_confusion
from taskselect.selectors import Selector, budget_label, make_selector, resolve_budget
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
        """Directory of metrics.json and confusion.png."""
        return self.runs / "evaluations" / run.slug

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
    write_index(build_index(pool, params.kind), ws.index)
    return {"rows": int(pool.shape[0]), "kind": params.kind}


def select(params: SelectParams, run: Run, ws: Workspace, selector: Selector | None = None) -> dict:
    """Choose training rows for `run` into ws.selection(run): selection.parquet (+ probs.npy).

    selector: used instead of the one `params` configure for run.method (the benchmark passes
        one that keeps its neighbour search between runs).
    """
    benchmark = Benchmark.load(ws.prepared)
    pool = ws.load_embeddings("pool")
    size = resolve_budget(run.budget, len(pool)) if run.method != "full" else len(pool)
    started = time.perf_counter()
    selection = (selector or make_selector(run.method, params)).select(
        ws.load_embeddings("query"), pool, size, run.seed, index=read_index(ws.index)
    )
    seconds = time.perf_counter() - started
    rows, counts = np.unique(selection.indices, return_counts=True)
    chosen = benchmark.pool.iloc[rows][["id", "label", "source"]].reset_index(drop=True)
    chosen.insert(0, "pool_row", rows)
    chosen["count"] = counts
    on_task = int(counts[chosen["label"].isin(benchmark.target_labels).to_numpy()].sum())
    summary = {
        "method": run.method, "budget": run.budget, "seed": run.seed, "size": size,
        "n_selected": selection.n_selected, "n_unique": selection.n_unique,
        "n_on_task": on_task, "target_share": on_task / selection.n_selected,
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
        "seconds": round(time.perf_counter() - started, 3), "history": trainer.history_,
    }
    with atomic_dir(ws.model(run)) as out:
        trainer.save(out)
        write_json(out / "model.json", summary)
    log.info("%s: %s trained on %d rows in %.2fs", run.slug, params.trainer, len(examples), summary["seconds"])
    return summary


def evaluate(params: EvaluateParams, run: Run, ws: Workspace) -> dict:
    """Score the run's model on the target test set into ws.evaluation(run).

    Predictions are restricted to the target labels. Writes metrics.json (macro- and micro-F1,
    accuracy, F1 per label, a bootstrap interval of macro-F1, the confusion matrix) and
    confusion.png.
    """
    benchmark = Benchmark.load(ws.prepared)
    model_dir = ws.model(run)
    if not (model_dir / "model.json").is_file():
        raise TaskselectError(f"{model_dir}: no trained model; run `taskselect finetune` first")
    trained = read_json(model_dir / "model.json")
    trainer = load_trainer(trained["trainer"], model_dir)
    test = Examples(texts=benchmark.test["text"].tolist(), embeddings=np.asarray(ws.load_embeddings("test")))
    started = time.perf_counter()
    predicted = predict_within(trainer.predict_scores(test), trainer.classes_, benchmark.target_labels)
    predict_seconds = time.perf_counter() - started
    labels = benchmark.target_labels
    metrics = classification_metrics(benchmark.test["label"], predicted, labels)
    low, high = macro_f1_bootstrap(benchmark.test["label"], predicted, labels, params.n_boot, params.confidence, params.seed)
    metrics.update({
        "f1_macro_ci": [low, high], "confidence": params.confidence, "labels": labels,
        "trainer": trained["trainer"], "train_seconds": trained["seconds"],
        "predict_seconds": round(predict_seconds, 3),
    })
    with atomic_dir(ws.evaluation(run)) as out:
        write_json(out / "metrics.json", metrics)
        plot_confusion(
            np.asarray(metrics["confusion"]), labels, out / "confusion.png",
            title=f"{benchmark.task}: {run.method} {budget_label(run.budget) if run.method != 'full' else 'full pool'}, "
            f"seed {run.seed}, {trained['trainer']} (macro-F1 {metrics['f1_macro']:.3f})",
        )
    log.info("%s: macro-F1 %.4f [%.4f, %.4f], accuracy %.4f", run.slug, metrics["f1_macro"], low, high, metrics["accuracy"])
    return metrics


# What every selection.json holds; the rest is the method's own (e.g. TSDS's alpha_effective).
SELECTION_FACTS = ("method", "budget", "seed", "size", "n_selected", "n_unique", "n_on_task", "target_share", "seconds")


def collect(runs: list[Run], ws: Workspace) -> list[dict]:
    """One record per run: what was selected and how the model scored."""
    records = []
    for run in runs:
        path = ws.evaluation(run) / "metrics.json"
        if not path.is_file():
            raise TaskselectError(f"{path}: evaluation not found; run `taskselect evaluate` first")
        metrics = read_json(path)
        selection = read_json(ws.selection(run) / "selection.json")
        records.append({
            "method": run.method, "budget": run.budget, "budget_label": budget_label(run.budget),
            "seed": run.seed, "n_selected": selection["n_selected"], "n_unique": selection["n_unique"],
            "n_on_task": selection["n_on_task"], "target_share": selection["target_share"],
            "trainer": metrics["trainer"], "f1_macro": metrics["f1_macro"],
            "f1_macro_ci": metrics["f1_macro_ci"], "f1_micro": metrics["f1_micro"],
            "accuracy": metrics["accuracy"], "f1_per_class": metrics["f1_per_class"],
            "select_seconds": selection["seconds"], "train_seconds": metrics["train_seconds"],
            "predict_seconds": metrics["predict_seconds"],
            "select_info": {k: v for k, v in selection.items() if k not in SELECTION_FACTS},
        })
    return records


SUMMARIZED = ("f1_macro", "f1_micro", "accuracy", "n_selected", "n_unique", "n_on_task", "target_share")


def summarize(records: list[dict]) -> list[dict]:
    """Mean and standard deviation over seeds of each (method, budget), in first-seen order.

    The seed is both the selection and the training seed; std is the sample standard
    deviation (0 with one seed).
    """
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["method"], r["budget"]), []).append(r)
    rows = []
    for (method, budget), group in groups.items():
        row = {"method": method, "budget": budget, "budget_label": group[0]["budget_label"],
               "seeds": [r["seed"] for r in group]}
        for name in SUMMARIZED:
            values = np.array([r[name] for r in group], dtype=float)
            row[f"{name}_mean"] = float(values.mean())
            row[f"{name}_std"] = float(values.std(ddof=1)) if values.size > 1 else 0.0
        rows.append(row)
    return rows


def report(runs: list[Run], ws: Workspace, out_dir: Path) -> list[dict]:
    """Write out_dir/results.json (a record per run), summary.json (mean and std over seeds)
    and metrics.json (the summary's macro-F1 and accuracy, for `dvc metrics`)."""
    records = collect(runs, ws)
    summary = summarize(records)
    write_json(Path(out_dir) / "results.json", records)
    write_json(Path(out_dir) / "summary.json", summary)
    write_json(Path(out_dir) / "metrics.json", {
        row["method"] if row["method"] == "full" else f"{row['method']}@{row['budget_label']}": {
            name: round(row[f"{metric}_{stat}"], 4)
            for metric in ("f1_macro", "accuracy") for stat, name in (("mean", metric), ("std", f"{metric}_std"))
        }
        for row in summary
    })
    return records
