"""DVC on a fresh copy of the project: `dvc repro`, experiments, a remote, and agreement with Prefect."""

import hashlib
import json
import os
import shutil
import subprocess

import mlflow
import pytest
import yaml

from conftest import BIN, ROOT, assert_one_line_error, committed_project, taskselect
from taskselect.config import load_params

pytestmark = pytest.mark.e2e

UPSTREAM = ("prepare", "embed", "index")


def dvc(*args, cwd):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([str(BIN / "dvc"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def ran(result) -> set[str]:
    """Stages a `dvc repro` actually ran."""
    return {line.split("'")[1] for line in result.stdout.splitlines() if line.startswith("Running stage")}


def git(*args, cwd):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


def git_out(*args, cwd) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def shown_name(shown, alpha) -> str:
    """The name of the experiment `dvc exp show --json` lists with select.tsds.alpha = alpha."""
    (name,) = [e["name"] for commit in shown for e in (commit.get("experiments") or [])
               if e["revs"][0]["data"]["params"]["params.yaml"]["data"]["select"]["tsds"]["alpha"] == alpha]
    return name


def digests(root):
    return {p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "data").rglob("*")) if p.is_file() and ".gitignore" not in p.name}


@pytest.fixture
def project(tmp_path, embedding_cache):
    """A fresh copy of the project, committed, with params.yaml set to the small profile."""
    return committed_project(tmp_path / "project", embedding_cache)


def test_repro_experiments_and_remote(project):
    first = dvc("repro", cwd=project)
    assert first.returncode == 0, first.stdout + first.stderr
    assert set(UPSTREAM) | {"select@tsds-0.1-0", "finetune@random-0.1-0", "evaluate@full-0.1-0", "report"} <= ran(first)
    records = json.loads((project / "data" / "results" / "results.json").read_text())
    assert {r["method"] for r in records} == {"tsds", "auto", "random", "full"}
    # every file the report stage writes is one dvc.yaml declares: DVC hashes, restores and removes it
    report = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]["report"]
    declared = {next(iter(e)) if isinstance(e, dict) else e for kind in ("outs", "metrics", "plots")
                for e in report.get(kind, [])}
    assert {f"data/results/{p.name}" for p in (project / "data" / "results").iterdir()
            if p.name != ".gitignore"} == declared

    second = dvc("repro", cwd=project)
    assert second.returncode == 0 and ran(second) == set()
    assert "up to date" in second.stdout

    # An experiment that changes a TSDS parameter (to below the alpha the budget forces, about 0.48
    # here) and the runtime embed.batch_size: nothing upstream of selection reruns.
    experiment = dvc("exp", "run", "-S", "select.tsds.alpha=0.3", "-S", "embed.batch_size=16", "-n", "alpha-0.3",
                     cwd=project)
    assert experiment.returncode == 0, experiment.stdout + experiment.stderr
    assert {"select@tsds-0.1-0", "finetune@tsds-0.1-0", "evaluate@tsds-0.1-0", "report"} <= ran(experiment)
    assert not ran(experiment) & set(UPSTREAM)
    # random's selection is reproduced byte for byte, so its model is not retrained
    assert "finetune@random-0.1-0" not in ran(experiment)
    shown = json.loads(dvc("exp", "show", "--json", cwd=project).stdout)
    exps = [e for commit in shown for e in (commit.get("experiments") or [])]
    exp = next(e for e in exps if e.get("name") == "alpha-0.3")["revs"][0]["data"]
    assert exp["params"]["params.yaml"]["data"]["select"]["tsds"]["alpha"] == 0.3
    tsds = exp["metrics"]["data/results/metrics.json"]["data"]["tsds"]["10%"]
    assert 0 < tsds["f1_macro"] <= 1 and tsds["seeds"] == 1
    # the verdict beside it: the difference from random and whether its paired interval clears 0
    random = exp["metrics"]["data/results/metrics.json"]["data"]["random"]["10%"]
    assert tsds["delta_random"] == pytest.approx(tsds["f1_macro"] - random["f1_macro"], abs=1.5e-4)  # each rounded
    assert tsds["delta_random_holds"] in (0, 1)
    # its MLflow run: named and tagged by the experiment, with the hashes dvc.lock now holds (the
    # report's own outputs among them, written by the stage that logged them)
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    (logged,) = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id], "tags.kind = 'pipeline'")
                 if r.data.tags.get("dvc.experiment") == "alpha-0.3"]
    assert logged.info.run_name.endswith(" · alpha-0.3")
    lock = {out["path"]: out["md5"] for stage in yaml.safe_load((project / "dvc.lock").read_text())["stages"].values()
            for out in stage.get("outs", [])}
    assert {path: logged.data.tags[f"dvc.{path}"] for path in lock} == lock

    before = digests(project)
    assert dvc("push", cwd=project).returncode == 0
    shutil.rmtree(project / ".dvc" / "cache")
    for out in ("prepared", "embeddings", "index", "selections", "models", "evaluations"):
        shutil.rmtree(project / "data" / out)
    pulled = dvc("pull", cwd=project)
    assert pulled.returncode == 0, pulled.stderr
    assert digests(project) == before

    # Your own files: outside data/own, a run or a stage in the project's data/ is refused before
    # it writes (DVC could not see them change); a file changed in data/own makes prepare stale.
    elsewhere = project / "pool.csv"
    elsewhere.write_text("text,label\nhello,greeting\n")
    files = ("--pool", str(elsewhere), "--query", str(elsewhere), "--test", str(elsewhere))
    for command in ("prepare", "run"):
        assert_one_line_error(taskselect(command, *files, cwd=project),
                              f"data.pool {elsewhere}: outside {project / 'data' / 'own'}")
    assert digests(project) == before
    assert dvc("status", "--json", cwd=project).stdout.strip() == "{}"
    shutil.copy(elsewhere, project / "data" / "own" / "pool.csv")
    assert "prepare" in json.loads(dvc("status", "--json", cwd=project).stdout)


