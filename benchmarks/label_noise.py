"""Label noise: how much a flipped 20% of the pool's labels costs the selectors, and how much the
negCLIPLoss filter (select.filter) wins back.

    PYTHONPATH=. .venv/bin/python benchmarks/label_noise.py [--targets T,...] [--seeds 0,1,2] \
        [--budget 0.05] [--share 0.2] [-S embed.cache_dir=/work/cache/embeddings]

For each target: the benchmark's pool as built (clean), and a copy whose labels are flipped on a
seeded `share` of the rows, each to another label of the row's own source (a source with one
label keeps its rows). The texts, hence embeddings and index, are the same. tsds, knn, dsir and
random select `budget` of the pool three ways: on the clean pool, on the noisy pool, and on the
noisy pool behind the negCLIPLoss filter (keep 1 - share); the head trainer trains on the
selected rows with their (noisy) labels and is scored on the clean test set. The flipped rows
are known, so the filter's precision and recall at finding them are measured, beside cleanlab's
`find_label_issues` on 5-fold cross-validated probabilities of the head's logistic regression
(the reference label-issue finder).

Runs go through taskselect.bench.QualityBench (the real stages); records land in
benchmarks/label_noise/<target>/<setting>/results.json and benchmarks/label_noise/<target>/noise.json,
and the "## Label noise" section of BENCHMARKS.md is rendered from those files only.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict

from benchmarks.harness import section_arguments, stopwatch, write_marked_section
from taskselect import stages
from taskselect.threads import fixed_threads
from taskselect.bench import QualityBench
from taskselect.config import TARGETS, load_params
from taskselect.io import read_json, write_json, write_parquet
from taskselect.report import summarize
from taskselect.selectors import Corpus, filter_scorer
from taskselect.selectors.negcliploss import top_share

log = logging.getLogger("label_noise")

METHODS = ("tsds", "knn", "dsir", "random")
SETTINGS = ("clean", "noisy", "noisy+filter")
OUT = Path("benchmarks/label_noise")
SECTION = "Label noise: the negCLIPLoss filter in front of the selectors"


def flip_labels(pool: pd.DataFrame, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels with a seeded `share` of the pool flipped, the flipped rows sorted).

    Rows are drawn among the sources with at least two labels; each flipped row gets another
    label of its own source, uniformly.
    """
    rng = np.random.default_rng(seed)
    labels = pool["label"].to_numpy(dtype=object).copy()
    label_sets = {source: np.unique(group.to_numpy(dtype=str)) for source, group in pool.groupby("source")["label"]}
    eligible = np.flatnonzero(pool["source"].map(lambda s: label_sets[s].size > 1).to_numpy())
    flipped = np.sort(rng.choice(eligible, min(eligible.size, round(share * len(pool))), replace=False))
    for row in flipped:
        others = label_sets[pool["source"].iat[row]]
        labels[row] = rng.choice(others[others != labels[row]])
    return labels, flipped


def noisy_workspace(clean: stages.Workspace, root: Path, labels: np.ndarray) -> stages.Workspace:
    """A workspace at `root` with clean's prepared data, embeddings and index, the pool's labels replaced."""
    ws = stages.Workspace(root)
    for name in ("prepared", "embeddings", "index"):
        shutil.rmtree(root / name, ignore_errors=True)
        shutil.copytree(clean.root / name, root / name)
    pool = pd.read_parquet(clean.prepared / "pool.parquet")
    write_parquet(ws.prepared / "pool.parquet", pool.assign(label=labels))
    # The texts are the same, so are the embeddings and the index: record that they are made from
    # this pool file (the stages would otherwise refuse them as left by another run).
    for kind in ("embeddings", "index"):
        stages.record_made_from(kind, ws)
    return ws


