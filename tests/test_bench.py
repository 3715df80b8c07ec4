"""`taskselect bench`: the quality benchmark through the real stages, rendered into BENCHMARKS.md."""

import json

import pytest

from conftest import small_profile, taskselect
from taskselect.bench import QualityBench, TSDSSetting, budget_reaching, deltas, render, write_section
from taskselect.config import load_params
from taskselect.errors import TaskselectError
from taskselect.report import summarize


def row(method, budget, f1, std=0.0):
    return {"method": method, "budget": budget, "f1_macro": f1, "f1_macro_std": std}


def test_budget_reaching_95_percent_of_full_and_deltas_in_points():
    summary = [row("tsds", 0.01, 0.60), row("tsds", 0.02, 0.66), row("tsds", 0.05, 0.70),
               row("random", 0.02, 0.55), row("random", 0.05, 0.66), row("full", 1.0, 0.69)]
    assert budget_reaching(summary) == 0.02  # 0.66 >= 0.95 * 0.69 = 0.6555
    assert budget_reaching(summary, share=1.0) == 0.05
    assert budget_reaching([r for r in summary if r["method"] != "full"]) is None
    assert deltas(summary) == {0.02: pytest.approx(11.0), 0.05: pytest.approx(4.0)}
    assert deltas(summary, budgets=(0.1,)) == {0.1: None}


def test_section_is_created_then_replaced_and_other_sections_are_kept(tmp_path):
    md = tmp_path / "BENCHMARKS.md"
    write_section(md, "first\n")
    md.write_text(md.read_text() + "\n## Selection speed\n\nsomeone else's table\n")
    write_section(md, "second\n")
    text = md.read_text()
    assert "second" in text and "first" not in text
    assert text.count("## Selection quality") == 1 and "someone else's table" in text

    (tmp_path / "other.md").write_text("## Selection quality\n\nhand-written\n")
    with pytest.raises(TaskselectError, match="without the bench markers"):
        write_section(tmp_path / "other.md", "x\n")


def test_unknown_part_is_refused(tmp_path):
    result = taskselect("bench", "--part", "speed", cwd=tmp_path)
    assert result.returncode == 2 and "--part 'speed': expected one of sweep, methods, ablation, transformer" in result.stderr


