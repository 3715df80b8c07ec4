"""mates, negcliploss and the negCLIPLoss filter: their defining properties on real embeddings of
the packaged airline benchmark (small profile), and their mechanics on small fakes."""

import re

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax

from taskselect import stages
from taskselect.config import DataParams, EmbedParams, IndexParams, SelectParams
from taskselect.errors import TaskselectError
from taskselect.io import read_json
from taskselect.selectors import Corpus, MATESSelector, NegCLIPLossSelector, make_selector
from taskselect.selectors.filtering import FilteredSelector
from taskselect.selectors.mates import SoftmaxProxy
from taskselect.selectors.negcliploss import LabelPrototypes, NegCLIPLoss, negclip_scores, norm_sim


@pytest.fixture(scope="module")
def airline(embedding_cache, tmp_path_factory):
    """The small airline profile prepared, embedded (shared cache) and indexed: (workspace, pool
    frame, query frame, pool embeddings, query embeddings)."""
    ws = stages.Workspace(tmp_path_factory.mktemp("airline") / "data")
    stages.prepare(DataParams(cap_per_source=150, n_query=30, max_test=200), ws)
    stages.embed(EmbedParams(cache_dir=str(embedding_cache)), ws)
    stages.index(IndexParams(), ws)
    pool = pd.read_parquet(ws.prepared / "pool.parquet")
    query = pd.read_parquet(ws.prepared / "query.parquet")
    return ws, pool, query, np.load(ws.embedding("pool")), np.load(ws.embedding("query"))


def corpus_of(pool: pd.DataFrame, query: pd.DataFrame, labels=None) -> Corpus:
    return Corpus(pool["text"].tolist(), list(pool["label"] if labels is None else labels),
                  query["text"].tolist(), query["label"].tolist())


def test_mates_influence_model_beats_a_constant_predictor_on_held_out_probes(airline):
    _, pool, query, x, q = airline
    selector = MATESSelector(rounds=2, probes=600)
    selection = selector.select(q, x, 150, seed=0, corpus=corpus_of(pool, query))
    assert selection.n_selected == selection.n_unique == 150
    for r in selection.info["rounds"]:
        assert r["mse"] < r["mse_constant"], r
        assert r["spearman"] > 0, r
    assert selection.info["reference_queries"] + selection.info["heldout_queries"] == len(query)
    again = selector.select(q, x, 150, seed=0, corpus=corpus_of(pool, query))
    np.testing.assert_array_equal(selection.indices, again.indices)


def test_mates_oracle_is_the_reference_loss_change_after_one_step():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 5)), rng.integers(3, size=40)
    ref_x, ref_y = rng.normal(size=(7, 5)), rng.integers(3, size=7)
    proxy = SoftmaxProxy(3, 5).fit(x, y)
    oracle = proxy.oracle(x[:4], y[:4], ref_x, ref_y, step=0.5)
    for i in range(4):  # the same step taken by hand, and the loss measured again
        a = proxy._design(x[i:i + 1])
        p = softmax(a @ proxy.weights.T, axis=1)
        stepped = SoftmaxProxy(3, 5)
        stepped.weights = proxy.weights - 0.5 * (p - np.eye(3)[y[i]]).T @ a
        change = proxy.losses(ref_x, ref_y).mean() - stepped.losses(ref_x, ref_y).mean()
        assert oracle[i] == pytest.approx(change, rel=1e-9, abs=1e-12)


def test_a_wrong_label_scores_lower_than_the_texts_right_label(airline):
    _, pool, query, x, q = airline
    # airline tweets labelled positive or negative, appended again with the opposite label
    clear = np.flatnonzero((pool["source"] == "airline").to_numpy() & pool["label"].isin(["positive", "negative"]).to_numpy())
    flipped = pool["label"].iloc[clear].map({"positive": "negative", "negative": "positive"})
    both = pd.concat([pool, pool.iloc[clear].assign(label=flipped.to_numpy())], ignore_index=True)
    embeddings = np.vstack([x, x[clear]])
    # Both scorings: the paper's (text against labels and label against texts) and the filter's
    # (text against labels). Other sentiment sources share these labels, so their prototypes mix
    # domains and some tweets are ambiguous: most pairs, not all, must rank the right label first.
    for scorer in (NegCLIPLoss(), NegCLIPLoss(symmetric=False)):
        scores, facts = scorer.scores(q, embeddings, corpus_of(both, query), seed=0)
        right, wrong = scores[clear], scores[len(pool):]
        assert np.mean(right > wrong) > 0.75
        assert facts["tau"] in scorer.taus and max(facts["tau_auc"].values()) > 0.5


