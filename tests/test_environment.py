"""Importing the project changes nothing in the process; the entry points' set-up call does."""

import json
import os
import subprocess
import sys

from conftest import ROOT
from taskselect.environment import SETTINGS

PROBE = """
import json, logging, os
before = dict(os.environ)
import flows.pipeline, flows.serve, flows.sweep, tasks, taskselect.cli, taskselect.embedding, taskselect.stages, taskselect.tracking
changed = {k: v for k, v in os.environ.items() if before.get(k) != v}
level = logging.getLogger("taskselect").level
from taskselect.environment import configure
configure()
print(json.dumps({"changed": changed, "level": level, "after": {k: os.environ.get(k) for k in %r}}))
"""


def test_importing_changes_no_environment_and_configure_sets_it():
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    result = subprocess.run([sys.executable, "-c", PROBE % list(SETTINGS)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    # only third parties' own settings (faiss's and torch's OpenMP: KMP_*)
    assert [k for k in seen["changed"] if not k.startswith("KMP_")] == []
    assert seen["level"] == 0  # logging.NOTSET: untouched
    assert seen["after"] == SETTINGS


def test_progress_bars_redraw_seldom_in_a_log_file():
    """stderr to a file (a log, CI): a bar redraws at most every 30 s, not ten times a second."""
    probe = ("from taskselect.environment import configure\nconfigure()\nfrom tqdm import tqdm\n"
             "print(tqdm(range(3)).mininterval)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TQDM_")}
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert float(result.stdout.strip().splitlines()[-1]) == 30
