# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The star list a solver is fed: astrophot's own detections, selected."""

import logging

import numpy as np

from astrophot.exceptions import AstrometryError

__all__ = ["detect_stars", "normalize_stars", "select_stars"]

log = logging.getLogger(__name__)

#: Boolean columns of a star table that make a star unusable for astrometry.
_BAD_BOOLEAN_COLUMNS = ("saturated", "near_mask", "near_masked", "bad")
_X_COLUMNS = ("x", "xcentroid", "x_centroid", "xcenter", "x_fit")
_Y_COLUMNS = ("y", "ycentroid", "y_centroid", "ycenter", "y_fit")
_FLUX_COLUMNS = ("flux", "flux_fit", "aperture_sum", "segment_flux")
#: `astrophot.analysis.StarFlag` bits that make a centre unreliable: SATURATED | NEAR_MASKED.
_BAD_FLAGS = 1 | 2


def _column(table, names, *, exact=False):
    if exact:
        return next((name for name in names if name in table.colnames), None)
    lower = {name.lower(): name for name in table.colnames}
    for name in names:
        if name in lower:
            return lower[name]
    return None


def _values(column):
    values = getattr(column, "value", column)
    return np.asarray(values, dtype=float)


def normalize_stars(stars, *, name="<star table>"):
    """
    Check a star table and return ``(x, y, flux, good)`` arrays.

    Parameters
    ----------
    stars : `~astropy.table.Table` or `~astropy.table.QTable`
        Must have 0-based pixel columns ``x`` and ``y`` (``xcentroid`` and
        ``ycentroid`` are accepted); ``flux`` (or ``mag``) orders them, else
        the table order is taken as brightest first. Boolean columns
        ``saturated``, ``near_masked`` and the ``SATURATED`` and
        ``NEAR_MASKED`` bits of an integer ``flags`` column
        (`~astrophot.analysis.StarFlag`) mark stars whose centres are not
        trusted; blended stars and stars near the edge are kept.
    name : str
        The frame name, for messages.

    Returns
    -------
    x, y, flux, good : numpy.ndarray
        ``flux`` is larger for brighter stars (``-mag`` when only a magnitude is given).

    Raises
    ------
    astrophot.exceptions.AstrometryError
        If the table has no position columns.
    """
    # exact, lower-case names only: upper-case X/Y are the 1-based FITS/xyls convention
    xcol, ycol = _column(stars, _X_COLUMNS, exact=True), _column(stars, _Y_COLUMNS, exact=True)
    if xcol is None or ycol is None:
        raise AstrometryError(
            f"{name}: the star table has no x/y columns (0-based pixels; upper-case X/Y are taken "
            f"for 1-based and refused); columns are {stars.colnames}"
        )
    x, y = _values(stars[xcol]), _values(stars[ycol])
    fcol = _column(stars, _FLUX_COLUMNS)
    if fcol is not None:
        flux = _values(stars[fcol])
    elif _column(stars, ("mag",)) is not None:
        flux = -_values(stars[_column(stars, ("mag",))])
    else:
        flux = -np.arange(len(x), dtype=float)
    good = np.isfinite(x) & np.isfinite(y) & np.isfinite(flux)
    for colname in _BAD_BOOLEAN_COLUMNS:
        col = _column(stars, (colname,))
        if col is not None and np.asarray(stars[col]).dtype == bool:
            good &= ~np.asarray(stars[col])
    flags = _column(stars, ("flags",))
    if flags is not None and np.issubdtype(np.asarray(stars[flags]).dtype, np.integer):
        # saturated or touching bad pixels: the centre may be off. Blended
        # stars, stars near the edge and failed PSF fits keep good centres.
        good &= (np.asarray(stars[flags]) & _BAD_FLAGS) == 0
    return x, y, flux, good


