import numpy as np
import pytest

from taskselect.embedding import Embedder, EmbeddingCache, resolve_model_path
from taskselect.errors import TaskselectError

TEXTS = ["@united my bag is lost again", "What is the capital of Peru ?", "great flight, thanks @JetBlue",
         "free entry in a weekly competition", "@united my bag is lost again"]


def test_embeddings_are_unit_float32_and_cached_by_content(tmp_path):
    first = Embedder(cache_dir=tmp_path, batch_size=4)
    vectors = first.encode(TEXTS)
    assert vectors.shape == (5, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert first.n_embedded == 4  # the repeated text is embedded once
    np.testing.assert_array_equal(vectors[0], vectors[4])

    second = Embedder(cache_dir=tmp_path, batch_size=4)
    again = second.encode(TEXTS[::-1] + ["a text never seen"])
    assert second.n_embedded == 1
    np.testing.assert_array_equal(again[:5], vectors[::-1])
    # similar texts are closer than unrelated ones: the real model, not a stand-in
    assert vectors[0] @ vectors[2] > vectors[0] @ vectors[1]


def test_cache_key_depends_on_max_seq_length(tmp_path):
    Embedder(cache_dir=tmp_path, max_seq_length=128).encode(TEXTS[:1])
    other = Embedder(cache_dir=tmp_path, max_seq_length=64)
    other.encode(TEXTS[:1])
    assert other.n_embedded == 1


def test_cache_survives_an_interrupted_write(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.add(["a"], np.ones((1, 3), dtype=np.float32))
    (tmp_path / ".half-written.npz.tmp").write_bytes(b"garbage")  # what a crash leaves behind
    reopened = EmbeddingCache(tmp_path)
    assert len(reopened) == 1 and "a" in reopened


def test_unknown_model_is_a_clear_error(tmp_path):
    with pytest.raises(TaskselectError, match="embed.model 'bert-base'"):
        resolve_model_path("bert-base")
