"""auto: the selector chosen for the user's task from the query set alone.

No single selector is best on every task (BENCHMARKS.md: DSIR leads on topic-like targets and
falls below random on others; TSDS, kNN, k-center and S2L each lead somewhere). The query set is
the only evidence of the task a user brings, so `auto` cross-validates on it:

1. the queries are dealt into `folds` folds, stratified by label (seeded);
2. each candidate selects from the pool with the other folds' queries, at the run's budget;
   a model is trained on that selection (the run's head, or the run's trainer) and predicts
   the held-out fold's queries, restricted to the task's labels as evaluation does
   (metrics.predict_within). Pool rows holding a held-out query's own text are left out of
   that model's training set: a pool may hold the user's query examples, and a candidate that
   selects them would be scored on copies of its training rows;
3. `score` ranks the candidates. By default ('soft_f1', metrics.soft_macro_f1) it is the
   macro-F1 of the held-out predictions' expected confusion matrix: each query counts its fold
   model's probabilities over the task's labels in place of one prediction. That is the test
   set's metric, less moved than the macro-F1 of the predictions themselves ('f1') when one
   query of a rare label flips, and unlike a per-query score averaged per label
   (metrics.QUERY_SCORES: 'probability', 'brier', 'log') it weighs each label's precision as
   macro-F1 does (a frequent label's rows sending a little mass each to a rare label cost the
   rare label's F1). Every score is recorded for every candidate, pooled over the folds and
   averaged over `repeats` fold splits; the choice of default is replayed on the benchmark's
   runs in BENCHMARKS.md "auto";
4. the candidates whose score is within `tolerance` bootstrap standard errors of the best score
   are `close` (the "one-standard-error rule" of model selection, Breiman et al. 1984: the paired
   difference to the best is resampled over the held-out queries). A small query set cannot tell
   candidates a point apart, so a winner among them would be a winner by chance. Each
   candidate's `wins`, the share of those resamples on which it scores best, is recorded too;
5. one close candidate: it selects with every query, and the result is exactly its own selection.
   Several (`undecided: blend`, the default): auto hedges, selecting with each of them and taking
   their rows in turns (`in_turns`), so the budget is shared between the selections it could not
   rank; the blend's own held-out score (its fold selections blended alike) is recorded beside
   the candidates'. Over the benchmark's 24 replayed cells the blend was 0.9 points closer to the
   best other selector on average than the earliest close candidate (`undecided: earliest`, the
   rule before it), and its largest shortfall was 4.1 points against 9.5 (BENCHMARKS.md "auto").

What a candidate computes from the pool alone is computed once for all folds (its
`query_subsets`, taskselect.selectors.base: TSDS's neighbour search and densities, DSIR's
n-grams, S2L's loss clusters, negCLIPLoss's pair scores); candidates with a lexical or hybrid
representation share it. The candidates are cross-validated side by side (`workers` threads,
each computing at one BLAS and OpenMP thread, taskselect.threads): the same scores, choice and
rows as one after another.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from contextvars import copy_context
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
import yaml
from pydantic import Field, ValidationError, field_validator
from tqdm.auto import tqdm

from taskselect.errors import TaskselectError
from taskselect.sections import RUNTIME, Section, one_line
from taskselect.texts import normalize_text
from taskselect.threads import fixed_threads, usable_cores
from taskselect.selectors.base import (REGISTRY, Corpus, Selection, SubsetSelect, check_size, query_subsets, register,
                                       require_corpus)
from taskselect.selectors.representation import represent
from taskselect.selectors.tsds import PRESETS

if TYPE_CHECKING:
    from taskselect.config import FinetuneParams, SelectParams

log = logging.getLogger(__name__)

BOOTSTRAP_RESAMPLES = 500  # resamples of the held-out queries for the standard errors
# select.auto.score: macro-F1 and its expected-confusion form, then metrics.QUERY_SCORES (named
# here: metrics imports scikit-learn, not loaded at the CLI's start)
SCORES = ("f1", "soft_f1", "probability", "brier", "log")


def score_keys(score: str) -> tuple[str, str]:
    """selection.json's keys of a candidate's gap to the best and the gap's standard error under
    `score` (macro-F1 keeps the keys it had first: 'gap', 'se')."""
    suffix = "" if score == "f1" else f"_{score}"
    return f"gap{suffix}", f"se{suffix}"


def candidate_problem(spec: str) -> str | None:
    """Why 'method' or 'method:key=value:...' is not a candidate (None if it is): the method must
    be registered, use the budget and not be auto; the keys must be its section's."""
    method, *pairs = spec.split(":")
    if method not in REGISTRY or method == "auto" or not REGISTRY[method].uses_budget:
        allowed = [m for m, s in REGISTRY.items() if m != "auto" and s.uses_budget]
        return f"{spec!r}: expected a method among {', '.join(allowed)}"
    params = REGISTRY[method].params
    for pair in pairs:
        key, sep, _ = pair.partition("=")
        if not sep or params is None or key not in params.model_fields:
            return f"{spec!r}: {key!r} is not a parameter of select.{REGISTRY[method].section or method}"
    return None


