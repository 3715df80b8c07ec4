"""`taskselect select-embeddings`: a selection from two .npy files with one command."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import taskselect
from conftest import assert_one_line_error


@pytest.fixture(scope="module")
def arrays(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("arrays")
    rng = np.random.default_rng(0)
    np.save(tmp / "candidates.npy", rng.normal(size=(400, 12)).astype(np.float32))
    np.save(tmp / "query.npy", rng.normal(size=(8, 12)).astype(np.float32))
    return tmp


def select(arrays, out, *extra):
    return taskselect("select-embeddings", "--query", str(arrays / "query.npy"),
                      "--candidates", str(arrays / "candidates.npy"), "--out", str(out), *extra, cwd=arrays)


def test_same_seed_same_files_and_the_budget_goes_to_distinct_rows(arrays, tmp_path):
    args = ("--size", "60", "--alpha", "0.7", "--C", "2", "--sigma", "1.5", "--max-k", "100", "--kde-k", "50")
    runs = [select(arrays, tmp_path / name, *args, "--seed", seed) for name, seed in (("a", "3"), ("b", "3"), ("c", "4"))]
    for result in runs:
        assert result.returncode == 0, result.stderr
    indices, probs = np.load(tmp_path / "a" / "indices.npy"), np.load(tmp_path / "a" / "probs.npy")
    assert indices.dtype == np.int64 and indices.size == np.unique(indices).size == 60
    assert probs.dtype == np.float64 and probs.shape == (400,) and probs.sum() == pytest.approx(1.0)
    assert (probs[indices] > 0).all()
    for name in ("indices.npy", "probs.npy"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert not np.array_equal(indices, np.load(tmp_path / "c" / "indices.npy"))
    summary = json.loads((tmp_path / "a" / "selection.json").read_text())
    assert summary["n_unique"] == 60 and summary["params"]["C"] == 2.0 and summary["k"] == 100


def test_with_replacement_and_an_approximate_index(arrays, tmp_path):
    result = select(arrays, tmp_path, "--size", "500", "--replace", "--index", "ivf", "--metric", "cosine")
    assert result.returncode == 0, result.stderr
    indices = np.load(tmp_path / "indices.npy")
    assert indices.size == 500 and np.unique(indices).size < 500
    summary = json.loads((tmp_path / "selection.json").read_text())
    assert summary["index"] == "ivf" and 0 < summary["recall"] <= 1
    assert summary["k"] == 400  # the default max_k is capped by the 400 candidates


@pytest.mark.parametrize(
    "change, extra, fragments",
    [
        ("nan", (), ["candidates.npy (--candidates): row 3 holds NaN"]),
        ("dim", (), ["query.npy (--query): dimension 5 does not match"]),
        ("empty", (), ["candidates.npy (--candidates): expected a non-empty array"]),
        ("flat", (), ["candidates.npy (--candidates): expected a 2-D array"]),
        ("text", (), ["candidates.npy: not a .npy array (--candidates)"]),
        ("missing", (), ["candidates.npy: file not found (--candidates)"]),
        (None, ("--size", "401"), ["size 401: more than the 400 candidates"]),
        (None, ("--alpha", "1.5"), ["--alpha 1.5: Input should be less than or equal to 1"]),
        (None, ("--max-k", "401"), ["--max-k 401: more than the 400 candidates"]),
        (None, ("--max-k", "0"), ["--max-k 0: Input should be greater than or equal to 1"]),
        (None, ("--metric", "dot"), ["metric 'dot'"]),
        (None, ("--index", "lsh"), ["--index 'lsh': expected flat, ivf or hnsw"]),
    ],
)
def test_bad_input_is_one_line_naming_the_argument(arrays, tmp_path, change, extra, fragments):
    rng = np.random.default_rng(1)
    candidates = rng.normal(size=(400, 12))
    query = rng.normal(size=(8, 12))
    if change == "nan":
        candidates[3, 2] = np.nan
    elif change == "dim":
        query = query[:, :5]
    elif change == "empty":
        candidates = candidates[:0]
    elif change == "flat":
        candidates = candidates[0]
    np.save(tmp_path / "query.npy", query)
    if change == "text":
        (tmp_path / "candidates.npy").write_text("1,2,3\n")
    elif change != "missing":
        np.save(tmp_path / "candidates.npy", candidates)
    size = [] if "--size" in extra else ["--size", "10"]
    result = select(tmp_path, tmp_path / "out", *size, *extra)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "out").exists()


HEAVY = ("torch", "transformers", "mlflow", "prefect", "pandas", "sklearn")
IMPORTS = f"""
import atexit, sys
from taskselect.cli import main
atexit.register(lambda: print(sorted(m for m in {HEAVY!r} if m in sys.modules)))
sys.argv = ["taskselect", "select-embeddings", *sys.argv[1:]]
main()
"""


def test_starts_without_the_pipeline_s_heavy_libraries(arrays, tmp_path):
    """Start-up is most of a small selection's time: the command imports none of what the pipeline needs."""
    result = subprocess.run([sys.executable, "-c", IMPORTS, "--query", str(arrays / "query.npy"), "--candidates",
                             str(arrays / "candidates.npy"), "--size", "20", "--out", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert np.load(tmp_path / "indices.npy").size == 20