def test_a_prefect_run_leaves_dvc_up_to_date_and_records_other_parameters(project, prefect_api):
    from flows.pipeline import pipeline

    params = load_params(project / "params.yaml")
    pipeline(params=params, data_dir=str(project / "data"), out_dir=str(project / "data" / "results"))
    status = dvc("status", "--json", cwd=project)
    assert json.loads(status.stdout) == {}, status.stdout
    assert ran(dvc("repro", cwd=project)) == set()

    # Other parameters: params.yaml now says how the artifacts were made, and the run is an experiment.
    # A budget of 30 rows stays the int 30 there, as DVC names its outputs (tsds-30-0).
    other = params.model_copy(deep=True)
    other.select.tsds.alpha = 0.4
    other.select.budgets = [30]
    pipeline(params=other, data_dir=str(project / "data"), out_dir=str(project / "data" / "results"))
    assert load_params(project / "params.yaml").select.tsds.alpha == 0.4
    assert yaml.safe_load((project / "params.yaml").read_text())["select"]["budgets"] == [30]
    assert "# taskselect parameters" in (project / "params.yaml").read_text()  # comments kept
    assert (project / "data" / "selections" / "tsds-30-0" / "selection.parquet").is_file()
    assert json.loads(dvc("status", "--json", cwd=project).stdout) == {}
    assert ran(dvc("repro", cwd=project)) == set()
    shown = json.loads(dvc("exp", "show", "--json", cwd=project).stdout)
    alphas = [e["revs"][0]["data"]["params"]["params.yaml"]["data"]["select"]["tsds"]["alpha"]
              for commit in shown for e in (commit.get("experiments") or [])]
    assert 0.4 in alphas
    # the experiment holds the run's uncached outputs, which git does not track yet
    (ref,) = [r for r in git_out("for-each-ref", "--format=%(refname)", "refs/exps", cwd=project).split()
              if r.endswith("/" + shown_name(shown, 0.4))]
    run_json = json.loads(git_out("show", f"{ref}:data/results/run.json", cwd=project))
    assert run_json["params"]["select"]["tsds"]["alpha"] == 0.4
    assert "tsds" in git_out("show", f"{ref}:data/results/summary.csv", cwd=project)


def test_recording_names_what_it_wrote_into_params_yaml_and_why_dvc_failed(tmp_path, caplog):
    """A run's parameters given on the command line stay in params.yaml (DVC must describe the
    artifacts), and the run says so; a failing dvc command's own words reach the error."""
    import logging

    from taskselect.versioning import record_run, sync_params_file

    git("init", "-q", cwd=tmp_path)
    assert dvc("init", "-q", cwd=tmp_path).returncode == 0
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "dvc.yaml").write_text("stages:\n  prepare:\n    cmd: taskselect prepare\n    params: [data]\n"
                                       "    outs: [data/prepared]\n")
    params = load_params(tmp_path / "params.yaml", ["data.pool=/x/pool.csv", "track.tracking_uri=http://h:5000",
                                                   "select.budgets=[30, 2]"])
    with caplog.at_level(logging.WARNING, logger="taskselect.versioning"), pytest.raises(RuntimeError) as failed:
        record_run(tmp_path, params, "x")  # data/prepared was never made
    said = str(failed.value).split(": ", 1)[1]
    assert str(failed.value).startswith("dvc commit failed") and "data/prepared" in said
    warning, = [r.getMessage() for r in caplog.records]
    for change in ('data.pool: null -> "/x/pool.csv"', 'track.tracking_uri: null -> "http://h:5000"',
                   "select.budgets: [0.05] -> [30, 2]"):
        assert change in warning
    assert yaml.safe_load((tmp_path / "params.yaml").read_text())["select"]["budgets"] == [30, 2]
    assert sync_params_file(tmp_path, params) == []  # nothing more to say
    assert sync_params_file(tmp_path, params.model_copy(update={"select": params.select.model_copy(
        update={"budgets": [30.0]})})) == ["select.budgets: [30, 2] -> [30.0]"]


