"""Embedding backends: speed, agreement with torch, memory, and what they do to selection quality.

    PYTHONPATH=. python benchmarks/embedding.py                # speed + quality (about an hour on 2 cores)
    PYTHONPATH=. python benchmarks/embedding.py --part speed   # speed only

speed: N real pool texts of the default benchmark (seeded sample), embedded by sentence-transformers'
`encode` (what taskselect did before the backends) and by each backend, every one in its own
process (so its peak memory is its own) with the threads a run gives it (torch: its default
intra-op threads; ONNX: one text per call on as many threads as CPUs); no cache. Cosine of each
backend's vectors to the torch backend's, per text.

quality: `taskselect bench`'s sweep (taskselect.bench.QualityBench: the real prepare, embed, index,
select, finetune, evaluate stages) of tsds, random and full at 5% on all four targets, once per
backend, each backend with its own embedding cache namespace.

Writes benchmarks/embedding/results.json and the "## Embedding backends" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from selection import machine, peak_rss_mib, write_section  # noqa: E402

SECTION = "## Embedding backends"
BACKENDS = ("torch", "onnx", "onnx-int8")
BEFORE = "sentence-transformers encode"  # the embedding of taskselect before the backends
BUDGET = 0.05
WARMUP = 64


def pool_texts(data_dir: Path, n: int) -> list[str]:
    """n texts sampled (seed 0) from the default benchmark's pool, prepared into data_dir if needed."""
    import pandas as pd

    from taskselect import stages
    from taskselect.config import DataParams

    ws = stages.Workspace(data_dir)
    if not (ws.prepared / "pool.parquet").is_file():
        stages.prepare(DataParams(), ws)
    texts = pd.read_parquet(ws.prepared / "pool.parquet", columns=["text"])["text"]
    return texts.sample(n + WARMUP, random_state=0).tolist()


def time_backend(case: dict) -> dict:
    """Embed case['texts'] with one backend in this (fresh) process: texts/s after a warm-up
    that loads the model (and makes its ONNX file if missing), peak memory; saves the vectors."""
    import torch

    from taskselect.embedding import Embedder, resolve_model_path

    texts = json.loads(Path(case["texts"]).read_text())
    if case["backend"] == BEFORE:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(resolve_model_path("all-MiniLM-L6-v2")), device="cpu")
        model.max_seq_length = 128

        def embed(batch):
            return model.encode(batch, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
        threads = f"torch {torch.get_num_threads()}"
    else:
        embedder = Embedder(backend=case["backend"])
        embed = embedder.embed
        threads = f"torch {torch.get_num_threads()}" if case["backend"] == "torch" else f"{embedder.threads} x 1"
    embed(texts[:WARMUP])
    started = time.perf_counter()
    vectors = embed(texts[WARMUP:])
    seconds = time.perf_counter() - started
    np.save(case["out"], np.asarray(vectors, dtype=np.float32))
    return {"texts": len(texts) - WARMUP, "seconds": seconds, "texts_per_s": (len(texts) - WARMUP) / seconds,
            "peak_mib": peak_rss_mib(), "threads": threads}


def speed(args) -> list[dict]:
    work = args.work / "speed"
    work.mkdir(parents=True, exist_ok=True)
    texts = work / "texts.json"
    texts.write_text(json.dumps(pool_texts(args.work / "data", args.texts)))
    rows = []
    for backend in (BEFORE, *BACKENDS):
        case = {"backend": backend, "texts": str(texts), "out": str(work / f"{backend.replace(' ', '-')}.npy")}
        print(f"speed: {backend} ...", file=sys.stderr, flush=True)
        done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(case)],
                              stdout=subprocess.PIPE, text=True, check=True)
        rows.append({"backend": backend, **json.loads(done.stdout.strip().splitlines()[-1])})
        print(f"    {rows[-1]['texts_per_s']:.1f} texts/s, peak {rows[-1]['peak_mib']:.0f} MiB", file=sys.stderr, flush=True)
    reference = np.load(work / "torch.npy")
    for row in rows:
        cosine = (np.load(work / f"{row['backend'].replace(' ', '-')}.npy") * reference).sum(axis=1)
        row |= {"cosine_mean": float(cosine.mean()), "cosine_min": float(cosine.min())}
    return rows


QUALITY_METHODS = ("tsds", "random", "full")  # the rule reads these; auto would add minutes per run


def quality(args) -> list[dict]:
    """The bench sweep at 5% per backend; returns one row per (backend, target, method)."""
    from taskselect.bench import QualityBench
    from taskselect.config import TARGETS, load_params
    from taskselect.report import summarize

    rows = []
    for backend in BACKENDS:
        params = load_params(ROOT / "params.yaml", [*args.set, f"embed.backend={backend}", f"embed.cache_dir={args.cache_dir}"])
        out = args.work / "quality" / backend
        bench = QualityBench(params, out_dir=out, data_dir=args.work / "bench" / backend, targets=TARGETS,
                             budgets=(BUDGET,), seeds=tuple(args.seeds), methods=QUALITY_METHODS)
        started = time.perf_counter()
        print(f"quality: {backend} ...", file=sys.stderr, flush=True)
        bench.sweep()
        seconds = time.perf_counter() - started
        for target in TARGETS:
            summary = summarize(json.loads((out / "sweep" / target / "results.json").read_text()))
            for record in summary.to_dict("records"):
                rows.append({"backend": backend, "target": target, "method": record["method"],
                             "f1_macro": record["f1_macro"], "f1_macro_std": record["f1_macro_std"],
                             "seeds": int(record["seeds"]), "sweep_seconds": seconds})
    return rows