def found(dropped: np.ndarray, flipped: np.ndarray) -> dict:
    """Precision and recall of `dropped` rows at finding the `flipped` ones."""
    hits = np.intersect1d(dropped, flipped).size
    return {"flagged": int(dropped.size), "precision": hits / max(dropped.size, 1), "recall": hits / max(flipped.size, 1)}


def cleanlab_issues(embeddings: np.ndarray, labels: np.ndarray, C: float, seed: int) -> np.ndarray | None:
    """Rows cleanlab's find_label_issues flags, on 5-fold out-of-sample probabilities of a logistic
    regression (the head trainer's model); None if cleanlab is not installed."""
    try:
        from cleanlab.filter import find_label_issues
    except ImportError:
        return None
    classes, y = np.unique(labels.astype(str), return_inverse=True)
    with fixed_threads():
        probs = cross_val_predict(LogisticRegression(C=C, max_iter=1000, random_state=seed), embeddings, y, cv=5,
                                  method="predict_proba")
    return np.flatnonzero(find_label_issues(y, probs))


def run_target(bench: QualityBench, target: str, share: float) -> None:
    out = bench.out_dir / target
    params = bench.target_params(target, {"select.methods": list(METHODS), "select.budgets": list(bench.budgets),
                                    "select.seeds": list(bench.seeds), "finetune.trainer": "head"})
    clean = bench.workspace(params)
    pool = pd.read_parquet(clean.prepared / "pool.parquet")
    labels, flipped = flip_labels(pool, share, seed=params.data.seed)
    noisy = noisy_workspace(clean, bench.data_dir / "label_noise" / target, labels)
    keep = 1 - share
    filtered = params.model_copy(update={"select": params.select.model_copy(
        update={"filter": params.select.filter.model_copy(update={"method": "negcliploss", "keep": keep})})})
    for setting, ws, run_params in (("clean", clean, params), ("noisy", noisy, params), ("noisy+filter", noisy, filtered)):
        runs_ws = stages.Workspace(ws.root, runs_root=bench.data_dir / "label_noise" / "runs" / target / setting)
        bench.run_all(run_params, runs_ws, out / setting)
    pool_x = np.load(clean.embedding("pool"))
    query = pd.read_parquet(clean.prepared / "query.parquet")
    corpus = Corpus(pool["text"].tolist(), labels.tolist(), query["text"].tolist(), query["label"].tolist())
    scorer = filter_scorer(params.select)
    filters = {}
    for seed in bench.seeds:  # what the filter dropped in each seed's runs
        scores, facts = scorer.scores(np.load(clean.embedding("query")), pool_x, corpus, seed)
        dropped = np.setdiff1d(np.arange(len(pool)), top_share(scores, keep))
        filters[str(seed)] = {**found(dropped, flipped), "tau": facts["tau"]}
    started = time.perf_counter()
    issues = cleanlab_issues(pool_x, labels, params.finetune.head.C, seed=0)
    reference = None if issues is None else {**found(issues, flipped), "seconds": round(time.perf_counter() - started, 1)}
    if issues is not None:  # negCLIPLoss at cleanlab's count: the two rankings at one size
        at_count = np.argsort(-scorer.scores(np.load(clean.embedding("query")), pool_x, corpus, bench.seeds[0])[0],
                              kind="stable")[len(pool) - issues.size:]
        reference["negcliploss_at_same_count"] = found(at_count, flipped)
    write_json(out / "noise.json", {
        "pool": len(pool), "share": share, "flipped": int(flipped.size), "keep": keep, "filter": filters,
        "cleanlab": reference, "budget": bench.budgets[0], "seeds": list(bench.seeds),
    })


