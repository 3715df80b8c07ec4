"""Numeric work at one thread, so its numbers do not depend on where it runs.

BLAS and OpenMP add up in an order that depends on how many threads they have: a logistic
regression on many labels (20 on 2,000 rows already; the default pool has 48) trained with 2
BLAS threads differs in its last bits from one trained with 1 (what a Dask worker has), and
L-BFGS carries that into a different number of iterations and other predictions.

BLAS's thread count is per process, and OpenBLAS 0.3.31 (numpy's and scipy's wheels) can ignore
a change made from a worker thread once another thread has set it (seen in the flow: a task's
limit to 1 left BLAS at 2). A Prefect task runs in a worker thread, so it is not set there:
`taskselect.environment.configure()` sets it for the whole process from the main thread (and
OPENBLAS_NUM_THREADS for libraries loaded later and for child processes), and `fixed_threads()`
checks that it holds.
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from threadpoolctl import threadpool_info, threadpool_limits

from taskselect.errors import TaskselectError

NUMERIC_THREADS = 1
_guard = threading.Lock()


def usable_cores() -> int:
    """CPU cores this process may run on: its affinity (fewer than the machine's under taskset or
    a container's cpuset), and in a Dask worker's task at most the worker's threads (workers
    started with --nthreads 1 share the machine's cores with each other)."""
    cores = len(os.sched_getaffinity(0))
    distributed = sys.modules.get("distributed")  # loaded in a Dask worker; not imported here
    if distributed is not None:
        try:
            return min(cores, distributed.get_worker().state.nthreads)
        except ValueError:  # not in a worker's task
            pass
    return cores


def pin_blas() -> None:
    """Every loaded BLAS library at NUMERIC_THREADS threads, for the rest of the process (a
    setting restored by one thread would change another thread's sums mid-fit). Raises
    TaskselectError naming a library that keeps more threads."""
    with _guard:
        threadpool_limits(NUMERIC_THREADS, user_api="blas")
        unpinned = [lib for lib in threadpool_info()
                    if lib["user_api"] == "blas" and lib["num_threads"] != NUMERIC_THREADS]
    if unpinned:
        lib = unpinned[0]
        raise TaskselectError(
            f"{Path(lib['filepath']).name}: BLAS runs {lib['num_threads']} threads in this process and "
            f"this thread cannot change it; numeric results would depend on it. Start the process with "
            f"OPENBLAS_NUM_THREADS={NUMERIC_THREADS} or call taskselect.environment.configure() in its main thread first")


@contextmanager
def fixed_threads():
    """BLAS (pinned, see pin_blas) and OpenMP (per thread, restored after the block) at
    NUMERIC_THREADS threads, in-process, in a Dask worker or in a DVC stage command alike."""
    pin_blas()
    with threadpool_limits(NUMERIC_THREADS, user_api="openmp"):
        yield