def test_filter_drops_mostly_flipped_rows_and_maps_the_choice_back_to_the_pool(airline):
    _, pool, query, x, q = airline
    rng = np.random.default_rng(0)
    labels = pool["label"].to_numpy().copy()
    flipped = rng.choice(len(pool), len(pool) // 5, replace=False)
    for row in flipped:  # another label of the row's own source
        own = pool["label"][pool["source"] == pool["source"].iloc[row]].unique()
        labels[row] = rng.choice([label for label in own if label != labels[row]])
    params = SelectParams(filter={"method": "negcliploss", "keep": 0.8})
    selector = make_selector("random", params)
    assert isinstance(selector, FilteredSelector)
    corpus = corpus_of(pool, query, labels)
    kept, _, _ = selector.kept_rows(q, x, corpus, seed=0)
    dropped = np.setdiff1d(np.arange(len(pool)), kept)
    precision = np.isin(dropped, flipped).mean()
    assert precision > 2 * len(flipped) / len(pool)  # twice the noise rate: the filter finds flipped rows
    selection = selector.select(q, x, 200, seed=0, corpus=corpus)
    assert selection.n_unique == 200 and np.isin(selection.indices, kept).all()
    assert selection.info["filter"]["dropped"] == dropped.size
    with pytest.raises(TaskselectError, match="select.filter.keep 0.8: keeps"):
        selector.select(q, x, len(pool) - 1, seed=0, corpus=corpus)


def test_the_select_stage_records_the_filter(airline):
    ws = airline[0]
    params = SelectParams(methods=["knn"], budgets=[0.05], filter={"method": "negcliploss", "keep": 0.5})
    summary = stages.select(params, stages.Run("knn", 0.05, 0), ws)
    recorded = read_json(ws.selection(stages.Run("knn", 0.05, 0)) / "selection.json")
    assert recorded["filter"]["method"] == "negcliploss" and recorded["filter"]["keep"] == 0.5
    assert recorded["filter"]["dropped"] == len(airline[1]) - recorded["filter"]["kept"] > 0
    assert summary["n_unique"] == recorded["size"]
    full = stages.select(params, stages.Run("full", 0.05, 0), ws)  # the reference run stays the whole pool
    assert "filter" not in full and full["n_selected"] == len(airline[1])


def test_negcliploss_keeps_the_best_pairs_then_the_rows_nearest_the_queries(airline):
    _, pool, query, x, q = airline
    corpus = corpus_of(pool, query)
    selection = NegCLIPLossSelector(keep=0.3).select(q, x, 100, seed=0, corpus=corpus)
    kept = np.argsort(-selection.scores, kind="stable")[:round(0.3 * len(pool))]
    assert np.isin(selection.indices, kept).all() and selection.n_unique == 100
    similarity = norm_sim(x, q)
    assert similarity[selection.indices].min() >= similarity[np.setdiff1d(kept, selection.indices)].max()


def test_negcliploss_takes_a_pair_copied_many_times_once(airline):
    """The pair nearest the queries, copied 300 times, scores alike in every copy: the selection
    holds it once and fills the budget with other pairs."""
    _, pool, query, x, q = airline
    nearest = int(np.argmax(norm_sim(x, q)))
    copied = pool.iloc[np.r_[np.arange(len(pool)), np.full(300, nearest)]].reset_index(drop=True)
    x_copied = np.vstack([x, np.repeat(x[nearest:nearest + 1], 300, axis=0)])
    selection = NegCLIPLossSelector(keep=0.3).select(q, x_copied, 100, seed=0, corpus=corpus_of(copied, query))
    copies = np.r_[nearest, np.arange(len(pool), len(copied))]
    assert np.isin(selection.indices, copies).sum() <= 1 and selection.n_unique == 100
    assert selection.info["copies"] == 300


def test_logsumexp_keeps_a_small_temperature_finite():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(300, 8)).astype(np.float32)
    labels = rng.integers(3, size=300).astype(str)
    prototypes = LabelPrototypes.of(f, labels)
    scores = negclip_scores(*prototypes.similarities(f, labels, members=True), tau=0.001, batch_size=64,
                            partitions=2, rng=rng)
    assert np.isfinite(scores).all()


