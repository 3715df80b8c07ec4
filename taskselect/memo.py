"""The last results of a function of texts, kept for the process.

A run selects at several budgets and seeds from the same pool, and auto's candidates read it
again: what is computed from the pool alone (DSIR's hashed n-grams, the lexical vectors, the
proxy model's loss trajectories of a seed) need not be computed again. `keep_last(n)` keeps the results of the last n distinct calls,
keyed by a digest of the arguments (texts compared by content, not by list identity), returned
read-only so that no caller changes another's. `forget_all()` drops every function's (a
benchmark timing a run's first selection, a test comparing two computations from scratch).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from scipy import sparse

F = TypeVar("F", bound=Callable[..., Any])
_KEPT: list[OrderedDict] = []  # every keep_last function's results, for forget_all


def _digest(arguments: dict[str, Any]) -> str:
    """sha256 of a call's arguments: a number or string by its repr, a numeric array by its
    dtype, shape and bytes, anything else as a sequence of texts, by their UTF-8 bytes."""
    digest = hashlib.sha256()
    for name, value in arguments.items():
        digest.update(name.encode() + b"=")
        if isinstance(value, (str, int, float, bool)) or value is None:
            digest.update(repr(value).encode() + b"\0")
            continue
        if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
            digest.update(f"{value.dtype.str}{value.shape}".encode())
            digest.update(np.ascontiguousarray(value).data)
            continue
        digest.update(len(value).to_bytes(8, "little"))
        for text in value:
            data = str(text).encode("utf-8", "surrogatepass")
            digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def _freeze(value: Any) -> Any:
    """`value` with its numpy arrays (also inside tuples and sparse matrices) made read-only."""
    if isinstance(value, tuple):
        for part in value:
            _freeze(part)
    elif isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif sparse.issparse(value):
        for part in (value.data, getattr(value, "indices", None), getattr(value, "indptr", None)):
            if part is not None:
                part.flags.writeable = False
    return value


def keep_last(n: int) -> Callable[[F], F]:
    """Decorator for a function of texts, numeric arrays and numbers: the results of its last `n` calls with
    distinct arguments (defaults filled in) are returned again, the same objects, read-only; a
    call with arguments being computed by another thread waits for that result. The decorated
    function gets `forget()`, which drops them."""

    def decorate(function: F) -> F:
        kept: OrderedDict[str, Any] = OrderedDict()
        _KEPT.append(kept)
        lock = threading.Lock()
        signature = inspect.signature(function)

        @functools.wraps(function)
        def remembered(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            key = _digest(bound.arguments)
            with lock:  # one computation at a time: these are GIL-bound, nothing is lost
                if key in kept:
                    kept.move_to_end(key)
                else:
                    kept[key] = _freeze(function(*args, **kwargs))
                    while len(kept) > n:
                        kept.popitem(last=False)
                return kept[key]

        remembered.forget = kept.clear
        return remembered  # type: ignore[return-value]

    return decorate


def forget_all() -> None:
    """Drop the kept results of every keep_last function of the process."""
    for kept in _KEPT:
        kept.clear()
