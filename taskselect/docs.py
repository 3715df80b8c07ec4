"""Documentation that cannot drift from the code: the parameters reference is generated from
config.py's field descriptions, and every captured command output in the markdown is a block
marked with the command that prints it,

    <!-- captured: taskselect compare -->
    ```text
    $ taskselect compare
    ...what it printed...
    ```

which `taskselect docs` reruns and rewrites, and a test reruns on its own small run and
compares with numbers masked (they depend on the run's data and the machine).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from pydantic import BaseModel

from taskselect.config import Params
from taskselect.io import atomic_path
from taskselect.sections import is_runtime

# A marker, then a fenced block: the command and the block's text (its `$ command` line included).
CAPTURED = re.compile(r"<!-- captured: (?P<command>.+?) -->\n```(?P<lang>\w*)\n(?P<body>.*?)```", re.S)
# What a captured command may read of the run it documents, linked into the directory it runs in.
RUN_FILES = ("data", "mlflow.db", "mlartifacts", "params.yaml")
NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?(?:e[+-]?\d+)?")
RUN_ID = re.compile(r"\b[0-9a-f]{32}\b")  # an MLflow run's id: another in every run
# Runs of spaces and of table rules: their length follows the width of the numbers in a table.
FILL = re.compile(r"([ ─━═-])\1+")


def markdown_files(root: Path) -> list[Path]:
    """README.md and every docs/*.md page."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def captured_blocks(text: str) -> list[tuple[str, str]]:
    """(command, output) of each captured block in a markdown text, in order."""
    return [(m["command"], m["body"].split("\n", 1)[1] if m["body"].startswith("$ ") else m["body"])
            for m in CAPTURED.finditer(text)]


def run_captured(command: str, run_dir: Path) -> str:
    """What `command` prints (stdout) when run, as a user would, in a scratch directory that
    links to run_dir's data/, mlflow.db, mlartifacts/ and params.yaml: the files a command
    writes there (an export) never land in the project. A failing command is an error."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with tempfile.TemporaryDirectory(prefix="taskselect-docs-") as scratch:
        for name in RUN_FILES:
            if (run_dir / name).exists():
                os.symlink((run_dir / name).resolve(), Path(scratch) / name)
        result = subprocess.run(["bash", "-c", command], cwd=scratch, env=env, capture_output=True, text=True,
                                timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"captured command {command!r} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return result.stdout


def refresh_captured(path: Path, run_dir: Path) -> int:
    """Rerun each captured block's command of the markdown file at `path` in run_dir and write
    what it printed into the block; returns how many blocks there were."""
    text = path.read_text()
    found = 0

    def replace(match: re.Match) -> str:
        nonlocal found
        found += 1
        output = run_captured(match["command"], run_dir)
        return f"<!-- captured: {match['command']} -->\n```{match['lang']}\n$ {match['command']}\n{output}```"

    updated = CAPTURED.sub(replace, text)
    if updated != text:
        with atomic_path(path) as tmp:
            tmp.write_text(updated)
    return found


def masked(output: str) -> list[str]:
    """Output lines with every number and MLflow run id replaced by '#' and runs of spaces or
    table rules shortened to one: what must not change when the same command runs on other data."""
    return [FILL.sub(r"\1", NUMBER.sub("#", RUN_ID.sub("#", line))).rstrip() for line in output.strip("\n").splitlines()]


def _default(field) -> str:
    if field.default_factory is not None:
        return ""
    value = field.default
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def _limits(field) -> str:
    """'≥ 0, ≤ 1' from the field's constraints."""
    signs = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤", "min_length": "at least"}
    found = []
    for constraint in field.metadata:
        for name, sign in signs.items():
            if getattr(constraint, name, None) is not None:
                found.append(f"{sign} {getattr(constraint, name)}" + (" items" if name == "min_length" else ""))
    return ", ".join(found)


def _section(model: type[BaseModel], prefix: str, level: int) -> list[str]:
    doc = " ".join((model.__doc__ or "").split())
    lines = [f"{'#' * level} `{prefix}`", "", doc, "", "| parameter | default | meaning |", "|---|---|---|"]
    nested = []
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            nested.append((name, kind))
            continue
        limits = _limits(field)
        meaning = " ".join((field.description or "").split()) + (f" ({limits})" if limits else "") + (
            " *Runtime*." if is_runtime(field) else "")
        lines.append(f"| `{name}` | `{_default(field)}` | {meaning.replace('|', '/')} |")
    lines.append("")
    for name, kind in nested:
        lines += _section(kind, f"{prefix}.{name}", level + 1)
    return lines


def parameters_reference() -> str:
    """docs/parameters.md: every parameter of params.yaml, its default and its description, as
    config.py states them (the Prefect run form shows the same descriptions)."""
    lines = [
        "# Parameters", "",
        "<!-- generated by `taskselect docs` from taskselect/config.py: edit the descriptions there -->", "",
        "`params.yaml` holds every value, one section per stage; `taskselect params` prints what a run",
        "would use. Override any of them for one run with `-S KEY=VALUE` (the syntax of `dvc exp run -S`):",
        "", "```bash", "taskselect run -S select.tsds.alpha=0.5 -S select.budgets=[0.01,0.05]", "```", "",
        "A budget is a row count (`500`) or a fraction of the pool (`0.05`). Bad input stops with one",
        "`error:` line naming the parameter and what was expected (exit code 2), before anything is computed.", "",
        "A *runtime* parameter changes where, how fast or which selections a run makes, never what one",
        "selection, its model or its score is; the data files' paths are runtime, as the rows they hold are",
        "recorded by their digest. `taskselect compare --all` pools runs that differ only in these, and a",
        "run keeps the embeddings and index a workspace holds when only these changed. `dvc repro` reruns",
        "nothing for another cache directory, batch size, shard size or thread count either (dvc.yaml leaves",
        "them out of its stages' params); the data paths rerun prepare, which reads the files, and the",
        "method, budget and seed lists and `track` rerun report, which records them in run.json.", "",
    ]
    for name, field in Params.model_fields.items():
        lines += _section(field.annotation, name, 2)
    return "\n".join(lines).rstrip("\n") + "\n"


def write_parameters_reference(path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(parameters_reference())
