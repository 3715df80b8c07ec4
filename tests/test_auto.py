"""auto: cross-validation on the query set chooses the selector; presets and representations."""

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from taskselect import stages
from taskselect.config import SelectParams, load_params
from taskselect.errors import TaskselectError
from taskselect.io import read_json
from taskselect.selectors import Corpus, KNNSelector, TSDSSelector, make_selector
from taskselect.selectors.auto import parse_candidate, stratified_folds
from taskselect.selectors.representation import lexical_vectors, represent
from taskselect.selectors.tsds import TSDSParams
from tests.conftest import ROOT, small_profile


def test_folds_deal_every_labels_queries_evenly_and_depend_on_the_seed():
    labels = np.array(["a"] * 7 + ["b"] * 5 + ["c"] * 2)
    fold = stratified_folds(labels, 3, seed=0)
    sizes = np.bincount(fold, minlength=3)
    assert sizes.max() - sizes.min() <= 1
    for label, n in (("a", 7), ("b", 5)):
        per_fold = np.bincount(fold[labels == label], minlength=3)
        assert per_fold.max() - per_fold.min() <= 1 and per_fold.sum() == n
    assert np.array_equal(fold, stratified_folds(labels, 3, seed=0))
    assert any(not np.array_equal(fold, stratified_folds(labels, 3, seed=s)) for s in range(1, 5))


def test_candidates_override_their_methods_section_and_bad_ones_are_refused():
    method, params = parse_candidate("knn:representation=lexical:lexical_weight=0.25", SelectParams())
    selector = make_selector(method, params)
    assert isinstance(selector, KNNSelector) and selector.representation == "lexical" and selector.lexical_weight == 0.25
    method, params = parse_candidate("tsds:preset=paper-instruction", SelectParams())
    assert (params.tsds.alpha, params.tsds.C, params.tsds.sigma) == (0.075, 5.0, 0.2)
    custom = SelectParams.model_validate({"tsds": {"alpha": 0.5}})  # the candidate's preset, not the section's alpha
    assert parse_candidate("tsds:preset=paper-instruction", custom)[1].tsds.alpha == 0.075
    for spec in ("tsds:alpha=0.3:preset=paper-instruction", "tsds:preset=paper-instruction:alpha=0.3"):  # the candidate's own: refused
        with pytest.raises(TaskselectError, match="alpha 0.3 would be ignored"):
            parse_candidate(spec, SelectParams())
    for bad in ("auto", "full", "magic", "knn:k=3", "knn:representation", "tsds:alpha=2", "tsds:preset=[a]"):
        with pytest.raises(TaskselectError, match="select.auto.candidates"):
            parse_candidate(bad, SelectParams())
    for override, message in (("[knn, knn]", "listed twice"), ("[tsds, magic]", "'magic': expected a method"),
                              ("[knn:k=3]", "'k' is not a parameter of select.knn")):
        with pytest.raises(TaskselectError, match=f"select.auto.candidates: .*{message}"):
            load_params(ROOT / "params.yaml", [f"select.auto.candidates={override}"])


def test_presets_set_alpha_c_and_sigma_from_params_yaml_and_overrides():
    # the defaults, or another preset's settings (params.yaml after a run with it), are replaced
    assert TSDSParams(preset="paper-pretraining", alpha=0.075, sigma=0.2).model_dump(include={"alpha", "C", "sigma"}) == {
        "alpha": 0.6, "C": 5.0, "sigma": 0.1}
    with pytest.raises(ValidationError, match="alpha 0.3 would be ignored: preset 'paper-pretraining' sets alpha 0.6"):
        TSDSParams(preset="paper-pretraining", alpha=0.3)  # asked for, so refused rather than ignored
    with pytest.raises(TaskselectError, match="select.tsds: sigma 0.5 would be ignored"):
        load_params(ROOT / "params.yaml", ["select.tsds.preset=paper-instruction", "select.tsds.sigma=0.5"])
    params = load_params(ROOT / "params.yaml", ["select.tsds.preset=paper-instruction"])
    assert (params.select.tsds.alpha, params.select.tsds.C, params.select.tsds.sigma) == (0.075, 5.0, 0.2)
    selector = make_selector("tsds", params.select)
    assert isinstance(selector, TSDSSelector) and (selector.alpha, selector.C, selector.sigma) == (0.075, 5.0, 0.2)
    custom = load_params(ROOT / "params.yaml", ["select.tsds.alpha=0.5"]).select.tsds
    assert custom.preset == "custom" and custom.alpha == 0.5


