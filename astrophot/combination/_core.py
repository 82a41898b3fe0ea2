# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The resampling engine shared by `~astrophot.resample_frame`, stacks, mosaics,
continuum subtraction and colour composites (reproject's ``_core`` role).

Internal API (stable for the other combination modules)
-------------------------------------------------------
``pixel_map(wcs_in, wcs_out, out_shape, *, rows=None, cols=None, projection_error=0.001, jacobian=False)``
    ``(x_in, y_in)`` (or ``(x_in, y_in, area)`` with ``jacobian=True``): float64 arrays of
    shape ``(len(rows), len(cols))`` holding the 0-based input pixel position of every output
    pixel of the output rows ``rows`` (a ``slice(y0, y1)``, default all) and columns ``cols``.
    The map goes through astropy's full WCS (SIP/TPV included) on a coarse grid of nodes and is
    interpolated with a bicubic spline; the node step is halved until the spline's error, measured
    against the full WCS at the cell centres (the worst places), is below ``projection_error``
    output pixels. ``projection_error=0`` evaluates every pixel. ``area`` is ``|det J|``, the input
    pixel area one output pixel covers (what ``conserve="flux"`` multiplies by). Only the band is
    touched: call it once per output band.

``bad_reach(bad, kernel)``
    The boolean input mask dilated by the kernel's reach. `resample_band` computes it on the part
    of the input a band reaches when it is not given; a caller resampling one input in many bands
    computes it once and passes it as ``near_bad=``.

``resample_band(data, variance, bad, flags, x_in, y_in, *, kernel="lanczos3", conserve="surface_brightness", jacobian=None, min_weight=0.5, near_bad=None, antialias=None, out=None)``
    ``(data, variance, weight, flags)`` of one output band. ``data`` is the whole 2-D input,
    ``variance`` its variance or None, ``bad`` a boolean mask (True = do not use) or None,
    ``flags`` its `~astrophot.DQFlag` bits or None, ``x_in``/``y_in`` from `pixel_map`.
    Masked and non-finite input pixels and taps outside the input do not contribute: the kernel
    is renormalised over the good taps; ``weight`` is the share of the kernel's absolute mass
    that came from good pixels (1 where the whole kernel sat on good pixels). Output pixels with
    ``weight < min_weight`` are NaN and flagged ``NO_DATA`` (no "eating in" beyond the kernel's
    reach). The variance is resampled with the squared weights. The flags of the input pixel
    nearest to each output pixel are carried. ``conserve="flux"`` multiplies the data by
    ``jacobian`` (the ``area`` of `pixel_map`; computed from the map when not given) and the
    variance by its square. ``antialias`` (default: on with ``conserve="flux"``) averages
    ``n x n`` samples spread over each output pixel's footprint (``n = ceil(1.5 s)``, ``s`` the
    largest linear scale of the band, when ``s > 2/3``): the output pixel's box is integrated
    instead of point-sampled, so downsampling keeps each star's counts. The samples' positions
    come from the map's local derivatives (bands of at least 2 x 2 pixels; thinner bands are
    point-sampled). ``out`` takes the four planes to write into (e.g. the band's rows of the
    whole output) instead of new arrays. The per-pixel loops are compiled
    (`astrophot.combination._kernel`) and release the GIL, so bands run in parallel on threads.

``noise_correlation(x_in, y_in, kernel, *, aperture=False, antialias=False)``
    Var(sum of output pixels) / sum of their variances for independent input noise, for the
    kernel and the local map (a patch of `pixel_map` output): what an aperture's noise, computed
    from the propagated per-pixel uncertainty, must be multiplied by (in variance).

``KERNELS``
    Names of the interpolation kernels: ``nearest``, ``bilinear``, ``bicubic`` (Keys, a=-0.5),
    ``lanczos2``, ``lanczos3``, ``lanczos4``. (``exact`` is handled by
    `~astrophot.resample_frame` through `reproject.reproject_exact`.)
