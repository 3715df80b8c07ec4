"""Reading user tables and writing artifacts atomically.

Every artifact is written to a temporary sibling and renamed into place, so a crash or a bad
input never leaves a half-written file where a finished one is expected.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # imported where used: `select-embeddings` starts without pandas
    import pandas as pd

from taskselect.errors import TaskselectError

TABLE_SUFFIXES = {".csv": "CSV", ".jsonl": "JSONL", ".json": "JSONL", ".parquet": "Parquet"}


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary directory beside `path`; swap it in for `path` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def write_parquet(path: str | os.PathLike, frame: pd.DataFrame, row_group_size: int | None = None) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False, row_group_size=row_group_size)


def write_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array)


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV, JSONL or Parquet file chosen by its suffix.

    Raises TaskselectError naming the file when it is missing, has an unknown suffix, or
    cannot be parsed.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise TaskselectError(
            f"{path}: unsupported file type {suffix!r}; expected one of "
            f"{', '.join(sorted(TABLE_SUFFIXES))}"
        )
    if not path.is_file():
        raise TaskselectError(f"{path}: file not found")
    import pandas as pd

    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_json(path, lines=True)
    except Exception as exc:  # pandas raises many types; the user needs the file and reason
        raise TaskselectError(
            f"{path}: cannot read as {TABLE_SUFFIXES[suffix]}: {str(exc).splitlines()[0]}"
        ) from exc


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
