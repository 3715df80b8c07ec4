"""A model's numbers do not depend on which thread trains it or what other threads do.

The flow runs its steps in worker threads; OpenBLAS ignores a thread-count change from a worker
thread once its threads have started, so a fit there used to run with the machine's 2 BLAS
threads while its twin in another step ran with 1 (same selection, other model). Each case runs
in a fresh interpreter, as an entry point does.
"""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: BLAS has one thread anyway")

# 48 labels on 1,330 rows of 384 dims: the default run's shape, where 1 and 2 BLAS threads differ.
COMMON = """
import json, sys, numpy as np
from concurrent.futures import ThreadPoolExecutor
from taskselect.trainers.head import HeadTrainer
from taskselect.trainers.base import Examples
rng = np.random.default_rng(0)
centers, y = rng.normal(size=(48, 384)), rng.integers(0, 48, 1330)
x = centers[y] * 0.3 + rng.normal(size=(1330, 384))
x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
def fit():
    return HeadTrainer().fit(Examples(embeddings=x, labels=y.astype(str)))._model.coef_.tobytes().hex()
def busy():  # another step's BLAS work: starts OpenBLAS's threads
    a = rng.normal(size=(600, 600))
    return float((a @ a).sum())
"""

FLOW_LIKE = COMMON + """
from threadpoolctl import threadpool_limits
from taskselect.threads import fixed_threads
two = fit()  # main thread, before configure: the machine's BLAS threads
from taskselect.environment import configure
configure()
one = fit()
with ThreadPoolExecutor(2) as pool:
    pool.submit(busy).result()
    def step():
        with fixed_threads():
            return fit()
    futures = [pool.submit(step), pool.submit(busy), pool.submit(step)]
    worker = [f.result() for f in futures][::2]
print(json.dumps({"two_differs": two != one, "workers_equal_one": all(w == one for w in worker)}))
"""

# A process whose main thread set BLAS to 2 threads (as a user's own threadpool_limits may):
# OpenBLAS then ignores a worker thread's change, and fixed_threads must not run at 2.
MAIN_SET_TWO = COMMON + """
from threadpoolctl import threadpool_info, threadpool_limits
from taskselect.errors import TaskselectError
from taskselect.threads import fixed_threads
threadpool_limits(2, user_api="blas")
busy()
def step():
    try:
        with fixed_threads():
            return {"ran_with": max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")}
    except TaskselectError as e:
        return {"refused": str(e)}
with ThreadPoolExecutor(1) as pool:
    print(json.dumps(pool.submit(step).result()))
"""


def _run(code: str) -> object:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_worker_thread_fits_equal_the_one_thread_fit_after_configure():
    seen = _run(FLOW_LIKE)
    assert seen["two_differs"], "precondition: on this data 2 BLAS threads train another model"
    assert seen["workers_equal_one"]


def test_fixed_threads_runs_at_one_blas_thread_or_refuses():
    seen = _run(MAIN_SET_TWO)
    if "refused" in seen:
        assert "OPENBLAS_NUM_THREADS=1" in seen["refused"] and "threads in this process" in seen["refused"]
    else:
        assert seen["ran_with"] == 1