TEXTS = ["the pilot landed the plane late", "my flight was delayed again", "the plane left the gate",
         "a recipe for tomato soup", "boil the pasta in salted water", "soup with fresh basil and tomato",
         "the striker scored a goal", "a late goal won the match", "the match ended in a draw"]


def test_lexical_vectors_are_unit_rows_near_texts_that_share_words():
    pool, query = lexical_vectors(TEXTS, ["tomato soup with basil"], dim=4)
    assert pool.shape == (9, 4) and query.shape == (1, 4)
    assert np.allclose(np.linalg.norm(pool, axis=1), 1, atol=1e-5)
    nearest = np.argsort(-(pool @ query[0]))[:2]
    assert set(nearest) <= {3, 5}


def test_lexical_vectors_of_the_same_texts_are_computed_once_and_read_only():
    query = ["tomato soup with basil"]
    lexical_vectors.forget()  # whatever an earlier test left
    first = lexical_vectors(TEXTS, query, dim=4)
    again = lexical_vectors(list(TEXTS), tuple(query), dim=4)  # equal texts, other sequences
    assert again is first and all(not a.flags.writeable for a in first)
    lexical_vectors.forget()
    fresh = lexical_vectors(TEXTS, query, dim=4)  # computed anew: equal, other arrays
    assert fresh is not first
    for computed, kept in zip(fresh, first):
        np.testing.assert_array_equal(computed, kept)
    other = lexical_vectors(TEXTS[:-1] + ["the match ended in a draw!"], query, dim=4)  # one text changed
    assert not np.array_equal(other[0], fresh[0])
    assert lexical_vectors(TEXTS, query, dim=3)[0].shape == (9, 3)


def test_lexical_knn_reads_the_texts_and_hybrid_mixes_both_distances():
    rng = np.random.default_rng(0)
    semantic = rng.normal(size=(9, 8)).astype(np.float32)
    semantic /= np.linalg.norm(semantic, axis=1, keepdims=True)
    query = semantic[[6]]  # semantically the football row 6; lexically about soup
    corpus = Corpus(TEXTS, ["x"] * 9, ["tomato soup with basil"], ["y"])
    lexical = KNNSelector(representation="lexical").select(query, semantic, 2, seed=0, corpus=corpus)
    assert set(lexical.indices) <= {3, 5}
    tsds = TSDSSelector(alpha=1.0, max_k=3, kde_k=3, representation="lexical").select(query, semantic, 1, 0, corpus=corpus)
    assert set(tsds.indices) <= {3, 5}
    assert KNNSelector(representation="hybrid", lexical_weight=0.0).select(query, semantic, 1, 0, corpus=corpus).indices[0] == 6
    with pytest.raises(TaskselectError, match="texts"):
        KNNSelector(representation="lexical").select(query, semantic, 2, seed=0)
    q, c, index = represent("hybrid", query, semantic, object(), corpus, 0.5)
    assert index is None and c.shape[1] > semantic.shape[1]
    assert np.allclose(np.linalg.norm(c, axis=1), 1, atol=1e-5)


@pytest.fixture(scope="module")
def airline(tmp_path_factory, embedding_cache):
    """The real airline benchmark, small profile, prepared, embedded and indexed."""
    root = tmp_path_factory.mktemp("auto")
    params = load_params(ROOT / "params.yaml", small_profile(root, embedding_cache) + ["select.budgets=[0.05]"])
    ws = stages.Workspace(root / "data")
    stages.prepare(params.data, ws)
    stages.embed(params.embed, ws)
    stages.index(params.index, ws)
    return params, ws


