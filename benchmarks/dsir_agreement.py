"""DSIR here against the reference implementation, the `data-selection` package (Xie et al.).

    PYTHONPATH=. python benchmarks/dsir_agreement.py --prepared data/prepared [--out FILE]

Both fit their bag-of-n-gram models on the pool (raw) and the query texts (target) of a prepared
benchmark, with unigrams and bigrams hashed into 10,000 buckets. Reported for each smoothing: the
Spearman rank correlation of the two log importance weights over the pool, and the overlap of
the two selections of a budget (their top-k by weight, and their Gumbel top-k samples; the two
draw different noise, so the sampled overlap is below the top-k one even for equal weights).
The package adds 1e-8 to each bucket's probability; this implementation adds a pseudo-count
(`smoothing`, Laplace at 1) to each bucket's count. So the weights are compared twice: our
n-gram counts under the package's smoothing (the features must agree), and our DSIR as it runs.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from taskselect.selectors.dsir import gumbel_top_k, hashed_ngrams, log_importance_weights


def reference(pool_texts, query_texts, size: int, seed: int, workdir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(N,) log importance weights of data-selection's HashedNgramDSIR and its (size,) Gumbel
    top-k sample (rows of the pool), one process, no length filter, fitted on every token."""
    from data_selection import HashedNgramDSIR

    for name, texts in (("raw", pool_texts), ("target", query_texts)):
        with open(workdir / f"{name}.jsonl", "w") as fh:
            fh.writelines(json.dumps({"text": t, "row": i}) + "\n" for i, t in enumerate(texts))
    dsir = HashedNgramDSIR([str(workdir / "raw.jsonl")], [str(workdir / "target.jsonl")], str(workdir / "cache"),
                           num_proc=1, ngrams=2, num_buckets=10000, min_example_length=0)
    dsir.fit_importance_estimator(num_tokens_to_fit="all")
    dsir.compute_importance_weights()
    weights = np.load(workdir / "cache" / "log_importance_weights" / "0.npy")
    np.random.seed(seed)  # the package draws its Gumbel noise from numpy's global generator
    dsir.resample(out_dir=str(workdir / "out"), num_to_sample=size, cache_dir=str(workdir / "resampled"))
    rows = [json.loads(line)["row"] for path in sorted((workdir / "out").glob("*.jsonl")) for line in open(path)]
    return weights, np.sort(np.array(rows, dtype=np.int64))


def _package_model(counts) -> np.ndarray:
    """log(p + 1e-8) of the bag model fitted to `counts`: how data-selection smooths."""
    totals = np.asarray(counts.sum(axis=0), dtype=np.float64).ravel()
    return np.log(totals / totals.sum() + 1e-8)


def agreement(pool_texts, query_texts, size: int, seed: int = 0, smoothing: float = 1.0, on_task=None) -> list[dict]:
    """Our weights against the package's, twice: our n-gram counts under the package's smoothing
    (do the features agree?) and our DSIR as configured (Laplace `smoothing`).

    on_task: optional (N,) bool, rows carrying one of the task's labels; adds the share of each
    Gumbel sample that is on-task (ours, the package's).
    """
    with tempfile.TemporaryDirectory() as tmp:
        ref_weights, ref_rows = reference(pool_texts, query_texts, size, seed, Path(tmp))
    ref_top = np.argsort(-ref_weights, kind="stable")[:size]
    pool, target = hashed_ngrams(pool_texts), hashed_ngrams(query_texts)
    variants = {
        "our n-gram counts, the package's smoothing (probability + 1e-8)": pool @ (_package_model(target) - _package_model(pool)),
        f"our DSIR (Laplace pseudo-count {smoothing:g})": log_importance_weights(pool_texts, query_texts, 10000, 2, smoothing),
    }
    out = []
    for name, ours in variants.items():
        rows = gumbel_top_k(ours, size, np.random.default_rng(seed))
        out.append({
            "variant": name,
            "spearman": round(float(spearmanr(ours, ref_weights).statistic), 4),
            "top_k_overlap": round(len(np.intersect1d(np.argsort(-ours, kind="stable")[:size], ref_top)) / size, 4),
            "sample_overlap": round(len(np.intersect1d(rows, ref_rows)) / size, 4),
        })
        if on_task is not None:
            out[-1] |= {"on_task": round(float(on_task[rows].mean()), 4),
                        "package_on_task": round(float(on_task[ref_rows].mean()), 4)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--budget", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/quality/dsir_agreement.json"))
    args = parser.parse_args()
    frame = pd.read_parquet(args.prepared / "pool.parquet")
    labels = json.loads((args.prepared / "benchmark.json").read_text())["target_labels"]
    pool, on_task = frame["text"].tolist(), frame["label"].isin(labels).to_numpy()
    query = pd.read_parquet(args.prepared / "query.parquet")["text"].tolist()
    size = round(args.budget * len(pool))
    records = agreement(pool, query, size, args.seed, on_task=on_task)
    result = {"pool": len(pool), "query": len(query), "size": size, "seed": args.seed, "results": records}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
