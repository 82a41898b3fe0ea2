# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The astrometry.net engine in-process, through the PyPI package ``astrometry``.

That package is GPL-3 and optional (``pip install astrophot-pipeline[solver]``);
astrophot only calls it. It reads index files directly, so nothing is
downloaded. Two traps are handled here: it wants 1-based pixel positions
(FITS convention), and without a log-odds callback it keeps searching
after the first good match. The C search cannot be interrupted from Python,
so it runs in a forked child process that is killed at the time limit.
"""

import logging
import multiprocessing
import time
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import QTable
from astropy.wcs import WCS

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


def _run(index_paths, xy, scale_range, position, sip_order):
    """Solve in this process; returns a plain dict (picklable) or None."""
    import astrometry

    logging.getLogger("astrometry").setLevel(logging.WARNING)
    size_hint = None
    if scale_range is not None:
        size_hint = astrometry.SizeHint(
            lower_arcsec_per_pixel=scale_range[0], upper_arcsec_per_pixel=scale_range[1]
        )
    position_hint = None
    if position is not None:
        position_hint = astrometry.PositionHint(
            ra_deg=position[0] % 360.0, dec_deg=position[1], radius_deg=position[2]
        )
    parameters = astrometry.SolutionParameters(
        sip_order=sip_order,
        tune_up_logodds_threshold=None if sip_order == 0 else 14.0,
        logodds_callback=lambda logodds: astrometry.Action.STOP,
    )
    with astrometry.Solver([Path(p) for p in index_paths]) as solver:
        solution = solver.solve(
            stars=xy, size_hint=size_hint, position_hint=position_hint, solution_parameters=parameters
        )
    if not solution.has_match():
        return None
    match = solution.best_match()
    return {
        "wcs_fields": {k: (v[0], v[1]) for k, v in match.wcs_fields.items()},
        "index": str(match.index_path),
        "logodds": float(match.logodds),
        "stars": [(s.ra_deg, s.dec_deg) for s in match.stars],
    }


def _child(conn, *args):
    try:
        conn.send(("ok", _run(*args)))
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _run_with_limit(time_limit, *args):
    methods = multiprocessing.get_all_start_methods()
    if "fork" not in methods:  # pragma: no cover - Windows/macOS spawn: no hard limit
        log.info("astrometry engine: no fork() here, the time limit is not enforced")
        return _run(*args)
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        process = ctx.Process(target=_child, args=(child, *args), daemon=True)
        process.start()
    child.close()
    try:
        if not parent.poll(max(0.1, time_limit)):
            raise AstrometryError(f"no solution within the time limit ({time_limit:.1f} s)")
        status, payload = parent.recv()
    except EOFError:
        raise AstrometryError(f"the engine process died (exit code {process.exitcode})") from None
    finally:
        parent.close()
        if process.is_alive():
            process.kill()
        process.join(5)
    if status == "error":
        raise AstrometryError(f"the engine failed: {payload}")
    return payload


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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
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
