"""The MLflow UI as a person sees it: `mlflow ui` on the store a pipeline run wrote, in headless
Chromium (Debian's chromium package). The experiment opens on its runs, a pipeline run's
selections are nested under it, and the chart view shows macro-F1 per method and budget.

The store is the session's small run, or the run in $TASKSELECT_UI_RUN (`make docs` points it at
the project's default run). Screenshots go to $TASKSELECT_SCREENSHOTS when set (docs/img is made
so), else to a temporary directory."""

import os
import subprocess
from pathlib import Path

import mlflow
import pytest
from playwright.sync_api import expect

from conftest import BIN, UI_TIMEOUT_MS, free_port, launch_chromium, stop, wait_until_up
from taskselect import tracking
from taskselect.config import Params
from taskselect.selectors import budget_label

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def run_dir(request) -> Path:
    chosen = os.environ.get("TASKSELECT_UI_RUN")
    return Path(chosen).resolve() if chosen else request.getfixturevalue("small_run").dir


@pytest.fixture(scope="module")
def store(run_dir):
    """The latest pipeline run of the store: (experiment, parent run, its child runs)."""
    client = mlflow.MlflowClient(f"sqlite:///{run_dir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(tracking.experiment_name(Params()))  # a store may hold others
    (parent,) = client.search_runs([experiment.experiment_id], "tags.kind = 'pipeline'",
                                   order_by=["attributes.start_time DESC"], max_results=1)
    children = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    return experiment, parent, children


@pytest.fixture(scope="module")
def ui(run_dir, tmp_path_factory):
    """`mlflow ui` on the store, on a free loopback port."""
    log_path = tmp_path_factory.mktemp("mlflow-ui") / "ui.log"
    url = f"http://127.0.0.1:{free_port()}"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [str(BIN / "mlflow"), "ui", "--backend-store-uri", f"sqlite:///{run_dir / 'mlflow.db'}",
             "--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1], "--workers", "1"],  # 4 by default
            cwd=run_dir, stdout=log, stderr=subprocess.STDOUT,
        )
        wait_until_up(f"{url}/health", proc, log_path)
        yield url
        stop(proc)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A first visit: a fresh browser context (the UI keeps its switches in local storage)."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    yield page
    context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    path = Path(os.environ.get("TASKSELECT_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_the_experiment_opens_on_its_runs_with_the_selections_nested(ui, store, page, shots):
    experiment, parent, children = store
    page.goto(f"{ui}/#/experiments/{experiment.experiment_id}")
    got_it = page.get_by_role("button", name="Got it")  # a first visit's tip over the GenAI overview
    got_it.or_(page.get_by_role("heading", name="Runs")).first.wait_for()
    if got_it.is_visible():
        got_it.click()
    page.get_by_text("Model training", exact=True).click()  # once: the browser remembers it
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()
    page.goto(tracking.experiment_link(ui, experiment.experiment_id))  # the link a tracking server's run gives
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()
    close_assistant(page)

    expect(page.get_by_text(parent.info.run_name, exact=True).first).to_be_visible()  # a store may hold older runs of that name
    assert parent.info.run_name.startswith(f"airline_sentiment · {','.join(Params().select.methods)} · ")
    for child in children:
        expect(page.get_by_text(child.info.run_name, exact=True)).to_be_hidden()
    expand(page, children)
    assert {c.info.run_name for c in children} == {f"{m} {budget_label(b)} seed {s}" for m in Params().select.methods
                                                   for b in parent_budgets(parent) for s in (0,)}
    page.screenshot(path=shots / "mlflow-runs.png")


def test_the_chart_view_compares_macro_f1(ui, store, page, shots):
    experiment, parent, children = store
    page.goto(tracking.experiment_link(ui, experiment.experiment_id))
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()
    close_assistant(page)
    expand(page, children)
    page.locator("label:has(input[value=CHART])").click()
    search = page.get_by_placeholder("Search metric charts")

    search.fill("f1_macro")
    expect(page.get_by_text("f1_macro", exact=True).first).to_be_visible()
    for child in children:  # one bar per selection, labelled with its macro-F1
        expect(page.get_by_text(f"{child.data.metrics['f1_macro']:.2f}", exact=True).first).to_be_visible()
    page.screenshot(path=shots / "mlflow-chart.png")

    search.fill("delta_random")
    budget = budget_label(parent_budgets(parent)[0]).replace("%", "pct")
    expect(page.get_by_text(f"delta_random.tsds.{budget}", exact=True)).to_be_visible()
    delta = parent.data.metrics[f"delta_random.tsds.{budget}"]
    assert delta == pytest.approx(next(c for c in children if c.data.tags["method"] == "tsds").data.metrics["f1_macro"]
                                  - next(c for c in children if c.data.tags["method"] == "random").data.metrics["f1_macro"])
    expect(page.get_by_text(f"{delta:.2f}", exact=True).first).to_be_visible()


def parent_budgets(parent) -> list:
    """The pipeline run's budgets, as params.yaml gives them."""
    import yaml

    return yaml.safe_load(parent.data.params["select.budgets"])


def close_assistant(page) -> None:
    """The MLflow Assistant panel, open on a first visit, covers a third of the page."""
    close = page.get_by_role("button", name="Close")
    if close.count():
        close.first.click()


def expand(page, children) -> None:
    """Show the pipeline run's child runs (collapsed on a first visit)."""
    page.locator("button[data-component-id*=runnamecellrenderer]").first.click()
    for child in children:
        expect(page.get_by_text(child.info.run_name, exact=True)).to_be_visible()