def test_auto_does_not_choose_a_selector_that_is_clearly_bad_for_the_task(airline):
    """random, listed first (preferred on ties), spends most of the budget off-task in a pool of
    fourteen sources: the held-out queries show it, and auto takes knn; its selection is then
    knn's own, and the same seed gives the same choice and rows."""
    params, ws = airline
    select = params.select.model_copy(update={"auto": params.select.auto.model_copy(
        update={"candidates": ["random", "knn"], "folds": 3})})
    run = stages.Run("auto", 0.05, 0)
    summary = stages.select(select, run, ws, finetune=params.finetune)
    assert summary["choice"] == "knn" and summary["best"] == "knn" and summary["close"] == ["knn"]
    scores = summary["candidates"]
    assert scores["knn"]["f1"] > scores["random"]["f1"] + scores["random"]["se"]
    assert scores["knn"]["wins"] > 0.9 and scores["knn"]["wins"] + scores["random"]["wins"] == pytest.approx(1.0)
    stages.select(select, stages.Run("knn", 0.05, 0), ws)
    chosen = pd.read_parquet(ws.selection(run) / "selection.parquet")
    assert chosen.equals(pd.read_parquet(ws.selection(stages.Run("knn", 0.05, 0)) / "selection.parquet"))
    again = stages.select(select, run, ws, finetune=params.finetune)
    assert again == summary == read_json(ws.selection(run) / "selection.json")
    # a candidate as auto prepared it (the benchmarks replay auto's runs with it): with every query,
    # its own selection; asked again on the same data, the same prepared object
    from taskselect.index import read_index

    auto = make_selector("auto", select, params.finetune)
    stages.select(select, run, ws, selector=auto)
    query, pool = ws.load_embeddings("query"), ws.load_embeddings("pool")
    knn = auto.candidate("knn", query, pool, read_index(ws.index))
    assert np.array_equal(np.unique(knn(np.arange(len(query)), summary["size"], 0).indices), chosen["pool_row"].to_numpy())
    assert auto.candidate("knn", query, pool) is knn
    assert not any(key.endswith("_seconds") for key in summary)  # the wall time went to the timing file
    assert read_json(ws.timing(f"select-{run.slug}"))["cv_seconds"] > 0
    # the Prefect results note shows the score that ranked the candidates, not another one
    from taskselect.report import auto_choices

    (line,) = auto_choices([{"method": "auto", "slug": run.slug, "select_info": summary}], bold=True)
    assert "chose **knn** (soft_f1 on the held-out queries" in line
    assert f"knn {scores['knn']['soft_f1']:.3f} ± 0.000" in line
    assert f"random {scores['random']['soft_f1']:.3f} ± {scores['random']['se_soft_f1']:.3f}" in line


