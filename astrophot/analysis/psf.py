# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The point-spread function of a frame: its size, shape and variation across the field."""

import math
from dataclasses import dataclass, field

import numpy as np

from astrophot.analysis._common import as_frame, frame_name, keyword_only, pixel_scale
from astrophot.analysis.stars import _clipped_median, find_stars, select_psf_stars
from astrophot.exceptions import AnalysisError

__all__ = ["PSFSummary", "measure_psf"]


@dataclass(frozen=True)
class PSFSummary:
    """
    The PSF of one frame, as `measure_psf` measures it.

    Attributes
    ----------
    fwhm : float
        Median FWHM in pixels (geometric mean of the major- and minor-axis
        widths of elliptical Moffat fits), after 3-sigma clipping.
    fwhm_arcsec : float or None
        The same in arcsec, when the plate scale is known.
    fwhm_scatter : float
        Robust spread (1.4826 MAD) of the FWHM of the stars used, in pixels.
    ellipticity : float
        ``1 - b/a`` of the mean shape (the median of the stars' ellipticity
        vectors, so noise does not bias round PSFs towards elongation).
    theta : float
        Position angle of the major axis, degrees from +x towards +y.
    beta : float
        Moffat index.
    n_stars : int
        Stars used.
    scale : float or None
        Arcsec per pixel (from the WCS, else XPIXSZ/FOCALLEN).
    fwhm_grid : numpy.ndarray
        Median FWHM (pixels) in each cell of a coarse ``grid x grid`` layout
        over the image (row 0 at the bottom, y = 0); NaN where no star.
    n_grid : numpy.ndarray
        Stars in each cell.
    frame : str
        The frame's name.

    See Also
    --------
    measure_psf : Makes the summary.
    """

    fwhm: float
    fwhm_arcsec: float
    fwhm_scatter: float
    ellipticity: float
    theta: float
    beta: float
    n_stars: int
    scale: float
    fwhm_grid: np.ndarray = field(repr=False)
    n_grid: np.ndarray = field(repr=False)
    frame: str = ""

    def to_dict(self):
        """
        Plain Python values (for YAML, JSON or a table row).

        Returns
        -------
        dict
            Field name to value; the FWHM and star-count grids as nested lists.
        """
        return {
            "frame": self.frame,
            "fwhm": self.fwhm,
            "fwhm_arcsec": self.fwhm_arcsec,
            "fwhm_scatter": self.fwhm_scatter,
            "ellipticity": self.ellipticity,
            "theta": self.theta,
            "beta": self.beta,
            "n_stars": self.n_stars,
            "scale": self.scale,
            "fwhm_grid": np.asarray(self.fwhm_grid).tolist(),
            "n_grid": np.asarray(self.n_grid).tolist(),
        }


def _values(column):
    return np.asarray(getattr(column, "value", column), dtype=float)