class AutoParams(Section):
    """auto: the selector chosen for the task from the query set alone. The queries are split
    into folds (stratified by label); each candidate selects with the other folds' queries at the
    run's budget, a model is trained on its selection and scored (`score`) on the held-out fold's
    queries; the choice then selects with every query. Reads texts and query labels."""

    candidates: list[str] = Field(
        ["tsds", "tsds:representation=hybrid", "knn", "kcenter", "s2l", "dsir", "negcliploss", "random"], min_length=1,
        description="Methods tried, in order of preference: 'method' or 'method:key=value:...' overriding "
        "keys of its section (e.g. 'knn:representation=lexical'). With undecided 'earliest', the earliest close "
        "one is chosen.",
    )
    folds: int = Field(5, ge=2, description="Folds of the query set (each query is held out once per repeat).")
    repeats: int = Field(1, ge=1, description="Fold splits, each with its own seed; the scores are averaged.")
    tolerance: float = Field(
        1.0, ge=0,
        description="Candidates within this many bootstrap standard errors of the best's score (paired over the "
        "held-out queries) are 'close': the query set cannot rank them (see undecided); 0 keeps the best alone.",
    )
    score: Literal[SCORES] = Field(
        "soft_f1",
        description="What ranks the candidates on the held-out queries: 'f1' (macro-F1 of the predictions, as the "
        "test set is scored), 'soft_f1' (macro-F1 of the expected confusion matrix: each query counts its predicted "
        "probabilities, so it moves less than 'f1' when one query flips and, unlike the per-label averages below, "
        "weighs precision as macro-F1 does), or a score of each query's predicted probabilities averaged per label then over "
        "labels (smoother, less moved by a rare label's one or two queries): 'probability' (of its own label), "
        "'brier' (1 - half the squared error) or 'log' (the own label's log probability, floored at 1e-3).",
    )
    undecided: Literal["blend", "earliest"] = Field(
        "blend",
        description="What is selected when several candidates are within the tolerance of the best (the query set "
        "cannot rank them): 'blend' (each selects with every query; their draws are taken in turns, each selection's "
        "in a seeded random order, a row skipped once taken as often as one selection draws it, until the budget; "
        "named by its members joined by ' + ') or 'earliest' (the earliest of them).",
    )
    blend_max: int | None = Field(
        None, ge=2,
        description="With undecided 'blend': at most this many close candidates are blended, those that score best "
        "on the most bootstrap resamples of the held-out queries (their wins; ties to the earlier); none: all of them.",
    )
    trainer: Literal["head", "run"] = Field(
        "head",
        description="Model trained on each fold's selection: 'head' (logistic regression with finetune.head's "
        "settings, seconds) or 'run' (finetune.trainer, e.g. the transformer: minutes per fold and candidate).",
    )
    workers: Annotated[int, RUNTIME] = Field(
        0, ge=0,
        description="Candidates cross-validated at once, each in a thread of its own: 0, one per CPU core the process "
        "may use, in a Dask worker one per worker thread (at most one per candidate). The choice and the rows do not "
        "depend on it; set 1 where the process should keep to one core.",
    )

    @field_validator("candidates")
    @classmethod
    def _candidates_are_registered_methods(cls, candidates: list[str]) -> list[str]:
        problem = next((p for p in map(candidate_problem, candidates) if p), None)
        if problem:
            raise ValueError(problem)
        if len(set(candidates)) != len(candidates):
            raise ValueError(f"{candidates}: a candidate is listed twice")
        return candidates