def test_candidates_the_queries_cannot_tell_apart_are_named_and_blended_or_the_earliest_is_chosen(airline, caplog):
    """tsds and knn, both aimed at the queries, score within a standard error of each other on 24
    held-out queries: both are 'close', the log says the query set did not decide, and by default
    auto selects their rows in turns (in_turns of their own selections), recording the blend's
    held-out score; with undecided 'earliest' the selection is the earlier one's own."""
    from taskselect.selectors.auto import in_turns

    params, ws = airline
    auto = params.select.auto.model_copy(update={"candidates": ["random", "tsds", "knn"], "folds": 2})
    select = params.select.model_copy(update={"auto": auto})
    run = stages.Run("auto", 0.05, 0)
    with caplog.at_level("WARNING", logger="taskselect.selectors.auto"):
        summary = stages.select(select, run, ws, finetune=params.finetune)
    assert summary["close"] == ["tsds", "knn"] and summary["choice"] == "tsds + knn"
    wins = {spec: c["wins"] for spec, c in summary["candidates"].items()}
    assert sum(wins.values()) == pytest.approx(1.0) and wins["tsds"] > 0 and wins["knn"] > 0  # neither always best
    assert "cannot tell tsds, knn apart" in caplog.text and "blended" in caplog.text
    blend = summary["blend"]
    assert 0 < blend["soft_f1"] <= 1 and blend["se_soft_f1"] > 0
    assert blend["gap_soft_f1"] == pytest.approx(summary["candidates"][summary["best"]]["soft_f1"] - blend["soft_f1"])
    from taskselect.report import auto_choices

    (line,) = auto_choices([{"method": "auto", "slug": run.slug, "select_info": summary}], bold=True)
    assert "chose **tsds + knn**" in line and f"their blend {blend['soft_f1']:.3f} ± {blend['se_soft_f1']:.3f}" in line
    own = {}
    for method in ("tsds", "knn"):
        stages.select(params.select, stages.Run(method, 0.05, 0), ws)
        own[method] = pd.read_parquet(ws.selection(stages.Run(method, 0.05, 0)) / "selection.parquet")["pool_row"].to_numpy()
    chosen = pd.read_parquet(ws.selection(run) / "selection.parquet")["pool_row"].to_numpy()
    assert len(chosen) == len(own["tsds"]) and len(set(chosen)) == len(chosen)
    assert np.array_equal(np.sort(chosen), in_turns([own["tsds"], own["knn"]], len(chosen), 0))
    assert set(own["tsds"]) - set(chosen) and set(own["knn"]) - set(chosen)  # neither selection whole: a blend

    select = params.select.model_copy(update={"auto": auto.model_copy(update={"undecided": "earliest"})})
    summary = stages.select(select, run, ws, finetune=params.finetune)
    assert summary["close"] == ["tsds", "knn"] and summary["choice"] == "tsds" and "blend" not in summary
    chosen = pd.read_parquet(ws.selection(run) / "selection.parquet")["pool_row"].to_numpy()
    assert np.array_equal(np.sort(chosen), np.sort(own["tsds"]))


def test_a_blend_takes_at_most_blend_max_close_candidates_those_with_the_most_wins(airline):
    """select.auto.blend_max: of the close candidates, the blend takes those that score best on
    the most resamples of the held-out queries (ties to the earlier), in order of preference; its
    rows are those members' selections in turns, and selection.json names all the close ones."""
    from taskselect.selectors.auto import blend_members, in_turns

    close = ["a", "b", "c", "d"]
    assert blend_members(close, {"a": 0.1, "b": 0.3, "c": 0.4, "d": 0.2}, 2) == ["b", "c"]
    assert blend_members(close, {"a": 0.3, "b": 0.1, "c": 0.3, "d": 0.3}, 2) == ["a", "c"]  # a tie: the earlier
    assert blend_members(close, {"a": 0.0, "b": 0.5, "c": 0.0, "d": 0.5}, 3) == ["a", "b", "d"]
    assert blend_members(close, dict.fromkeys(close, 0.25), None) == close == blend_members(close, {}, 4)

    params, ws = airline
    # a tolerance no gap reaches: all three candidates are close
    auto = params.select.auto.model_copy(update={"candidates": ["tsds", "knn", "random"], "folds": 2,
                                                 "tolerance": 1e6, "blend_max": 2})
    run = stages.Run("auto", 0.05, 1)
    summary = stages.select(params.select.model_copy(update={"auto": auto}), run, ws, finetune=params.finetune)
    wins = {spec: c["wins"] for spec, c in summary["candidates"].items()}
    members = blend_members(["tsds", "knn", "random"], wins, 2)
    assert summary["close"] == ["tsds", "knn", "random"] and summary["blended"] == members
    assert summary["choice"] == " + ".join(members) and len(members) == 2
    from taskselect.report import auto_choices

    (line,) = auto_choices([{"method": "auto", "slug": run.slug, "select_info": summary}])
    assert line.startswith(f"{run.slug}: chose {' + '.join(members)}, the 2 with the most wins of the close tsds, knn, random (")
    own = {}
    for method in members:
        stages.select(params.select, stages.Run(method, 0.05, 1), ws)
        own[method] = pd.read_parquet(ws.selection(stages.Run(method, 0.05, 1)) / "selection.parquet")["pool_row"].to_numpy()
    chosen = pd.read_parquet(ws.selection(run) / "selection.parquet")["pool_row"].to_numpy()
    assert np.array_equal(np.sort(chosen), in_turns([own[m] for m in members], len(chosen), 1))
    with pytest.raises(ValueError, match="blend_max"):
        auto.model_validate({**auto.model_dump(), "blend_max": 1})