def test_same_label_negatives_are_masked():
    # two labels, many rows each: the column term only ever contrasts rows of the other label
    s = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    own = np.array([0.8, 0.7, 0.9])
    column = np.array([0, 0, 1])
    score = negclip_scores(s, own, column, tau=1.0, batch_size=3, partitions=1, rng=np.random.default_rng(0))
    row0 = np.log(np.exp(0.8) + np.exp(0.0))  # its own label (once) and label 1
    col0 = np.log(np.exp(0.8) + np.exp(0.0))  # itself and row 2, whose label is 1 (row 1 shares label 0)
    assert score[0] == pytest.approx(0.8 - 0.5 * (row0 + col0))


def test_the_methods_part_keeps_the_records_of_the_methods_it_does_not_run_again(embedding_cache, tmp_path):
    from conftest import small_profile
    from taskselect.bench import QualityBench, _render_methods
    from taskselect.config import load_params

    params = load_params(None, small_profile(tmp_path, embedding_cache))
    for methods in (("random", "mates"), ("mates",)):
        QualityBench(params, tmp_path / "out", tmp_path / "data", targets=("airline_sentiment",), budgets=(0.1,),
                     other_methods=methods, seeds=(0,)).methods_part()
    records = read_json(tmp_path / "out" / "methods" / "airline_sentiment" / "results.json")
    assert sorted(r["method"] for r in records) == ["mates", "random"]  # random kept, mates replaced
    rendered = "\n".join(_render_methods(tmp_path / "out"))
    assert "| mates |" in rendered and "| random |" in rendered
    assert f"influence model's Spearman correlation with the oracle on held-out probes (mean over rounds, then mean ± std over seeds): {records[-1]['select_info']['spearman']:.3f} ± 0.000 at 10%" in rendered
    # bench.json keeps a row per run of some targets or methods, so a partial rerun keeps the others' times
    some = QualityBench(params, tmp_path / "out", tmp_path / "data", targets=("airline_sentiment",), other_methods=("mates",))
    every = QualityBench(params, tmp_path / "out", tmp_path / "data")
    assert some._part_key("methods") == "methods (airline_sentiment; mates)"
    assert some._part_key("sweep") == "sweep (airline_sentiment)"
    assert every._part_key("methods") == "methods" and every._part_key("sweep") == "sweep"


@pytest.mark.parametrize("override, message", [
    ("select.mates.neighbourhood=0.5", "select.mates.neighbourhood: neighbourhood 0.5: expected 0 (the whole pool) or >= 1"),
    ("select.negcliploss.p=0.5", "select.negcliploss.p: p 0.5: expected 'inf' or a number >= 1"),
    ("select.filter.keep=0", "select.filter.keep: Input should be greater than 0"),
    ("select.filter.method=cleanlab", "select.filter.method: Input should be 'none' or 'negcliploss'"),
    # a check of two parameters names the section (before, only a selector built from it refused them)
    ("select.loss.neighbourhood=1.2", "select.loss: neighbourhood 1.2: expected at least 1 / (high - low) = 1.33"),
])
def test_bad_parameters_of_the_new_sections_name_the_parameter(override, message):
    from taskselect.config import load_params

    with pytest.raises(TaskselectError, match=re.escape(f" with overrides: {message}")):
        load_params(None, [override])
