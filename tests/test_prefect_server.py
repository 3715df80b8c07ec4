"""The Prefect UI end to end: a real `prefect server` (SQLite), the deployments served by
`taskselect serve` from a fresh copy of the project, runs triggered through the API as the UI's
Run button does, and the UI itself in headless Chromium."""

import copy
import json
import os
import re
import subprocess
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import mlflow
import numpy as np
import pytest

from conftest import BIN, ROOT, UI_TIMEOUT_MS, committed_project, free_port, launch_chromium, stop, untimed, wait_until_up
from taskselect.config import SelectParams, load_params
from taskselect.selectors import budget_label

pytestmark = pytest.mark.e2e

PIPELINE = "taskselect-pipeline/taskselect"
SWEEP = "taskselect-sweep/taskselect"
RUN_TIMEOUT = 900  # seconds; a run takes about a minute on a quiet machine


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`prefect server start` on a free port, its own PREFECT_HOME and SQLite database."""
    tmp = tmp_path_factory.mktemp("prefect-server")
    url = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "PREFECT_HOME": str(tmp / "home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp / 'prefect.db'}",
           "PREFECT_UI_API_URL": f"{url}/api"}
    env.pop("PREFECT_API_URL", None)
    with open(tmp / "server.log", "w") as log:
        proc = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1]],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        wait_until_up(f"{url}/api/health", proc, tmp / "server.log")
        yield url
        stop(proc)


@pytest.fixture(scope="module")
def project(tmp_path_factory, embedding_cache):
    """A fresh copy of the project, params.yaml set to the small profile; with
    TASKSELECT_UI_PROFILE=default (`make docs`: screenshots of the default run), to the project's
    own params.yaml, its embeddings taken from the project's cache."""
    root = committed_project(tmp_path_factory.mktemp("served") / "project", embedding_cache)
    if os.environ.get("TASKSELECT_UI_PROFILE") == "default":
        from taskselect.versioning import sync_params_file

        cache = (ROOT / load_params(ROOT / "params.yaml").embed.cache_dir).resolve()
        sync_params_file(root, load_params(ROOT / "params.yaml", [f"embed.cache_dir={cache}"]))
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "default profile"],
                       cwd=root, check=True, capture_output=True)
    return root


@pytest.fixture(scope="module")
def served(server, project):
    """`taskselect serve` run from the project copy (its code, its params.yaml) against the server."""
    env = {**os.environ, "PREFECT_API_URL": f"{server}/api", "PREFECT_HOME": str(project.parent / "serve-home"),
           "PREFECT_RUNNER_POLL_FREQUENCY": "1", "PYTHONPATH": str(project)}
    log_path = project.parent / "serve.log"
    defaults = load_params(project / "params.yaml")  # runs in data/ write theirs into params.yaml (DVC)
    with open(log_path, "w") as log:
        proc = subprocess.Popen([str(BIN / "taskselect"), "serve"], cwd=project, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        wait_until_up(f"{server}/api/deployments/name/{PIPELINE}", proc, log_path)
        wait_until_up(f"{server}/api/deployments/name/{SWEEP}", proc, log_path)
        yield defaults
        stop(proc)


@contextmanager
def api(server):
    """A client of the test's server; the session's temporary Prefect API stays untouched."""
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: f"{server}/api"}):
        with get_client(sync_client=True) as client:
            yield client


def trigger(server, deployment, parameters):
    """What the UI's Run button does: a flow run of the deployment; waits for its final state."""
    from prefect.deployments import run_deployment

    with api(server):
        return run_deployment(deployment, parameters=parameters, timeout=RUN_TIMEOUT, poll_interval=1)


def task_states(server, flow_run) -> dict[str, str]:
    """{task run name: state name} of a flow run."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with api(server) as client:
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id])))
    return {run.name: run.state.name for run in task_runs}


def state_of(states: dict[str, str], task: str) -> str:
    """The state of the one run of `task`: named 'embed-3fa' for embed, or exactly 'select-tsds-0.1-0'."""
    (state,) = [s for name, s in states.items() if name == task or name.rsplit("-", 1)[0] == task]
    return state


def artifacts(server, flow_run, what: str = "data") -> dict[str, object]:
    """{key: data} of the artifacts a flow run published ({key: description} with what="description")."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with api(server) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run.id])))
    if what == "description":
        return {a.key: a.description for a in found}
    return {a.key: json.loads(a.data) if a.type == "table" else a.data for a in found}


