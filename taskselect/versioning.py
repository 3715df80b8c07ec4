"""Recording a pipeline run in the project's DVC repository.

`dvc repro` records its runs itself. A run started elsewhere (the Prefect flow) writes the same
artifacts, then calls `record_run`: params.yaml is brought up to the run's parameters (as
`dvc exp run -S` would), `dvc commit` hashes every stage's deps and outs into dvc.lock (so
`dvc status` is clean and `dvc repro` has nothing to do), and `dvc exp save` keeps the run
as a DVC experiment that `dvc exp show` lists and `dvc exp apply` restores.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import yaml
from ruamel.yaml import YAML

from taskselect.config import DataParams, Params, flatten, validate_params
from taskselect.errors import TaskselectError
from taskselect.io import atomic_path, file_hash

log = logging.getLogger(__name__)

OWN_FILES = Path("data") / "own"  # dvc.yaml's prepare stage depends on this directory


def experiment_files(root: Path) -> list[str]:
    """params.yaml, dvc.lock and every output ROOT/dvc.yaml keeps out of DVC's cache (cache: false,
    for git): untracked until the user commits them, an experiment must hold them anyway."""
    stages = (yaml.safe_load((root / "dvc.yaml").read_text()) or {}).get("stages", {})
    uncached = [path for stage in stages.values() for kind in ("outs", "metrics", "plots")
                for entry in stage.get(kind, []) if isinstance(entry, dict)
                for path, options in entry.items() if (options or {}).get("cache") is False]
    return ["params.yaml", "dvc.lock", *uncached]


def dvc_project(data_dir: str | Path) -> Path | None:
    """The DVC project whose dvc.yaml describes `data_dir` (that is, `data_dir` is ROOT/data)."""
    data_dir = Path(data_dir).resolve()
    root = data_dir.parent
    if data_dir.name == "data" and (root / "dvc.yaml").is_file() and (root / ".dvc").is_dir():
        return root
    return None


def check_own_files(data: DataParams, data_dir: str | Path) -> None:
    """Refuse, before anything is written, your own files outside ROOT/data/own when the artifacts
    go to a DVC project's data/: dvc.yaml's prepare stage depends on that directory, so that
    `dvc repro` remakes the run when a file there changes; a change elsewhere it would not see."""
    root = dvc_project(data_dir)
    if root is None or not data.custom:
        return
    own = (root / OWN_FILES).resolve()
    for role in ("pool", "query", "test"):
        path = getattr(data, role)
        if path is not None and not Path(path).resolve().is_relative_to(own):
            raise TaskselectError(f"data.{role} {path}: outside {own}, the directory of your own files that the DVC "
                                  f"project {root} tracks (dvc.yaml's prepare stage depends on it, so `dvc repro` "
                                  "reruns when they change); copy the file there, or give the run another data directory "
                                  "(--data-dir; data_dir in the Prefect form)")


def records_run(root: Path | None, out_dir: str | Path) -> bool:
    """Whether a run in DVC project ROOT's data/ that reports to `out_dir` is recorded in ROOT's
    DVC state (dvc.lock and an experiment): it is when `out_dir` is data/results, the results
    dvc.yaml declares."""
    return root is not None and Path(out_dir).resolve() == root / "data" / "results"


def check_recordable(data_dir: str | Path, out_dir: str | Path) -> None:
    """Refuse, before anything is computed, a run that DVC would fail to record at its end:
    `dvc commit` does not write a dvc.lock that git ignores."""
    root = dvc_project(data_dir)
    if not records_run(root, out_dir):
        return
    try:
        said = subprocess.run(["git", "check-ignore", "-v", "dvc.lock"], cwd=root, capture_output=True, text=True)
    except OSError:  # no git: nothing ignores it
        return
    if said.returncode == 0:  # "<file>:<line>:<pattern>\tdvc.lock"
        where = said.stdout.split("\t")[0]
        raise TaskselectError(f"{root / 'dvc.lock'}: git ignores it ({where}), so DVC cannot record this run "
                              "(dvc commit refuses an ignored dvc.lock); remove that pattern, or write the "
                              "results elsewhere with --out")


def dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True)


def _said(result: subprocess.CompletedProcess) -> str:
    """What a failed command said (DVC writes some errors to stdout)."""
    said = "\n".join(s.strip() for s in (result.stderr, result.stdout) if s.strip())
    return said or f"exit code {result.returncode}, no message"


def left_by_earlier_runs(root: Path, own: list[str]) -> list[str]:
    """What ROOT/params.yaml says other than the committed params.yaml (git HEAD), 'key: committed
    -> now' for each parameter this run's options (`own`: their dotted keys) do not set: values an
    earlier run with options wrote there (record_run), which this run uses unless told otherwise.
    Empty without git or a committed params.yaml; both files are compared as validated parameters,
    so a default the committed file leaves out is not a difference."""
    try:
        shown = subprocess.run(["git", "show", "HEAD:params.yaml"], cwd=root, capture_output=True, text=True)
        now = (root / "params.yaml").read_text()
    except OSError:
        return []
    if shown.returncode != 0:
        return []
    try:
        committed = flatten(validate_params(yaml.safe_load(shown.stdout) or {}).model_dump(mode="json"))
    except (TaskselectError, yaml.YAMLError):  # an old commit's parameters: nothing to compare with
        return []
    current = flatten(validate_params(yaml.safe_load(now) or {}, str(root / "params.yaml")).model_dump(mode="json"))
    return [f"{key}: {_json(committed.get(key))} -> {_json(value)}" for key, value in current.items()
            if _json(committed.get(key)) != _json(value) and not any(key == o or key.startswith(o + ".") for o in own)]


def sync_params_file(root: Path, params: Params) -> list[str]:
    """Write `params` into ROOT/params.yaml, keeping its comments; return what changed, one
    'key: old -> new' per parameter (empty: the file already said so)."""
    path = root / "params.yaml"
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 4096  # never fold a long value (paths, URIs) onto a second line
    # null as the file writes it, not ruamel's empty value: a rewrite leaves the other lines alone
    rt.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    document = rt.load(path) if path.is_file() else {}
    changes: list[str] = []
    _merge(document, params.model_dump(mode="json"), "", changes)
    if changes:
        with atomic_path(path) as tmp, open(tmp, "w") as fh:  # an interrupted write leaves the file as it was
            rt.dump(document, fh)
    return changes


def _json(value) -> str:
    return json.dumps(value, sort_keys=True)


def _merge(node, values: dict, prefix: str, changes: list[str]) -> None:
    # Compared as JSON, not with ==: 30.0 == 30, but DVC names a matrix stage's outputs after
    # the value as written, and a count must stay an int (data/selections/tsds-30-0).
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(node.get(key), dict):
            _merge(node[key], value, f"{prefix}{key}.", changes)
        elif _json(node.get(key)) != _json(value):
            changes.append(f"{prefix}{key}: {_json(node.get(key))} -> {_json(value)}")
            node[key] = value


def lock_hashes(root: Path) -> dict[str, str]:
    """{out path: md5} for every output dvc.lock records (empty if there is no lock yet); a file's
    md5 is that of its bytes now (DVC's md5 of a file), since the stage running this (the report
    under `dvc repro`) has rewritten its outputs and DVC records them in dvc.lock only after it ends."""
    lock = root / "dvc.lock"
    if not lock.is_file():
        return {}
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    return {out["path"]: file_hash(root / out["path"], "md5")
            if (root / out["path"]).is_file() else out["md5"]
            for stage in stages.values() for out in stage.get("outs", []) if "md5" in out}


def record_run(root: Path, params: Params, name: str) -> dict:
    """Make ROOT's DVC state describe the artifacts just written; keep them as experiment `name`.

    Returns {"params_changed", "experiment" (None if it could not be saved), "hashes"}.
    """
    changed = sync_params_file(root, params)
    if changed:
        log.warning("params.yaml now holds this run's parameters, so that DVC describes the artifacts "
                    "(as `dvc exp run -S` does): %s; later runs without these options use them "
                    "(`git checkout params.yaml` restores the committed ones)", "; ".join(changed))
    committed = dvc(root, "commit", "--force")
    if committed.returncode != 0:
        raise RuntimeError(f"dvc commit failed in {root}: {_said(committed)}")
    includes = [arg for f in experiment_files(root) if (root / f).exists() for arg in ("--include-untracked", f)]
    saved = dvc(root, "exp", "save", "--name", name, "--force", *includes)
    experiment = name if saved.returncode == 0 else None
    if experiment is None:  # e.g. a repository without a first commit
        log.warning("not saved as a DVC experiment: %s", _said(saved).splitlines()[-1])
    else:
        log.info("recorded in DVC: dvc.lock updated, experiment %r (dvc exp show)", name)
    return {"params_changed": bool(changed), "experiment": experiment, "hashes": lock_hashes(root)}
