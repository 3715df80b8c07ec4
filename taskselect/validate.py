"""What can be checked before a run writes anything, checked in one place.

Every front end goes through here before its first write: `taskselect run` checks the whole run
(building the benchmark in memory) before its Prefect flow starts, the prepare stage checks the
benchmark it built against the selections to come before saving it (so a budget larger than the
pool never replaces the previous run's prepared data, embeddings or index), and every stage
command checks its parameters and options against what is already prepared. A problem is one
TaskselectError line naming the parameter, option, file or column and what was expected.
"""

from __future__ import annotations

import logging
import os
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from taskselect.config import Params, SelectParams
from taskselect.embedding import resolve_model_path
from taskselect.errors import TaskselectError
from taskselect.io import read_json
from taskselect.selectors import REGISTRY, filtered, make_selector, resolve_budget, spec
from taskselect.selectors.filtering import check_kept

if TYPE_CHECKING:  # pandas: not at the start of select-embeddings, which checks its --out here
    from taskselect.data import Benchmark


BUDGET_FORMS = "a row count (500), a fraction of the pool in (0, 1) (0.05) or a percentage (5%)"


def parse_budget(text: str, option: str = "--budget") -> float | int:
    """A budget given on the command line, checked as select.budgets checks it (see budget_value)."""
    try:
        return SelectParams(budgets=[budget_value(text)]).budgets[0]
    except (ValueError, ArithmeticError, ValidationError) as exc:
        reason = exc.errors()[0]["msg"].removeprefix("Value error, ") if isinstance(exc, ValidationError) else "not a number"
        raise TaskselectError(f"{option} {text!r}: expected {BUDGET_FORMS}; {reason}") from None


def budget_value(text: str) -> int | float:
    """The budget a text names: a whole row count (`500`, `1e3`), a fraction of the pool (`0.05`)
    or a percentage of it (`5%`), as select.budgets holds it (counts as int: DVC's matrix passes
    `--budget 30` for the run whose outputs it names tsds-30-0, and 30.0 would name them
    tsds-30.0-0). ValueError (or ArithmeticError) if it names no number."""
    number = text.strip().removesuffix("%")
    if number != text.strip():  # exact: 7% is 0.07, not 0.07000000000000001
        return float(Decimal(number) / 100)
    value = float(text)
    return int(value) if value.is_integer() and "." not in text else value


def check_params(params: Params) -> None:
    """Checks that need no data: each selector of select.methods accepts its section, the models
    exist locally, and the directories to write into can be written."""
    for method in params.select.methods:
        make_selector(method, params.select)  # each selector checks its own parameters
    resolve_model_path(params.embed.model)
    if params.finetune.trainer == "transformer":
        try:
            resolve_model_path(params.finetune.transformer.model)
        except TaskselectError as exc:
            raise TaskselectError(str(exc).replace("embed.model", "finetune.transformer.model", 1)) from None
    check_writable_dir(Path(params.embed.cache_dir), "embed.cache_dir")


def check_writable_dir(path: Path, what: str) -> None:
    """`path` is, or can be made, a directory this process can write into (nothing is created)."""
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing != path and not existing.is_dir():
        raise TaskselectError(f"{path}: cannot create the directory ({what}): {existing} is a file")
    if existing == path and not path.is_dir():
        raise TaskselectError(f"{path}: expected a directory ({what}), found a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise TaskselectError(f"{path}: not writable ({what}): no write permission on {existing}")


def check_selections(select: SelectParams, budgets: list[float], pool_rows: int, source: str) -> None:
    """Every budget fits a pool of `pool_rows` rows, and the rows select.filter keeps of it when
    the filter applies; source: where the pool comes from, named in the error (your pool file,
    the benchmark, or the prepared data)."""
    cleaned = any(filtered(method, select) for method in select.methods)
    for budget in budgets:
        try:
            size = resolve_budget(budget, pool_rows)
        except TaskselectError as exc:
            raise TaskselectError(f"select.budgets: {exc} ({source})") from None
        if cleaned:
            try:
                check_kept(select.filter.keep, pool_rows, size)
            except TaskselectError as exc:
                raise TaskselectError(f"{exc} ({source})") from None


def check_unlabelled(select: SelectParams, source: str) -> None:
    """Every method of `select` can select from a pool without labels (`source` names it): the
    registry declares which read the pool's labels (reads="corpus"), and select.filter scores
    text-label pairs."""
    for method in select.methods:
        if spec(method).needs_labels:
            usable = ", ".join(name for name, s in REGISTRY.items() if not s.needs_labels)
            raise TaskselectError(
                f"select.methods: {method!r} reads the pool's labels (it is registered with reads='corpus'), "
                f"and {source} has none; methods that select without labels: {usable}"
            )
        if filtered(method, select):
            raise TaskselectError(
                f"select.filter.method: {select.filter.method!r} scores the pool's text-label pairs, and {source} "
                "has no labels; set select.filter.method=none"
            )


def check_queries(select: SelectParams, queries: int, source: str) -> None:
    """Every method of `select` can select with `queries` query examples (`source` names them)."""
    for check in (spec(method).query_problem for method in select.methods):
        if check and (problem := check(select, queries)):
            raise TaskselectError(f"{problem} ({source})")


def check_benchmark(benchmark: Benchmark, select: SelectParams) -> None:
    """The selections `select` plans can all be made from this benchmark's pool and query set."""
    source = "data.pool" if benchmark.task == "custom" else f"benchmark {benchmark.task}"
    if not benchmark.pool_labelled:
        check_unlabelled(select, source)
    check_selections(select, select.budgets, len(benchmark.pool), source)
    check_queries(select, len(benchmark.query), "data.query" if benchmark.task == "custom" else source)


def check_run(params: Params, data_dir: Path, out_dir: Path) -> None:
    """Everything a whole run can check before its first write: the parameters, the data (the
    benchmark is built in memory: files, columns, label spaces), the selections against the pool,
    and the directories it writes into."""
    check_params(params)
    check_writable_dir(data_dir, "--data-dir")
    check_writable_dir(out_dir, "--out")
    from taskselect.data import prepare_benchmark  # pandas where used
    from taskselect.versioning import check_own_files

    check_own_files(params.data, data_dir)

    # The run's prepare stage builds the same benchmark and logs its warnings (pool rows left out,
    # labels no query shows) in the run's log and the Prefect UI; said here too, each came twice.
    data_log = logging.getLogger("taskselect.data")
    level = data_log.level
    data_log.setLevel(logging.ERROR)
    try:
        benchmark = prepare_benchmark(params.data)
    finally:
        data_log.setLevel(level)
    check_benchmark(benchmark, params.select)


def check_stage(params: Params, data_dir: Path, budgets: list[float] | None = None) -> None:
    """What a stage command can check before it writes: the parameters, and the selections
    against the pool already prepared in `data_dir` (when there is one).

    budgets: the budgets the command runs (default: select.budgets).
    """
    check_params(params)
    check_writable_dir(data_dir, "--data-dir")
    meta_path = data_dir / "prepared" / "benchmark.json"
    if meta_path.is_file():
        meta = read_json(meta_path)
        if not meta.get("pool_labelled", True):
            check_unlabelled(params.select, f"the pool in {data_dir / 'prepared'}")
        check_selections(params.select, params.select.budgets if budgets is None else budgets, meta["rows"]["pool"],
                         str(data_dir / "prepared"))
        check_queries(params.select, meta["rows"]["query"], str(data_dir / "prepared"))