def render(out: Path) -> str:
    """The "## Label noise" section from the records under `out`."""
    meta = read_json(out / "bench.json")
    m = meta["machine"]
    targets = [t for t in TARGETS if (out / t / "noise.json").is_file()]
    lines = [
        f"`PYTHONPATH=. python benchmarks/label_noise.py {' '.join(meta['args'])}` "
        "(records under benchmarks/label_noise/). A seeded 20% of each target's pool gets another label of its own "
        "source; tsds, knn, dsir and random select 5% of the pool from the clean pool, the noisy pool, and the noisy "
        "pool behind `select.filter: {method: negcliploss, keep: 0.8}`; the head trainer learns the selected rows' "
        "labels as they are and is scored on the clean test set. Macro-F1, mean ± std over the seeds. "
        f"Machine: {m['cpu']}, {m['cores']} cores; wall time {meta['seconds'] / 60:.0f} min, load average "
        f"{meta['load_before']} before / {meta['load_after']} after (other agents shared the cores).", "",
    ]
    recovered = 0
    for t in targets:
        noise = read_json(out / t / "noise.json")
        summaries = {s: summarize(read_json(out / t / s / "results.json")).to_dict("records") for s in SETTINGS
                     if (out / t / s / "results.json").is_file()}
        lines += [f"### {t}: pool {noise['pool']:,} rows, {noise['flipped']:,} flipped, seeds {noise['seeds']}", "",
                  "| method | clean | noisy | noisy + filter | noise cost | won back by the filter |",
                  "|---|---|---|---|---|---|"]
        for method in METHODS:
            row = {s: next((r for r in summaries.get(s, []) if r["method"] == method), None) for s in SETTINGS}
            cells = ["-" if r is None else f"{r['f1_macro']:.3f} ± {r['f1_macro_std']:.3f}" for r in row.values()]
            if all(row.values()):
                cost = 100 * (row["clean"]["f1_macro"] - row["noisy"]["f1_macro"])
                back = 100 * (row["noisy+filter"]["f1_macro"] - row["noisy"]["f1_macro"])
                share = f"{back:+.1f} ({back / cost:.0%} of the cost)" if cost > 0 else f"{back:+.1f}"
                if method == "tsds" and cost > 0 and back >= cost / 2:
                    recovered += 1
                cells += [f"{cost:+.1f}", share]
            else:
                cells += ["-", "-"]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        filt = noise["filter"]
        lines += ["", "Finding the flipped rows: the filter drops the lowest 20% by negCLIPLoss ("
                  + "; ".join(f"seed {s}: precision {f['precision']:.1%}, recall {f['recall']:.1%}, tau {f['tau']:g}"
                              for s, f in filt.items()) + ")"]
        ref = noise["cleanlab"]
        if ref is not None:
            same = ref["negcliploss_at_same_count"]
            lines[-1] += (f"; cleanlab's find_label_issues flags {ref['flagged']:,} rows, precision {ref['precision']:.1%}, "
                          f"recall {ref['recall']:.1%} ({ref['seconds']:.0f} s); negCLIPLoss's lowest {same['flagged']:,}: "
                          f"precision {same['precision']:.1%}, recall {same['recall']:.1%}")
        lines += [lines.pop() + ".", ""]
    lines += [f"The filter wins back at least half of what the noise costs TSDS on **{recovered} of {len(targets)}** targets.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--budget", type=float, default=0.05)
    parser.add_argument("--share", type=float, default=0.2)
    parser.add_argument("--out", type=Path, default=OUT, help="Records.")
    parser.add_argument("--data-dir", type=Path, default=Path("data/label_noise"), help="Artifacts, one workspace per target.")
    section_arguments(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if not args.render_only:
        bench = QualityBench(load_params(None, args.overrides), args.out, args.data_dir, targets=tuple(args.targets.split(",")),
                             budgets=(args.budget,), seeds=tuple(int(s) for s in args.seeds.split(",")))
        measured = stopwatch()
        for target in bench.targets:
            run_target(bench, target, args.share)
        write_json(args.out / "bench.json", {"args": sys.argv[1:], **measured(), "finished": time.strftime("%Y-%m-%d %H:%M")})
    write_marked_section(args.markdown, SECTION, render(args.out))


if __name__ == "__main__":
    main()
