"""Reading user tables and writing artifacts atomically.

Every artifact is written to a temporary sibling and renamed into place, so a crash or a bad
input never leaves a half-written file where a finished one is expected.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # imported where used: `select-embeddings` starts without pandas
    import pandas as pd

from taskselect.errors import TaskselectError

TABLE_SUFFIXES = {".csv": "CSV", ".tsv": "TSV", ".jsonl": "JSONL", ".json": "JSON", ".parquet": "Parquet"}


def _make_temporary(path: Path, make) -> Path:
    """A new sibling of `path` made by make(tmp); unlike tempfile's, its mode follows the umask
    (0644 / 0755 by default), so other users and a cluster's workers can read the artifact."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            make(tmp)
            return tmp
        except FileExistsError:
            continue


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _make_temporary(path, lambda tmp: os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)))
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
    tmp = _make_temporary(path, os.mkdir)
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


def required(path: str | os.PathLike, command: str, what: str = "") -> Path:
    """`path`, an artifact a stage reads; if it is missing, one line naming it and the
    `taskselect COMMAND` that makes it (`what` it is, if the file's name does not say)."""
    path = Path(path)
    if not path.is_file():
        raise TaskselectError(f"{path}: {what + ' ' if what else ''}not found; run `taskselect {command}` first")
    return path


def write_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array)


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV, TSV, JSONL, JSON or Parquet file chosen by its suffix (.json: an array of
    objects, one per row, as pandas' `to_json(orient="records")` writes it, or JSON lines).

    Texts and labels are data, not numbers or missing values: CSV cells are read as strings as
    written (`NA`, `None` and `null` stay text; an empty cell is the empty string), JSON values
    as JSON has them (only `null` is missing). Raises TaskselectError naming the file when it is
    missing, has an unknown suffix, or cannot be parsed (JSONL: with the line number).
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

    if suffix == ".json" and _starts_with(path, b"["):
        return _read_json_array(path)
    if suffix in (".jsonl", ".json"):
        return _read_jsonl(path)
    try:
        if suffix in (".csv", ".tsv"):
            return _read_csv(path, "\t" if suffix == ".tsv" else ",")
        return pd.read_parquet(path)
    except TaskselectError:  # already names the file and what is wrong
        raise
    except pd.errors.EmptyDataError:
        raise TaskselectError(f"{path}: empty; expected a header row naming its columns, then a row per example") from None
    except UnicodeDecodeError as exc:
        # the decoder's position is within a chunk pandas read, not the file's: name the byte only
        raise TaskselectError(f"{path}: not UTF-8 text (it holds the byte {exc.object[exc.start]:#04x}, e.g. a "
                              "Windows-1252 or Latin-1 file); save it as UTF-8 (Excel: 'CSV UTF-8')") from None
    except Exception as exc:  # pandas raises many types; the user needs the file and reason
        raise TaskselectError(
            f"{path}: cannot read as {TABLE_SUFFIXES[suffix]}: {str(exc).splitlines()[0]}"
        ) from None


def _read_csv(path: Path, sep: str) -> pd.DataFrame:
    """Every cell a string as written, cells separated by `sep` and quoted as Python's csv module
    and pandas write them. A CSV whose header has no comma but a semicolon or tab is refused,
    naming it: Excel writes semicolons where the decimal mark is a comma, and read with commas
    its rows would split wherever a text holds one. A file whose first line ends with a line
    feed alone ends its rows there: a carriage return inside a text is text. pandas' own `to_csv` writes a text
    holding a bare CR (tweets do: "...\\r\\rhttp://...") unquoted, and a reader ending rows at
    any CR (pandas' default) cuts that row in two, shifting its label into a row of its own. CRLF
    files (which quote such texts) and old CR-only files are read as pandas reads them; an LF
    file's odd CRLF row keeps no CR in its last cell."""
    import pandas as pd

    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    first = re.search(rb"\r\n|\r|\n", head)
    header = head[:first.start() if first else len(head)]
    other = next((name for char, name in ((b";", "semicolons"), (b"\t", "tabs")) if char in header), None)
    if sep == "," and b"," not in header and other:
        raise TaskselectError(f"{path}: its header separates its columns with {other}, not commas; save it "
                              f"comma-separated{', or name it .tsv' if other == 'tabs' else ''}")
    if first is None or first.group() != b"\n":
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, lineterminator="\n")
    if len(frame.columns):
        last = frame.columns[-1]
        frame[last] = frame[last].str.removesuffix("\r")
    return frame


def _starts_with(path: Path, char: bytes) -> bool:
    """Whether the file's first character after a BOM and white space is `char`."""
    with open(path, "rb") as fh:
        return fh.read(1 << 12).removeprefix(b"\xef\xbb\xbf").lstrip().startswith(char)


def _rows(path: Path, rows: list[dict]) -> pd.DataFrame:
    """The frame of JSON objects `rows`, values kept as JSON types (object columns)."""
    import pandas as pd

    if len(rows) == 1 and rows[0] and all(isinstance(v, dict) for v in rows[0].values()):
        raise TaskselectError(f"{path}: one object of columns (pandas' to_json default); expected one object per "
                              "row: write it with to_json(path, orient='records', lines=True)")
    return pd.DataFrame.from_records(rows).astype(object) if rows else pd.DataFrame()


def _read_json_array(path: Path) -> pd.DataFrame:
    """A JSON array of objects, one per row."""
    try:
        rows = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise TaskselectError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise TaskselectError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno})") from None
    if not isinstance(rows, list):
        raise TaskselectError(f"{path}: expected a JSON array of objects, one per row, got {type(rows).__name__}")
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise TaskselectError(f"{path}: item {i} of the array: expected a JSON object per row, got {type(row).__name__}")
    return _rows(path, rows)


def _read_jsonl(path: Path) -> pd.DataFrame:
    """One JSON object per line (blank lines skipped)."""
    rows = []
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise TaskselectError(f"{path}: line {number}: not UTF-8 text ({exc.reason})") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TaskselectError(f"{path}: line {number}: not valid JSON ({exc.msg}, column {exc.colno}); expected one JSON object per line") from None
            if not isinstance(row, dict):
                raise TaskselectError(
                    f"{path}: line {number}: expected a JSON object per line, got {type(row).__name__}"
                )
            rows.append(row)
    return _rows(path, rows)


NPY_MAGIC = b"\x93NUMPY"


def read_npy(path: str | os.PathLike, what: str) -> np.ndarray:
    """An array from a .npy file, memory-mapped; `what` (e.g. the option that named the file)
    goes into the one-line error when the file is missing or is not a single .npy array."""
    path = Path(path)
    if not path.is_file():
        raise TaskselectError(f"{path}: file not found ({what})")
    with open(path, "rb") as fh:
        head = fh.read(len(NPY_MAGIC))
    if head[:2] == b"PK":
        raise TaskselectError(f"{path}: expected one array in a .npy file ({what}), got an .npz archive")
    if head != NPY_MAGIC:
        raise TaskselectError(
            f"{path}: not a .npy array ({what}): it does not start with the .npy header (numpy.save writes one)"
        )
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise TaskselectError(f"{path}: not a readable .npy array ({what}): {str(exc).splitlines()[0]}") from None


def file_hash(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes (md5: the hash DVC records for a file output)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, algorithm).hexdigest()