def parse_candidate(spec: str, params: SelectParams) -> tuple[str, SelectParams]:
    """('method', select parameters with the spec's overrides) of 'method' or
    'method:key=value:key=value' (keys of select.<method>, values read as YAML)."""
    problem = candidate_problem(spec)
    if problem:
        raise TaskselectError(f"select.auto.candidates: {problem}")
    method, *pairs = spec.split(":")
    raw = params.model_dump(mode="json")
    section = REGISTRY[method].section
    if pairs:  # candidate_problem checked that the method has these parameters
        given = {key: yaml.safe_load(value) for key, _, value in (pair.partition("=") for pair in pairs)}
        preset = given.get("preset")  # its settings, not the section's (which the preset would refuse to ignore)
        replaced = PRESETS.get(preset, {}) if isinstance(preset, str) else {}
        raw[section] = {**{k: v for k, v in raw[section].items() if k not in replaced}, **given}
    try:
        return method, type(params).model_validate(raw)
    except ValidationError as exc:
        raise one_line(exc, f"select.auto.candidates: {spec!r}") from None


def stratified_folds(labels: np.ndarray, folds: int, seed) -> np.ndarray:
    """(M,) fold number in [0, folds) of each query: each label's queries shuffled (seeded) and
    dealt in turn, the deal going on from one label to the next, so fold sizes differ by at most 1."""
    labels = np.asarray(labels, dtype=str)
    rng = np.random.default_rng(seed)
    fold = np.empty(labels.size, dtype=np.int64)
    dealt = 0
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        fold[rows] = (dealt + np.arange(rows.size)) % folds
        dealt += rows.size
    return fold


def most_draws(selections: list[np.ndarray]) -> dict[int, int]:
    """Pool row -> the most draws of it in one of the selections: how often a blend of them may
    take it."""
    most: dict[int, int] = {}
    for rows in selections:
        for row, count in zip(*np.unique(rows, return_counts=True)):
            most[int(row)] = max(most.get(int(row), 0), int(count))
    return most


@contextmanager
def held_warnings():
    """Collect, instead of logging, the warnings the other selectors' loggers give in this thread
    (yields the list of their messages). auto's fold selections would repeat a selector's warning
    once per fold (e.g. TSDS raising alpha) about selections the user never gets; the selection
    auto returns is made outside and warns as the selector itself would."""
    held, thread = [], threading.get_ident()

    def hold(record: logging.LogRecord) -> bool:
        if record.thread == thread and record.levelno == logging.WARNING:
            held.append(record.getMessage())
            return False
        return True

    prefix = __name__.rsplit(".", 1)[0] + "."
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
               if name.startswith(prefix) and name != __name__]
    for logger in loggers:
        logger.addFilter(hold)
    try:
        yield held
    finally:
        for logger in loggers:
            logger.removeFilter(hold)


def blend_members(close: list[str], wins: dict[str, float], most: int | None) -> list[str]:
    """The close candidates a blend takes, in order of preference: all of them, or the `most` that
    score best on the most bootstrap resamples of the held-out queries (`wins`; ties to the
    earlier). Five or six close candidates leave each a sliver of a small budget."""
    if most is None or len(close) <= most:
        return close
    kept = set(sorted(close, key=lambda spec: -wins[spec])[:most])  # stable: ties keep the order of preference
    return [spec for spec in close if spec in kept]


def in_turns(selections: list[np.ndarray], size: int, seed) -> np.ndarray:
    """(size,) sorted pool rows, one per draw: one draw from each selection in turn (each
    selection's draws in a seeded random order) until `size` draws, a row skipped once it has been
    taken as often as one selection draws it (once, for selections without replacement). Every
    selection gets an equal share of the budget; a row several selections hold comes early."""
    rng = np.random.default_rng(seed)
    orders = [rng.permutation(np.sort(rows)) for rows in selections]
    most = most_draws(selections)
    taken: dict[int, int] = {}
    blended = []
    for turn in range(max(map(len, orders))):
        for order in orders:
            if turn < len(order) and len(blended) < size and taken.get(row := order[turn], 0) < most[row]:
                taken[row] = taken.get(row, 0) + 1
                blended.append(row)
    return np.sort(np.asarray(blended, dtype=np.int64))


