import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from taskselect.embedding import BACKENDS, Embedder, EmbeddingCache, resolve_model_path
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


# Texts of many token lengths (padding buckets 16, 32, 48 and the 128-token truncation).
MIXED = TEXTS[:4] + [
    "ok", "", "Which two US states border the most other states , and how many does each have ?",
    "I was on hold for two hours and then the call dropped. " * 3,
    "From: someone@university.edu Subject: Re: clipper chip encryption keys escrow " * 12,
    "the drug worked well for my migraines but the nausea was hard to take for the first week",
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_vector_does_not_depend_on_its_batch(backend):
    embedder = Embedder(backend=backend, batch_size=4)
    together = embedder.embed(MIXED)
    alone = np.stack([embedder.embed([text])[0] for text in MIXED])
    shuffled = np.random.default_rng(0).permutation(len(MIXED))
    other_company = embedder.embed([MIXED[i] for i in shuffled] + ["a text only here"] * 5)[:len(MIXED)]
    assert together.tobytes() == alone.tobytes()
    assert together[shuffled].tobytes() == other_company.tobytes()


@pytest.fixture(scope="module")
def sentence_transformers_vectors():
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(resolve_model_path("all-MiniLM-L6-v2")), device="cpu")
    reference.max_seq_length = 128
    return reference.encode(MIXED, normalize_embeddings=True)


@pytest.mark.parametrize("backend, mean, least", [("torch", 0.99999, 0.99999), ("onnx", 0.99999, 0.99999),
                                                   ("onnx-int8", 0.98, 0.95)])
def test_backends_match_sentence_transformers(sentence_transformers_vectors, backend, mean, least):
    expected = sentence_transformers_vectors
    vectors = Embedder(backend=backend).embed(MIXED)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-6)
    cosine = (expected * vectors).sum(axis=1)
    assert cosine.mean() >= mean and cosine.min() >= least


def test_backends_never_share_cached_vectors(tmp_path):
    vectors = {}
    for backend in BACKENDS:
        embedder = Embedder(cache_dir=tmp_path, backend=backend)
        vectors[backend] = embedder.encode(TEXTS)
        assert embedder.n_embedded == 4  # nothing taken from another backend's vectors
    assert len({embedder.namespace for embedder in (Embedder(backend=b) for b in BACKENDS)}) == 3
    assert not np.array_equal(vectors["onnx"], vectors["onnx-int8"])


def test_a_truncated_shard_is_embedded_again(tmp_path, caplog):
    first = Embedder(cache_dir=tmp_path)
    vectors, made = first.encode_shard(TEXTS)
    assert made
    path = Path(vectors.filename)
    del vectors
    path.write_bytes(path.read_bytes()[:-100])  # what a full disk or a killed copy leaves behind
    again, made = Embedder(cache_dir=tmp_path).encode_shard(TEXTS)
    assert made and again.shape == (5, 384)
    np.testing.assert_array_equal(again, first.encode(TEXTS))
    assert "damaged shard" in caplog.text
    assert not Embedder(cache_dir=tmp_path).encode_shard(TEXTS)[1]  # whole again: read, not made


def test_a_truncated_cache_file_is_ignored(tmp_path):
    Embedder(cache_dir=tmp_path).encode(TEXTS)
    (cache_file,) = tmp_path.glob("*/*.npz")
    cache_file.write_bytes(cache_file.read_bytes()[:200])
    embedder = Embedder(cache_dir=tmp_path)
    embedder.encode(TEXTS)
    assert embedder.n_embedded == 4


EXPORT = """
import sys
from pathlib import Path
from taskselect.embedding import onnx_file, resolve_model_path
print(onnx_file(resolve_model_path("all-MiniLM-L6-v2"), "onnx", Path(sys.argv[1])))
"""


def test_two_processes_exporting_at_once_leave_one_whole_model(tmp_path):
    import onnxruntime

    runs = [subprocess.Popen([sys.executable, "-c", EXPORT, str(tmp_path)], stdout=subprocess.PIPE, text=True)
            for _ in range(2)]
    files = {run.communicate()[0].strip() for run in runs}
    assert all(run.returncode == 0 for run in runs) and len(files) == 1
    assert [p.name for p in tmp_path.iterdir()] == [Path(files.pop()).parent.name]  # no temporary left
    session = onnxruntime.InferenceSession(str(next(tmp_path.glob("*/model.onnx"))))
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask"]


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(TaskselectError, match="embed.backend 'tensorrt'"):
        Embedder(backend="tensorrt")


def test_a_model_that_does_not_mean_pool_is_refused(tmp_path):
    model = resolve_model_path("all-MiniLM-L6-v2")
    for name in ("config.json", "tokenizer.json", "modules.json"):
        (tmp_path / name).write_bytes((model / name).read_bytes())
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}')
    with pytest.raises(TaskselectError, match="expected mean pooling, got pooling_mode_cls_token"):
        Embedder(str(tmp_path))
    (tmp_path / "tokenizer.json").unlink()
    with pytest.raises(TaskselectError, match="expected a fast tokenizer"):
        Embedder(str(tmp_path))