@pytest.fixture(scope="module")
def swept(embedding_cache, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    overrides = [a for o in small_profile(tmp, embedding_cache) for a in ("-S", o)]
    result = taskselect(
        "bench", "--part", "sweep", "--targets", "airline_sentiment", "--budgets", "0.05,0.1", "--seeds", "0,1",
        "--out", str(tmp / "out"), "--data-dir", str(tmp / "data"), "--markdown", str(tmp / "BENCHMARKS.md"),
        *overrides, cwd=tmp,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp


@pytest.mark.e2e
def test_sweep_writes_records_plot_and_section(swept):
    out = swept / "out"
    records = json.loads((out / "sweep" / "airline_sentiment" / "results.json").read_text())
    runs = {(r["method"], r["budget"], r["seed"]) for r in records}
    # the head on the full pool has no randomness: one run, not one per budget and seed
    from taskselect.bench import SWEEP_METHODS
    from taskselect.selectors import spec

    budgeted = [m for m in SWEEP_METHODS if spec(m).uses_budget]
    assert runs == ({(m, b, s) for m in budgeted for b in (0.05, 0.1) for s in (0, 1)}
                    | {(m, 0.05, 0) for m in SWEEP_METHODS if m not in budgeted})
    assert (out / "f1_vs_budget_airline_sentiment.png").read_bytes().startswith(b"\x89PNG")
    assert (out / "confusion_airline_sentiment_tsds-0.05-0.png").is_file()

    summary = summarize(records).to_dict("records")
    tsds = next(r for r in summary if r["method"] == "tsds" and r["budget"] == 0.1)
    rand = next(r for r in summary if r["method"] == "random" and r["budget"] == 0.1)
    text = (swept / "BENCHMARKS.md").read_text()
    line = next(line for line in text.splitlines() if line.startswith("| 10% |"))
    assert f"{tsds['f1_macro']:.3f} ± {tsds['f1_macro_std']:.3f}" in line
    assert f"{100 * (tsds['f1_macro'] - rand['f1_macro']):+.1f}" in line
    assert "![macro-F1 against budget, airline_sentiment](out/f1_vs_budget_airline_sentiment.png)" in text
    # a run over some of the targets gets its own wall-time row, beside any full run's
    assert "The bar is met on" in text and "| sweep (airline_sentiment) |" in text


@pytest.mark.e2e
def test_ablation_and_transformer_parts_render_from_their_records(swept, embedding_cache):
    params = load_params(None, small_profile(swept, embedding_cache) + [
        "finetune.transformer.max_steps=1", "finetune.transformer.max_length=32", "finetune.transformer.batch_size=8",
    ])
    bench = QualityBench(
        params, swept / "out", swept / "data", seeds=(0,), ablation_budgets=(0.1,),
        grid=(TSDSSetting(0.9, 0.75), TSDSSetting(0.5, 0.0)), transformer_budgets=(0.1,), transformer_seeds=(0,),
        transformer_methods=("tsds",),
    )
    bench.run(("ablation", "transformer"))
    text = render(swept / "out", swept)
    assert "| sweep (airline_sentiment) |" in text and "| ablation |" in text and "| transformer |" in text
    ablation = json.loads((swept / "out" / "ablation" / "alpha0.5-sigma0-C1" / "results.json").read_text())
    assert f"| 0.5 | 0 | 1 | false | {ablation[0]['f1_macro']:.3f} ± 0.000 |" in text
    transformer = json.loads((swept / "out" / "transformer" / "results.json").read_text())
    assert [r["method"] for r in transformer] == ["tsds"]
    assert all(r["trainer"] == "transformer" and r["finetune_seconds"] > 0 for r in transformer)
    assert "### Fine-tuning MiniLM" in text


def test_every_selector_table_puts_the_methods_part_beside_the_sweep(tmp_path):
    def record(method, budget, seed, f1, seconds, info=None):
        return {"method": method, "budget": budget, "budget_label": f"{budget * 100:g}%", "seed": seed,
                "n_selected": 10, "f1_macro": f1, "accuracy": f1, "target_share": 0.5, "select_seconds": seconds,
                "select_info": info or {}}

    sweep = [record("tsds", b, s, 0.6 + b, 2.0, {"k": 5000}) for b in (0.01, 0.05) for s in (0, 1)]
    sweep += [record("random", b, s, 0.5, 0.1) for b in (0.01, 0.05) for s in (0, 1)] + [record("full", 0.01, 0, 0.7, 0.0)]
    others = [record("knn", b, s, 0.55 + s / 10, 1.0 + s) for b in (0.01, 0.05) for s in (0, 1)]
    # knn-uniform's 20 neighbours per query were enough at 1%, not at 5%
    others += [record("knn-uniform", b, s, 0.6, 0.5, {"k": 20 if b == 0.01 else 40}) for b in (0.01, 0.05) for s in (0, 1)]
    for part, records in (("sweep", sweep), ("methods", others)):
        (tmp_path / part / "airline_sentiment").mkdir(parents=True)
        (tmp_path / part / "airline_sentiment" / "results.json").write_text(json.dumps(records))
    params = load_params(None, ["select.knn_uniform.k=20"]).model_dump(mode="json")
    (tmp_path / "methods" / "airline_sentiment" / "run.json").write_text(json.dumps({"params": params}))
    from taskselect.bench import _render_methods

    lines = _render_methods(tmp_path)
    rows = {line.split(" | ")[0]: line for line in lines if line.startswith("| ")}
    assert rows["| knn"] == "| knn | 0.600 ± 0.071 | 0.600 ± 0.071 | 50% | 1.5 s |"
    assert rows["| tsds"].startswith("| tsds | 0.610 ± 0.000 | 0.650 ± 0.000 |")
    assert rows["| full"].startswith("| full | 0.700 ± 0.000 | 0.700 ± 0.000 |")  # one training set, every budget
    assert [line for line in lines if "k was raised" in line] == [
        "The queries' k nearest rows held fewer distinct rows than the budget, so k was raised: "
        "knn-uniform 20 -> 40 at 5%."
    ]
    assert list(rows)[1:] == ["| tsds", "| random", "| full", "| knn", "| knn-uniform"]  # the header row first