def query_copies(corpus: Corpus) -> dict[int, np.ndarray]:
    """Query row -> the pool rows holding its text (compared as data prepare compares texts), for
    the queries that have any. A user's pool may hold their query examples (a warned leak): while
    a query is held out, a selection holding its own text and label would score a copy of it."""
    rows_of: dict[str, list[int]] = {}
    for i, text in enumerate(corpus.pool_texts):
        rows_of.setdefault(normalize_text(text), []).append(i)
    found = ((q, rows_of.get(normalize_text(text))) for q, text in enumerate(corpus.query_texts))
    return {q: np.asarray(rows) for q, rows in found if rows}


def too_few_queries(folds: int, queries: int) -> str | None:
    """Why `queries` query examples cannot be dealt into `folds` folds (None if they can)."""
    if queries < folds:
        return (f"select.auto.folds {folds}: auto holds out one fold of the query examples at a time, "
                f"and there are {queries}; lower select.auto.folds (at least 2) or leave auto out of select.methods")
    return None


def random_close(truth: np.ndarray) -> str:
    """What it means that random selection is among the close candidates, and what would help;
    truth: (M,) the query examples' labels (str)."""
    labels, counts = np.unique(truth, return_counts=True)
    rarest = int(np.argmin(counts))
    return (f"the query set ({len(truth)} examples; the fewest of one label: {counts[rarest]} of "
            f"{str(labels[rarest])!r}) cannot show that any candidate selects better than random does, so this choice "
            "rests on little evidence; more query examples, of every label, would let auto rank the candidates")


@register("auto", AutoParams, reads="corpus", default=True,
          build=lambda p: AutoSelector(params=p, **p.auto.model_dump()), query_problem=lambda p, queries: too_few_queries(p.auto.folds, queries))
