# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""`solve_astrometry`: plate-solve a frame with the first backend whose answer verifies."""

import functools
import logging
import math
import re
import threading
import time

import astropy.units as u
import numpy as np
from astropy.nddata import CCDData
from astropy.table import QTable, Table

from astrophot._concurrency import resolve_threads, thread_map
from astrophot._warnings import quiet
from astrophot.astrometry._budget import WALL_FACTOR, WEIGHTS, CpuBudget, plan_backends, search_kind
from astrophot.astrometry._cache import SolutionCache
from astrophot.astrometry._catalog import catalog_label, reference_stars
from astrophot.astrometry._engine import solve_with_engine
from astrophot.astrometry._hints import hint_from_frame
from astrophot.astrometry._matcher import TooFewReferenceStars, match_triangles
from astrophot.astrometry._result import BackendUnavailable, Candidate, StarList
from astrophot.astrometry._solvefield import solve_with_solve_field
from astrophot.astrometry._stars import detect_stars, normalize_stars, select_stars
from astrophot.astrometry._wcsfit import refine_wcs, verify_wcs, wcs_summary
from astrophot.astrometry._web import solve_with_web
from astrophot.exceptions import AstrometryError, FrameTypeError
from astrophot.frames import CalibratedFrame, FrameBase, SolvedFrame
from astrophot.frames._input import as_frame
from astrophot.provenance import start_step

__all__ = ["BACKENDS", "solve_astrometry"]

log = logging.getLogger(__name__)

#: Backends in the order ``backend="auto"`` tries them.
BACKENDS = ("engine", "solve-field", "matcher", "web")
_ALIASES = {
    "engine": "engine",
    "astrometry": "engine",
    "solve-field": "solve-field",
    "solve_field": "solve-field",
    "solvefield": "solve-field",
    "matcher": "matcher",
    "python": "matcher",
    "web": "web",
    "nova": "web",
    "astrometry.net": "web",
}
_WCS_KEY = re.compile(
    r"^(WCSAXES|CTYPE\d|CRVAL\d|CRPIX\d|CDELT\d|CROTA\d|CUNIT\d|CD\d_\d|PC\d_\d|PV\d_\d+|PS\d_\d+|"
    r"LONPOLE|LATPOLE|RADESYS|RADECSYS|EQUINOX|EPOCH|A_ORDER|B_ORDER|AP_ORDER|BP_ORDER|"
    r"A_\d_\d|B_\d_\d|AP_\d_\d|BP_\d_\d|A_DMAX|B_DMAX|IMAGEW|IMAGEH|MJDREF|WCSNAME)$"
)


def _backend_list(backend):
    if isinstance(backend, str):
        if backend.lower() == "auto":
            return list(BACKENDS)
        names = [backend]
    else:
        names = list(backend)
    result = []
    for name in names:
        key = _ALIASES.get(str(name).lower())
        if key is None:
            raise ValueError(
                f"unknown astrometry backend {name!r}: use 'auto' or one of {', '.join(BACKENDS)}"
            )
        if key not in result:
            result.append(key)
    return result


def _star_list(frame, stars, *, n_stars, name):
    """The usable stars (brightest first) and the solver's selection among them."""
    table = stars if stars is not None else detect_stars(frame)
    if not isinstance(table, Table):
        raise TypeError(
            f"stars must be an astropy Table/QTable with x, y columns, not {type(table).__name__}"
        )
    x, y, flux, good = normalize_stars(table, name=name)
    if np.count_nonzero(good) < 20 and "flags" in table.colnames:
        # few stars: saturated ones still give usable centres (bit 1 of find_stars flags)
        flags = np.asarray(table["flags"])
        if np.issubdtype(flags.dtype, np.integer):
            relaxed = np.isfinite(x) & np.isfinite(y) & np.isfinite(flux) & ((flags & 2) == 0)
            if np.count_nonzero(relaxed) > np.count_nonzero(good):
                log.info(
                    "%s: only %d unflagged stars; using saturated ones too", name, np.count_nonzero(good)
                )
                good = relaxed
    shape = frame.data.shape
    mask = frame.mask if getattr(frame, "mask", None) is not None else None
    order = np.flatnonzero(good)
    order = order[np.argsort(-flux[order], kind="stable")]
    selected = select_stars(
        x[order], y[order], flux[order], np.ones(len(order), bool), shape, mask=mask, n_max=n_stars
    )
    # the stars on bad pixels / bad corners are not used for matching but stay for verification
    return table, order, StarList(x=x[order], y=y[order], flux=flux[order], selected=selected, shape=shape)


