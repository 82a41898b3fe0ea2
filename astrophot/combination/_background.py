# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Global background matching of a mosaic from its pairwise overlaps.

Montage's ``mBgModel`` idea, solved in one step: in the overlap of frames
``i`` and ``j`` (on the common grid, stars and protected regions masked) the
difference ``d = data_i - data_j`` is fitted by a plane (or a constant),
robustly (sigma-clipped least squares). Each frame gets a background model
``b_k(x, y) = a_k + p_k x + q_k y`` and the overlap fits ask for
``b_i - b_j = fit_ij``; the over-determined linear system of all overlaps,
each whitened by the covariance of its fit, is solved by least squares, with the
free constant (and plane) fixed by a reference frame (its model is zero) or
by a zero mean over the frames. Overlaps whose residual after the solution is
far above the others' (a bad fit, a nebula left unprotected) are dropped and
the system solved again. The residual of each overlap is reported.
"""

import numpy as np

__all__ = ["fit_overlap", "solve_backgrounds"]

_MODELS = {"offset": 1, "plane": 3}


def _design(x, y, n_terms):
    columns = [np.ones_like(x)]
    if n_terms == 3:
        columns += [x, y]
    return np.stack(columns, axis=1)


def fit_overlap(difference, x, y, *, model="plane", sigma=3.0, max_iterations=10):
    """
    Sigma-clipped least-squares fit of a difference image in an overlap.

    Parameters
    ----------
    difference, x, y : ndarray (1-D)
        The difference of two frames at the overlap's pixels and their
        output coordinates (pixels; masked pixels left out).
    model : {"plane", "offset"}
    sigma : float
    max_iterations : int

    Returns
    -------
    coefficients : ndarray
        ``(a, p, q)`` of ``a + p x + q y`` (``(a,)`` for an offset).
    rms : float
        Scatter of the kept differences about the fit.
    n_used : int
    covariance : ndarray
        Of the coefficients (weights the overlap in `solve_backgrounds`).

    Examples
    --------
    >>> import numpy as np
    >>> y, x = np.mgrid[0:50, 0:40].reshape(2, -1).astype(float)
    >>> d = 3.0 + 0.01 * x - 0.02 * y + np.random.default_rng(0).normal(0, 0.1, x.size)
    >>> c, rms, n, cov = fit_overlap(d, x, y)
    >>> np.round(c, 2).tolist()
    [3.0, 0.01, -0.02]
    """
    n_terms = _MODELS[model]
    keep = np.isfinite(difference)
    x0, y0 = np.mean(x[keep]), np.mean(y[keep])
    design = _design(x - x0, y - y0, n_terms)
    coef = np.zeros(n_terms)
    rms = np.nan
    for _ in range(max_iterations):
        if np.count_nonzero(keep) <= n_terms:
            raise ValueError(
                f"an overlap has only {np.count_nonzero(keep)} usable pixels: too few to fit a {model}"
            )
        coef, *_ = np.linalg.lstsq(design[keep], difference[keep], rcond=None)
        resid = difference - design @ coef
        rms = 1.482602218505602 * np.median(np.abs(resid[keep]))
        new = np.isfinite(difference) & (np.abs(resid) <= sigma * rms)
        if np.array_equal(new, keep):
            break
        keep = new
    scatter = float(np.std(resid[keep]))
    # covariance of the coefficients, taken back to the uncentred ``a + p x + q y``
    cov = scatter**2 * np.linalg.inv(design[keep].T @ design[keep])
    if n_terms == 3:
        jac = np.array([[1.0, -x0, -y0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        coef = jac @ coef
        cov = jac @ cov @ jac.T
    return coef, scatter, int(np.count_nonzero(keep)), cov


def solve_backgrounds(n_frames, overlaps, *, model="plane", reference=None, clip=5.0):
    """
    Per-frame background models from the fits of all pairwise overlaps.

    Parameters
    ----------
    n_frames : int
    overlaps : sequence of dict
        ``i``, ``j`` (frames), ``coefficients`` and ``covariance`` (of
        `fit_overlap`, for ``data_i - data_j``), and ``x``, ``y`` (a sample
        of the overlap's coordinates, to measure the residual).
    model : {"plane", "offset"}
    reference : int, optional
        The frame whose background model is zero; by default the models have
        zero mean over the frames.
    clip : float
        Overlaps whose residual exceeds ``clip`` times the median residual
        and ``clip`` times the standard error of their own fit's constant
        are dropped and the system solved again (once).

    Returns
    -------
    models : ndarray (``n_frames, 3``)
        ``(a, p, q)`` of each frame: subtract ``a + p x + q y``.
    residuals : list of float
        RMS over each overlap's sample of ``(b_i - b_j) - fit_ij`` (frame
        units), NaN for a dropped overlap.
    used : list of bool
    """
    if model not in _MODELS:
        raise ValueError(f"match_background must be 'plane', 'offset' or None, not {model!r}")
    n_terms = _MODELS[model]
    used = [True] * len(overlaps)
    for _ in range(2):
        models = _solve(n_frames, [o for o, u in zip(overlaps, used) if u], n_terms, reference)
        residuals = [_residual(models, o, n_terms) for o in overlaps]
        finite = [r for r, u in zip(residuals, used) if u and np.isfinite(r)]
        if len(finite) < 3:
            break
        limit = clip * np.median(finite)
        # an overlap goes only if its residual is also beyond what its own fit's precision allows
        bad = [
            u and r > limit and r > clip * np.sqrt(np.asarray(o["covariance"])[0, 0])
            for r, u, o in zip(residuals, used, overlaps)
        ]
        if not any(bad):
            break
        used = [u and not b for u, b in zip(used, bad)]
    residuals = [r if u else np.nan for r, u in zip(residuals, used)]
    return models, residuals, used


def _solve(n_frames, overlaps, n_terms, reference):
    blocks, rhs = [], []
    for o in overlaps:
        coef = np.asarray(o["coefficients"], dtype=np.float64)[:n_terms]
        cov = np.asarray(o["covariance"], dtype=np.float64)[:n_terms, :n_terms]
        # whiten: rows W (b_i - b_j - c) with W^T W = cov^-1
        white = np.linalg.cholesky(np.linalg.inv(cov)).T
        rows = np.zeros((n_terms, n_frames * n_terms))
        rows[:, o["i"] * n_terms : (o["i"] + 1) * n_terms] = white
        rows[:, o["j"] * n_terms : (o["j"] + 1) * n_terms] = -white
        blocks.append(rows)
        rhs.append(white @ coef)
    # the free constant (and plane): a reference frame's model is zero, or the models have zero mean
    big = 1e3 * max((np.abs(b).max() for b in blocks), default=1.0)
    fix = np.zeros((n_terms, n_frames * n_terms))
    for t in range(n_terms):
        if reference is None:
            fix[t, t::n_terms] = big
        else:
            fix[t, int(reference) * n_terms + t] = big
    a = np.vstack(blocks + [fix])
    b = np.concatenate(rhs + [np.zeros(n_terms)])
    solution, *_ = np.linalg.lstsq(a, b, rcond=None)
    models = np.zeros((n_frames, 3))
    models[:, :n_terms] = solution.reshape(n_frames, n_terms)
    return models


def _residual(models, o, n_terms):
    x, y = np.asarray(o["x"], dtype=np.float64), np.asarray(o["y"], dtype=np.float64)
    coef = np.zeros(3)
    coef[:n_terms] = np.asarray(o["coefficients"], dtype=np.float64)[:n_terms]
    mi, mj = models[o["i"]], models[o["j"]]
    predicted = (mi[0] - mj[0]) + (mi[1] - mj[1]) * x + (mi[2] - mj[2]) * y
    fitted = coef[0] + coef[1] * x + coef[2] * y
    return float(np.sqrt(np.mean((predicted - fitted) ** 2)))