def log_line(server, flow_run, prefix: str, timeout: float = 60) -> str:
    """The first of flow_run's log lines in the API that starts with `prefix`. A run's logs are
    sent in batches, so they may arrive after its final state: wait for them as the UI would."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    deadline = time.monotonic() + timeout
    while True:
        logs = []
        with api(server) as client:  # page by page: the API answers 200 lines at most
            while page := client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run.id])),
                                           limit=200, offset=len(logs)):
                logs += page
        found = [entry.message for entry in logs if entry.message.startswith(prefix)]
        if found or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert found, f"no log line of flow run {flow_run.name} starts with {prefix!r} after {timeout} s"
    return found[0]


@pytest.fixture(scope="module")
def runs(server, served, project):
    """A run with parameters changed in the form, one that fails in a stage, the first run again,
    and a one-target sweep whose MLflow server is down."""
    with api(server) as client:
        deployment = client.read_deployment_by_name(PIPELINE)
    params = copy.deepcopy(deployment.parameters["params"])  # the form starts from these
    params["select"]["seeds"] = [0, 1]
    params["select"]["tsds"]["alpha"] = 0.8
    results = project / "data" / "results" / "results.json"

    first = trigger(server, PIPELINE, {"params": params})
    first_results = json.loads(results.read_text()) if results.is_file() else None
    broken = copy.deepcopy(params)
    broken["select"]["budgets"] = [100000]
    failed = trigger(server, PIPELINE, {"params": broken})
    after_failure = json.loads(results.read_text()) if results.is_file() else None
    again = trigger(server, PIPELINE, {"params": params})

    dead = f"http://127.0.0.1:{free_port()}"
    sweep_params = copy.deepcopy(params)
    sweep_params["select"].update(methods=["tsds", "random"], seeds=[0])
    sweep_params["track"]["tracking_uri"] = dead
    sweep = trigger(server, SWEEP, {"targets": ["airline_sentiment"], "params": sweep_params})
    return SimpleNamespace(deployment=deployment, params=params, first=first, first_results=first_results,
                           failed=failed, after_failure=after_failure, again=again, sweep=sweep, dead=dead)


def test_the_deployments_form_has_params_yaml_defaults_and_descriptions(server, served, project):
    with api(server) as client:
        deployment = client.read_deployment_by_name(PIPELINE)
        sweep = client.read_deployment_by_name(SWEEP)
    assert deployment.parameters["params"] == served.model_dump(mode="json")
    # the copy's params.yaml (the small profile, or the project's own under `make docs`), not ROOT's
    expected = load_params(project / "params.yaml").data.cap_per_source
    assert deployment.parameters["params"]["data"]["cap_per_source"] == expected
    if os.environ.get("TASKSELECT_UI_PROFILE") != "default":
        assert expected != load_params(ROOT / "params.yaml").data.cap_per_source
    schema = deployment.parameter_openapi_schema
    alpha = schema["definitions"]["TSDSParams"]["properties"]["alpha"]
    assert alpha["description"].startswith("Alignment vs diversity") and alpha["maximum"] == 1
    assert "DVC workspace" in schema["properties"]["data_dir"]["description"]
    assert schema["definitions"]["DataParams"]["properties"]["target"]["enum"][0] == "airline_sentiment"
    assert "targets" in sweep.parameter_openapi_schema["properties"]
    assert sweep.parameters["params"] == deployment.parameters["params"]


def test_a_run_from_the_form_completes_and_publishes_its_comparison(server, runs, project):
    run, records = runs.first, runs.first_results
    assert run.state.is_completed(), run.state.message
    assert {(r["method"], r["seed"]) for r in records} == {(m, s) for m in ("tsds", "auto", "random", "full") for s in (0, 1)}
    assert json.loads((project / "data" / "results" / "run.json").read_text())["params"]["select"]["tsds"]["alpha"] == 0.8

    states = task_states(server, run)
    assert state_of(states, "embed") == "Completed" and state_of(states, "index") == "Completed"  # a fresh project
    assert state_of(states, "publish") == "Completed"

    published = artifacts(server, run)
    table = {row["method"]: row for row in published["f1-comparison"]}
    assert set(table) == {"tsds", "auto", "random", "full"}
    tsds = [r["f1_macro"] for r in records if r["method"] == "tsds"]
    random = [r["f1_macro"] for r in records if r["method"] == "random"]
    (budget,) = runs.params["select"]["budgets"]  # the form's budget: the profile's
    assert table["tsds"]["seeds"] == "2" and table["tsds"]["budget"] == budget_label(budget)
    assert table["tsds"]["macro-F1 (mean ± std)"] == f"{np.mean(tsds):.4f} ± {np.std(tsds, ddof=1):.4f}"
    delta = np.mean(tsds) - np.mean(random)
    holds = sum((low > 0) if delta >= 0 else (high < 0) for r in records if r["method"] == "tsds"
                for low, high in [r["delta_ci"]["random"]])
    assert table["tsds"]["Δ vs random"] == f"{delta:+.4f} ({holds}/2)"
    auto_f1 = [r["f1_macro"] for r in records if r["method"] == "auto"]  # and auto against report.against's tsds
    delta = np.mean(auto_f1) - np.mean(tsds)
    holds = sum((low > 0) if delta >= 0 else (high < 0) for r in records if r["method"] == "auto"
                for low, high in [r["delta_ci"]["tsds"]])
    assert table["auto"]["Δ vs tsds"] == f"{delta:+.4f} ({holds}/2)"
    assert "from a random selection of the same size, the full pool and tsds's selection of the same size" in \
        artifacts(server, run, "description")["f1-comparison"]

    note = published["results"]
    assert f"`{project / 'data' / 'results'}`" in note and "f1_vs_budget.png" in note
    assert f"mlflow ui --backend-store-uri sqlite:///{project / 'mlflow.db'}" in note
    auto = next(r for r in records if r["method"] == "auto" and r["seed"] == 0)
    assert f"{auto['slug']}: chose **{auto['select_info']['choice']}**" in note  # and every candidate's score
    low, high = auto["delta_ci"]["full"]  # each selection against the baselines, with the paired interval
    assert f"vs full [{low:+.4f}, {high:+.4f}]" in note.split(f"- {auto['slug']}: ")[1].splitlines()[0]
    parent_id = note.split("parent run `")[1].split("`")[0]
    parent = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}").get_run(parent_id)
    assert parent.data.tags["prefect_flow_run_id"] == str(run.id)

    log_line(server, run, "8/8 scored: ")  # the flow's progress
    log_line(server, run, "prepared airline_sentiment")  # core logs reach the UI


def test_a_failing_stage_fails_the_run_with_its_error_and_keeps_what_was_made(server, runs):
    run = runs.failed
    assert run.state.is_failed()
    assert "TaskselectError: select.budgets: budget 100000: 100000 rows requested but the pool has" in run.state.message
    states = task_states(server, run)
    # the budget is checked against the pool prepare builds, before it replaces the last one
    assert state_of(states, "prepare") == "Failed"
    assert not {"embed", "index", "select", "publish"} & {name.split("-", 1)[0] for name in states}
    assert runs.after_failure == runs.first_results  # the last good results are untouched


def test_a_rerun_takes_embed_and_index_from_the_cache_and_reproduces_the_results(server, runs, project):
    run = runs.again
    assert run.state.is_completed(), run.state.message
    states = task_states(server, run)
    assert state_of(states, "embed") == "Cached" and state_of(states, "index") == "Cached"
    assert state_of(states, "select-tsds-0.1-1") == "Completed"
    records = json.loads((project / "data" / "results" / "results.json").read_text())
    assert untimed(records) == untimed(runs.first_results)


def test_a_sweep_runs_a_subflow_per_target_and_outlives_a_dead_tracking_server(server, runs, project):
    run = runs.sweep
    assert run.state.is_completed(), run.state.message
    workspace = project / "data" / "sweeps" / "airline_sentiment"
    records = json.loads((workspace / "results" / "results.json").read_text())
    assert {r["method"] for r in records} == {"tsds", "random"}
    table = artifacts(server, run)["sweep-f1-comparison"]
    assert [(row["target"], row["method"]) for row in table] == [("airline_sentiment", "tsds"), ("airline_sentiment", "random")]

    with api(server) as client:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

        (subflow,) = client.read_flow_runs(flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run.id])))
    assert subflow.name == "sweep-airline_sentiment" and subflow.state.is_completed()
    states = task_states(server, subflow)
    assert state_of(states, "track") == "Failed"  # after its retries; the run goes on
    warning = log_line(server, subflow, "MLflow logging failed")
    assert f"taskselect track --data-dir {workspace.relative_to(project)} --out {workspace.relative_to(project) / 'results'}" in warning
    assert "not logged" in artifacts(server, subflow)["results"]


@pytest.mark.slow
def test_a_run_started_from_the_ui_form_completes_with_the_budget_changed_there(server, served, project, tmp_path):
    """A person's way in, in headless Chromium (Debian's chromium package): the deployment's
    run form, a budget changed, Submit, the flow run's page until Completed, its f1-comparison
    artifact. Screenshots go to $TASKSELECT_SCREENSHOTS when set (`make docs` sets it to docs/img,
    with TASKSELECT_UI_PROFILE=default), else to a temporary directory."""
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("TASKSELECT_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with api(server) as client:
        deployment = client.read_deployment_by_name(PIPELINE)
    (default,) = served.select.budgets
    budget = 0.05 if default != 0.05 else 0.02
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(UI_TIMEOUT_MS)

        page.goto(f"{server}/deployments")
        expect(page.get_by_text("taskselect-pipeline").first).to_be_visible()
        expect(page.get_by_text("taskselect-sweep").first).to_be_visible()

        page.goto(f"{server}/deployments/deployment/{deployment.id}/run")  # Run > Custom run
        expect(page.get_by_text("Alignment vs diversity").first).to_be_attached()  # the form, with descriptions
        field = page.locator(".schema-form-property").filter(has=page.get_by_text(SelectParams.model_fields["budgets"].description, exact=True)).last
        budgets = field.locator("input[type=number]")
        expect(budgets).to_have_count(1)
        expect(budgets).to_have_value(f"{default:g}")
        budgets.fill(f"{budget:g}")
        page.get_by_text("Which selections to make.").evaluate("e => e.scrollIntoView({block: 'start'})")
        page.mouse.move(700, 500)
        page.mouse.wheel(0, -60)  # the section's title too
        page.screenshot(path=shots / "prefect-run-form.png")
        before = set(deployment_runs(server, deployment.id))
        submit(page)
        (flow_run_id,) = set(deployment_runs(server, deployment.id)) - before
        page.get_by_role("link", name=deployment_runs(server, deployment.id)[flow_run_id], exact=True).first.click()
        page.wait_for_url(re.compile(rf"/runs/flow-run/{flow_run_id}"))
        flow_run = wait_for_final_state(server, flow_run_id)
        assert flow_run.state.is_completed(), flow_run.state.message
        assert flow_run.parameters["params"]["select"]["budgets"] == [budget]
        page.reload()
        expect(page.locator(".state-badge").first).to_have_text(re.compile("Completed"))
        page.get_by_text("Artifacts", exact=True).click()
        expect(page.get_by_text("f1-comparison").first).to_be_visible()
        page.screenshot(path=shots / "prefect-flow-run.png")

        page.get_by_text("f1-comparison").first.click()
        table = page.get_by_role("table")
        expect(table).to_contain_text("macro-F1 (mean ± std)")
        for method in served.select.methods:
            expect(table).to_contain_text(method)
        expect(table).to_contain_text(budget_label(budget))
        expect(table).not_to_contain_text(budget_label(default))
        page.screenshot(path=shots / "prefect-f1-table.png")
        browser.close()
    published = {row["method"]: row for row in artifacts(server, flow_run)["f1-comparison"]}
    assert {row["budget"] for row in published.values()} == {budget_label(budget)}


def submit(page, attempts: int = 3) -> None:
    """Press the run form's Submit until the deployment's Runs tab opens, as a person would.
    Prefect's SQLite server answers 503 when its database is busy (here the runner's polls write
    to it every second; PrefectHQ/prefect#18934): the UI shows "Something went wrong trying to
    create a flow run", no run is created, and pressing Submit again succeeds. A retry is
    reported as a warning."""
    from playwright.sync_api import expect

    runs_tab = re.compile(r"/deployments/deployment/.*tab=Runs")
    failed = page.get_by_text("Something went wrong trying to create a flow run").first
    for attempt in range(1, attempts + 1):
        page.get_by_role("button", name="Submit").click()
        deadline = time.monotonic() + 180  # a loaded machine answers slowly
        while time.monotonic() < deadline and not runs_tab.search(page.url) and not failed.is_visible():
            page.wait_for_timeout(250)
        if runs_tab.search(page.url):
            return
        assert failed.is_visible(), f"Submit neither opened the deployment's runs nor failed within 180 s ({page.url})"
        warnings.warn(f"the Prefect UI could not create the flow run (attempt {attempt} of {attempts}); Submit again")
        # the error toasts stay over the Submit button until closed (and never hold still for a click)
        page.evaluate("document.querySelectorAll('.p-toast__close-btn').forEach(b => b.click())")
        expect(page.locator(".p-toast__card:visible")).to_have_count(0)
    pytest.fail(f"the Prefect UI could not create the flow run in {attempts} attempts")


def deployment_runs(server, deployment_id) -> dict[str, str]:
    """{flow run id: name} of a deployment's runs."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with api(server) as client:
        found = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))
    return {str(run.id): run.name for run in found}


def wait_for_final_state(server, flow_run_id: str):
    """The flow run, once it has finished (a person watches its page until then)."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        with api(server) as client:
            flow_run = client.read_flow_run(flow_run_id)
        if flow_run.state.is_final() or time.monotonic() > deadline:
            return flow_run
        time.sleep(1)