def _frame_epoch(frame):
    """The frame's date as a Julian year (None when unknown)."""
    try:
        date = getattr(frame, "date_obs", None)
    except Exception:  # a malformed DATE-OBS: the catalogue's own epoch then
        return None
    return None if date is None else float(date.jyear)


class _References:
    """Reference stars, loaded once per call and reused for nearby fields."""

    def __init__(self, catalog, index_files, epoch=None):
        self.catalog = catalog
        self.index_files = index_files
        #: Julian year of the frame: Gaia positions are moved there by their proper motions
        self.epoch = epoch
        self._cached = None  # (center, radius, table, label)

    def around(self, center, radius_deg):
        if self._cached is not None:
            c0, r0, table, label = self._cached
            if c0.separation(center).deg + radius_deg <= r0:
                return table, label
        table, label = reference_stars(
            self.catalog, center, radius_deg, index_files=self.index_files, epoch=self.epoch
        )
        self._cached = (center, radius_deg, table, label)
        return table, label


def _check_options(match_radius, min_matches, min_logodds):
    return {
        "match_radius": float(match_radius),
        "min_matches": int(min_matches),
        "min_logodds": float(min_logodds),
    }


def _check_record(check):
    """The verification figures of a solution record."""
    return {
        "n_matched": check.n_matched,
        "n_reference": check.n_reference,
        "n_detected": check.n_detected,
        "logodds": round(check.logodds, 2),
        "rms_pixels": round(check.rms_pixels, 4),
        "rms_arcsec": round(check.rms_arcsec, 4),
    }


def _is_auto(backend):
    return isinstance(backend, str) and backend.lower() == "auto"


def _candidates(name, stars, hint, refs, options, time_left, wall_left=None):
    if name == "engine":
        return solve_with_engine(stars, hint, index_files=options["index_files"], time_limit=time_left)
    if name == "solve-field":
        # a CPU limit the program enforces; the wall clock may run longer on a shared machine
        wall = None if wall_left is None else min(wall_left, time_left * WALL_FACTOR)
        return solve_with_solve_field(
            stars,
            hint,
            index_files=options["index_files"],
            time_limit=time_left,
            wall_limit=wall,
            stop=options.get("stop"),
            budget=options.get("budget"),
        )
    if name == "web":
        return solve_with_web(stars, hint, time_limit=time_left, api_key=options["api_key"])
    # the Python matcher
    if not hint.has_position or not hint.has_scale:
        missing = " and ".join(
            w for w, ok in (("a position", hint.has_position), ("a pixel scale", hint.has_scale)) if not ok
        )
        raise BackendUnavailable(f"the Python matcher needs {missing} hint (give hint=/scale=)")
    ny, nx = stars.shape
    low, high = hint.scale_range_arcsec()
    half_diag = 0.5 * math.hypot(nx, ny) * high / 3600.0
    radius = float(hint.radius.to_value(u.deg))
    table, label = refs.around(hint.center, radius + half_diag * 1.05)
    sel = stars.selected
    wcs_list = match_triangles(
        stars.x[sel],
        stars.y[sel],
        stars.shape,
        table["ra"].to_value(u.deg),
        table["dec"].to_value(u.deg),
        center=hint.center,
        radius_deg=radius,
        scale_low=low,
        scale_high=high,
        ref_mag=np.asarray(table["mag"], float),
        match_radius=options["match_radius"],
        time_limit=time_left,
    )
    if not wcs_list:
        raise AstrometryError(f"no triangle match between {len(sel)} stars and {len(table)} {label} stars")
    return [Candidate(wcs=w, reference=None, details={"index": label}) for w in wcs_list]


