"""The docs cannot drift: the parameters reference is what config.py says, and every captured
command output in README.md and docs/ is what its command prints today (on the session's small
run, numbers masked: they depend on the data and the machine)."""

import re

import pytest

from conftest import ROOT
from taskselect.docs import captured_blocks, markdown_files, masked, parameters_reference, run_captured

PAGES = [p for p in markdown_files(ROOT) if p.is_file()]
BLOCKS = [(page, command, output) for page in PAGES for command, output in captured_blocks(page.read_text())]


def test_the_parameters_reference_is_generated_from_config():
    assert (ROOT / "docs" / "parameters.md").read_text() == parameters_reference(), \
        "docs/parameters.md is stale: run `taskselect docs`"
    reference = parameters_reference()
    assert "## `select`" in reference and "### `select.tsds`" in reference
    assert "| `alpha` | `0.9` | Alignment vs diversity: 1 = each query's nearest row only. (≥ 0, ≤ 1) |" in reference


def test_the_readme_fits_on_a_screen_and_its_links_resolve():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) <= 10_000
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", readme):
        assert (ROOT / target).exists(), f"README links to {target}, which does not exist"
    assert {"README.md", "mlflow.md"} <= {p.name for p in PAGES} and BLOCKS


def test_masking_keeps_what_must_not_change():
    table = "│ tsds   │     5% │     1 │       0.7055 ± 0.0000 │     +0.1002 │"
    assert masked(table) == masked("│ tsds   │    10% │     1 │       0.6500 ± 0.0312 │     -0.0021 │")
    assert masked(table) != masked(table.replace("tsds", "knn "))
    assert masked(table) != masked(table.replace("±", "+-"))
    line = "latest complete pipeline run ce884fd0e4de4e32a639624312f72c91 (2026-12-03 19:07 UTC; ..."
    assert masked(line) == masked(line.replace("ce884fd0e4de4e32", "0a1b2c3d4e5f6a7b")) != masked(line.replace("run", "job"))


@pytest.mark.e2e
@pytest.mark.parametrize("page, command, output", BLOCKS, ids=[f"{p.name}: {c}" for p, c, _ in BLOCKS])
def test_a_captured_output_is_what_its_command_prints(small_run, page, command, output):
    printed = run_captured(command, small_run.dir)
    assert masked(printed) == masked(output), (
        f"{page.relative_to(ROOT)}: the output captured for `{command}` no longer matches what it prints "
        f"(numbers masked); run `make docs`.\nprinted now:\n{printed}")