"""

import functools

import numpy as np
from scipy import ndimage
from scipy.interpolate import BSpline, RectBivariateSpline

from astrophot._morphology import grow
from astrophot.combination import _kernel
from astrophot.frames.dqflags import DQFlag

__all__ = [
    "KERNELS",
    "bad_reach",
    "kernel_half_width",
    "noise_correlation",
    "pixel_map",
    "resample_band",
]

#: Interpolation kernels and their half width (taps per axis = 2 * half width; nearest: 1).
KERNELS = {"nearest": 1, "bilinear": 1, "bicubic": 2, "lanczos2": 2, "lanczos3": 3, "lanczos4": 4}

_NO_DATA = np.uint32(DQFlag.NO_DATA)
_MAX_CHECK = 4000


def kernel_half_width(kernel):
    """Half width (input pixels) of ``kernel``; raises ValueError naming the known kernels."""
    try:
        return KERNELS[kernel]
    except (KeyError, TypeError):
        raise ValueError(f"unknown kernel {kernel!r}; expected one of {[*KERNELS, 'exact']}") from None


# ----------------------------------------------------------------------
# the pixel map
def _world_to_pixel(wcs_in, wcs_out, x, y):
    """Input pixel coordinates of output pixel coordinates (flat arrays), full WCS."""
    world = wcs_out.pixel_to_world_values(x, y)
    if _same_frame(wcs_in, wcs_out):
        if getattr(wcs_in, "has_distortion", False) and hasattr(wcs_in, "all_world2pix"):
            xi, yi = wcs_in.all_world2pix(world[0], world[1], 0, tolerance=1e-8, maxiter=50, quiet=True)
        else:
            xi, yi = wcs_in.world_to_pixel_values(world[0], world[1])
    else:
        sky = wcs_out.pixel_to_world(x, y)
        xi, yi = wcs_in.world_to_pixel(sky)
    return np.asarray(xi, dtype=float), np.asarray(yi, dtype=float)


def _same_frame(wcs_in, wcs_out):
    from astropy.wcs.utils import wcs_to_celestial_frame

    try:
        return wcs_to_celestial_frame(wcs_in).is_equivalent_frame(wcs_to_celestial_frame(wcs_out))
    except (ValueError, AttributeError):
        return True


def _exact_map(wcs_in, wcs_out, ys, xs):
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    xi, yi = _world_to_pixel(wcs_in, wcs_out, xx.ravel(), yy.ravel())
    return xi.reshape(yy.shape), yi.reshape(yy.shape)


def _nodes(start, stop, step):
    """Node positions (multiples of step) covering [start, stop - 1] with two nodes of margin."""
    first = (start // step - 2) * step
    last = (-(-(stop - 1) // step) + 2) * step
    return np.arange(first, last + 1, step, dtype=float)


def _splines(wcs_in, wcs_out, ys, xs, step):
    ny_, nx_ = _nodes(ys[0], ys[-1] + 1, step), _nodes(xs[0], xs[-1] + 1, step)
    xi, yi = _exact_map(wcs_in, wcs_out, ny_, nx_)
    if not (np.all(np.isfinite(xi)) and np.all(np.isfinite(yi))):
        return None
    return RectBivariateSpline(ny_, nx_, xi, kx=3, ky=3), RectBivariateSpline(ny_, nx_, yi, kx=3, ky=3)


def _map_error(wcs_in, wcs_out, splines, ys, xs, step):
    """Largest error (output pixels) of the splines at cell centres within the band."""
    cy = np.arange(ys[0] + step / 2, ys[-1] + step / 2 + 1, step)
    cx = np.arange(xs[0] + step / 2, xs[-1] + step / 2 + 1, step)
    cy = np.clip(cy, ys[0], ys[-1])
    cx = np.clip(cx, xs[0], xs[-1])
    yy, xx = np.meshgrid(np.unique(cy), np.unique(cx), indexing="ij")
    yy, xx = yy.ravel(), xx.ravel()
    if yy.size > _MAX_CHECK:
        pick = np.linspace(0, yy.size - 1, _MAX_CHECK).astype(int)
        yy, xx = yy[pick], xx[pick]
    xe, ye = _world_to_pixel(wcs_in, wcs_out, xx, yy)
    sx, sy = splines
    xs_, ys_ = sx(yy, xx, grid=False), sy(yy, xx, grid=False)
    area = np.abs(_area(splines, yy, xx, grid=False))
    err = np.hypot(xs_ - xe, ys_ - ye) / np.sqrt(np.maximum(area, 1e-12))
    err = err[np.isfinite(err)]
    return float(err.max()) if err.size else np.inf


def _area(splines, ys, xs, grid=True):
    sx, sy = splines
    return sx(ys, xs, dy=1, grid=grid) * sy(ys, xs, dx=1, grid=grid) - sx(ys, xs, dx=1, grid=grid) * sy(
        ys, xs, dy=1, grid=grid
    )


def _grid(spline, ys, xs, drow=0, dcol=0, designs=None):
    """A bicubic spline (or a derivative) on the grid ``ys x xs`` by sparse B-spline design matrices.

    ``(B_rows @ C) @ B_cols.T``, the last product compiled: about 30x faster than fitpack's grid
    evaluation on a band. ``designs`` (a dict) keeps the design matrices for the next call on
    the same grid (the x and y splines of a map share their knots).
    """
    t_rows, t_cols, c = spline.tck
    k_rows, k_cols = spline.degrees
    coef = c.reshape(len(t_rows) - k_rows - 1, len(t_cols) - k_cols - 1)
    if drow:
        b = BSpline(t_rows, coef, k_rows).derivative(drow)
        t_rows, coef, k_rows = b.t, b.c, b.k
    if dcol:
        b = BSpline(t_cols, coef.T, k_cols).derivative(dcol)
        t_cols, coef, k_cols = b.t, b.c.T, b.k
    coef = coef[: len(t_rows) - k_rows - 1, : len(t_cols) - k_cols - 1]
    designs = {} if designs is None else designs
    rows = _design(designs, "rows", ys, t_rows, k_rows)
    cols = _design(designs, "cols", xs, t_cols, k_cols)
    return _kernel.spline_grid(np.ascontiguousarray(rows @ coef, dtype=np.float64), *cols)


def _design(designs, axis, points, knots, degree):
    """The B-spline design matrix of ``points`` (rows: a CSR matrix; cols: its intp CSR arrays)."""
    key = (axis, knots.tobytes(), degree)
    if key not in designs:
        matrix = BSpline.design_matrix(points, knots, degree)
        if axis == "cols":
            matrix = (
                np.asarray(matrix.indptr, dtype=np.intp),
                np.asarray(matrix.indices, dtype=np.intp),
                np.ascontiguousarray(matrix.data, dtype=np.float64),
            )
        designs[key] = matrix
    return designs[key]


def _band_indices(out_shape, rows, cols):
    ny, nx = out_shape
    rows = slice(0, ny) if rows is None else rows
    cols = slice(0, nx) if cols is None else cols
    ys = np.arange(ny)[rows].astype(float)
    xs = np.arange(nx)[cols].astype(float)
    if ys.size == 0 or xs.size == 0:
        raise ValueError(f"empty output band rows={rows} cols={cols} of shape {out_shape}")
    return ys, xs


def pixel_map(wcs_in, wcs_out, out_shape, *, rows=None, cols=None, projection_error=0.001, jacobian=False):
    """
    Input pixel coordinates of every output pixel of a band (see the module documentation).

    Parameters
    ----------
    wcs_in, wcs_out : `~astropy.wcs.WCS`
        Input and output celestial WCS.
    out_shape : tuple of int
        ``(ny, nx)`` of the whole output.
    rows, cols : slice, optional
        The output band (default: everything).
    projection_error : float
        Largest allowed error of the interpolated map (output pixels); 0 evaluates every pixel.
    jacobian : bool
        Also return ``|det J|``, input pixel area per output pixel.

    Returns
    -------
    x_in, y_in : `numpy.ndarray`
        0-based input pixel coordinates, shape of the band.
    area : `numpy.ndarray`
        Only with ``jacobian=True``.
    """
    ys, xs = _band_indices(out_shape, rows, cols)
    if projection_error > 0:
        step = 64
        while step >= 4:
            splines = _splines(wcs_in, wcs_out, ys, xs, step)
            if splines is not None and _map_error(wcs_in, wcs_out, splines, ys, xs, step) <= projection_error:
                sx, sy = splines
                designs = {}
                on_band = functools.partial(_grid, ys=ys, xs=xs, designs=designs)
                x_in, y_in = on_band(sx), on_band(sy)
                if jacobian:
                    area = on_band(sx, dcol=1) * on_band(sy, drow=1)
                    area -= on_band(sx, drow=1) * on_band(sy, dcol=1)
                    return x_in, y_in, np.abs(area)
                return x_in, y_in
            step //= 2
    return _exact_band(wcs_in, wcs_out, ys, xs, jacobian)


def _exact_band(wcs_in, wcs_out, ys, xs, jacobian):
    if not jacobian:
        return _exact_map(wcs_in, wcs_out, ys, xs)
    gy = np.concatenate([[ys[0] - 1], ys, [ys[-1] + 1]])
    gx = np.concatenate([[xs[0] - 1], xs, [xs[-1] + 1]])
    xi, yi = _exact_map(wcs_in, wcs_out, gy, gx)
    dxdy, dxdx = np.gradient(xi)
    dydy, dydx = np.gradient(yi)
    area = np.abs(dxdx * dydy - dxdy * dydx)
    return xi[1:-1, 1:-1], yi[1:-1, 1:-1], area[1:-1, 1:-1]


# ----------------------------------------------------------------------
# kernels
#: Output pixels wider than this (linear, in input pixels) are oversampled when anti-aliasing: from 2/3 up
#: point sampling beats against the input grid (lanczos3's weights sum to 1 only after normalisation, so
#: the input pixels' total weight ripples by up to 0.6% with a slowly drifting phase: 0.55% per star at
#: 0.9x and 0.97x, 0.64% at 1.03x, 0.58% at 1.3x)
_OVERSAMPLE_ABOVE = 2.0 / 3.0
#: Subsamples per axis per input pixel an output pixel spans (n = ceil(this * scale)), and at most.
_OVERSAMPLE_DENSITY = 1.5
_OVERSAMPLE_MAX = 8
#: Steps per pixel of the tabulated lanczos kernels.
_TABLE_STEPS = 4096
#: Output pixels per tile of the tap sums (a band is cut into column tiles of about this size).
_TILE_PIXELS = 32768
#: Coordinates within this of a whole pixel are made whole (an integer shift stays exact).
_SNAP = 1e-8


def _kernel_weights(kernel, frac):
    """Weights per tap (list of arrays, taps along one axis) for the fractional offsets ``frac``.

    The weights have ``frac``'s dtype and sum to 1 (nearest: one tap).
    """
    if kernel == "nearest":
        return [np.ones_like(frac)]
    if kernel == "bilinear":
        return [1 - frac, frac]
    if kernel == "bicubic":
        return _keys_weights(frac)
    step = _lanczos_table(KERNELS[kernel], frac.dtype.str)
    index = frac * frac.dtype.type(_TABLE_STEPS)
    index += frac.dtype.type(0.5)
    index = index.astype(np.intp)
    return [column.take(index) for column in step]


@functools.cache
def _lanczos_table(a, dtype):
    """
    Lanczos-``a`` weights tabulated at ``_TABLE_STEPS + 1`` fractions ``q / _TABLE_STEPS`` (as
    SWarp's tabulated kernels): a lookup per tap instead of evaluating the kernel; the fraction
    is rounded to the nearest entry (at most 1.2e-4 pixel), whole and half pixels are exact.
    """
    frac = np.arange(_TABLE_STEPS + 1, dtype=np.float64) / _TABLE_STEPS
    weights = _lanczos_weights(a, frac[:-1])
    last = [np.array([1.0 if m == -1 else 0.0]) for m in range(a - 1, -a - 1, -1)]
    return tuple(np.concatenate([w, end]).astype(dtype) for w, end in zip(weights, last, strict=True))


def _keys_weights(frac):
    """Keys (a=-0.5) weights of the taps at distances 1 + f, f, 1 - f, 2 - f (a partition of unity)."""

    def inner(d):
        return (1.5 * d - 2.5) * d * d + 1

    def outer(d):
        return ((-0.5 * d + 2.5) * d - 4) * d + 2

    return [outer(1 + frac), inner(frac), inner(1 - frac), outer(2 - frac)]


def _lanczos_weights(a, frac):
    """
    Lanczos-``a`` weights of the taps at signed distances ``f + m``, ``m = a - 1 ... -a``.

    Three trigonometric calls per axis instead of two per tap: ``sin(pi (f + m)) = (-1)^m sin(pi f)``
    and ``sin(pi (f + m) / a)`` by angle addition; the common factor ``a sin(pi f) / pi^2`` cancels
    in the normalisation. A point on a tap (``f = 0``) gets weight 1 on it.
    """
    zero = frac == 0
    any_zero = bool(zero.any())
    safe = np.where(zero, frac.dtype.type(0.5), frac) if any_zero else frac
    arg = safe * frac.dtype.type(np.pi / a)
    s, c = np.sin(arg), np.cos(arg)
    weights = []
    for m in range(a - 1, -a - 1, -1):
        sign = -1.0 if m % 2 else 1.0
        d = safe + frac.dtype.type(m)
        d *= d
        w = s * frac.dtype.type(sign * np.cos(np.pi * m / a))
        w += c * frac.dtype.type(sign * np.sin(np.pi * m / a))
        w /= d
        weights.append(w)
    total = weights[0].copy()
    for w in weights[1:]:
        total += w
    np.divide(1, total, out=total)
    for w in weights:
        w *= total
    if any_zero:
        for m, w in zip(range(a - 1, -a - 1, -1), weights, strict=True):
            w[zero] = 1.0 if m == 0 else 0.0
    return weights


def _keys(t, a=-0.5):
    return np.where(
        t <= 1,
        ((a + 2) * t - (a + 3)) * t * t + 1,
        np.where(t < 2, ((a * t - 5 * a) * t + 8 * a) * t - 4 * a, 0.0),
    ).astype(np.result_type(t, np.float32), copy=False)


def _floor_frac(values, nearest, dtype):
    """Whole part and fraction in [0, 1) (``dtype``); values within ``_SNAP`` of a whole pixel are whole."""
    base = np.floor(values + (0.5 + _SNAP if nearest else _SNAP))
    frac = values - base
    frac[np.abs(frac) < _SNAP] = 0
    frac = frac.astype(dtype, copy=False)
    # a float32 fraction just below 1 rounds to 1: keep it below (the tap at distance f - 1 stays finite)
    np.minimum(frac, np.nextafter(dtype.type(1), dtype.type(0)), out=frac)
    return base, frac


def _taps(kernel, x_in, y_in, dtype=np.float64):
    """First tap index per axis (intp) and the per-axis weights."""
    dtype = np.dtype(dtype)
    a = KERNELS[kernel]
    nearest = kernel == "nearest"
    ix0, fx = _floor_frac(x_in, nearest, dtype)
    iy0, fy = _floor_frac(y_in, nearest, dtype)
    off = 0 if nearest else a - 1
    return (
        (ix0 - off).astype(np.intp),
        (iy0 - off).astype(np.intp),
        _kernel_weights(kernel, fx),
        _kernel_weights(kernel, fy),
    )


def bad_reach(bad, kernel, *, reach=None):
    """
    Input pixels within the kernel's reach of a bad one (the mask dilated by the half width).

    Parameters
    ----------
    bad : `numpy.ndarray` of bool
    kernel : str
    reach : int, optional
        The half width in pixels (default the kernel's; a widened kernel reaches further).

    Returns
    -------
    `numpy.ndarray` of bool
    """
    a = kernel_half_width(kernel) if reach is None else int(reach)
    return grow(bad, a)


def _bad_input(data, variance, bad):
    """Bad pixels (masked or non-finite) of the input."""
    out = ~np.isfinite(data)
    if bad is not None:
        out |= bad
    if variance is not None:
        out |= ~np.isfinite(variance)
    return out


def _near_bad_at(near_bad, kernel, ixn, iyn, inside, reach):
    """
    Whether each output pixel (nearest input pixel ixn, iyn) is within ``reach`` of a bad input,
    ``near_bad`` being the bad pixels dilated by the kernel's half width (dilated by the rest here).
    """
    ny, nx = near_bad.shape
    result = np.zeros(ixn.shape, dtype=bool)
    if not inside.any():
        return result
    y0, y1 = max(int(iyn[inside].min()) - reach - 1, 0), min(int(iyn[inside].max()) + reach + 2, ny)
    x0, x1 = max(int(ixn[inside].min()) - reach - 1, 0), min(int(ixn[inside].max()) + reach + 2, nx)
    crop = near_bad[y0:y1, x0:x1]
    if not crop.any():
        return result
    near = bad_reach(crop, kernel, reach=reach - KERNELS[kernel])
    result[inside] = near[iyn[inside] - y0, ixn[inside] - x0]
    return result


def _check_band_options(kernel, conserve):
    kernel_half_width(kernel)
    if conserve not in ("surface_brightness", "flux"):
        raise ValueError(f"conserve must be 'surface_brightness' or 'flux', not {conserve!r}")


def _as_work(data):
    """The input as a C-contiguous float array and the working dtype (float32 unless data is float64)."""
    work = np.result_type(np.asarray(data).dtype, np.float32)
    if not np.issubdtype(work, np.floating):
        work = np.dtype(np.float64)
    return np.ascontiguousarray(data, dtype=work), np.dtype(work)


class _Samples:
    """
    Where each output pixel samples the input: its centre, or ``n x n`` points spread over its
    footprint (through the map's local derivatives) when anti-aliasing an output pixel that
    covers more than one input pixel (SWarp-style oversampling: the output pixel's box is
    integrated, so a star's counts are kept whatever the scale and rotation).
    """

    def __init__(self, x_in, y_in, antialias):
        self.x, self.y, self.n, self.spread = x_in, y_in, 1, 0.0
        if not antialias or x_in.shape[0] < 2 or x_in.shape[1] < 2:
            return
        dxdr, dxdc = np.gradient(x_in)
        dydr, dydc = np.gradient(y_in)
        with np.errstate(invalid="ignore"):
            scale = np.sqrt(np.abs(dxdc * dydr - dxdr * dydc))
            top = float(np.nanmax(scale)) if np.isfinite(scale).any() else 1.0
            if not top > _OVERSAMPLE_ABOVE:
                return
            reach = np.maximum(np.abs(dxdc) + np.abs(dxdr), np.abs(dydc) + np.abs(dydr))
        self.n = min(int(np.ceil(_OVERSAMPLE_DENSITY * top)), _OVERSAMPLE_MAX)
        self.derivatives = np.stack((dxdc, dxdr, dydc, dydr))
        self.spread = 0.5 * float(np.nanmax(reach))

    def __len__(self):
        return self.n * self.n

    def tile(self, cols):
        """The samples of the output columns ``cols`` (views: a tile's work stays in cache)."""
        part = object.__new__(_Samples)
        part.x, part.y = self.x[:, cols], self.y[:, cols]
        part.n, part.spread = self.n, self.spread
        if self.n > 1:
            part.derivatives = self.derivatives[:, :, cols]
        return part

    def positions(self, pick=None):
        """(x, y) of every sample in turn (non-finite where the map is not defined)."""
        x, y = (self.x, self.y) if pick is None else (self.x[pick], self.y[pick])
        if self.n == 1:
            yield x, y
            return
        dxdc, dxdr, dydc, dydr = (d if pick is None else d[pick] for d in self.derivatives)
        steps = (np.arange(self.n) + 0.5) / self.n - 0.5
        for dr in steps:
            for dc in steps:
                yield x + dxdc * dc + dxdr * dr, y + dydc * dc + dydr * dr


def _far(x, y):
    """Non-finite positions moved far outside the input (no tap reaches them)."""
    finite = np.isfinite(x) & np.isfinite(y)
    if finite.all():
        return x, y
    return np.where(finite, x, -1e6), np.where(finite, y, -1e6)


def _merged_taps(kernel, samples, pick):
    """
    Per picked output pixel: the sum of its merged squared weights ``sum_i W_i^2`` (``W_i`` the
    total weight input pixel ``i`` gets over all samples, each sample 1/len of the pixel), the
    sum of the per-sample squared weights, and the (pixel, input index, weight) table.
    """
    npick = len(pick[0])
    pix, lin_x, lin_y, wts = [], [], [], []
    for x, y in samples.positions(pick):
        ix0, iy0, wx, wy = _taps(kernel, *_far(x, y))
        for j, wyj in enumerate(wy):
            for k, wxk in enumerate(wx):
                pix.append(np.arange(npick))
                lin_x.append(ix0 + k)
                lin_y.append(iy0 + j)
                wts.append(wyj * wxk / len(samples))
    pix, lin_x, lin_y, wts = (np.concatenate(v) for v in (pix, lin_x, lin_y, wts))
    diag = np.bincount(pix, wts * wts, minlength=npick)
    if len(samples) == 1:
        return diag, diag, (pix, lin_x, lin_y, wts)
    ox, oy = lin_x.min(), lin_y.min()
    span = int(lin_x.max() - ox) + 1
    keys = pix * (span * (int(lin_y.max() - oy) + 1)) + (lin_y - oy) * span + (lin_x - ox)
    uniq, inverse = np.unique(keys, return_inverse=True)
    merged = np.bincount(inverse.ravel(), wts, minlength=len(uniq))
    per_pixel = np.bincount(uniq // (span * (int(lin_y.max() - oy) + 1)), merged * merged, minlength=npick)
    return per_pixel, diag, (pix, lin_x, lin_y, wts)


def _variance_factor(kernel, samples, good):
    """
    ``sum_i W_i^2 / sum_s sum_k w_sk^2`` over up to 256 output pixels of the band: what the
    per-sample squared weights under-count when the samples of one pixel share input pixels.
    """
    if len(samples) == 1:
        return 1.0
    where = np.nonzero(good)
    if len(where[0]) == 0:
        return 1.0
    pick_at = np.linspace(0, len(where[0]) - 1, min(256, len(where[0]))).astype(int)
    pick = (where[0][pick_at], where[1][pick_at])
    merged, diag, _ = _merged_taps(kernel, samples, pick)
    return float(np.sum(merged) / np.sum(diag))


def resample_band(
    data,
    variance,
    bad,
    flags,
    x_in,
    y_in,
    *,
    kernel="lanczos3",
    conserve="surface_brightness",
    jacobian=None,
    min_weight=0.5,
    near_bad=None,
    antialias=None,
    out=None,
):
    """
    Resample one output band (see the module documentation).

    ``out``, when given, is the ``(data, variance or None, weight, flags)`` planes to fill (of
    the band's shape, views allowed, the dtypes of the returned planes).

    Returns
    -------
    data, variance, weight, flags : `numpy.ndarray`
        Of the band's shape; ``variance`` is None when none was given, ``flags`` always uint32.
    """
    _check_band_options(kernel, conserve)
    antialias = conserve == "flux" if antialias is None else bool(antialias)
    data, work = _as_work(data)
    if variance is not None:
        variance = np.ascontiguousarray(variance, dtype=work)
    if conserve == "flux" and jacobian is None:
        jacobian = _area_from_map(x_in, y_in)
    x_in, y_in = np.asarray(x_in, dtype=np.float64), np.asarray(y_in, dtype=np.float64)
    if bad is not None:
        bad = np.asarray(bad, dtype=bool)
    clean = False  # nothing in the input is bad: no pixel is near a bad one
    if near_bad is not None:
        near_bad = np.asarray(near_bad, dtype=bool)
    else:
        every_bad = _bad_input(data, variance, bad)
        clean = not every_bad.any()
        near_bad = None if clean else bad_reach(every_bad, kernel)
    samples = _Samples(x_in, y_in, antialias)
    factor = 1.0
    if variance is not None and len(samples) > 1:
        factor = _variance_factor(kernel, samples, np.isfinite(x_in) & np.isfinite(y_in))
    if flags is not None:
        flags = np.asarray(flags, dtype=np.uint32)
    inputs = (data, variance, bad, flags, near_bad, clean)
    planes = _out_planes(out, x_in.shape, work, variance is not None)
    for cols in _tiles(x_in.shape):
        tile = tuple(None if plane is None else plane[:, cols] for plane in planes)
        _resample_tile(inputs, kernel, samples.tile(cols), (min_weight, factor), tile)
    out, out_var, weight, out_flags = planes
    if conserve == "flux":
        scale = np.asarray(jacobian, dtype=work)
        out *= scale
        if out_var is not None:
            out_var *= scale * scale
    return out, out_var, weight, out_flags


def _out_planes(out, shape, work, with_variance):
    """The output planes of a band: ``out`` (checked) or new arrays."""
    if out is None:
        return (
            np.empty(shape, work),
            np.empty(shape, work) if with_variance else None,
            np.empty(shape, np.float32),
            np.empty(shape, np.uint32),
        )
    planes = tuple(out)
    dtypes = (work, work if with_variance else None, np.dtype(np.float32), np.dtype(np.uint32))
    if len(planes) != 4 or (planes[1] is None) == with_variance:
        raise ValueError("out must be (data, variance or None, weight, flags), variance given with it")
    for plane, dtype in zip(planes, dtypes, strict=True):
        if plane is not None and (plane.shape != shape or plane.dtype != dtype):
            raise ValueError(f"out planes must have the band's shape {shape} and dtypes {dtypes}")
    return planes


def _resample_tile(inputs, kernel, samples, limits, planes):
    """Data, variance, weight and flags of one tile of output pixels into ``planes`` (see `resample_band`)."""
    data, variance, bad, flags, near_bad, clean = inputs
    min_weight, factor = limits
    ny, nx = data.shape
    kind, half, table = _compiled_kernel(kernel)
    derivatives = samples.derivatives if samples.n > 1 else _NO_DERIVATIVES
    reach = max(KERNELS[kernel], 1) + int(np.ceil(samples.spread))
    # the nearest pixel's near_bad says it (or nothing is bad)
    direct = clean or (near_bad is not None and reach <= KERNELS[kernel])
    placed = None  # tap_sums places each pixel itself (with the nearest pixel's near_bad)
    if not direct:
        placed = _kernel.layout(samples.x, samples.y, derivatives, samples.n, kind, half, _SNAP, ny, nx)
        fast, touches, xn, yn = placed
        fast &= ~_near_bad_at(near_bad, kernel, xn, yn, touches, reach)
    _kernel.tap_sums(
        data,
        variance,
        bad,
        flags,
        samples.x,
        samples.y,
        derivatives,
        samples.n,
        placed,
        near_bad if direct else None,
        kind,
        half,
        table,
        _SNAP,
        _TABLE_STEPS,
        min_weight,
        factor,
        _NO_DATA,
        *planes,
    )


_NO_DERIVATIVES = np.zeros((4, 0, 0))
_KINDS = {"nearest": _kernel.NEAREST, "bilinear": _kernel.BILINEAR, "bicubic": _kernel.BICUBIC}
_NO_TABLE = np.zeros((1, 1))


@functools.cache
def _compiled_kernel(kernel):
    """(kind, half width, lanczos table or a placeholder) of ``kernel`` for `._kernel`."""
    if kernel in _KINDS:
        return _KINDS[kernel], KERNELS[kernel], _NO_TABLE
    half = KERNELS[kernel]
    return _kernel.LANCZOS, half, np.ascontiguousarray(np.stack(_lanczos_table(half, "<f8")))


def _tiles(shape):
    """Column slices of a band making tiles of about ``_TILE_PIXELS`` (their input footprint stays in cache)."""
    rows, cols = shape
    width = max(64, _TILE_PIXELS // max(rows, 1))
    return [slice(c, min(c + width, cols)) for c in range(0, cols, width)]


def _area_from_map(x_in, y_in):
    """|det J| from the map itself (finite differences; one-row bands use the row's x step)."""
    if x_in.shape[0] < 2 or x_in.shape[1] < 2:
        raise ValueError(
            "conserve='flux' on a band thinner than 2 pixels needs jacobian= (pixel_map(..., jacobian=True))"
        )
    dxdy, dxdx = np.gradient(x_in)
    dydy, dydx = np.gradient(y_in)
    return np.abs(dxdx * dydy - dxdy * dydx)


def noise_correlation(x_in, y_in, kernel, *, aperture=False, antialias=False):
    """
    Noise correlation factor of ``kernel`` for a patch of the pixel map (large-aperture limit).

    For independent input noise of variance ``s2`` an aperture of output pixels has
    ``Var(sum) = F * sum(propagated variances)``; ``F`` is computed from the actual taps of
    the patch as ``J <W_i^2> / <sum_k w_k^2>``, ``W_i`` the total weight input pixel ``i``
    gives to the output (inner input pixels only, all of whose outputs are in the patch),
    ``J`` the input area per output pixel.

    Parameters
    ----------
    x_in, y_in : `numpy.ndarray`
        A patch (e.g. 32x32 output pixels) of `pixel_map` output.
    kernel : str
    aperture : bool
        Return the factor of this very patch taken as the aperture (finite, edges included)
        instead of the large-aperture limit.
    antialias : bool
        Output pixels larger than the input's oversampled (as `resample_band` with
        ``antialias=True``): the factor of the kernel actually used.

    Returns
    -------
    float
        1 for no correlation; 2.25 for bilinear at equal scale and random phase.
    """
    kernel_half_width(kernel)
    samples = _Samples(x_in, y_in, antialias)
    every = np.nonzero(np.ones(x_in.shape, dtype=bool))
    per_pixel, _, (_, lin_x, lin_y, wts) = _merged_taps(kernel, samples, every)
    ox, oy = lin_x.min(), lin_y.min()
    width, height = int(lin_x.max() - ox) + 2, int(lin_y.max() - oy) + 2
    total = np.bincount((lin_y - oy) * width + (lin_x - ox), wts, minlength=width * height)
    if aperture:
        return float(np.sum(total**2) / np.sum(per_pixel))
    # inner input pixels: far (kernel reach + 1) from the patch's mapped outline
    reach = (1 if kernel == "nearest" else 2 * KERNELS[kernel]) + int(np.ceil(samples.spread))
    inner = _inner_inputs(x_in, y_in, ox, oy, width, height, reach)
    area = float(np.median(_area_from_map(x_in, y_in)))
    return float(area * np.mean(total[inner] ** 2) / np.mean(per_pixel))


def _inner_inputs(x_in, y_in, ox, oy, width, height, reach):
    """Input pixels of the window whose output position (local affine inverse of the patch) is inside it."""
    rows, cols = np.mgrid[0 : x_in.shape[0], 0 : x_in.shape[1]]
    design = np.column_stack([np.ones(rows.size), cols.ravel(), rows.ravel()])
    fit = np.linalg.lstsq(design, np.column_stack([x_in.ravel(), y_in.ravel()]), rcond=None)[0]
    gy, gx = np.mgrid[oy : oy + height, ox : ox + width]
    rel = np.stack([gx.ravel() - fit[0, 0], gy.ravel() - fit[0, 1]])
    col, row = np.linalg.solve(fit[1:].T, rel)
    inside = (col >= -0.5) & (col <= x_in.shape[1] - 0.5) & (row >= -0.5) & (row <= x_in.shape[0] - 0.5)
    inside = ndimage.binary_erosion(inside.reshape(gx.shape), iterations=reach + 2).ravel()
    if not inside.any():
        raise ValueError("noise_correlation needs a larger patch of the pixel map")
    return inside