def test_candidates_cross_validated_side_by_side_give_what_one_at_a_time_gives(airline, caplog):
    """The candidates run in threads, several at once (select.auto.workers; by default one per
    core): their scores, the choice and the rows are those of one candidate after another, the
    shared computations (lexical vectors, DSIR's n-grams, the proxy model) are made for whichever
    asks first, and each candidate's log line comes once."""
    from dataclasses import replace

    from taskselect.memo import forget_all

    params, ws = airline
    specs = ["random", "tsds", "tsds:representation=hybrid", "knn:representation=hybrid", "dsir", "s2l"]
    select = params.select.model_copy(update={"auto": params.select.auto.model_copy(
        update={"candidates": specs, "folds": 2})})
    run = stages.Run("auto", 0.05, 3)
    made = {}
    for workers in (len(specs), 1):
        forget_all()
        auto = replace(make_selector("auto", select, params.finetune), workers=workers)
        caplog.clear()
        with caplog.at_level("INFO", logger="taskselect.selectors.auto"):
            summary = stages.select(select, run, ws, selector=auto)
        assert sorted(m.split(" on the held-out")[0][len("auto: "):] for m in caplog.messages
                      if " on the held-out queries: " in m) == sorted(specs)
        made[workers] = summary, pd.read_parquet(ws.selection(run) / "selection.parquet")
    (parallel, rows), (sequential, sequential_rows) = made[len(specs)], made[1]
    assert parallel == sequential and rows.equals(sequential_rows)
    with pytest.raises(TaskselectError, match=r"^auto: workers: Input should be greater than or equal to 0; got -1$"):
        replace(make_selector("auto", select), workers=-1)


def test_in_turns_gives_each_selection_an_equal_share_and_rows_they_share_first():
    from taskselect.selectors.auto import in_turns

    a, b = np.arange(0, 100), np.arange(50, 150)
    blended = in_turns([a, b], 100, seed=3)
    assert len(blended) == 100 and len(set(blended)) == 100 and np.all(np.diff(blended) > 0)
    only_a, only_b = np.sum(blended < 50), np.sum(blended >= 100)
    shared = np.sum((blended >= 50) & (blended < 100))
    # each selection's turn takes a row of its own or a shared one: the shared half of either is
    # over-represented against the 1/3 a uniform draw from the union would give
    assert shared > 100 / 3 and abs(only_a - only_b) <= 20
    assert np.array_equal(blended, in_turns([a, b], 100, seed=3))
    assert not np.array_equal(blended, in_turns([a, b], 100, seed=4))
    assert np.array_equal(in_turns([a], 30, seed=0), np.sort(np.random.default_rng(0).permutation(a)[:30]))
    # selections drawn with replacement: the budget is still filled, a row kept at most as often
    # as one selection draws it
    drawn = [np.array([1, 1, 1, 2]), np.array([3, 3, 4, 5])]
    assert np.array_equal(in_turns(drawn, 8, seed=0), [1, 1, 1, 2, 3, 3, 4, 5])
    four = in_turns(drawn, 4, seed=0)
    assert len(four) == 4 and np.sum(four == 1) <= 3 and np.sum(four == 3) <= 2 and {1, 2} & set(four) and {3, 4, 5} & set(four)


