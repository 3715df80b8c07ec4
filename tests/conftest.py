import os

from taskselect.environment import configure

# The tests are an entry point: set up before anything imports Prefect or MLflow. The settings
# land in os.environ, so the commands the tests start inherit them (e.g. the temporary Prefect
# server's start-up timeout).
configure()

from hypothesis import settings  # noqa: E402

# CI must not flake: the default profile replays the same examples every run;
# HYPOTHESIS_PROFILE=explore searches new ones.
settings.register_profile("default", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


# Debian's chromium, headless, in a container: no sandbox, no GPU, nothing fetched in the background.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# A UI on a busy machine can take longer than Playwright's 5 s to render a list (seen with three
# pytest workers on two cores): its actions and assertions wait up to a minute.
UI_TIMEOUT_MS = 60_000


def launch_chromium(playwright):
    """Debian's headless chromium, launched by `playwright` (sync API), with the UI waits above."""
    from playwright.sync_api import expect

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("the browser test needs Debian's chromium: apt-get install chromium chromium-driver")
    expect.set_options(timeout=UI_TIMEOUT_MS)
    return playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)


# pytest-xdist (`make test`: --dist loadfile) hands each worker whole files in collection order,
# so a long file collected last runs alone while the other workers idle. The files holding
# end-to-end tests (marked e2e: servers and whole pipelines) are collected first.
def pytest_collection_modifyitems(items):
    e2e = {item.path for item in items if item.get_closest_marker("e2e")}
    items.sort(key=lambda item: item.path not in e2e)  # stable: each file's items stay together, in order


# auto cross-validates every candidate on every fold (5 x 5 selections and models by default,
# most of a small run's time); two of each still make it choose. test_auto.py tests the choice.
SMALL_AUTO = ["select.auto.candidates=[tsds,random]", "select.auto.folds=2"]


def small_profile(tmp: Path, cache: Path) -> list[str]:
    """Overrides for a small profile of the real airline benchmark (about 2k pool rows)."""
    return [
        "data.cap_per_source=150", "data.n_query=30", "data.max_test=200",
        "select.budgets=[0.1]", "select.tsds.max_k=500", "select.tsds.kde_k=200", *SMALL_AUTO,
        f"embed.cache_dir={cache}", f"track.tracking_uri=sqlite:///{tmp / 'mlflow.db'}",
    ]


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """A refused command: exit code 2 and one line on stderr, "error: ...", holding every fragment."""
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def untimed(records: list[dict]) -> list[dict]:
    """Result records without the stages' wall times (the only fields that differ between reruns)."""
    return [{k: v for k, v in r.items() if not k.endswith("_seconds")} for r in records]


@pytest.fixture(scope="session")
def embedding_cache(tmp_path_factory) -> Path:
    """One embedding cache for the session: each real text is embedded once across tests."""
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="session")
def prefect_api():
    """A temporary Prefect API for the whole session (starting one costs 10-15 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):  # 30 s by default: too short on a busy machine
        yield


@pytest.fixture(scope="session")
def api_env(prefect_api) -> dict:
    """The environment of a `taskselect` subprocess: the session's Prefect API, so that each run
    does not start a temporary server of its own (test_cli's runs keep that path)."""
    from flows.engine import api_url

    return {**os.environ, "PREFECT_API_URL": api_url()}


@pytest.fixture(scope="session")
def small_run(prefect_api, embedding_cache, tmp_path_factory):
    """One pipeline run of the small profile (tsds, random, full at 10%, seed 0) for the tests
    that read what a run leaves: its directory holds data/, results/ and mlflow.db."""
    from flows.pipeline import pipeline
    from taskselect.config import load_params

    tmp = tmp_path_factory.mktemp("small-run")
    params = load_params(None, small_profile(tmp, embedding_cache))
    records = pipeline(params=params, data_dir=str(tmp / "data"), out_dir=str(tmp / "results"))
    return SimpleNamespace(dir=tmp, params=params, records=records)


def taskselect(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the installed `taskselect` command as a user would."""
    return subprocess.run(
        [str(BIN / "taskselect"), *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=600
    )


def copy_project(dest: Path) -> Path:
    """The committed project (git ls-files) copied into `dest`, as a fresh clone would have it."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest / name)
    return dest


def committed_project(dest: Path, embedding_cache: Path) -> Path:
    """A fresh copy of the project in `dest`, params.yaml set to the small profile, committed to git."""
    from taskselect.config import load_params
    from taskselect.versioning import sync_params_file

    root = copy_project(dest)
    sync_params_file(root, load_params(root / "params.yaml", small_profile(root, embedding_cache)))
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "fresh clone"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True,
                       capture_output=True)
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    """Poll `url` until it answers 200. A server that is starting may refuse the connection,
    time out, reset it or answer an error status: all are waited out. Fail with what it last
    said and the end of its log if it exits or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while proc.poll() is None:
        try:
            response = requests.get(url, timeout=10)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{url} did not answer 200 within {timeout:.0f} s (last: {last}); "
                        f"the end of {log}:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    pytest.fail(f"{url}: the server exited with code {proc.returncode} before answering 200 (last: {last}); "
                f"the end of {log}:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
