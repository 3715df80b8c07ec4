"""A split in shards: contiguous row ranges of its Parquet file, read without loading the rest.

The prepared Parquet files are written in row groups of ROW_GROUP_ROWS rows, so a shard reads
only the row groups it overlaps; embedding a pool of millions never holds all of its text.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from taskselect.io import atomic_path, required

ROW_GROUP_ROWS = 8192  # rows per Parquet row group of the prepared files


@dataclass(frozen=True)
class Shard:
    """Rows [start, stop) of one split."""

    split: str
    start: int
    stop: int

    @property
    def name(self) -> str:
        return f"{self.split}-{self.start}-{self.stop}"

    @property
    def rows(self) -> int:
        return self.stop - self.start


def _parquet(path: Path) -> pq.ParquetFile:
    return pq.ParquetFile(required(path, "prepare"))


def plan_shards(path: str | os.PathLike, split: str, shard_rows: int) -> list[Shard]:
    """The split's rows in shards of `shard_rows` (the last may be shorter); reads only metadata."""
    n = _parquet(Path(path)).metadata.num_rows
    return [Shard(split, start, min(n, start + shard_rows)) for start in range(0, n, shard_rows)]


def read_column(path: str | os.PathLike, column: str, start: int, stop: int) -> list:
    """Values of `column` in rows [start, stop), reading only the row groups holding them."""
    file = _parquet(Path(path))
    groups, first, offset = [], None, 0
    for number in range(file.metadata.num_row_groups):
        rows = file.metadata.row_group(number).num_rows
        if offset < stop and offset + rows > start:
            groups.append(number)
            first = offset if first is None else first
        offset += rows
    if not groups:
        return []
    table = file.read_row_groups(groups, columns=[column])
    return table.column(column).slice(start - first, stop - start).to_pylist()


def write_rows(path: str | os.PathLike, parts: Iterable[np.ndarray], rows: int, dim: int) -> None:
    """Write the (rows, dim) float32 .npy made of `parts` stacked in order, atomically; one
    part at a time is read (parts may be memory-mapped), so memory does not grow with rows."""
    with atomic_path(path) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(rows, dim))
        filled = 0
        for part in parts:
            out[filled:filled + len(part)] = part
            filled += len(part)
        if filled != rows:
            raise ValueError(f"{path}: parts hold {filled} rows, expected {rows}")
        out.flush()
        del out
