# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The ``drizzle`` kernel of the stacks: each frame dropped onto one output band
by the ``drizzle`` package (Fruchter & Hook 2002; spacetelescope/drizzle, an
optional dependency: ``pip install astrophot-pipeline[drizzle]``).

For dithered, undersampled frames (FWHM < 2 px) drizzling onto a finer grid
with a ``pixfrac`` below 1 recovers resolution that interpolation smooths away.
Each input pixel is shrunk by ``pixfrac`` and its area shared among the output
pixels it overlaps (the ``square`` kernel); an output pixel's value is the
overlap-weighted mean of the drops that reach it, so values keep the frame's
surface brightness (electrons per second per pixel, as the other kernels'
default), and the variance is propagated with the squared overlaps
(drizzle's ``data2``). Output pixels that no good input pixel reaches are
NaN (``NO_DATA`` after the combination). Masked, flagged and non-finite input
pixels drop nothing (weight 0).

The band is done independently of the others: the input region whose pixels
can reach it is cut out, its input -> output pixel map evaluated (the same
coarse-grid map as the other kernels, the grids' roles swapped) and shifted to
the band's origin; drizzle clips what falls outside. The bands together are
the whole-frame drizzle (tests/combination/test_drizzle.py compares them).
"""

import numpy as np

from astrophot.combination import _core

__all__ = ["REACH", "drizzle_band", "require_drizzle"]

#: Input pixels of margin around the band's mapped outline (a drop reaches this far).
REACH = 2


def require_drizzle():
    """The ``Drizzle`` class, or an ImportError that says how to install it."""
    try:
        from drizzle.resample import Drizzle
    except ImportError as exc:
        raise ImportError(
            "kernel='drizzle' needs the drizzle package: pip install drizzle (or astrophot-pipeline[drizzle])"
        ) from exc
    return Drizzle


def drizzle_band(item, wcs, rows, cols, region, inputs, options):
    """
    Drizzle one frame onto the output band ``rows`` x ``cols``.

    Parameters
    ----------
    item : `astrophot.combination._combine.StackInput`
    wcs : `~astropy.wcs.WCS`
        The output grid.
    rows, cols : slice
        The band and its columns.
    region : (slice, slice)
        The input rows and columns whose drops can reach the band (`REACH` pixels
        around the band's mapped outline).
    inputs : tuple
        ``(data, variance or None, bad)`` of the input region.
    options : dict
        ``pixfrac`` and ``projection_error``.

    Returns
    -------
    (values, variances) or None
        Float32 arrays of the band's shape (NaN where nothing was dropped), in the
        frame's units per second (``item.to_rate``); None when nothing reaches the band.
    """
    Drizzle = require_drizzle()
    ny_in, nx_in = item.frame.data.shape
    data, variance, bad = inputs
    out_x, out_y = _core.pixel_map(
        wcs,
        item.wcs,
        (ny_in, nx_in),
        rows=region[0],
        cols=region[1],
        projection_error=options["projection_error"],
    )
    # drizzle leaves out drops whose input pixel's centre maps outside its output: the band is
    # padded by more than a drop's size (in output pixels) and cropped afterwards
    pad = _pad(out_x, out_y)
    pixmap = np.dstack([out_x - (cols.start - pad), out_y - (rows.start - pad)]).astype(np.float64)
    pixmap[~np.isfinite(pixmap)] = -1e6  # outside every band
    band = (rows.stop - rows.start + 2 * pad, cols.stop - cols.start + 2 * pad)
    weight = (~bad).astype(np.float32)
    clean = np.where(bad, np.float32(0), data).astype(np.float32)
    second = None
    if variance is not None:
        second = [np.zeros(band, dtype=np.float32)]
    driz = Drizzle(kernel="square", out_shape=band, fillval="NaN", out_img2=second)
    driz.add_image(
        clean,
        exptime=1.0,
        pixmap=pixmap,
        data2=None if variance is None else [np.where(bad, np.float32(0), variance).astype(np.float32)],
        weight_map=weight,
        pixfrac=float(options["pixfrac"]),
        in_units="cps",
    )
    inner = (slice(pad, band[0] - pad), slice(pad, band[1] - pad))
    covered = driz.out_wht[inner] > 0
    if not covered.any():
        return None
    values = np.where(covered, driz.out_img[inner], np.nan).astype(np.float32) * np.float32(item.to_rate)
    variances = None
    if variance is not None:
        second = driz.out_img2[0][inner]
        variances = np.where(covered, second, np.nan).astype(np.float32) * np.float32(item.to_rate**2)
    return values, variances


def _pad(out_x, out_y):
    """Output pixels more than one input pixel's drop reaches (the map's largest step, plus 2)."""
    steps = [np.abs(np.diff(v, axis=a)) for v in (out_x, out_y) for a in (0, 1) if v.shape[a] > 1]
    finite = [s[np.isfinite(s)] for s in steps]
    largest = max((float(s.max()) for s in finite if s.size), default=1.0)
    return int(np.ceil(largest)) + 2
