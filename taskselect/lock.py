"""One run at a time per workspace: an exclusive lock on a file in the workspace root.

Every front end that writes a workspace (the `taskselect` stage commands, hence `dvc repro`'s
stages, and the Prefect flow) holds `workspace_lock(root)` while it writes. The lock is an
flock(2) on ROOT/.taskselect.lock, so the operating system releases it when its process ends,
however it ends (kill -9 included): a lock is never stale. A second run refuses at once, with
one line naming the holder (pid, host, command, since when).

The lock belongs to the process: taking it again in the same process (the `taskselect run`
command, then the flow it starts) nests. Tasks that run elsewhere on the run's behalf (Dask
workers) do not take it; the run that started them holds it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from taskselect.errors import TaskselectError

LOCK_NAME = ".taskselect.lock"

_held: dict[Path, list] = {}  # lock path -> [open file descriptor, nesting depth, root made for it]
_guard = threading.Lock()


def holder(path: Path) -> dict | None:
    """What the lock file at `path` says about its holder (None if nothing readable)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _describe(info: dict | None) -> str:
    if not info:
        return "another process (it has not written its name yet)"
    since = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(info["since"]))
    return f"pid {info['pid']} on {info['host']} since {since} ({info['command']})"


def _acquire(path: Path, command: str) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise TaskselectError(
                f"{path.parent}: in use by {_describe(holder(path))}; wait for it to finish, "
                "or give this run another --data-dir"
            ) from None
        # The holder before us may have removed the file between our open and our lock: then we
        # hold a lock on a file nobody else can find, and must lock the one at `path` instead.
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(), "command": command}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    return fd


@contextmanager
def workspace_lock(root: str | os.PathLike, command: str | None = None) -> Iterator[None]:
    """Hold the workspace `root` exclusively for the block; refuse (TaskselectError) if another
    process holds it.

    command: what the holder is doing, shown to a refused run (default: this process's argv).
    """
    root = Path(root).resolve()
    path = root / LOCK_NAME
    with _guard:
        if path in _held:
            _held[path][1] += 1
        else:
            made_root = not root.exists()
            root.mkdir(parents=True, exist_ok=True)
            fd = _acquire(path, command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]))
            _held[path] = [fd, 1, made_root]
    try:
        yield
    finally:
        with _guard:
            _held[path][1] -= 1
            if _held[path][1] == 0:
                fd, _, made_root = _held.pop(path)
                path.unlink(missing_ok=True)  # still locked: nobody can take it in between
                os.close(fd)
                if made_root:  # a run that wrote nothing leaves no trace
                    try:
                        root.rmdir()
                    except OSError:
                        pass