def choose(quality_rows: list[dict]) -> tuple[str, dict]:
    """int8 if its TSDS, random and full macro-F1 stay within 0.5 points of torch's on every
    target, else ONNX fp32; with the largest gap of each backend, in points."""
    f1 = {(r["backend"], r["target"], r["method"]): r["f1_macro"] for r in quality_rows}
    gaps = {b: max(abs(100 * (f1[b, t, m] - f1["torch", t, m])) for (_, t, m) in f1 if _ == "torch")
            for b in BACKENDS}
    return ("onnx-int8" if gaps["onnx-int8"] <= 0.5 else "onnx"), gaps


def render(results: dict) -> str:
    lines = [SECTION, "", f"Machine: {results['machine']}. Command: `{results['command']}` ({results['date']})."]
    if "speed" in results:
        s = results["speed"]
        base = next(r for r in s["rows"] if r["backend"] == BEFORE)["texts_per_s"]
        lines += [
            "", f"Speed: {s['rows'][0]['texts']:,} real pool texts of the default benchmark (seeded sample; max_seq_length "
            f"128), each backend in its own process after a warm-up of {WARMUP} texts, no cache; one run. "
            f"Load average before / after: {s['load'][0]:.2f} / {s['load'][1]:.2f}"
            + (" (other jobs shared the 2 cores: read the ratios, not the rates)" if max(s["load"]) > 1.5 else "") + ". "
            "*threads*: torch's intra-op threads, or ONNX texts run at once x threads per text. Cosine: per text, "
            "to the torch backend's vector.", "",
            "| backend | texts/s | vs sentence-transformers encode | cosine to torch (mean / min) | peak MiB | threads |",
            "|---|---|---|---|---|---|",
        ]
        for r in s["rows"]:
            lines.append(f"| {r['backend']}{' (before)' if r['backend'] == BEFORE else ''} | {r['texts_per_s']:.1f} "
                         f"| {r['texts_per_s'] / base:.2f}x | {r['cosine_mean']:.5f} / {r['cosine_min']:.5f} "
                         f"| {r['peak_mib']:.0f} | {r['threads']} |")
    if "quality" in results:
        q = results["quality"]
        rows = q["rows"]
        f1 = {(r["backend"], r["target"], r["method"]): r for r in rows}
        targets = list(dict.fromkeys(r["target"] for r in rows))
        seeds = rows[0]["seeds"]
        lines += [
            "", f"Selection quality: `taskselect bench`'s sweep (the real stages, head trainer) at {BUDGET:.0%} on "
            f"every target, once per backend; macro-F1 of tsds / random / full, mean over {q['seeds']} "
            f"(seeds drive selection and training). Load average before / after: {q['load'][0]:.2f} / {q['load'][1]:.2f}.",
            "", "| target | " + " | ".join(f"{b}: tsds / random / full" for b in BACKENDS) + " | largest gap to torch (points) |",
            "|---|" + "---|" * len(BACKENDS) + "---|",
        ]
        for t in targets:
            cells = [" / ".join(f"{f1[b, t, m]['f1_macro']:.4f}" for m in ("tsds", "random", "full")) for b in BACKENDS]
            gap = max(abs(100 * (f1[b, t, m]["f1_macro"] - f1["torch", t, m]["f1_macro"]))
                      for b in BACKENDS[1:] for m in ("tsds", "random", "full"))
            lines.append(f"| {t} | " + " | ".join(cells) + f" | {gap:.2f} |")
        chosen, gaps = choose(rows)
        lines += ["", "Largest macro-F1 gap to torch over targets and methods: "
                  + ", ".join(f"{b} {gaps[b]:.2f} points" for b in BACKENDS[1:])
                  + f". Rule: int8 if it stays within 0.5 points of torch on every target, else ONNX fp32: "
                  f"**default `embed.backend: {chosen}`**." + (f" (seeds: {seeds} per cell.)" if seeds > 1 else "")]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("speed", "quality"), action="append", help="[default: both]")
    parser.add_argument("--texts", type=int, default=5000, help="pool texts timed per backend")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of the quality sweep")
    parser.add_argument("--set", "-S", action="append", default=[], help="parameter override of the quality part, KEY=VALUE")
    parser.add_argument("--work", type=Path, default=ROOT / ".taskselect-cache" / "embedding-bench", help="workspaces (not committed)")
    parser.add_argument("--cache-dir", default=str(ROOT / ".taskselect-cache" / "embeddings"), help="embedding cache")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "embedding" / "results.json")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(time_backend(json.loads(args.worker))))
        return
    results = json.loads(args.results.read_text()) if args.results.is_file() else {}
    results |= {"machine": machine(), "date": time.strftime("%Y-%m-%d"),
                "command": "PYTHONPATH=. python benchmarks/embedding.py" + "".join(f" {a}" for a in sys.argv[1:])}
    for part in args.part or ("speed", "quality"):
        load = os.getloadavg()[0]
        rows = speed(args) if part == "speed" else quality(args)
        results[part] = {"rows": rows, "load": [load, os.getloadavg()[0]], "seeds": args.seeds}
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(results, indent=2) + "\n")
    text = render(results)
    write_section(args.out, text, SECTION)
    print(text)


if __name__ == "__main__":
    main()
