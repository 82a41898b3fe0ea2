# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The one timer of the benchmarks: best of a few runs (the machine is shared; the best is the least disturbed)."""

import time

__all__ = ["best_of"]


def best_of(fn, repeat=3):
    """The shortest wall time (seconds) of ``repeat`` calls of ``fn()``."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)