def test_an_s2l_candidate_trains_the_proxy_once_per_seed_and_its_choice_is_s2ls_own_selection(airline, monkeypatch):
    """S2L's loss trajectories and clusters depend on the pool and seed alone: auto's folds, its
    final selection and s2l's own selections at any budget read them from one proxy model per
    seed (counted as the SGDClassifiers made), and auto's choice is exactly s2l's selection."""
    import sklearn.linear_model

    from taskselect.selectors import proxy, s2l

    params, ws = airline
    select = params.select.model_copy(update={"auto": params.select.auto.model_copy(
        update={"candidates": ["random", "s2l"], "folds": 2})})
    proxy.loss_trajectories.forget()
    s2l.pool_clusters.forget()
    made = []
    real = sklearn.linear_model.SGDClassifier
    monkeypatch.setattr(sklearn.linear_model, "SGDClassifier", lambda **kw: made.append(kw["random_state"]) or real(**kw))
    run = stages.Run("auto", 0.05, 1)
    summary = stages.select(select, run, ws, finetune=params.finetune)
    assert summary["choice"] == "s2l" and made == [1]
    for budget in (0.05, 0.1):
        stages.select(select, stages.Run("s2l", budget, 1), ws)
    assert made == [1]
    stages.select(select, stages.Run("s2l", 0.05, 2), ws)
    assert made == [1, 2]
    chosen = pd.read_parquet(ws.selection(run) / "selection.parquet")
    assert chosen.equals(pd.read_parquet(ws.selection(stages.Run("s2l", 0.05, 1)) / "selection.parquet"))