def _refine_and_verify(candidate, stars, refs, options):
    """Refine a candidate on the reference stars and verify it: (wcs, info, verification, label)."""
    ny, nx = stars.shape
    summary = wcs_summary(candidate.wcs, stars.shape)
    from astropy.coordinates import SkyCoord

    center = SkyCoord(summary["center"][0] * u.deg, summary["center"][1] * u.deg, frame="icrs")
    radius = 0.5 * math.hypot(nx, ny) * summary["pixel_scale"] / 3600.0 * 1.1
    try:
        table, label = refs.around(center, radius)
    except AstrometryError as exc:
        if candidate.reference is None:
            raise AstrometryError(f"cannot verify: {exc}") from exc
        table, label = candidate.reference, "the backend's index stars"
        log.info("verifying against %s (%s)", label, exc)
    if len(table) < options["min_matches"] and candidate.reference is not None:
        table, label = candidate.reference, "the backend's index stars"
    ra = table["ra"].to_value(u.deg)
    dec = table["dec"].to_value(u.deg)
    mag = np.asarray(table["mag"], float)
    wcs, info = refine_wcs(
        candidate.wcs,
        stars.x,
        stars.y,
        ra,
        dec,
        stars.shape,
        match_radius=options["match_radius"],
        sip_degree=options["sip_degree"],
        min_matches=options["min_matches"],
    )
    verification = verify_wcs(
        wcs,
        stars.x,
        stars.y,
        ra,
        dec,
        stars.shape,
        match_radius=options["match_radius"],
        min_matches=options["min_matches"],
        min_logodds=options["min_logodds"],
        ref_mag=mag if np.isfinite(mag).any() else None,
    )
    info = dict(info, reference=(ra, dec, mag))
    return wcs, info, verification, label


#: Backends that may run side by side: the matcher is short, solve-field stops when asked.
_SIDE_BY_SIDE = frozenset({"matcher", "solve-field"})


def _batch(plan, start, n_threads):
    """The next backends to run: two side by side when threads allow and both can, else one."""
    pair = plan[start : start + 2]
    if n_threads > 1 and len(pair) == 2 and set(pair) <= _SIDE_BY_SIDE:
        return pair
    return plan[start : start + 1]


def _attempt_item(item, **kwargs):
    return _attempt(item[0], item[1], **kwargs)


#: (backend, reason) pairs already logged: an unavailable backend is said once per process,
#: not for every frame of a batch (later frames log it at DEBUG; each solution records it).
_SAID_UNAVAILABLE = set()


def _say_unavailable_once(backend_name, exc):
    key = (backend_name, str(exc))
    level = logging.DEBUG if key in _SAID_UNAVAILABLE else logging.INFO
    _SAID_UNAVAILABLE.add(key)
    log.log(level, "%s unavailable: %s", backend_name, exc)


def _attempt(backend_name, share, stars, refs, options, context, stop):
    """
    Run one backend within ``share`` CPU seconds and verify its candidates.

    Returns the solution record (with its WCS under ``_wcs``; ``stop`` is
    set for a backend running alongside) or the ``tried`` record of a
    backend that was skipped, unavailable, failed or rejected.
    """
    record = {"backend": backend_name, "cpu_share": round(share, 1)}
    if share <= 0.05:
        return dict(record, status="skipped", reason="time limit reached")
    if stop.is_set():
        return dict(record, status="skipped", reason="solved by another backend")
    t_backend = time.perf_counter()
    try:
        candidates = _candidates(
            backend_name, stars, context["hint"], refs, dict(options, stop=stop, budget=context["budget"]), share,
            context["budget"].wall_left(),
        )  # fmt: skip
    except BackendUnavailable as exc:
        _say_unavailable_once(backend_name, exc)
        return {"backend": backend_name, "status": "unavailable", "reason": str(exc)}
    except TooFewReferenceStars as exc:
        return {"backend": backend_name, "status": "failed", "reason": str(exc)}
    except AstrometryError as exc:
        log.info("%s failed: %s", backend_name, exc)
        seconds = round(time.perf_counter() - t_backend, 3)
        return dict(record, status="failed", reason=str(exc), seconds=seconds)
    solution, wcs, rejections = _first_verified(backend_name, list(candidates), stars, refs, options, context)
    if solution is None:
        seconds = round(time.perf_counter() - t_backend, 3)
        return dict(record, status="rejected", reason=_rejection_summary(rejections), seconds=seconds)
    stop.set()
    solution["_wcs"] = wcs
    return solution


def _cache_reference(info, wcs, shape, n_max=300):
    """The brightest reference stars on the frame, kept with a cached solution to verify it by."""
    ra, dec, mag = info["reference"]
    ny, nx = shape
    with quiet():
        x, y = wcs.all_world2pix(ra, dec, 0)
    on = np.flatnonzero(
        np.isfinite(x) & np.isfinite(y) & (x > -0.5) & (x < nx - 0.5) & (y > -0.5) & (y < ny - 0.5)
    )
    order = on[np.argsort(np.where(np.isfinite(mag[on]), mag[on], np.inf), kind="stable")][:n_max]
    return {"ra": ra[order].tolist(), "dec": dec[order].tolist(), "mag": mag[order].tolist()}