def measure_psf(frame, *args, stars=None, grid=3, min_snr=20.0, max_per_cell=25, **find_options):
    """
    Measure the PSF of a frame from its stars.

    Parameters
    ----------
    frame : `~astrophot.CalibratedFrame`, `~astropy.nddata.CCDData`, 2-D array, or path
        The image (for its size and plate scale; searched for stars when
        ``stars`` is None).
    *args
        Deprecated: ``stars`` given positionally (it is keyword-only now; a
        warning says so).
    stars : `~astropy.table.QTable`, optional
        The output of `find_stars` for this frame.
    grid : int, optional
        The field is cut into ``grid x grid`` cells, both for choosing stars
        (at most ``max_per_cell`` from each) and for the FWHM map.
    min_snr : float, optional
        Faintest stars used.
    max_per_cell : int, optional
        Stars taken from a cell, brightest first: a cluster of bright
        artefacts in a corner cannot crowd out the rest of the field.
    **find_options
        Passed to `find_stars` when ``stars`` is None.

    Returns
    -------
    PSFSummary
        FWHM (pixels and arcsec), shape, beta, number of stars and the FWHM map.

    Raises
    ------
    astrophot.exceptions.AnalysisError
        No usable star (unflagged, fitted, above ``min_snr``).

    See Also
    --------
    find_stars : The star list measured here.
    assess_quality : The quality record that uses this summary.

    Notes
    -----
    Stars with any `~astrophot.analysis.StarFlag` (saturated, near a masked
    pixel or the edge, blended, failed fit) are not used. The FWHM is the
    3-sigma-clipped median of the stars' Moffat FWHM; the ellipticity and
    angle come from the medians of ``e cos 2 theta`` and ``e sin 2 theta``.
    If fewer than 5 stars pass ``min_snr``, the limit is lowered to 10.

    Examples
    --------
    >>> from astrophot.analysis import find_stars, measure_psf
    >>> from astrophot.datasets import make_raw_frame
    >>> raw, truth = make_raw_frame(shape=(200, 300), fwhm=3.0, seed=2)
    >>> frame = raw.subtract(1000 * raw.unit)  # a rough bias removal is enough here
    >>> psf = measure_psf(frame)
    >>> abs(psf.fwhm - truth.psf.fwhm) < 0.3
    True
    """
    stars = keyword_only("measure_psf", "stars", args, stars)
    obj = as_frame(frame, purpose="measure_psf")
    name = frame_name(obj)
    grid = int(grid)
    if grid < 1:
        raise ValueError(f"grid must be at least 1, not {grid}")
    if stars is None:
        stars = find_stars(obj, **find_options)
    elif find_options:
        raise TypeError(f"options {sorted(find_options)} are only used when no stars are given")
    ny, nx = obj.data.shape
    if len(stars) == 0:
        raise AnalysisError(f"{name}: no stars to measure the PSF from")
    x = _values(stars["x"])
    y = _values(stars["y"])
    snr = _values(stars["snr"])
    fwhm = _values(stars["fwhm"])
    ell = _values(stars["ellipticity"])
    theta = _values(stars["theta"])
    usable = (np.asarray(stars["flags"]) == 0) & np.isfinite(fwhm) & np.isfinite(ell) & np.isfinite(theta)
    chosen = select_psf_stars(x, y, snr, usable, (ny, nx), grid=grid, per_cell=max_per_cell, min_snr=min_snr)
    if chosen.size < 5:
        chosen = select_psf_stars(
            x, y, snr, usable, (ny, nx), grid=grid, per_cell=max_per_cell, min_snr=min(10.0, min_snr)
        )
    if chosen.size == 0:
        raise AnalysisError(
            f"{name}: no unflagged star with SNR >= {min(10.0, min_snr):g} to measure the PSF from "
            f"({len(stars)} detections)"
        )
    median, spread, _ = _clipped_median(fwhm[chosen])
    keep = chosen[np.abs(fwhm[chosen] - median) <= 3 * spread] if spread > 0 else chosen
    angle = np.radians(2 * theta[keep])
    e1 = float(np.median(ell[keep] * np.cos(angle)))
    e2 = float(np.median(ell[keep] * np.sin(angle)))
    ellipticity = float(math.hypot(e1, e2))
    pa = float(0.5 * math.degrees(math.atan2(e2, e1)))

    col = np.clip((x[keep] / nx * grid).astype(int), 0, grid - 1)
    row = np.clip((y[keep] / ny * grid).astype(int), 0, grid - 1)
    fwhm_grid = np.full((grid, grid), np.nan)
    n_grid = np.zeros((grid, grid), dtype=int)
    for r in range(grid):
        for c in range(grid):
            members = keep[(row == r) & (col == c)]
            n_grid[r, c] = members.size
            if members.size:
                fwhm_grid[r, c] = float(np.median(fwhm[members]))
    scale = pixel_scale(obj)
    beta = stars.meta.get("beta") if hasattr(stars, "meta") else None
    return PSFSummary(
        fwhm=float(median),
        fwhm_arcsec=None if scale is None else float(median * scale),
        fwhm_scatter=float(spread),
        ellipticity=ellipticity,
        theta=pa,
        beta=float(beta) if beta is not None else math.nan,
        n_stars=int(keep.size),
        scale=None if scale is None else float(scale),
        fwhm_grid=fwhm_grid,
        n_grid=n_grid,
        frame=name,
    )