def test_a_held_out_query_whose_text_is_in_the_pool_is_not_in_its_fold_models_training_set(monkeypatch):
    """A user's pool may hold their query examples. random at the whole pool's size selects every
    row, so without the guard each fold model would train on copies (case and spacing aside) of
    the very queries it is scored on."""
    from taskselect.selectors.auto import AutoSelector, query_copies
    from taskselect.trainers.head import HeadTrainer

    rng = np.random.default_rng(0)
    queries = [f"query example number {i}" for i in range(10)]
    others = [f"another pool row {i}" for i in range(30)]
    pool_texts = [f"  Query Example number {i} " for i in range(10)] + others
    corpus = Corpus(pool_texts, ["a", "b"] * 20, queries, ["a", "b"] * 5)
    vectors = rng.normal(size=(50, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert {q: r.tolist() for q, r in query_copies(corpus).items()} == {i: [i] for i in range(10)}
    trained, scored = [], []
    fit, predict = HeadTrainer.fit, HeadTrainer.predict_scores
    monkeypatch.setattr(HeadTrainer, "fit", lambda self, ex: trained.append(ex.texts) or fit(self, ex))
    monkeypatch.setattr(HeadTrainer, "predict_scores", lambda self, ex: scored.append(ex.texts) or predict(self, ex))
    auto = AutoSelector(params=SelectParams(), candidates=["random"], folds=2)
    chosen = auto.select(vectors[40:], vectors[:40], size=40, seed=0, corpus=corpus)
    assert len(trained) == len(scored) == 2
    for train, held in zip(trained, scored):
        assert len(train) == 40 - len(held)
        assert not {" ".join(t.lower().split()) for t in train} & set(held)
    assert len(chosen.indices) == 40  # the selection itself keeps every row: only the scoring leaves copies out


def test_a_selectors_query_subsets_with_every_query_is_its_own_selection_and_a_subset_selects_as_it_would():
    """query_subsets computes what depends on the pool alone once (auto's folds): with every query
    it is the selector's own selection; DSIR's, S2L's and negCLIPLoss's with some queries are their
    selections with those queries (TSDS keeps the densities of the whole query set's neighbourhood,
    by design)."""
    from taskselect.selectors import DSIRSelector, NegCLIPLossSelector, S2LSelector
    from taskselect.selectors.base import query_subsets

    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(230, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    words = np.array(TEXTS)
    pool_texts = [" ".join(rng.choice(words, 2)) for _ in range(200)]
    query_texts = [" ".join(rng.choice(words, 2)) for _ in range(30)]
    corpus = Corpus(pool_texts, rng.choice(["a", "b", "c"], 200).tolist(), query_texts, rng.choice(["a", "b"], 30).tolist())
    query, pool = vectors[200:], vectors[:200]
    some = np.array([0, 3, 4, 9, 17, 25])
    for selector in (TSDSSelector(max_k=50, kde_k=20), DSIRSelector(buckets=64), S2LSelector(clusters=4, epochs=3),
                     KNNSelector(), NegCLIPLossSelector(batch_size=16)):
        subsets = query_subsets(selector, query, pool, None, corpus)
        whole = selector.select(query, pool, 20, 3, None, corpus).indices
        assert np.array_equal(np.sort(subsets(np.arange(30), 20, 3).indices), np.sort(whole)), selector
        if not isinstance(selector, TSDSSelector):
            own = selector.select(query[some], pool, 20, 3, None, corpus.with_queries(some)).indices
            assert np.array_equal(np.sort(subsets(some, 20, 3).indices), np.sort(own)), selector


def test_the_fold_selections_warnings_are_counted_once_and_the_final_selection_still_warns(caplog):
    """TSDS warns when alpha cannot spread the budget: once per fold inside auto, about selections
    the user never gets. auto reports them in its candidate's line; the selection it returns warns
    as TSDS does; a warning in another thread meanwhile is not held back."""
    import logging
    import threading

    from taskselect.selectors.auto import AutoSelector, held_warnings

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(220, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    corpus = Corpus([f"pool {i}" for i in range(200)], ["a", "b"] * 100, [f"q {i}" for i in range(20)], ["a", "b"] * 10)
    auto = AutoSelector(params=SelectParams(), candidates=["tsds"], folds=2)
    with caplog.at_level(logging.INFO, logger="taskselect"):
        auto.select(vectors[200:], vectors[:200], size=120, seed=0, corpus=corpus)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and warned[0].startswith("TSDS: alpha 0.9 puts mass on")
    assert "its fold selections warned 2 time(s), first: TSDS: alpha 0.9 puts mass on" in caplog.text

    caplog.clear()
    tsds_log = logging.getLogger("taskselect.selectors.tsds")
    with caplog.at_level(logging.WARNING, logger="taskselect"), held_warnings() as held:
        elsewhere = threading.Thread(target=tsds_log.warning, args=("from another thread",))
        elsewhere.start()
        elsewhere.join()
        tsds_log.warning("from this one")
    assert held == ["from this one"] and [r.getMessage() for r in caplog.records] == ["from another thread"]
    tsds_log.warning("after")
    assert caplog.records[-1].getMessage() == "after"


def test_random_among_the_close_candidates_says_the_query_set_shows_little_and_what_would_help(caplog):
    """When the held-out queries cannot tell random selection from the best candidate (here forced
    by a wide tolerance), the choice rests on little evidence: the log says so, with the query
    set's size and its rarest label; without random among the close ones it says nothing of it."""
    import logging

    from taskselect.selectors.auto import AutoSelector

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(221, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = ["a", "b"] * 9 + ["c"] * 3
    corpus = Corpus([f"pool {i}" for i in range(200)], ["a", "b", "c", "d"] * 50, [f"q {i}" for i in range(21)], labels)
    for candidates, warned in ((["knn", "random"], True), (["knn"], False)):
        caplog.clear()
        auto = AutoSelector(params=SelectParams(), candidates=candidates, folds=3, tolerance=1000)
        with caplog.at_level(logging.WARNING, logger="taskselect.selectors.auto"):
            chosen = auto.select(vectors[200:], vectors[:200], size=40, seed=0, corpus=corpus)
        assert chosen.info["close"] == candidates
        said = "the query set (21 examples; the fewest of one label: 3 of 'c') cannot show that any candidate" in caplog.text
        assert said == warned, caplog.text
