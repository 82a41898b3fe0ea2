# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
One concurrency policy for every stage: the caller decides.

Every stage that can use threads takes ``parallel=`` (reproject's convention):

* ``None`` (default): automatic. One thread inside a ``dask.distributed`` worker
  (the cluster already runs one task per core), otherwise the number of cores this
  process may use, at most `MAX_AUTO_THREADS`; the environment variable
  ``ASTROPHOT_NUM_THREADS`` overrides the automatic choice.
* ``False`` or ``1``: run in the calling thread.
* ``True``: every core this process may use.
* an integer ``n >= 1``: ``n`` threads.

Stages never keep pools between calls, never fork, and never start threads
inside a Dask worker unless the caller asks for them explicitly.
"""

import os
import sys
from concurrent.futures import ThreadPoolExecutor

__all__ = ["MAX_AUTO_THREADS", "in_dask_worker", "resolve_threads", "thread_map"]

#: Upper limit of the automatic thread count (most stages are memory-bound beyond it).
MAX_AUTO_THREADS = 4


def _usable_cores():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def in_dask_worker():
    """
    Whether the calling code runs inside a ``dask.distributed`` worker.

    Imports nothing: a process that never imported ``distributed`` is not a worker.
    """
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return False
    try:
        distributed.get_worker()
    except (ValueError, AttributeError):
        return False
    return True


def resolve_threads(parallel=None):
    """
    The number of threads a stage should use for ``parallel``.

    Parameters
    ----------
    parallel : None, bool or int
        See the module documentation.

    Returns
    -------
    int
        At least 1.

    Raises
    ------
    ValueError
        If ``parallel`` is an integer below 1 or of another type.

    Examples
    --------
    >>> from astrophot._concurrency import resolve_threads
    >>> resolve_threads(False), resolve_threads(3)
    (1, 3)
    """
    if parallel is None:
        if in_dask_worker():
            return 1
        env = os.environ.get("ASTROPHOT_NUM_THREADS", "").strip()
        if env:
            try:
                value = int(env)
            except ValueError:
                raise ValueError(
                    f"ASTROPHOT_NUM_THREADS={env!r}: expected a whole number of threads >= 1"
                ) from None
            if value < 1:
                raise ValueError(f"ASTROPHOT_NUM_THREADS={env!r}: expected a whole number of threads >= 1")
            return value
        return min(MAX_AUTO_THREADS, _usable_cores())
    if parallel is True:
        return _usable_cores()
    if parallel is False:
        return 1
    if isinstance(parallel, int) and parallel >= 1:
        return int(parallel)
    raise ValueError(f"parallel={parallel!r}: expected None, True, False or a number of threads >= 1")


def thread_map(function, items, *, n_threads=1):
    """
    ``[function(item) for item in items]``, on ``n_threads`` threads.

    The results keep the order of ``items``; the first exception raised by any
    call reaches the caller (after the running calls finish). With one thread
    (or one item) everything runs in the calling thread and no pool is made;
    a pool lives only for the duration of this call.
    """
    items = list(items)
    if n_threads <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(n_threads, len(items)), thread_name_prefix="astrophot") as pool:
        return list(pool.map(function, items))