def test_a_run_dvc_could_not_record_is_refused_before_anything_is_computed(tmp_path):
    """`dvc commit` refuses a dvc.lock that git ignores: a run recorded in that project would fail
    at its very end, after every stage; it is refused at once instead, naming the pattern."""
    from taskselect.errors import TaskselectError
    from taskselect.versioning import check_recordable

    git("init", "-q", cwd=tmp_path)
    assert dvc("init", "-q", cwd=tmp_path).returncode == 0
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    (tmp_path / ".gitignore").write_text("/mlruns\n/dvc.lock\n")
    refused = taskselect("run", "-S", "track.enabled=false", cwd=tmp_path)
    assert_one_line_error(refused, "dvc.lock: git ignores it (.gitignore:2:/dvc.lock)", "--out")
    assert not (tmp_path / "data").exists()
    with pytest.raises(TaskselectError, match="git ignores it"):
        check_recordable(tmp_path / "data", tmp_path / "data" / "results")
    check_recordable(tmp_path / "data", tmp_path / "elsewhere")  # not recorded in DVC: nothing to refuse
    (tmp_path / ".gitignore").write_text("/mlruns\n")
    check_recordable(tmp_path / "data", tmp_path / "data" / "results")


def test_a_run_names_what_an_earlier_run_left_in_params_yaml(tmp_path, monkeypatch):
    """After a run with options, params.yaml holds them: a later run without them uses them, and
    says so in one line before the flow. The values its own options set are not named; a run
    refused before the flow stays one error line, which names them."""
    from taskselect.cli import left_note
    from taskselect.versioning import sync_params_file

    git("init", "-q", cwd=tmp_path)
    assert dvc("init", "-q", cwd=tmp_path).returncode == 0
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    git("add", "-A", cwd=tmp_path)
    git("commit", "-qm", "committed", cwd=tmp_path)
    monkeypatch.chdir(tmp_path)
    data, results = tmp_path / "data", tmp_path / "data" / "results"
    assert left_note(None, data, results, []) is None
    committed = (tmp_path / "params.yaml").read_text()
    sync_params_file(tmp_path, load_params(tmp_path / "params.yaml", ["select.budgets=[99999]", "select.tsds.alpha=0.5"]))
    # the rewrite touches the changed values' lines alone (ruamel would write null as an empty value)
    changed = [line for line in (tmp_path / "params.yaml").read_text().splitlines() if line not in committed.splitlines()]
    assert [line.strip() for line in changed] == ["- 99999", "alpha: 0.5"]

    note = left_note(None, data, results, ["track.enabled=false"])
    assert note.startswith("note: params.yaml differs from the committed one") and "git checkout params.yaml" in note
    assert "select.budgets: [0.05] -> [99999]; select.tsds.alpha: 0.9 -> 0.5" in note
    # its own options set the budgets: only the alpha is an earlier run's
    own = left_note(None, data, results, ["select.budgets=[0.05]", "track.enabled=false"])
    assert "select.tsds.alpha: 0.9 -> 0.5" in own and "select.budgets" not in own
    # another parameters file, or results kept out of the project's DVC state: nothing to say
    assert left_note(tmp_path / "params.yaml", data, results, []) is None
    assert left_note(None, data, tmp_path / "elsewhere", []) is None

    refused = taskselect("run", "-S", "track.enabled=false", cwd=tmp_path)
    assert_one_line_error(refused, "budget 99999")
    # the refusal says where the value it refuses came from, in the same line
    assert "(params.yaml holds values an earlier run left: select.budgets: [0.05] -> [99999];" in refused.stderr
    # also when the parameters themselves are refused: a preset beside the alpha an earlier run left
    preset = taskselect("run", "-S", "select.budgets=[0.05]", "-S", "select.tsds.preset=paper-instruction", cwd=tmp_path)
    assert_one_line_error(preset, "alpha 0.5 would be ignored", "params.yaml holds values an earlier run left: select.tsds.alpha: 0.9 -> 0.5")
    assert not data.exists()
