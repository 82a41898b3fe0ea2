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

``resample_band(data, variance, bad, flags, x_in, y_in, *, kernel="lanczos3", conserve="surface_brightness", jacobian=None, min_weight=0.5, near_bad=None)``
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
    variance by its square.

``noise_correlation(x_in, y_in, kernel)``
    Var(sum of output pixels) / sum of their variances for independent input noise, for the
    kernel and the local map (a patch of `pixel_map` output): what an aperture's noise, computed
    from the propagated per-pixel uncertainty, must be multiplied by (in variance).

``KERNELS``
    Names of the interpolation kernels: ``nearest``, ``bilinear``, ``bicubic`` (Keys, a=-0.5),
    ``lanczos2``, ``lanczos3``, ``lanczos4``. (``exact`` is handled by
    `~astrophot.resample_frame` through `reproject.reproject_exact`.)
"""

import numpy as np
from scipy import ndimage
from scipy.interpolate import RectBivariateSpline

from astrophot.frames.dqflags import DQFlag

__all__ = ["KERNELS", "bad_reach", "kernel_half_width", "noise_correlation", "pixel_map", "resample_band"]

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
                x_in, y_in = splines[0](ys, xs), splines[1](ys, xs)
                if jacobian:
                    return x_in, y_in, np.abs(_area(splines, ys, xs))
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
def _kernel_weights(kernel, frac):
    """Weights per tap (list of arrays, taps along one axis) for the fractional offsets ``frac``."""
    a = KERNELS[kernel]
    if kernel == "nearest":
        return [np.ones_like(frac)]
    t = [frac + (a - 1 - k) for k in range(2 * a)]  # distance from tap k to the sample point
    if kernel == "bilinear":
        w = [1.0 - np.abs(tk) for tk in t]
    elif kernel == "bicubic":
        w = [_keys(np.abs(tk)) for tk in t]
    else:
        w = [np.sinc(tk) * np.sinc(tk / a) for tk in t]
    total = sum(w)
    return [wk / total for wk in w]


def _keys(t, a=-0.5):
    return np.where(
        t <= 1,
        ((a + 2) * t - (a + 3)) * t * t + 1,
        np.where(t < 2, ((a * t - 5 * a) * t + 8 * a) * t - 4 * a, 0.0),
    )


def _snap(values, tolerance=1e-8):
    """Coordinates within ``tolerance`` of a whole pixel made whole (an integer shift stays exact)."""
    whole = np.round(values)
    return np.where(np.abs(values - whole) < tolerance, whole, values)


def _taps(kernel, x_in, y_in):
    """First tap index and per-axis weights."""
    a = KERNELS[kernel]
    x_in, y_in = _snap(x_in), _snap(y_in)
    if kernel == "nearest":
        ix0, iy0 = np.floor(x_in + 0.5), np.floor(y_in + 0.5)
    else:
        ix0, iy0 = np.floor(x_in), np.floor(y_in)
    wx = _kernel_weights(kernel, x_in - ix0)
    wy = _kernel_weights(kernel, y_in - iy0)
    off = 0 if kernel == "nearest" else a - 1
    return (ix0 - off).astype(np.intp), (iy0 - off).astype(np.intp), wx, wy


def bad_reach(bad, kernel):
    """
    Input pixels within the kernel's reach of a bad one (the mask dilated by the half width).

    Parameters
    ----------
    bad : `numpy.ndarray` of bool
    kernel : str

    Returns
    -------
    `numpy.ndarray` of bool
    """
    a = kernel_half_width(kernel)
    return ndimage.binary_dilation(bad, structure=np.ones((2 * a + 1, 2 * a + 1), dtype=bool))


def _bad_input(data, variance, bad, region):
    """Bad pixels (masked or non-finite) of ``data[region]``."""
    out = ~np.isfinite(data[region])
    if bad is not None:
        out |= bad[region]
    if variance is not None:
        out |= ~np.isfinite(variance[region])
    return out


def _near_bad_at(data, variance, bad, near_bad, kernel, ixn, iyn, inside):
    """Whether each output pixel (nearest input pixel ixn, iyn) is within reach of a bad input."""
    ny, nx = data.shape
    result = np.zeros(ixn.shape, dtype=bool)
    if not inside.any():
        return result
    if near_bad is None:
        a = KERNELS[kernel]
        y0, y1 = max(int(iyn[inside].min()) - a - 1, 0), min(int(iyn[inside].max()) + a + 2, ny)
        x0, x1 = max(int(ixn[inside].min()) - a - 1, 0), min(int(ixn[inside].max()) + a + 2, nx)
        crop = _bad_input(data, variance, bad, (slice(y0, y1), slice(x0, x1)))
        near = bad_reach(crop, kernel) if crop.any() else None
        if near is None:
            return result
        result[inside] = near[iyn[inside] - y0, ixn[inside] - x0]
        return result
    result[inside] = near_bad[iyn[inside], ixn[inside]]
    return result


def _fast_sum(flat, nx, idx0, wx, wy, squared=False):
    """Sum over the taps for output pixels whose taps are all good and inside."""
    acc = None
    n = len(flat)
    for j, wyj in enumerate(wy):
        shifted = flat[j * nx : n]
        row = None
        for k, wxk in enumerate(wx):
            term = (wxk * wxk if squared else wxk) * np.take(shifted, idx0 + k, mode="clip")
            row = term if row is None else row + term
        row *= wyj * wyj if squared else wyj
        acc = row if acc is None else acc + row
    return acc


def _slow_sums(data, variance, bad, ix0, iy0, wx, wy):
    """Masked sums for a subset of output pixels (1-D arrays): renormalised over good taps."""
    ny, nx = data.shape
    flat = data.ravel()
    vflat = None if variance is None else variance.ravel()
    bflat = None if bad is None else bad.ravel()
    s_wd = np.zeros(ix0.shape)
    s_w = np.zeros(ix0.shape)
    s_abs_good = np.zeros(ix0.shape)
    s_abs = np.zeros(ix0.shape)
    s_wv = np.zeros(ix0.shape) if variance is not None else None
    for j, wyj in enumerate(wy):
        iy = iy0 + j
        for k, wxk in enumerate(wx):
            ix = ix0 + k
            w = wyj * wxk
            lin = np.clip(iy, 0, ny - 1) * nx + np.clip(ix, 0, nx - 1)
            value = flat[lin]
            good = (iy >= 0) & (iy < ny) & (ix >= 0) & (ix < nx) & np.isfinite(value)
            if bflat is not None:
                good &= ~bflat[lin]
            if vflat is not None:
                var = vflat[lin]
                good &= np.isfinite(var)
                s_wv += np.where(good, w * w * var, 0.0)
            wg = np.where(good, w, 0.0)
            s_wd += wg * np.where(good, value, 0.0)
            s_w += wg
            s_abs_good += np.abs(wg)
            s_abs += np.abs(w)
    return s_wd, s_w, s_wv, s_abs_good / np.maximum(s_abs, 1e-300)


def _as_index(ix0, iy0, nx):
    return iy0 * nx + ix0


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
):
    """
    Resample one output band (see the module documentation).

    Returns
    -------
    data, variance, weight, flags : `numpy.ndarray`
        Of the band's shape; ``variance`` is None when none was given, ``flags`` always uint32.
    """
    a = kernel_half_width(kernel)
    if conserve not in ("surface_brightness", "flux"):
        raise ValueError(f"conserve must be 'surface_brightness' or 'flux', not {conserve!r}")
    data = np.ascontiguousarray(data)
    ny, nx = data.shape
    work = np.result_type(data.dtype, np.float32)
    ix0, iy0, wx, wy = _taps(kernel, x_in, y_in)
    ntap = 1 if kernel == "nearest" else 2 * a
    finite = np.isfinite(ix0) & np.isfinite(iy0)
    ix0 = np.where(finite, ix0, -10 * ntap - 10).astype(np.intp)
    iy0 = np.where(finite, iy0, -10 * ntap - 10).astype(np.intp)
    inside = (ix0 >= 0) & (ix0 + ntap <= nx) & (iy0 >= 0) & (iy0 + ntap <= ny)
    touches = (ix0 + ntap > 0) & (ix0 < nx) & (iy0 + ntap > 0) & (iy0 < ny)
    xn = np.clip(np.floor(np.where(finite, x_in, -1) + 0.5), 0, nx - 1).astype(np.intp)
    yn = np.clip(np.floor(np.where(finite, y_in, -1) + 0.5), 0, ny - 1).astype(np.intp)
    near = _near_bad_at(data, variance, bad, near_bad, kernel, xn, yn, touches)
    fast = inside & ~near
    slow = touches & ~fast

    idx0 = _as_index(np.clip(ix0, 0, nx - ntap), np.clip(iy0, 0, ny - ntap), nx)
    out = _fast_sum(data.ravel(), nx, idx0, wx, wy).astype(work, copy=False)
    out_var = None
    if variance is not None:
        vflat = np.ascontiguousarray(variance).ravel()
        out_var = _fast_sum(vflat, nx, idx0, wx, wy, squared=True).astype(work, copy=False)
    weight = fast.astype(np.float32)
    if slow.any():
        sel = np.nonzero(slow)
        s_wd, s_w, s_wv, s_weight = _slow_sums(
            data,
            variance,
            bad,
            ix0[sel],
            iy0[sel],
            [w[sel] for w in wx],
            [w[sel] for w in wy],
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            out[sel] = s_wd / s_w
            if out_var is not None:
                out_var[sel] = s_wv / (s_w * s_w)
        weight[sel] = s_weight
    no_data = ~(weight >= min_weight)
    out[no_data] = np.nan
    if out_var is not None:
        out_var[no_data] = np.nan
    out_flags = np.zeros(out.shape, dtype=np.uint32)
    if flags is not None:
        out_flags[touches] = np.asarray(flags)[yn[touches], xn[touches]]
    out_flags[no_data] |= _NO_DATA
    if conserve == "flux":
        if jacobian is None:
            jacobian = _area_from_map(x_in, y_in)
        out *= jacobian
        if out_var is not None:
            out_var *= jacobian * jacobian
    return out, out_var, weight, out_flags


def _area_from_map(x_in, y_in):
    """|det J| from the map itself (finite differences; one-row bands use the row's x step)."""
    if x_in.shape[0] < 2 or x_in.shape[1] < 2:
        raise ValueError(
            "conserve='flux' on a band thinner than 2 pixels needs jacobian= (pixel_map(..., jacobian=True))"
        )
    dxdy, dxdx = np.gradient(x_in)
    dydy, dydx = np.gradient(y_in)
    return np.abs(dxdx * dydy - dxdy * dydx)


def noise_correlation(x_in, y_in, kernel, *, aperture=False):
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

    Returns
    -------
    float
        1 for no correlation; 2.25 for bilinear at equal scale and random phase.
    """
    kernel_half_width(kernel)
    ix0, iy0, wx, wy = _taps(kernel, x_in, y_in)
    ox, oy = ix0.min(), iy0.min()
    width = int(ix0.max() - ox) + len(wx) + 1
    height = int(iy0.max() - oy) + len(wy) + 1
    total = np.zeros(width * height)
    per_pixel = np.zeros(x_in.shape)
    for j, wyj in enumerate(wy):
        for k, wxk in enumerate(wx):
            w = wyj * wxk
            np.add.at(total, ((iy0 - oy + j) * width + (ix0 - ox + k)).ravel(), w.ravel())
            per_pixel += w * w
    if aperture:
        return float(np.sum(total**2) / np.sum(per_pixel))
    # inner input pixels: far (kernel reach + 1) from the patch's mapped outline
    inner = _inner_inputs(x_in, y_in, ox, oy, width, height, len(wx))
    area = float(np.median(_area_from_map(x_in, y_in)))
    return float(area * np.mean(total[inner] ** 2) / np.mean(per_pixel))


def _inner_inputs(x_in, y_in, ox, oy, width, height, reach):
    from matplotlib.path import Path as _Path

    outline = np.concatenate(
        [
            np.column_stack([x_in[0, :], y_in[0, :]]),
            np.column_stack([x_in[:, -1], y_in[:, -1]]),
            np.column_stack([x_in[-1, ::-1], y_in[-1, ::-1]]),
            np.column_stack([x_in[::-1, 0], y_in[::-1, 0]]),
        ]
    )
    gy, gx = np.mgrid[oy : oy + height, ox : ox + width]
    inside = _Path(outline).contains_points(np.column_stack([gx.ravel(), gy.ravel()])).reshape(gx.shape)
    inside = ndimage.binary_erosion(inside, iterations=reach + 2).ravel()
    if not inside.any():
        raise ValueError("noise_correlation needs a larger patch of the pixel map")
    return inside