def select_stars(x, y, flux, good, shape, *, mask=None, n_max=200, grid=None, exclude_corners="auto"):
    """
    Pick the brightest usable stars, spread over the field.

    The frame is cut into a grid of cells; stars are taken in rounds, the
    brightest remaining star of every cell in each round, so a crowded or
    artefact-ridden region cannot crowd out the rest of the field.

    Parameters
    ----------
    x, y, flux : numpy.ndarray
        0-based pixel positions and fluxes (larger is brighter).
    good : numpy.ndarray of bool
        Stars allowed at all.
    shape : tuple of int
        Frame shape ``(ny, nx)``.
    mask : numpy.ndarray of bool, optional
        Bad pixels: stars centred on one are dropped.
    n_max : int, optional
        How many stars to return at most.
    grid : tuple of int, optional
        Cells ``(ny, nx)``; default about 4 on the short side, square cells.
    exclude_corners : bool, float or "auto", optional
        Drop the four corner cells: ``True`` always; a float drops stars
        within that fraction of the half-diagonal from a corner; "auto"
        drops a corner cell whose detections are an outlier (more than four
        times the median cell), the sign of glow or an artefact there.

    Returns
    -------
    numpy.ndarray of int
        Indices of the selected stars, in the order a solver should read them.
    """
    ny, nx = shape
    good = np.asarray(good, dtype=bool).copy()
    good &= (x >= -0.5) & (x <= nx - 0.5) & (y >= -0.5) & (y <= ny - 0.5)
    if mask is not None:
        ix = np.clip(np.round(x).astype(int, copy=False) if len(x) else x.astype(int), 0, nx - 1)
        iy = np.clip(np.round(y).astype(int, copy=False) if len(y) else y.astype(int), 0, ny - 1)
        ok = good.copy()
        ok[good] = ~np.asarray(mask)[iy[good], ix[good]]
        good = ok
    if grid is None:
        short = min(nx, ny)
        cell = short / 4.0
        grid = (max(1, round(ny / cell)), max(1, round(nx / cell)))
    gy, gx = grid
    cx = np.clip((x / nx * gx).astype(int), 0, gx - 1)
    cy = np.clip((y / ny * gy).astype(int), 0, gy - 1)
    cell_id = cy * gx + cx
    corners = {0, gx - 1, (gy - 1) * gx, (gy - 1) * gx + gx - 1}
    if gx > 2 and gy > 2 and exclude_corners is not False:
        if exclude_corners is True:
            good &= ~np.isin(cell_id, list(corners))
        elif exclude_corners == "auto":
            counts = np.bincount(cell_id[good], minlength=gx * gy)
            inner = [counts[i] for i in range(gx * gy) if i not in corners]
            median = float(np.median(inner)) if inner else 0.0
            for corner in corners:
                if median > 0 and counts[corner] > 4 * median:
                    log.info(
                        "star selection: corner cell %d has %d detections (median %d): ignored",
                        corner,
                        counts[corner],
                        median,
                    )
                    good &= cell_id != corner
        elif isinstance(exclude_corners, (int, float)):
            half_diag = 0.5 * np.hypot(nx, ny)
            for cx0, cy0 in ((0, 0), (nx, 0), (0, ny), (nx, ny)):
                good &= np.hypot(x - cx0, y - cy0) > float(exclude_corners) * half_diag
    idx = np.flatnonzero(good)
    if len(idx) == 0:
        return idx
    order = idx[np.argsort(-flux[idx], kind="stable")]
    cells = cell_id[order]
    # rank of each star within its cell (0 = brightest of the cell)
    rank = np.zeros(len(order), dtype=int)
    seen = {}
    for i, c in enumerate(cells):
        rank[i] = seen.get(c, 0)
        seen[c] = rank[i] + 1
    # round by round; within a round brightest first
    final = order[np.lexsort((-flux[order], rank))]
    return final[:n_max]


def detect_stars(frame):
    """
    Find stars in a frame for solving, with `astrophot.analysis.find_stars`.

    Parameters
    ----------
    frame : `~astrophot.frames.FrameBase` or `~astropy.nddata.CCDData`

    Returns
    -------
    `~astropy.table.QTable`
        0-based ``x``, ``y``, ``flux`` and ``flags`` (`~astrophot.analysis.StarFlag`) columns.
    """
    from astrophot.analysis import find_stars

    return find_stars(frame)
