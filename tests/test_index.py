import logging

import faiss
import numpy as np
import pytest

from taskselect import stages
from taskselect.config import IndexParams
from taskselect.errors import TaskselectError
from taskselect.index import build_index, index_kind, nearest, read_index, unit_rows, write_index
from taskselect.selectors import TSDSSelector


def unit(n, dim=16, seed=0):
    return unit_rows(np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32))


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_every_index_kind_finds_true_neighbours_and_reports_its_recall(kind, metric, tmp_path):
    pool, query = unit(3000), unit(30, seed=1)
    params = IndexParams(kind=kind, nprobe=8, ef_search=64)
    write_index(build_index(pool, params, metric="ip" if metric == "cosine" else "l2"), tmp_path / "i.faiss")
    index = read_index(tmp_path / "i.faiss")
    assert index_kind(index) == kind
    found = nearest(pool, query, 50, metric, index=index)
    exact = nearest(pool, query, 50, metric)
    assert found.index == kind and exact.recall == 1.0
    assert (np.diff(found.distances, axis=1) >= 0).all()
    # whatever the index, the distances are those of the rows it returned
    true = np.linalg.norm(query[:, None] - pool[found.ids], axis=2)
    np.testing.assert_allclose(found.distances, true if metric == "l2" else true**2 / 2, atol=1e-5)
    overlap = np.mean([np.isin(a, b).mean() for a, b in zip(found.ids, exact.ids)])
    assert found.recall == pytest.approx(overlap)
    assert (found.recall == 1.0) if kind == "flat" else (0.3 < found.recall <= 1.0)


@pytest.mark.parametrize("index_metric", ["ip", "l2"])
def test_an_ivf_probe_too_small_for_k_falls_back_to_exact_search(caplog, index_metric):
    pool, query = unit(2000), unit(10, seed=2)
    index = build_index(pool, IndexParams(kind="ivf", nlist=40, nprobe=1), metric=index_metric)
    with caplog.at_level(logging.WARNING):
        found = nearest(pool, query, 500, "l2", index=index)
    assert "fewer than 500 neighbours for 10 queries" in caplog.text
    exact = nearest(pool, query, 500, "l2")
    np.testing.assert_array_equal(found.ids, exact.ids)
    np.testing.assert_allclose(found.distances, exact.distances, atol=1e-5)
    assert (found.ids >= 0).all() and found.recall == 1.0


def test_hnsw_returns_k_neighbours_even_when_k_exceeds_ef_search(caplog):
    pool, query = unit(3000), unit(10, seed=4)
    index = build_index(pool, IndexParams(kind="hnsw", ef_search=16))
    with caplog.at_level(logging.WARNING):
        found = nearest(pool, query, 1000, "l2", index=index)
    assert "fewer than" not in caplog.text  # the graph search itself found them all
    assert (found.ids >= 0).all() and found.recall > 0.9 and index.hnsw.efSearch == 16


def test_selection_records_the_recall_of_an_approximate_index():
    pool, query = unit(3000), unit(20, seed=3)
    index = build_index(pool, IndexParams(kind="hnsw"))
    chosen = TSDSSelector(max_k=200, kde_k=50).select(query, pool, 50, seed=0, index=index)
    assert chosen.info["index"] == "hnsw" and 0 < chosen.info["recall"] <= 1


def test_an_index_that_does_not_fit_the_candidates_is_refused():
    pool = unit(500)
    with pytest.raises(TaskselectError, match="index: holds 500 rows of dimension 16, but the candidates are 400 x 16"):
        nearest(pool[:400], pool[:3], 10, "l2", index=build_index(pool))
    raw = pool * 3
    with pytest.raises(TaskselectError, match="inner-product index ranks by L2 distance only over unit-normalised"):
        nearest(raw, raw[:3], 10, "l2", index=build_index(raw))
    with pytest.raises(TaskselectError, match="index.nlist 600: more cells than the 500 rows"):
        build_index(pool, IndexParams(kind="ivf", nlist=600))


def test_index_stage_builds_the_configured_kind(tmp_path):
    ws = stages.Workspace(tmp_path)
    ws.embeddings.mkdir(parents=True)
    np.save(ws.embedding("pool"), unit(1000))
    built = stages.index(IndexParams(kind="ivf", nprobe=7), ws)
    assert (built["rows"], built["kind"]) == (1000, "ivf") and 0 < built["recall@100"] < 1
    index = read_index(ws.index)
    assert isinstance(index, faiss.IndexIVFFlat) and index.nprobe == 7 and index.ntotal == 1000
    # every cell probed: the index finds exactly what exact search finds
    assert stages.index(IndexParams(kind="ivf", nprobe=1000), ws)["recall@100"] == 1.0


def test_auto_index_is_exact_up_to_flat_max_rows_and_ivf_above(tmp_path):
    ws = stages.Workspace(tmp_path)
    ws.embeddings.mkdir(parents=True)
    np.save(ws.embedding("pool"), unit(1000))
    assert stages.index(IndexParams(), ws) == {"rows": 1000, "kind": "flat"}
    assert stages.index(IndexParams(flat_max_rows=999), ws)["kind"] == "ivf"
    assert isinstance(read_index(ws.index), faiss.IndexIVFFlat)