def _verify_cached(hit, star_list, options, name):
    """
    The cached WCS verified again against the frame's stars, or None.

    A cache entry is a file anyone can edit: its WCS is checked against the
    stars detected now, with the reference stars it was verified on when it
    was stored, like any other answer. An entry without them (older) or one
    that fails is not used.
    """
    wcs, solution = hit
    reference = solution.get("reference")
    if not reference:
        log.info("%s: the cached solution has no reference stars to verify it by; solving again", name)
        return None
    mag = np.asarray(reference["mag"], float)
    check = verify_wcs(
        wcs,
        star_list.x,
        star_list.y,
        np.asarray(reference["ra"], float),
        np.asarray(reference["dec"], float),
        star_list.shape,
        match_radius=options["match_radius"],
        min_matches=options["min_matches"],
        min_logodds=options["min_logodds"],
        ref_mag=mag if np.isfinite(mag).any() else None,
    )
    if not check.accepted:
        log.warning("%s: the cached solution does not verify (%s); solving again", name, check.reason)
        return None
    return check


def _solution_record(backend_name, candidate, wcs, info, check, label, stars, context):
    summary = wcs_summary(wcs, stars.shape)
    solution = {
        "backend": backend_name,
        "index": candidate.details.get("index") or label,
        "catalog": label,
        "verified": True,
        **_check_record(check),
        "n_stars_used": stars.n_selected,
        "sip_degree": info.get("sip_degree", 0),
        "pixel_scale": summary["pixel_scale"],
        "rotation": summary["rotation"],
        "parity": summary["parity"],
        "center": summary["center"],
        "field_width": summary["field_width"],
        "field_height": summary["field_height"],
        "shape": list(stars.shape),
        "hint": context["hint"].as_record(),
        "details": {k: v for k, v in candidate.details.items() if k != "index"},
        "tried": context["tried"],
        "cached": False,
        "budget": context["budget"].record(),
        "time": round(time.perf_counter() - context["t0"], 4),
    }
    if context["checksum"] is not None:
        solution["checksum"] = context["checksum"]
    log.info(
        "solved by %s: centre %.5f %+.5f, %.4f\"/px, rotation %.2f deg, %d stars matched, rms %.3f\"",
        backend_name, summary["center"][0], summary["center"][1], summary["pixel_scale"],
        summary["rotation"], check.n_matched, check.rms_arcsec,
    )  # fmt: skip
    return solution


def _first_verified(backend_name, candidates, stars, refs, options, context):
    """``(solution, wcs, rejections)`` for the first candidate that verifies (None, None, ...)."""
    rejections = []
    for candidate in candidates:
        try:
            wcs, info, check, label = _refine_and_verify(candidate, stars, refs, options)
        except AstrometryError as exc:
            rejections.append((-1.0, str(exc)))
            continue
        if not check.accepted:
            rejections.append((check.logodds, check.reason))
            continue
        solution = _solution_record(backend_name, candidate, wcs, info, check, label, stars, context)
        solution["_reference"] = _cache_reference(info, wcs, stars.shape)
        return solution, wcs, rejections
    return None, None, rejections


def _rejection_summary(rejections):
    if not rejections:
        return "no candidate"
    best = max(rejections, key=lambda item: item[0])[1]
    if len(rejections) == 1:
        return f"the candidate failed verification: {best}"
    return f"{len(rejections)} candidates failed verification; the best: {best}"


def _clean_header(header):
    out = header.copy()
    for key in [k for k in out.keys() if _WCS_KEY.match(k)]:
        del out[key]
    return out


def _output_stars(table, wcs):
    out = QTable(table, copy=True)
    x, y, _, _ = normalize_stars(table)
    with quiet():
        ra, dec = wcs.all_pix2world(x, y, 0)
    out["ra"] = np.asarray(ra) * u.deg
    out["dec"] = np.asarray(dec) * u.deg
    out["ra"].info.description = "right ascension (ICRS) through the solved WCS"
    out["dec"].info.description = "declination (ICRS) through the solved WCS"
    return out


