"""In-process scoring of many selections on one benchmark target (for benchmarks/*.py).

`taskselect bench` runs every selection through the stages (files per run: right for a few
hundred runs); a grid of thousands of settings scores them here instead, with exactly the
stages' computation: the head trainer with finetune.head's settings on the selected rows (a
row drawn twice counts twice), predictions restricted to the target labels, macro-F1 on the
target's test set. A selection already scored (same rows) is not trained again.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from taskselect.bench import QualityBench, machine
from taskselect.bench import stopwatch as bench_stopwatch
from taskselect.config import TARGETS, Params, load_params
from taskselect.data import Benchmark
from taskselect.index import read_index
from taskselect.io import atomic_path, read_json, write_json
from taskselect.metrics import (classification_metrics, macro_f1_resamples, percentile_interval, predict_within,
                                stratified_draws)
from taskselect.selectors import Corpus, make_selector
from taskselect.selectors.auto import in_turns
from taskselect.trainers import Examples, make_trainer

log = logging.getLogger(__name__)


@dataclass
class Target:
    """One prepared target: embeddings, labels and texts, and a memo of the predictions of the
    selections scored."""

    name: str
    params: Params
    benchmark: Benchmark
    pool: np.ndarray
    query: np.ndarray
    test: np.ndarray
    index: object
    scored: dict = field(default_factory=dict)

    @classmethod
    def load(cls, params: Params, target: str, data_dir: Path = Path("data/bench")) -> Target:
        """Prepare, embed and index `target` into data_dir/target (the bench's workspace)."""
        bench = QualityBench(params, data_dir=data_dir)
        target_params = bench.target_params(target)
        return cls.of_workspace(target, target_params, bench.workspace(target_params))

    @classmethod
    def of_workspace(cls, name: str, params: Params, ws) -> Target:
        """The target a workspace already holds (prepared, embedded and indexed: a stages.Workspace)."""
        return cls(name, params, Benchmark.load(ws.prepared), np.asarray(ws.load_embeddings("pool")),
                   np.asarray(ws.load_embeddings("query")), np.asarray(ws.load_embeddings("test")), read_index(ws.index))

    @property
    def corpus(self) -> Corpus:
        b = self.benchmark
        return Corpus(b.pool["text"].tolist(), b.pool["label"].tolist(), b.query["text"].tolist(),
                      b.query["label"].tolist())

    def on_task(self, indices: np.ndarray) -> float:
        """Share of the selected rows (draws) that carry a target label."""
        return float(np.isin(self.benchmark.pool["label"].to_numpy()[indices], self.benchmark.target_labels).mean())

    def predictions(self, indices: np.ndarray, seed: int = 0) -> np.ndarray:
        """(n_test,) labels the head trained on pool rows `indices` predicts for the test rows,
        within the target labels (as the stages do)."""
        rows = np.sort(np.asarray(indices, dtype=np.int64))
        key = hashlib.sha1(rows.tobytes()).hexdigest()
        if key not in self.scored:
            b = self.benchmark
            trainer = make_trainer(self.params.finetune, seed).fit(Examples(
                b.pool["text"].iloc[rows].tolist(), self.pool[rows], b.pool["label"].to_numpy()[rows]))
            self.scored[key] = predict_within(trainer.predict_scores(Examples(b.test["text"].tolist(), self.test)),
                                              trainer.classes_, b.target_labels)
        return self.scored[key]

    def f1(self, indices: np.ndarray, seed: int = 0) -> float:
        """Macro-F1 on the test set of the head trained on pool rows `indices` (as the stages do)."""
        b = self.benchmark
        return classification_metrics(b.test["label"], self.predictions(indices, seed), b.target_labels)["f1_macro"]


class Paired:
    """Selections of one target scored as the stages score them, each on the same resamples of
    the test rows (evaluate.n_boot within each label, evaluate.seed: stages.paired_deltas), and
    checked against the recorded runs: (method, budget, seed) -> macro-F1."""

    def __init__(self, target: Target, recorded: dict[tuple, float]):
        self.target, self.recorded = target, recorded
        b, evaluate = target.benchmark, target.params.evaluate
        self.truth = b.test["label"].to_numpy(dtype=str)
        self.draws = stratified_draws(self.truth, evaluate.n_boot, np.random.default_rng(evaluate.seed))
        self.auto, self.own = make_selector("auto", target.params.select, target.params.finetune), {}

    def scored(self, method: str, budget: float, seed: int, rows: np.ndarray) -> tuple[float, np.ndarray]:
        """(macro-F1, (n_boot,) resampled macro-F1) of the head trained on pool rows `rows`; a
        macro-F1 other than the recorded run's stops the script."""
        target = self.target
        f1 = target.f1(rows, seed)
        if abs(f1 - self.recorded[method, budget, seed]) > 1e-9:
            raise SystemExit(f"{target.name} {method} {budget} seed {seed}: macro-F1 {f1} is not the "
                             f"recorded {self.recorded[method, budget, seed]}: the workspace changed")
        return f1, macro_f1_resamples(self.truth, target.predictions(rows, seed), target.benchmark.target_labels,
                                      self.draws)

    def selection(self, method: str, size: int, seed: int) -> np.ndarray:
        """The rows `method` selects (as params.yaml's section sets it up)."""
        target = self.target
        selector = make_selector(method, target.params.select, target.params.finetune)
        return selector.select(target.query, target.pool, size, seed, index=target.index, corpus=target.corpus).indices

    def auto_selection(self, close: list[str], size: int, seed: int) -> np.ndarray:
        """auto's rows, from its close candidates (recorded by auto_blends.py): their selections
        with every query, blended as auto blends them."""
        target, every = self.target, np.arange(len(self.target.query))
        for spec in set(close) - set(self.own):
            self.own[spec] = self.auto.candidate(spec, target.query, target.pool, target.index, target.corpus)
        selections = [self.own[spec](every, size, seed).indices for spec in close]
        return selections[0] if len(close) == 1 else in_turns(selections, size, seed)

    def interval(self, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
        """The paired interval of the difference of two selections' resampled macro-F1."""
        return percentile_interval(a - b, self.target.params.evaluate.confidence)


def write_marked_section(markdown: Path, name: str, body: str) -> None:
    """Put `body` under '## name' of `markdown` between this script's markers, replacing what an
    earlier run wrote there; the rest of the file is kept (the section is appended if missing)."""
    begin, end = f"<!-- BEGIN {name}: generated, edits between these markers are overwritten -->", f"<!-- END {name} -->"
    text = markdown.read_text() if markdown.is_file() else "# Benchmarks\n"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if begin in text and end in text[text.index(begin):]:
        start = text.index(begin)
        text = text[:start] + block + text[text.index(end, start) + len(end):]
    else:
        text = text.rstrip("\n") + f"\n\n## {name}\n\n{block}\n"
    with atomic_path(markdown) as tmp:
        tmp.write_text(text)


def section_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every script that writes a BENCHMARKS.md section takes: -S overrides of
    params.yaml, the markdown file, and --render-only (the section from the records alone)."""
    parser.add_argument("-S", "--set", dest="overrides", action="append", default=[], help="KEY=VALUE override")
    parser.add_argument("--markdown", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument("--render-only", action="store_true", help="only render the section from the records")


def stopwatch():
    """Start timing a benchmark run; calling the result at its end gives the facts its records
    file keeps: taskselect.bench.stopwatch's seconds and load averages, and the machine."""
    measured = bench_stopwatch()
    return lambda: {**measured(), "machine": machine()}


def benchmark_main(doc: str, name: str, section: str, run_target, render, targets: str = ",".join(TARGETS),
                   add_arguments=None) -> None:
    """The command line every script of this kind shares: run `run_target` on each target, keep its
    records in benchmarks/quality/<name>/<target>.json, render `section` of BENCHMARKS.md from them.

    run_target(target: Target, args) -> (records, facts): facts join the file's metadata.
    render(out_dir: Path, params: Params) -> str: the section's body.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--targets", default=targets)
    section_arguments(parser)
    parser.add_argument("--params", default=None, help="parameters file [default: ./params.yaml]")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/quality") / name)
    parser.add_argument("--data-dir", type=Path, default=Path("data/bench"))
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    params = load_params(args.params, args.overrides)
    if not args.render_only:
        for target in args.targets.split(","):
            measured = stopwatch()
            records, facts = run_target(Target.load(params, target, args.data_dir), args)
            write_json(args.out / f"{target}.json", {"target": target, **measured(), **facts, "records": records})
    write_marked_section(args.markdown, section, render(args.out, params))


def runs_line(found: list[dict]) -> str:
    """'Machine: ...; <target>: <seconds> s, load <before> / <after>; ...' of the records' files."""
    m = found[0]["machine"]
    return f"Machine: {m['cpu']}, {m['cores']} cores; " + "; ".join(
        f"{f['target']}: {f['seconds']:.0f} s, load {f['load_before']} / {f['load_after']}" for f in found) + "."


def read_records(out_dir: Path) -> list[dict]:
    """The records files of out_dir, in the targets' order."""
    return [read_json(out_dir / f"{t}.json") for t in TARGETS if (out_dir / f"{t}.json").is_file()]
