# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
A batched Levenberg-Marquardt fit of elliptical Moffat profiles to many stars at once.

Every star gets its own cut-out, parameters and damping; the arithmetic is
done for all stars together with numpy, so a few thousand stars fit in a
fraction of a second. The model is integrated over each pixel (2 x 2
sub-samples) so that the widths of undersampled stars are not biased.

Model (per star)::

    m(x, y) = B + A * (1 + Q)**(-beta),
    Q = c1 dx**2 + 2 c2 dx dy + c3 dy**2,  dx = x - x0,  dy = y - y0

The FWHM along a principal axis with eigenvalue ``lam`` of ``[[c1, c2], [c2, c3]]``
is ``2 sqrt((2**(1/beta) - 1) / lam)``.
"""

import math
from dataclasses import dataclass

import numpy as np

__all__ = []

#: Smallest Moffat index allowed: heavier wings than this are not a stellar
#: image (atmospheric PSFs have beta of about 2.5-4.5, optics with scattered light 1.5-2.5).
MIN_BETA = 1.5

#: Sub-pixel offsets of the 2 x 2 integration of the model over a pixel.
_SUB = (-0.25, 0.25)
#: Sub-pixel offsets of the 4 x 4 integration ('fine'), for stars of about
#: one to two pixels, where the 2 x 2 average overestimates the width by 3-4 %.
_SUB_FINE = (-0.375, -0.125, 0.125, 0.375)


def alpha_from_fwhm(fwhm, beta):
    """Moffat ``alpha`` of a FWHM."""
    return fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))


@dataclass
class MoffatFit:
    """Per-star results (arrays of length N)."""

    x: np.ndarray
    y: np.ndarray
    amplitude: np.ndarray
    background: np.ndarray
    beta: np.ndarray
    fwhm_major: np.ndarray
    fwhm_minor: np.ndarray
    theta: np.ndarray
    ok: np.ndarray
    chi2: np.ndarray
    n_pixels: np.ndarray

    @property
    def fwhm(self):
        return np.sqrt(self.fwhm_major * self.fwhm_minor)

    @property
    def ellipticity(self):
        with np.errstate(invalid="ignore", divide="ignore"):
            return 1.0 - self.fwhm_minor / self.fwhm_major


def cutouts(image, x, y, half):
    """
    Square cut-outs of side ``2 half + 1`` around (rounded) ``x``, ``y``.

    Returns
    -------
    values : ndarray (N, s, s)
    ix, iy : ndarray (N, s)
        Pixel column/row indices (clipped into the image).
    inside : ndarray of bool (N, s, s)
        False where the cut-out leaves the image.
    """
    ny, nx = image.shape
    size = 2 * half + 1
    offsets = np.arange(-half, half + 1)
    cx = np.rint(x).astype(np.intp)
    cy = np.rint(y).astype(np.intp)
    ix = cx[:, None] + offsets[None, :]
    iy = cy[:, None] + offsets[None, :]
    in_x = (ix >= 0) & (ix < nx)
    in_y = (iy >= 0) & (iy < ny)
    ixc = np.clip(ix, 0, nx - 1)
    iyc = np.clip(iy, 0, ny - 1)
    values = image[iyc[:, :, None], ixc[:, None, :]]
    inside = in_y[:, :, None] & in_x[:, None, :]
    assert values.shape == (len(x), size, size)
    return values, ix, iy, inside


def _laplacian_model(amp, bkg, beta, c1, c2, c3, dx, dy):
    """The profile at the pixel centre plus 1/24 of its Laplacian; also ``u``, ``log u``, ``f``."""
    f32 = np.float32
    qx = c1 * dx
    qx += c2 * dy
    qy = c2 * dx
    qy += c3 * dy
    u = qx * dx
    u += qy * dy
    u += 1.0
    np.maximum(u, f32(1e-6), out=u)
    logu = np.log(u)
    f = np.exp(-beta * logu)
    # Laplacian of u**-beta: beta f / u**2 ((beta + 1) |grad Q|**2 - 2 u (c1 + c3)), grad Q = 2 (qx, qy)
    lap = qx * qx
    lap += qy * qy
    lap *= 4.0 * (beta + 1.0)
    lap -= (2.0 * (c1 + c3)) * u
    lap *= beta * f / (u * u)
    total = f + lap / f32(24.0)
    return bkg + amp * total, u, logu, f


def _subsampled_model(amp, bkg, beta, c1, c2, c3, dx, dy, offsets):
    """The mean of the profile over ``offsets`` x ``offsets`` samples of each pixel."""
    f32 = np.float32
    total = np.zeros(dx.shape, dtype=f32)
    for sy in offsets:
        dys = dy + f32(sy)
        for sx in offsets:
            dxs = dx + f32(sx)
            w = c1 * dxs * dxs
            w += (2.0 * c2) * dxs * dys
            w += c3 * dys * dys
            w += 1.0
            np.maximum(w, f32(1e-6), out=w)
            np.log(w, out=w)
            w *= -beta
            total += np.exp(w, out=w)
    return bkg + amp * total / f32(len(offsets) ** 2)


def _model_and_jacobian(params, xpix, ypix, fit_beta, want_jacobian=True, integration="subsample"):
    """
    Pixel-integrated model and its Jacobian (float32).

    params : (N, 8) = A, x0, y0, c1, c2, c3, B, beta (beta used fixed unless ``fit_beta``)
    xpix, ypix : (N, M) pixel coordinates.
    integration : 'subsample' (mean of 2 x 2 samples), 'fine' (4 x 4) or 'laplacian' (the
        value at the pixel centre plus 1/24 of its Laplacian: the next term of
        the pixel average, a quarter of the cost).
    """
    f32 = np.float32
    amp, x0, y0, c1, c2, c3, bkg, beta = (params[:, i : i + 1].astype(f32) for i in range(8))
    n, m = xpix.shape
    n_par = 8 if fit_beta else 7
    dx = xpix - x0
    dy = ypix - y0
    if integration == "laplacian":
        model, u, logu, f = _laplacian_model(amp, bkg, beta, c1, c2, c3, dx, dy)
    else:
        offsets = _SUB_FINE if integration == "fine" else _SUB
        model = _subsampled_model(amp, bkg, beta, c1, c2, c3, dx, dy, offsets)
        u = logu = f = None
    if not want_jacobian:
        return model, None
    # the Jacobian of the profile at the pixel centre: it only steers the
    # steps, the chi-square that accepts them uses the integrated model
    jac = np.empty((n, m, n_par), dtype=f32)
    dxx = dx * dx
    dyy = dy * dy
    dxy = dx * dy
    if u is None:
        u = 1.0 + c1 * dxx + 2.0 * c2 * dxy + c3 * dyy
        np.maximum(u, f32(1e-6), out=u)
        logu = np.log(u)
        f = np.exp(-beta * logu)
    g = f / u
    g *= -amp * beta  # d m / d Q
    jac[:, :, 0] = f
    jac[:, :, 1] = -2.0 * g * (c1 * dx + c2 * dy)
    jac[:, :, 2] = -2.0 * g * (c2 * dx + c3 * dy)
    jac[:, :, 3] = g * dxx
    jac[:, :, 4] = 2.0 * g * dxy
    jac[:, :, 5] = g * dyy
    jac[:, :, 6] = 1.0
    if fit_beta:
        jac[:, :, 7] = -amp * f * logu
    return model, jac


def _valid_shape(params):
    c1, c2, c3 = params[:, 3], params[:, 4], params[:, 5]
    ok = (c1 > 0) & (c3 > 0) & (c1 * c3 - c2 * c2 > 0) & (params[:, 0] > 0)
    ok &= np.all(np.isfinite(params), axis=1)
    ok &= (params[:, 7] >= MIN_BETA) & (params[:, 7] < 20)
    return ok


def _solve(jac, weights, resid, lam):
    jw = jac * weights[:, :, None]
    jtj = np.matmul(jw.transpose(0, 2, 1), jac).astype(np.float64)
    jtr = np.matmul(jw.transpose(0, 2, 1), resid[:, :, None])[:, :, 0].astype(np.float64)
    diag = np.diagonal(jtj, axis1=1, axis2=2).copy()
    diag = np.where(diag > 0, diag, 1.0)
    n_par = jtj.shape[1]
    a = jtj + (lam[:, None, None] * diag[:, :, None]) * np.eye(n_par)[None]
    try:
        return np.linalg.solve(a, jtr[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        step = np.zeros_like(jtr)
        for k in range(len(a)):
            try:
                step[k] = np.linalg.solve(a[k], jtr[k])
            except np.linalg.LinAlgError:
                step[k] = 0.0
        return step


def fit_moffat(
    values,
    weights,
    xpix,
    ypix,
    x_init,
    y_init,
    fwhm_init,
    *,
    beta=None,
    beta_init=3.0,
    max_iterations=25,
    tolerance=1e-3,
    max_shift=None,
    integration="subsample",
):
    """
    Fit elliptical Moffat profiles to N stamps.

    Parameters
    ----------
    values, weights : ndarray (N, M)
        Flattened stamp values (background subtracted) and inverse variances
        (0 to ignore a pixel).
    xpix, ypix : ndarray (N, M)
        Pixel coordinates of the stamp values.
    x_init, y_init, fwhm_init : ndarray (N,) or float
        Starting centre and FWHM.
    beta : float, optional
        Fix the Moffat index; fitted per star (starting at ``beta_init``)
        when None.
    max_iterations : int, optional
    tolerance : float, optional
        A star has converged when its chi-square improves by less than this
        fraction and its centre moves by less than 0.01 pixel.
    max_shift : float, optional
        A fit whose centre moves further than this from the start fails.
    integration : {'subsample', 'fine', 'laplacian'}, optional
        How the model is averaged over a pixel (see `_model_and_jacobian`).

    Returns
    -------
    MoffatFit
    """
    n = values.shape[0]
    fit_beta = beta is None
    b0 = float(beta_init if fit_beta else beta)
    x_init = np.broadcast_to(np.asarray(x_init, dtype=float), (n,))
    y_init = np.broadcast_to(np.asarray(y_init, dtype=float), (n,))
    fwhm_init = np.broadcast_to(np.asarray(fwhm_init, dtype=float), (n,))
    # work relative to the stamp centre, with values scaled to a unit peak
    xc = np.rint(x_init)
    yc = np.rint(y_init)
    xrel = (xpix - xc[:, None]).astype(np.float32)
    yrel = (ypix - yc[:, None]).astype(np.float32)
    peak = np.max(np.where(weights > 0, values, -np.inf), axis=1)
    scale = np.where(np.isfinite(peak) & (peak > 0), peak, 1.0)
    vals = (values / scale[:, None]).astype(np.float32)
    wts = (weights * (scale * scale)[:, None]).astype(np.float32)
    params, good0 = _starting_params(
        vals, wts, xrel, yrel, x_init - xc, y_init - yc, fwhm_init, b0, integration
    )
    chi2 = _levenberg_marquardt(
        params,
        vals,
        wts,
        xrel,
        yrel,
        fit_beta,
        integration,
        max_iterations=max_iterations,
        tolerance=tolerance,
    )
    params[:, 0] *= scale
    params[:, 6] *= scale
    params[:, 1] += xc
    params[:, 2] += yc
    # stars still improving when the iterations run out keep their (valid) fit
    ok = _valid_shape(params) & good0 & np.isfinite(chi2)
    if max_shift is not None:
        shift = np.hypot(params[:, 1] - x_init, params[:, 2] - y_init)
        ok &= shift <= max_shift
    fwhm_major, fwhm_minor, theta = _shape(params, ok)
    ok &= np.isfinite(fwhm_major) & np.isfinite(fwhm_minor)
    n_pix = (weights > 0).sum(axis=1)
    dof = np.maximum(n_pix - (8 if fit_beta else 7), 1)
    return MoffatFit(
        x=params[:, 1],
        y=params[:, 2],
        amplitude=params[:, 0],
        background=params[:, 6],
        beta=params[:, 7],
        fwhm_major=np.where(ok, fwhm_major, np.nan),
        fwhm_minor=np.where(ok, fwhm_minor, np.nan),
        theta=np.where(ok, theta, np.nan),
        ok=ok,
        chi2=chi2 / dof,
        n_pixels=n_pix,
    )


def _starting_params(vals, wts, xrel, yrel, x0, y0, fwhm_init, b0, integration):
    """Round profiles at the starting centre and FWHM; amplitude and background from a linear fit."""
    n = vals.shape[0]
    alpha = alpha_from_fwhm(fwhm_init, b0)
    params = np.zeros((n, 8))
    params[:, 1] = x0
    params[:, 2] = y0
    params[:, 3] = 1.0 / alpha**2
    params[:, 5] = 1.0 / alpha**2
    params[:, 7] = b0
    unit = params.copy()
    unit[:, 0] = 1.0
    shape0, _ = _model_and_jacobian(unit, xrel, yrel, False, False, integration)
    sw = wts.sum(axis=1, dtype=np.float64)
    sf = (wts * shape0).sum(axis=1, dtype=np.float64)
    sff = (wts * shape0 * shape0).sum(axis=1, dtype=np.float64)
    sv = (wts * vals).sum(axis=1, dtype=np.float64)
    sfv = (wts * shape0 * vals).sum(axis=1, dtype=np.float64)
    det = sw * sff - sf * sf
    with np.errstate(invalid="ignore", divide="ignore"):
        amp0 = np.where(det > 0, (sw * sfv - sf * sv) / det, 1.0)
        bkg0 = np.where(det > 0, (sv * sff - sf * sfv) / det, 0.0)
    good0 = np.isfinite(amp0) & (amp0 > 0)
    params[:, 0] = np.where(good0, amp0, 1.0)
    params[:, 6] = np.where(good0, bkg0, 0.0)
    return params, good0


def _levenberg_marquardt(params, vals, wts, xrel, yrel, fit_beta, integration, *, max_iterations, tolerance):
    """Damped least-squares steps for every star at once; updates ``params`` in place, returns chi-square."""
    n = vals.shape[0]
    lam = np.full(n, 1e-3)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        model, jac = _model_and_jacobian(params, xrel, yrel, fit_beta, True, integration)
    resid = vals - model
    chi2 = (wts * resid * resid).sum(axis=1, dtype=np.float64)
    active = np.isfinite(chi2)
    for _ in range(max_iterations):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        p = params[idx]
        step = _solve(jac[idx], wts[idx], resid[idx], lam[idx])
        trial = p.copy()
        trial[:, : step.shape[1]] += step
        valid = _valid_shape(trial)
        trial[~valid] = p[~valid]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            tmodel, tjac = _model_and_jacobian(trial, xrel[idx], yrel[idx], fit_beta, True, integration)
            tres = vals[idx] - tmodel
            tchi2 = (wts[idx] * tres * tres).sum(axis=1, dtype=np.float64)
        better = valid & np.isfinite(tchi2) & (tchi2 <= chi2[idx])
        improvement = np.where(better, (chi2[idx] - tchi2) / np.maximum(chi2[idx], 1e-30), 0.0)
        take = idx[better]
        params[take] = trial[better]
        chi2[take] = tchi2[better]
        model[take] = tmodel[better]
        resid[take] = tres[better]
        jac[take] = tjac[better]
        lam[idx] = np.where(better, np.maximum(lam[idx] / 5.0, 1e-7), lam[idx] * 8.0)
        moved = np.abs(step[:, 1:3]).max(axis=1)
        # relative change of the shape parameters proposed by the step
        shape_change = np.abs(step[:, 3:6]).max(axis=1) / np.maximum(np.abs(p[:, 3:6]).max(axis=1), 1e-12)
        tiny = (moved < 1e-2) & (shape_change < 1e-2)
        small = (better & (improvement < tolerance) & tiny) | (~better & tiny & (lam[idx] > 1.0))
        stuck = lam[idx] > 1e4
        active[idx[small | stuck]] = False
    return chi2.copy()


def _shape(params, ok):
    """Major and minor FWHM and position angle (deg, -90..90] of the fitted ellipses."""
    n = params.shape[0]
    mats = np.empty((n, 2, 2))
    mats[:, 0, 0] = params[:, 3]
    mats[:, 0, 1] = mats[:, 1, 0] = params[:, 4]
    mats[:, 1, 1] = params[:, 5]
    good = ok & np.all(np.isfinite(mats.reshape(n, 4)), axis=1)
    evals = np.full((n, 2), np.nan)
    evecs = np.full((n, 2, 2), np.nan)
    if good.any():
        evals[good], evecs[good] = np.linalg.eigh(mats[good])
    beta_fit = params[:, 7]
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.sqrt(2.0 ** (1.0 / beta_fit) - 1.0)
        fwhm_major = 2.0 * k / np.sqrt(evals[:, 0])
        fwhm_minor = 2.0 * k / np.sqrt(evals[:, 1])
        vx, vy = evecs[:, 0, 0], evecs[:, 1, 0]
        theta = np.degrees(np.arctan2(vy, vx))
    theta = np.where(theta > 90, theta - 180, theta)
    theta = np.where(theta <= -90, theta + 180, theta)
    return fwhm_major, fwhm_minor, theta


def stamp_half_size(fwhm):
    """Half side of the fitting stamp for a FWHM: about two FWHM, at least 4 pixels."""
    return int(max(4, math.ceil(2.0 * fwhm)))