@dataclass
class AutoSelector:
    """Cross-validates `candidates` on the query set and selects with the best, or with the blend
    of those it cannot rank (see the module).

    params: the select parameters, whose sections configure each candidate.
    candidates: 'method' or 'method:key=value:...' (overrides of select.<method>), in order of
        preference (the blend takes the close ones in this order).
    folds: >= 2, folds of the queries; repeats: >= 1, fold splits averaged.
    tolerance: >= 0, in bootstrap standard errors of the paired score difference to the best:
        the candidates within it are 'close'.
    score: 'f1' ranks by the held-out macro-F1, 'soft_f1' by that of the expected confusion matrix;
        'probability', 'brier' or 'log' by that per-query
        score (metrics.QUERY_SCORES) averaged per label then over labels (all recorded for every
        candidate).
    undecided: 'blend' takes the close candidates' selections in turns (in_turns), 'earliest' the
        earliest close candidate's selection.
    blend_max: None or >= 2, the close candidates a blend takes at most (blend_members).
    trainer: 'head' trains finetune.head's logistic regression on each fold's selection;
        'run' trains finetune.trainer (the transformer: minutes per fold and candidate).
    finetune: the run's training parameters (default: FinetuneParams()).
    workers: >= 0, candidates cross-validated at once, each in a thread of its own (0: one per CPU
        core the process may use, at most one per candidate); the choice and the rows do not
        depend on it.
    Needs a Corpus with the query labels. The seed drives the fold split, every candidate's
    selections and the trainer.
    """

    params: SelectParams
    candidates: list[str]
    folds: int = AutoParams.default("folds")
    repeats: int = AutoParams.default("repeats")
    tolerance: float = AutoParams.default("tolerance")
    score: str = AutoParams.default("score")
    undecided: str = AutoParams.default("undecided")
    blend_max: int | None = AutoParams.default("blend_max")
    trainer: str = AutoParams.default("trainer")
    workers: int = AutoParams.default("workers")
    finetune: FinetuneParams | None = None

    def __post_init__(self):
        from taskselect.config import FinetuneParams
        from taskselect.selectors import make_selector

        AutoParams.check(self, "auto")
        self.finetune = self.finetune or FinetuneParams()
        self._selectors = {spec: make_selector(*parse_candidate(spec, self.params)) for spec in self.candidates}
        # What the candidates computed from the last query set and pool (a digest of both; the
        # prepared candidates; the representations they share): another budget or seed reuses it.
        self._prepared: tuple[str, dict, dict] = ("", {}, {})

    def _trainer(self, seed: int):
        from taskselect.config import FinetuneParams
        from taskselect.trainers import make_trainer

        params = self.finetune if self.trainer == "run" else FinetuneParams(trainer="head", head=self.finetune.head)
        return make_trainer(params, seed)

    def candidate(self, spec: str, query, candidates, index=None, corpus=None) -> SubsetSelect:
        """Candidate `spec` prepared on this query set (M, d) and pool (N, d): called with query
        rows, a size in draws and a seed, it selects with those queries alone (query_subsets); with
        every query, it is the candidate's own selection. Kept for the next call on the same data."""
        return self._candidate(spec, self._kept(query, candidates), query, candidates, index, corpus)

    def _kept(self, query, candidates) -> tuple[dict, dict]:
        """(prepared candidates, shared representations) kept for this query set and pool."""
        digest = hashlib.sha1()
        for array in (query, candidates):
            digest.update(np.ascontiguousarray(array).view(np.uint8))
        if self._prepared[0] != digest.hexdigest():
            self._prepared = (digest.hexdigest(), {}, {})
        return self._prepared[1:]

    def _candidate(self, spec: str, kept: tuple[dict, dict], query, candidates, index, corpus) -> SubsetSelect:
        prepared, represented = kept
        if spec not in prepared:
            selector = self._selectors[spec]
            representation = getattr(selector, "representation", "semantic")
            if representation != "semantic":  # computed once for the candidates that share it
                key = (representation, selector.lexical_weight)
                if key not in represented:
                    represented[key] = represent(representation, query, candidates, index, corpus, selector.lexical_weight)
                query, candidates, index = represented[key]
                selector = replace(selector, representation="semantic")
            prepared[spec] = query_subsets(selector, query, candidates, index, corpus)
        return prepared[spec]

    def _fold_rows(self, prepared: SubsetSelect, splits: list[np.ndarray], size: int, seed: int) -> list[list[np.ndarray]]:
        """[repeat][fold] sorted pool rows the candidate selects with the queries outside the fold."""
        return [[np.sort(prepared(np.flatnonzero(fold != f), size, seed).indices) for f in range(self.folds)]
                for fold in splits]

    def _held_out_predictions(self, fold_rows: list[list[np.ndarray]], splits: list[np.ndarray], embeddings,
                              corpus: Corpus, labels: list[str], seed: int, copies: dict[int, np.ndarray]):
        """(repeats, M) predicted label of each query by the model trained on the selection made
        without its fold (fold_rows), and (repeats, M, len(labels)) that model's probabilities of
        the task's labels (metrics.task_label_probabilities). copies: query -> the pool rows
        holding its text, left out of the selection while the query is held out."""
        from taskselect.metrics import (  # scikit-learn: not at the CLI's start
            predict_within,
            task_label_probabilities,
        )
        from taskselect.trainers import Examples

        query_emb, pool_emb = embeddings
        pool_texts, pool_labels = corpus.pool_texts, np.asarray(corpus.pool_labels, dtype=str)
        predicted = np.empty((len(splits), len(query_emb)), dtype=object)
        probabilities = np.zeros((len(splits), len(query_emb), len(labels)))
        for r, fold in enumerate(splits):
            for f in range(self.folds):
                held = np.flatnonzero(fold == f)
                rows = fold_rows[r][f]
                leaked = [copies[i] for i in held if i in copies]
                if leaked:  # the held-out query itself, labelled, would be in its model's training set
                    rows = rows[~np.isin(rows, np.concatenate(leaked))]
                # One thread: round-off then does not depend on where auto runs (the fold models
                # are small: more threads gain little, and oversubscribed ones cost ~50x).
                with fixed_threads():
                    model = self._trainer(seed).fit(Examples(
                        [pool_texts[i] for i in rows], np.asarray(pool_emb[rows]), pool_labels[rows]))
                    scores = model.predict_scores(Examples([corpus.query_texts[i] for i in held], np.asarray(query_emb[held])))
                predicted[r, held] = predict_within(scores, model.classes_, labels)
                probabilities[r, held] = task_label_probabilities(scores, model.classes_, labels)
        return predicted, probabilities

    @staticmethod
    def _scores(predicted, probabilities, truth, labels, draws) -> tuple[dict, dict]:
        """Every score (SCORES) of one selection's held-out predictions, per repeat, and its
        bootstrap resamples (mean over the repeats; the same draws for every candidate)."""
        from taskselect.metrics import (
            QUERY_SCORES,
            label_balanced_mean,
            macro_f1,
            macro_f1_resamples,
            query_scores,
            soft_macro_f1,
        )

        # macro_f1, not classification_metrics: a fold model predicting one label is a score here,
        # not the test-set warning that function logs
        scores = {"f1": [macro_f1(truth, p, labels) for p in predicted],
                  "soft_f1": [float(soft_macro_f1(truth, p, labels)) for p in probabilities]}
        resampled = {"f1": np.mean([macro_f1_resamples(truth, p, labels, draws) for p in predicted], axis=0),
                     "soft_f1": np.mean([soft_macro_f1(truth, p, labels, draws) for p in probabilities], axis=0)}
        per_query = [query_scores(p, labels, truth) for p in probabilities]
        for name in QUERY_SCORES:
            scores[name] = [float(label_balanced_mean(truth, v[name], labels)) for v in per_query]
            resampled[name] = np.mean([label_balanced_mean(truth, v[name], labels, draws) for v in per_query], axis=0)
        return scores, resampled

    def select(self, query, candidates, size: int, seed: int, index=None, corpus=None) -> Selection:
        corpus = require_corpus(corpus, "auto", len(candidates), len(query))
        check_size(size, len(candidates))
        if len(corpus.query_labels) != len(query):
            raise TaskselectError("auto: needs the query examples' labels (the query file's label column)")
        truth = np.asarray(corpus.query_labels, dtype=str)
        labels = sorted(set(truth.tolist()))
        if problem := too_few_queries(self.folds, len(query)):
            raise TaskselectError(f"auto: {problem}")
        started = time.perf_counter()
        splits = [stratified_folds(truth, self.folds, [seed, r]) for r in range(self.repeats)]
        draws = np.random.default_rng([seed, self.repeats]).integers(0, len(truth), (BOOTSTRAP_RESAMPLES, len(truth)))
        copies = query_copies(corpus)
        kept = self._kept(query, candidates)  # hashed once per selection, not per candidate

        def held_out(rows):  # every score of the models trained on these [repeat][fold] selections
            predicted, probabilities = self._held_out_predictions(rows, splits, (query, candidates), corpus, labels,
                                                                  seed, copies)
            return self._scores(predicted, probabilities, truth, labels, draws)

        # Every score of every candidate (mean over the repeats) and their bootstrap resamples
        # (paired: the same draws of held-out queries for every candidate); `score` ranks them.
        scores, resampled, fold_rows, prepared = {}, {}, {}, {}

        def cross_validate(spec: str) -> None:  # in a worker thread: its own thread limits, as the caller's
            began = time.perf_counter()
            with fixed_threads():
                prepared[spec] = self._candidate(spec, kept, query, candidates, index, corpus)
                with held_warnings() as warned:
                    fold_rows[spec] = self._fold_rows(prepared[spec], splits, size, seed)
                scores[spec], resampled[spec] = held_out(fold_rows[spec])
            log.info("auto: %s on the held-out queries: %s (%.1fs)%s", spec,
                     ", ".join(f"{name} {np.mean(scores[spec][name]):.4f}" for name in SCORES), time.perf_counter() - began,
                     f"; its fold selections warned {len(warned)} time(s), first: {warned[0]}" if warned else "")

        # Candidates are independent and each computes at one thread (taskselect.threads): they
        # run side by side, each in a copy of the caller's context (a Prefect task run's logger).
        with ThreadPoolExecutor(self.workers or min(len(self.candidates), usable_cores())) as threads:
            futures = [threads.submit(copy_context().run, cross_validate, spec) for spec in self.candidates]
            try:
                for done in tqdm(as_completed(futures), total=len(futures), desc="auto: cross-validating",
                                 unit="candidate"):
                    done.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        report = {spec: {} for spec in self.candidates}
        for name in SCORES:
            mean = {spec: float(np.mean(scores[spec][name])) for spec in self.candidates}
            best = max(mean, key=mean.get)  # the earliest of equal bests
            gap, se = score_keys(name)
            for spec in self.candidates:
                report[spec] |= {name: mean[spec], gap: mean[best] - mean[spec],
                                 se: float(np.std(resampled[best][name] - resampled[spec][name], ddof=1)),
                                 **({f"{name}_repeats": scores[spec][name]} if self.repeats > 1 else {})}
        # How often each candidate scores best (by `score`; ties to the earliest) over the same
        # resamples of the held-out queries: how firmly the query set ranks them.
        winner = np.argmax(np.stack([resampled[spec][self.score] for spec in self.candidates]), axis=0)
        for i, spec in enumerate(self.candidates):
            report[spec]["wins"] = float(np.mean(winner == i))
        gap, se = score_keys(self.score)
        best = min(self.candidates, key=lambda spec: report[spec][gap])
        close = [spec for spec in self.candidates if report[spec][gap] <= self.tolerance * report[spec][se] + 1e-12]
        if any(spec.split(":")[0] == "random" for spec in close):
            log.warning("auto: %s", random_close(truth))
        everything = np.arange(len(query))
        info = {"best": best, "close": close, "candidates": report, "folds": self.folds, "repeats": self.repeats,
                "tolerance": self.tolerance, "score": self.score, "undecided": self.undecided, "trainer": self.trainer}
        if len(close) > 1 and self.undecided == "blend":
            members = blend_members(close, {spec: report[spec]["wins"] for spec in close}, self.blend_max)
            if members != close:
                info["blended"] = members
            # The blend's held-out score: the members' fold selections blended alike.
            blend_scores, blend_resampled = held_out([
                [in_turns([fold_rows[spec][r][f] for spec in members], size, seed) for f in range(self.folds)]
                for r in range(self.repeats)])
            info["choice"] = " + ".join(members)  # a blend is named by its members
            info["blend"] = {name: float(np.mean(blend_scores[name])) for name in SCORES}
            info["blend"] |= {gap: report[best][self.score] - info["blend"][self.score],
                              se: float(np.std(resampled[best][self.score] - blend_resampled[self.score], ddof=1))}
            log.warning("auto: the query set cannot tell %s apart (within %g standard error(s) of the best by %s); "
                        "%s are blended (held-out %s %.4f; best %s %.4f)", ", ".join(close), self.tolerance, self.score,
                        "their selections" if members == close else
                        f"the selections of {', '.join(members)}, the {len(members)} with the most wins,",
                        self.score, info["blend"][self.score], best, report[best][self.score])
            chosen = Selection(indices=in_turns([prepared[spec](everything, size, seed).indices for spec in members],
                                                size, seed))
        else:
            info["choice"] = close[0]
            log.info("auto: %s chosen by %s (best %s %.4f; %s %.4f)", close[0], self.score, best,
                     report[best][self.score], close[0], report[close[0]][self.score])
            if len(close) > 1:  # the user should know the query set did not single out the choice
                log.warning("auto: the query set cannot tell %s apart (within %g standard error(s) of the best); %s "
                            "is chosen as the earliest of them in select.auto.candidates", ", ".join(close),
                            self.tolerance, close[0])
            chosen = prepared[close[0]](everything, size, seed)
            info |= chosen.info
        info["cv_seconds"] = round(time.perf_counter() - started, 3)
        return Selection(indices=chosen.indices, probs=chosen.probs, scores=chosen.scores, info=info)
