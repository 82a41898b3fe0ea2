# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The solver's time budget: which backend goes first and how much time each gets.

On a shared machine the wall clock says little about the work a solver
did: a blind search that needs 25 CPU seconds can take 60 wall seconds
when another process holds a core. The budget is therefore counted in CPU
seconds of this process and its finished children (``solve-field`` and its
``astrometry-engine``), with a wall-clock cap of `WALL_FACTOR` times the
limit so that a starved process still stops.

The plan (``backend="auto"``):

* a hinted search (position and scale known) goes to the matcher first:
  it is fast when the hint is right (a few seconds) and cannot use a share
  it does not need;
* a blind search goes to ``solve-field`` first (its own process, a CPU
  limit the program enforces, 2-30 CPU s on 0.2-2 degree fields), then the
  in-process engine.

Each backend gets a share of what is left, by weight (`WEIGHTS`); what a
backend does not use passes on to the next. When the concurrency policy
allows two threads (`astrophot._concurrency.resolve_threads`), the first
two backends of the plan run side by side, each within its own share.
"""

import resource
import threading
import time

__all__ = ["WALL_FACTOR", "WEIGHTS", "CpuBudget", "plan_backends"]

#: Wall-clock cap, in multiples of the CPU limit.
WALL_FACTOR = 3.0

#: Relative shares of what is left, by backend and search kind.
WEIGHTS = {
    "hinted": {"matcher": 1.0, "solve-field": 2.0, "engine": 2.0, "web": 1.0},
    "blind": {"solve-field": 3.0, "engine": 2.0, "matcher": 0.5, "web": 1.0},
}

_ORDER = {
    "hinted": ("matcher", "solve-field", "engine", "web"),
    "blind": ("solve-field", "engine", "matcher", "web"),
}


def cpu_seconds():
    """CPU seconds used by this process and by its children that have finished."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def search_kind(hint):
    """``'hinted'`` when the hint gives a position and a scale, else ``'blind'``."""
    return "hinted" if hint.has_position and hint.has_scale else "blind"


def plan_backends(names, hint, *, auto):
    """
    The order in which to try ``names``.

    Parameters
    ----------
    names : list of str
        Canonical backend names.
    hint : `~astrophot.astrometry.SolveHint`
    auto : bool
        True for ``backend="auto"``: reorder by the kind of search. A
        caller's explicit list keeps its order.

    Returns
    -------
    list of str
    """
    if not auto:
        return list(names)
    order = _ORDER[search_kind(hint)]
    return [n for n in order if n in names] + [n for n in names if n not in order]


class CpuBudget:
    """
    A CPU-second budget with a wall-clock cap.

    Parameters
    ----------
    seconds : float
        CPU seconds for the whole search.
    wall_factor : float, optional
        The search also stops after ``wall_factor * seconds`` wall seconds.

    Examples
    --------
    >>> from astrophot.astrometry._budget import CpuBudget
    >>> budget = CpuBudget(60.0)
    >>> 0 < budget.left() <= 60.0
    True
    >>> round(budget.share(1.0, [1.0, 2.0]) / budget.left(), 2)  # a quarter of what is left
    0.25
    """

    def __init__(self, seconds, *, wall_factor=WALL_FACTOR):
        self.seconds = float(seconds)
        self.wall_factor = float(wall_factor)
        self._cpu0 = cpu_seconds()
        self._wall0 = time.perf_counter()
        self._charged = 0.0
        self._lock = threading.Lock()

    def cpu_used(self):
        """CPU seconds used since the budget started."""
        return cpu_seconds() - self._cpu0 + self._charged

    def charge(self, seconds):
        """Count ``seconds`` of CPU this process cannot see (a killed grandchild's)."""
        with self._lock:
            self._charged += float(seconds)

    def wall_used(self):
        """Wall seconds since the budget started."""
        return time.perf_counter() - self._wall0

    def left(self):
        """CPU seconds left (less when the wall-clock cap comes first)."""
        cpu_left = self.seconds - self.cpu_used()
        wall_left = self.seconds * self.wall_factor - self.wall_used()
        return max(0.0, min(cpu_left, wall_left))

    def wall_left(self):
        """Wall seconds left before the cap."""
        return max(0.0, self.seconds * self.wall_factor - self.wall_used())

    def share(self, weight, later_weights=()):
        """CPU seconds for a backend of ``weight`` followed by backends of ``later_weights``."""
        total = float(weight) + float(sum(later_weights))
        left = self.left()
        if total <= 0:
            return left
        return left * float(weight) / total

    def record(self):
        """Used CPU and wall seconds, for the solution record."""
        return {
            "cpu_seconds": round(self.cpu_used(), 2),
            "wall_seconds": round(self.wall_used(), 2),
            "cpu_limit": self.seconds,
        }
