"""faiss index over the pool embeddings."""

from __future__ import annotations

import os
from pathlib import Path

import faiss
import numpy as np

from taskselect.errors import TaskselectError
from taskselect.io import atomic_path


def build_index(embeddings: np.ndarray, kind: str = "flat") -> faiss.Index:
    """Exact inner-product index over (N, dim) unit-normalised float32 embeddings.

    For unit vectors inner product is cosine similarity and L2 distance is sqrt(2 - 2 ip),
    so one index serves both metrics.
    """
    if kind != "flat":
        raise TaskselectError(f"index.kind {kind!r}: expected 'flat'")
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    index = faiss.IndexFlatIP(embeddings.shape[1])
    index.add(embeddings)
    return index


def write_index(index: faiss.Index, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        faiss.write_index(index, str(tmp))


def read_index(path: str | os.PathLike) -> faiss.Index:
    if not Path(path).is_file():
        raise TaskselectError(f"{path}: index not found; run `taskselect index` first")
    return faiss.read_index(str(path))