def _build(frame, wcs, table, solution, rec):
    """The SolvedFrame: a new header and WCS over the calibrated frame's own pixel arrays (not copied)."""
    header = _clean_header(frame.meta) if hasattr(frame.meta, "copy") else dict(frame.meta)
    kwargs = {
        "unit": frame.unit,
        "meta": header,
        "wcs": wcs,
        "uncertainty": None
        if frame.uncertainty is None
        else frame.uncertainty.__class__(frame.uncertainty.array, copy=False),
        "mask": frame.mask,
        "stars": table,
        "solution": solution,
    }
    if isinstance(frame, FrameBase) and frame.flags is not None:
        kwargs["flags"] = frame.flags
    out = SolvedFrame(frame.data, copy=False, **kwargs)
    outcome = {
        k: solution[k]
        for k in ("backend", "n_matched", "rms_arcsec", "pixel_scale", "cached")
        if k in solution
    }
    outcome["tried"] = solution.get("tried", [])
    return rec.finish(out, primary=frame if isinstance(frame, FrameBase) else None, outcome=outcome)


def _check_frame(frame):
    """The frame (read when a path) and its name; a frame that is not calibrated or not 2-D is refused."""
    frame = as_frame(frame, role="solve_astrometry", accept=(CCDData,))
    name = frame.name if isinstance(frame, FrameBase) else "<in-memory CCDData>"
    if isinstance(frame, FrameBase) and not isinstance(frame, CalibratedFrame):
        raise FrameTypeError(
            f"{name}: a {type(frame).__name__} cannot become a SolvedFrame (a calibrated frame with a "
            "verified WCS); calibrate it first: calibrate_frame(raw, bias=..., dark=..., flat=...), or "
            "calibrate_frame(raw, unit='adu') to keep ADU without masters"
        )
    return frame, name


