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

Objects that are not thread-safe get one private copy per thread (`PerThread`).
``astropy.wcs.WCS`` is one: its transformations mutate wcslib's state, so threads
sharing one WCS now and then get wrong coordinates, silently (astropy issues
16245 and 19174; reproject gives each thread its own copy, reproject#605).
"""

import copy
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["MAX_AUTO_THREADS", "PerThread", "in_dask_worker", "resolve_threads", "thread_map"]

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


class PerThread:
    """
    One private copy of something not thread-safe for each thread of a `thread_map`.

    The copies are made up front in the calling thread (copying an object another
    thread is using is not safe either); each thread takes one the first time it
    calls `get` and keeps it. With one thread the original is used, uncopied.

    Parameters
    ----------
    original : object
        What the threads share.
    copy : callable, optional
        ``copy(original)`` gives an independent copy. Default: `copy.deepcopy`
        (a WCS, or a tuple of them, is copied whole).
    n_threads : int, optional
        The threads that will call `get` (at most).

    Examples
    --------
    >>> from astropy.wcs import WCS
    >>> from astrophot._concurrency import PerThread, thread_map
    >>> wcs = WCS(naxis=2)
    >>> private = PerThread(wcs, n_threads=2)
    >>> copies = thread_map(lambda _: private.get(), range(2), n_threads=2)
    >>> any(c is wcs for c in copies)
    False
    """

    def __init__(self, original, copy=copy.deepcopy, n_threads=1):
        self._original = original
        self._serial = n_threads <= 1
        self._free = [] if self._serial else [copy(original) for _ in range(n_threads)]
        self._lock = threading.Lock()
        self._local = threading.local()

    def get(self):
        """This thread's copy (the original when only one thread was asked for)."""
        if self._serial:
            return self._original
        try:
            return self._local.value
        except AttributeError:
            with self._lock:
                if not self._free:
                    raise RuntimeError("more threads than copies asked for PerThread") from None
                self._local.value = self._free.pop()
            return self._local.value
