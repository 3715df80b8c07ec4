"""Which project files each stage runs: the code deps of its dvc.yaml stage and of its manifest.

A stage is a function in stages.py. Its code is stages.py itself, and every project module the
function uses (directly, or through the stages.py helpers it calls), with everything those
modules import in turn (at module level or inside functions, or name as 'taskselect.x:Name'
strings as the trainers' lazy registry does; not under `if TYPE_CHECKING`). config.py is not
followed: it types and checks the parameters, whose values DVC tracks itself (params:), and
params.yaml states every default; nor is this module, which computes no output. Read from the source with `ast`, nothing is imported;
tests/test_dvc_deps.py checks that dvc.yaml lists exactly `dvc_deps(stage)` for each stage.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
STAGES = ("prepare", "embed", "index", "select", "finetune", "evaluate", "report")
# The package's __init__ holds only its version: a release must not rerun every stage.
IGNORED = frozenset({PACKAGE / "__init__.py"})
NOT_FOLLOWED = frozenset({"taskselect.config", "taskselect.codedeps"})  # codedeps: bookkeeping, computes nothing
LAZY_MODULE = re.compile(r"(taskselect(?:\.\w+)+):\w+")


def _module_file(name: str) -> Path | None:
    """The file of project module `name` ('taskselect.index'), None outside the project (or not followed)."""
    if name in NOT_FOLLOWED or (name != "taskselect" and not name.startswith("taskselect.")):
        return None
    path = PACKAGE.parent.joinpath(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree: ast.AST, package: str) -> dict[str, str]:
    """{name bound: project module it comes from} for every import in `tree` (relative ones
    resolved against `package`), skipping `if TYPE_CHECKING:` blocks."""
    bound: dict[str, str] = {}
    todo = [tree]
    while todo:
        node = todo.pop()
        if _is_type_checking(node):
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound[alias.asname or alias.name.split(".")[0]] = alias.name
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and (lazy := LAZY_MODULE.fullmatch(node.value)):
            bound[node.value] = lazy.group(1)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                bound[alias.asname or alias.name] = submodule if _module_file(submodule) else base
        todo.extend(ast.iter_child_nodes(node))
    return bound


@functools.cache
def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _package_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts if path.name == "__init__.py" else parts[:-1])


@functools.cache
def module_closure(name: str) -> frozenset[Path]:
    """The files of project module `name`, its parent packages and everything they import."""
    seen: set[Path] = set()
    todo = [name]
    while todo:
        module = todo.pop()
        parts = module.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
            path = _module_file(".".join(parts[:i]))
            if path is None or path in seen:
                continue
            seen.add(path)
            todo.extend(m for m in _imports(_parse(path), _package_of(path)).values() if _module_file(m))
    return frozenset(seen - IGNORED)


def _names_used(function: ast.FunctionDef) -> set[str]:
    """Names the body and defaults of `function` read (its annotations are never evaluated:
    stages.py imports annotations from __future__), but its own parameters: prepare's `select`
    argument is the run's SelectParams, not the select stage."""
    nodes = [*function.body, *function.args.defaults, *function.args.kw_defaults]
    args = function.args
    own = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg] if a is not None}
    return {n.id for node in nodes if node is not None for n in ast.walk(node) if isinstance(n, ast.Name)} - own


@functools.cache
def stage_code(stage: str) -> tuple[Path, ...]:
    """Sorted files the stage function `stage` of stages.py runs (stages.py included)."""
    if stage not in STAGES:
        raise ValueError(f"stage {stage!r}: expected one of {', '.join(STAGES)}")
    path = PACKAGE / "stages.py"
    tree = _parse(path)
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    imported = _imports(ast.Module(body=[n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom, ast.If))],
                                   type_ignores=[]), "taskselect")
    files, done, todo = {path}, set(), [stage]
    while todo:
        name = todo.pop()
        if name in done:
            continue
        done.add(name)
        for used in _names_used(functions[name]):
            if used in functions:
                todo.append(used)
            elif used in imported and _module_file(imported[used]):
                files |= module_closure(imported[used])
    return tuple(sorted(files))


def dvc_deps(stage: str) -> list[str]:
    """stage_code as dvc.yaml lists it: paths from the project root, a package directory
    standing for its files when the stage runs all of them."""
    files = set(stage_code(stage))
    deps = set(files)
    for package in {f.parent for f in files if f.parent != PACKAGE}:
        members = set(package.rglob("*.py"))
        if members <= files:
            deps = (deps - members) | {package}
    return sorted(str(p.relative_to(PACKAGE.parent)) for p in deps)
