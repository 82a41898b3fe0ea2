# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The astrometry.net engine in-process, through the PyPI package ``astrometry``.

That package is GPL-3 and optional (``pip install astrophot-pipeline[solver]``);
astrophot only calls it. It reads index files directly, so nothing is
downloaded. Two traps are handled here: it wants 1-based pixel positions
(FITS convention), and without a log-odds callback it keeps searching
after the first good match. The C search cannot be interrupted from Python,
so it runs in a separate program (`astrophot.astrometry._engine_child`)
that is killed at the time limit: no ``multiprocessing``, no fork, so it
works inside daemonic and threaded Dask workers alike.
"""

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import QTable
from astropy.wcs import WCS

from astrophot._warnings import quiet
from astrophot.astrometry._index import INSTALL_HINT, find_index_files, index_files_for_field
from astrophot.astrometry._result import BackendUnavailable, Candidate
from astrophot.exceptions import AstrometryError

__all__ = ["engine_available", "solve_with_engine"]

log = logging.getLogger(__name__)

_PACKAGE_HINT = (
    "install the optional solver extra: pip install 'astrophot-pipeline[solver]' (PyPI 'astrometry', GPL-3)"
)


def engine_available():
    """True when the PyPI ``astrometry`` package can be imported."""
    try:
        import astrometry  # noqa: F401
    except ImportError:
        return False
    return True


#: Seconds the engine program may take to start (interpreter and engine import) before the search.
START_TIMEOUT = 60.0


def _readline(stream, timeout):
    """One line from a child's pipe within ``timeout`` seconds, or None."""
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            return None
    return stream.readline()


def _reply(process, line, time_limit):
    """The child's answer after ``ready``: its JSON line within the time limit."""
    if line is not None and line.strip() == "ready":
        line = _readline(process.stdout, max(0.1, time_limit))
        if line is None:
            raise AstrometryError(f"no solution within the time limit ({time_limit:.1f} s)")
    elif line is None:
        raise AstrometryError(f"the engine program did not start within {START_TIMEOUT:.0f} s")
    if not line:
        raise AstrometryError(f"the engine program died (exit code {process.poll()})")
    return json.loads(line)


def _run_with_limit(time_limit, *args):
    """
    The search in a separate program (`astrophot.astrometry._engine_child`),
    killed at ``time_limit`` seconds of search. Not ``multiprocessing``: it
    works in daemonic and threaded workers alike (the `astrophot._concurrency`
    policy: no fork inside a worker).
    """
    child = Path(__file__).with_name("_engine_child.py")
    process = subprocess.Popen(
        [sys.executable, str(child)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        process.stdin.write(json.dumps(args))
        process.stdin.close()
        reply = _reply(process, _readline(process.stdout, START_TIMEOUT), time_limit)
    except (BrokenPipeError, ValueError) as exc:
        raise AstrometryError(f"the engine program failed ({type(exc).__name__}: {exc})") from None
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(5)
        process.stdout.close()
    if reply["status"] == "error":
        raise AstrometryError(f"the engine failed: {reply['message']}")
    return reply["result"]


def solve_with_engine(stars, hint, *, index_files=None, time_limit=30.0, sip_order=None):
    """
    Solve a star list with the in-process astrometry.net engine.

    Parameters
    ----------
    stars : `~astrophot.astrometry._result.StarList`
    hint : `~astrophot.astrometry._hints.SolveHint`
    index_files : optional
        Index files or directories (see `find_index_files`).
    time_limit : float, optional
        Seconds before the search is abandoned.
    sip_order : int, optional
        Distortion order of the engine's own tune-up (default: 2 with 30 or
        more stars, else none).

    Returns
    -------
    list of Candidate

    Raises
    ------
    BackendUnavailable
        The package or suitable index files are missing.
    astrophot.exceptions.AstrometryError
        No match, or the time limit passed.
    """
    if not engine_available():
        raise BackendUnavailable(f"the 'astrometry' package is not installed; {_PACKAGE_HINT}")
    indexes = find_index_files(index_files)
    if not indexes:
        raise BackendUnavailable(f"no astrometry.net index files found; {INSTALL_HINT}")
    scale_range = hint.scale_range_arcsec()
    usable = index_files_for_field(indexes, stars.shape, scale_range)
    sel = stars.selected
    xy = np.c_[stars.x[sel] + 1.0, stars.y[sel] + 1.0].tolist()  # the engine is 1-based
    if sip_order is None:
        sip_order = 2 if len(sel) >= 30 else 0
    position = None
    if hint.has_position:
        position = (float(hint.center.ra.deg), float(hint.center.dec.deg), float(hint.radius.to_value(u.deg)))
    t0 = time.perf_counter()
    result = _run_with_limit(time_limit, [i.path for i in usable], xy, scale_range, position, int(sip_order))
    elapsed = time.perf_counter() - t0
    if result is None:
        raise AstrometryError(
            f"no match with {len(usable)} index file(s) ({', '.join(i.name for i in usable[:6])}"
            f"{'...' if len(usable) > 6 else ''}) in {elapsed:.1f} s"
        )
    header = fits.Header()
    for key, (value, comment) in result["wcs_fields"].items():
        header[key] = (value, comment)
    with quiet():
        wcs = WCS(header)
    reference = None
    if result["stars"]:
        ra, dec = np.array(result["stars"], dtype=float).T
        reference = QTable({"ra": ra * u.deg, "dec": dec * u.deg, "mag": np.full(len(ra), np.nan)})
    details = {
        "index": Path(result["index"]).name,
        "engine_logodds": round(result["logodds"], 2),
        "index_files_searched": len(usable),
    }
    log.debug("astrometry engine: match in %.2f s with %s", elapsed, details["index"])
    return [Candidate(wcs=wcs, reference=reference, details=details)]