def solve_astrometry(
    frame,
    *,
    stars=None,
    backend="auto",
    hint=None,
    radius=None,
    scale=None,
    scale_tolerance=0.2,
    blind=False,
    time_limit=60.0,
    index_files=None,
    catalog=None,
    cache=None,
    n_stars=200,
    match_radius=3.0,
    min_matches=6,
    min_logodds=20.0,
    sip_degree="auto",
    api_key=None,
    parallel=None,
):
    """
    Plate-solve a frame: find its celestial WCS and verify it against a catalogue.

    Backends are tried in turn until one proposes a solution that, refined
    on the reference stars, maps enough catalogue stars onto detected stars
    with a small residual. A solution that does not verify is never
    returned.

    Parameters
    ----------
    frame : `~astrophot.CalibratedFrame`, `~astropy.nddata.CCDData`, str or path-like
        A calibrated frame (or a plain CCDData, or a frame file's path). A `~astrophot.RawFrame` or a
        master is refused: calibrate a raw light first
        (``calibrate_frame(raw, unit="adu")`` keeps ADU without masters).
    stars : `~astropy.table.Table`, optional
        Its stars: 0-based ``x``, ``y`` and ``flux`` (or ``mag``) columns,
        optionally ``flags`` (non-zero: not used). Default:
        `~astrophot.analysis.find_stars` on the frame.
    backend : str or sequence of str, optional
        ``'auto'`` uses ``'engine'`` (the PyPI ``astrometry`` package, an
        optional extra), ``'solve-field'`` (astrometry.net's program),
        ``'matcher'`` (astrophot's own triangle matcher; needs a position
        and scale hint) and ``'web'`` (nova.astrometry.net; needs an API
        key and network): a hinted search (position and scale known) tries
        the matcher first, then solve-field, the engine and the web; a
        blind one solve-field, the engine, then the rest. A name or a list
        limits the choice and keeps its order.
    hint : `~astropy.coordinates.SkyCoord`, tuple, dict or str, optional
        Approximate field centre, overriding the header's RA/DEC
        (``RA-OBJ``/``DEC-OBJ``, ``OBJCTRA``/``OBJCTDEC``, ``RA``/``DEC``).
        ``(ra, dec)`` or ``(ra, dec, radius)`` in degrees also work.
    radius : float or `~astropy.units.Quantity`, optional
        How far the field may be from the hint (deg). Default one field
        diagonal (three around mount coordinates, at least 0.25 deg; 10 deg
        without a scale).
    scale : float, `~astropy.units.Quantity` or (low, high), optional
        Pixel scale in arcsec/pix, overriding the header (``FOCALLEN`` and
        ``XPIXSZ``, ``PIXSCALE``, iTelescope's plate scale, an existing WCS,
        or the iTelescope telescope table).
    scale_tolerance : float, optional
        Relative half-width of the searched scale range around ``scale``.
    blind : bool, optional
        Ignore the header's position and scale; search the whole sky.
    time_limit : float, optional
        CPU seconds (this process and its solver processes) for the whole
        search; the search also stops after three times as many wall
        seconds. Each backend gets a share of what is left (see
        ``astrophot.astrometry._budget``) and passes on what it does not use.
    index_files : str, path or sequence, optional
        astrometry.net index files or directories. Default: the directories
        in ``ASTROMETRY_INDEX_DIRS``, ``/etc/astrometry.cfg`` and the usual
        install places (``/usr/share/astrometry``).
    catalog : str, path or `~astropy.table.Table`, optional
        Reference stars for the matcher and for verification: ``'auto'``
        (Tycho-2 from the index files, else the demo extract), ``'tycho2'``,
        ``'demo'``, ``'gaia'`` (network), a catalogue file, or a table with
        ``ra``, ``dec`` and a magnitude.
    cache : path-like or bool, optional
        A directory of verified solutions keyed by the pixel checksum;
        ``True`` for the user cache directory. Off by default.
    n_stars : int, optional
        Stars fed to the solvers (brightest, spread over the field).
    match_radius : float, optional
        Pixels within which a catalogue star matches a detection.
    min_matches : int, optional
        Catalogue stars that must match for a solution to verify.
    min_logodds : float, optional
        Natural-log odds against a chance alignment that a solution must reach.
    sip_degree : int, None or "auto", optional
        Distortion of the final fit: "auto" adds SIP (order 2, then 3) when
        30 (100) or more stars match and it lowers the residual by 10%.
    api_key : str, optional
        astrometry.net API key for the web backend (default: astroquery's
        configuration). Never logged or recorded.
    parallel : None, bool or int, optional
        Threads (astrophot's concurrency policy): with two or more, backends
        run two at a time, each within its own share of the budget.

    Returns
    -------
    `~astrophot.SolvedFrame`
        The frame with its WCS; ``stars`` is the star table with ``ra`` and
        ``dec`` added; ``solution`` records the backend, index or catalogue,
        matched stars, RMS residual (arcsec), pixel scale, rotation, parity,
        centre, time taken (``budget``: CPU and wall seconds), and what was
        tried before.

    Raises
    ------
    astrophot.exceptions.AstrometryError
        When no backend produced a verified solution; the message lists
        every backend tried and why each failed.
    astrophot.exceptions.FrameTypeError
        When ``frame`` is not a 2-D frame, or is an astrophot frame that is
        not calibrated (a RawFrame or a master).
    ValueError
        For contradictory or malformed hints.

    See Also
    --------
    astrophot.analysis.find_stars : the star list.
    astrophot.resample_frame : the next stage.
    astrophot.astrometry.find_index_files

    Notes
    -----
    Every backend's answer is refined the same way: catalogue stars are
    matched to detections and a TAN (or TAN-SIP) WCS is fitted with
    `~astropy.wcs.utils.fit_wcs_from_points`, iterating as the match radius
    shrinks; then it is verified: the number of matches must be far above
    what chance gives at this star density (Poisson log-odds), with a
    residual RMS under half the match radius.

    The astrometry.net engine runs in a separate program so that the time
    limit can stop it (also inside a Dask worker); ``solve-field`` gets ``--cpulimit``; the web service
    is polled with a growing interval and never resubmitted.

    Examples
    --------
    >>> from astrophot import calibrate_frame
    >>> from astrophot.datasets import make_raw_frame
    >>> from astrophot.astrometry import solve_astrometry
    >>> raw, truth = make_raw_frame(target="M31", shape=(400, 400), scale=9.0, seed=2)
    >>> light = calibrate_frame(raw, unit="adu", gain=1.0, read_noise=8.0)
    >>> solved = solve_astrometry(light, backend="matcher", scale=9.0, catalog="demo")
    >>> solved.solution["backend"], solved.solution["verified"]
    ('matcher', True)
    >>> abs(solved.solution["pixel_scale"] - 9.0) < 0.01
    True
    """
    t0 = time.perf_counter()
    frame, name = _check_frame(frame)
    names = _backend_list(backend)
    if time_limit is None or not time_limit > 0:
        raise ValueError(f"time_limit must be a positive number of seconds, not {time_limit!r}")
    rec = start_step(
        "solve_astrometry",
        parameters={
            "backend": backend if isinstance(backend, str) else list(backend),
            "hint": hint,
            "radius": radius,
            "scale": scale,
            "scale_tolerance": scale_tolerance,
            "blind": blind,
            "time_limit": time_limit,
            "index_files": None if index_files is None else [str(p) for p in np.atleast_1d(index_files)],
            "catalog": catalog_label(catalog),
            "cache": None if cache is None or cache is False else str(cache),
            "n_stars": n_stars,
            "match_radius": match_radius,
            "min_matches": min_matches,
            "min_logodds": min_logodds,
            "sip_degree": sip_degree,
            "stars": None if stars is None else f"table of {len(stars)} stars",
        },
        inputs={"frame": frame},
        software=("astroquery",),
    )
    checksum = frame.checksum() if isinstance(frame, FrameBase) else None
    store = SolutionCache(cache) if cache not in (None, False) else None
    if store is not None:
        if checksum is None:
            from astrophot.frames._base import data_checksum

            checksum = data_checksum(frame.data)
        hit = store.get(checksum, frame.data.shape)
        if hit is not None:
            table, _, cached_stars = _star_list(frame, stars, n_stars=n_stars, name=name)
            check = _verify_cached(
                hit, cached_stars, _check_options(match_radius, min_matches, min_logodds), name
            )
            if check is not None:
                wcs, solution = hit
                solution = {k: v for k, v in solution.items() if k != "reference"}
                solution = dict(
                    solution, cached=True, time=round(time.perf_counter() - t0, 4), **_check_record(check)
                )
                log.info("%s: solution from the cache (%s), verified again", name, store.directory)
                return _build(frame, wcs, _output_stars(table, wcs), solution, rec)

    sky_hint = hint_from_frame(
        frame, hint=hint, radius=radius, scale=scale, scale_tolerance=scale_tolerance, blind=blind
    )
    table, _, star_list = _star_list(frame, stars, n_stars=n_stars, name=name)
    if star_list.n_selected < 5:
        raise AstrometryError(
            f"{name}: only {star_list.n_selected} usable stars detected (need at least 5 to solve); "
            "tried nothing"
        )
    options = dict(
        _check_options(match_radius, min_matches, min_logodds),
        index_files=index_files,
        api_key=api_key,
        sip_degree=sip_degree,
    )
    refs = _References(catalog, index_files, epoch=_frame_epoch(frame))
    budget = CpuBudget(time_limit)
    plan = plan_backends(names, sky_hint, auto=_is_auto(backend))
    weights = [WEIGHTS[search_kind(sky_hint)].get(n, 1.0) for n in plan]
    tried = []
    context = {"t0": t0, "checksum": checksum, "hint": sky_hint, "tried": tried, "budget": budget}
    n_threads = min(2, resolve_threads(parallel))
    start = 0
    while start < len(plan):
        batch = _batch(plan, start, n_threads)
        left = budget.left()
        total = sum(weights[start:]) or 1.0
        shares = [left * w / total for w in weights[start : start + len(batch)]]
        start += len(batch)
        if len(batch) > 1:
            log.info("%s: %s side by side (%s CPU s)", name, " and ".join(batch),
                     ", ".join(f"{s:.0f}" for s in shares))  # fmt: skip
        stop = threading.Event()
        results = thread_map(
            functools.partial(
                _attempt_item, stars=star_list, refs=refs, options=options, context=context, stop=stop
            ),
            list(zip(batch, shares)),
            n_threads=len(batch),
        )
        solved = [r for r in results if "verified" in r]
        tried.extend(r for r in results if "verified" not in r)
        if solved:
            solution, wcs = solved[0], solved[0].pop("_wcs")
            reference = solution.pop("_reference")
            if store is not None:
                store.put(checksum, wcs, dict(solution, reference=reference))
            return _build(frame, wcs, _output_stars(table, wcs), solution, rec)
    elapsed = time.perf_counter() - t0
    lines = [f"{t['backend']} ({t['status']}: {t['reason']})" for t in tried]
    used = budget.record()
    raise AstrometryError(
        f"{name}: no verified astrometric solution in {elapsed:.1f} s ({used['cpu_seconds']:.1f} CPU s "
        f"of {time_limit:g}); tried: " + "; ".join(lines)
    )
