# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Pixel rejection and combination on a stack of values, band by band.

The stack of one band is an ``(n_frames, n_pixels)`` array; a frame that does
not cover a pixel has NaN there, so the number of values varies from pixel to
pixel. The values of every pixel are sorted along the frame axis with the
sorting network of the master calibrations (`astrophot.calibration._kernel`:
each comparator is one ``np.minimum`` and one ``np.maximum`` over the band),
the missing values going to the end as +inf and the frame index travelling
with each value. Every rejection rule below rejects values from the extremes
inwards, so the values kept for a pixel are a contiguous index range
``[lo, hi)`` of its sorted values; rules only move ``lo`` up and ``hi`` down.
The median absolute deviation is read from the absolute deviations of the
sorted values, a V-shaped sequence whose two sorted arms are merged.
The per-pixel work (the sort, each rule's statistics and clipping, the
combination) is compiled (`astrophot.combination._reject_kernel`, loops that
release the GIL); the band-wide steps (the pooled spread's median, the end of
the iterations) stay here.

Rules (``sigma = (low, high)`` are the asymmetric limits in standard
deviations; a rule never rejects the median of a pixel):

``none``
    Keep every value.
``minmax``
    Drop the ``n_low`` lowest and ``n_high`` highest values of each pixel
    (only where more than ``n_low + n_high`` values are present).
``percentile``
    One pass: the spread is half the distance between the 15.87th and the
    84.13th percentiles of the values of the pixel (linear interpolation);
    values beyond ``median - low * spread`` or ``median + high * spread`` go.
    For small stacks (3 to 6 values), where a standard deviation is unstable.
``sigma``
    Iterated sigma clipping about the median with the standard deviation of
    the kept values, exactly as `astropy.stats.sigma_clip` with
    ``cenfunc="median", stdfunc="std"`` (values on a limit are kept).
``mad``
    The same with the standard deviation estimated as 1.4826 times the median
    absolute deviation (`astropy.stats.mad_std`).
``winsorized``
    The same with a winsorized standard deviation: values beyond
    ``median +/- 1.5 sigma`` are replaced by those limits and the sample
    standard deviation of the result (``ddof=1``), times 1.134, is the new sigma, until it changes
    by less than 0.05 % (at most 10 passes).
``linear_fit``
    A straight line is fitted (least squares) to the central sorted kept
    values (scores within +/-1) against their expected normal order
    statistics (Blom's scores), so for
    Gaussian noise the line's slope is the standard deviation and its value at
    zero the location; values further than ``low`` (below) or ``high`` (above)
    slopes from the location are rejected from the extremes inwards, and the
    fit repeats until nothing changes. Stable for large stacks (15 or more).
``gesd``
    Rosner's generalised extreme Studentised deviate test, with significance
    ``alpha`` and at most ``max_outliers`` (a fraction of the values of the
    pixel) outliers: the NIST/SEMATECH handbook's two-sided procedure. The
    default ``alpha=None`` takes it from the ``sigma`` limits: a pixel of
    ``c`` values is tested at ``alpha = c * tail`` (at most 0.5), ``tail``
    the Gaussian probability beyond the limits (0.27 % at 3 sigma), shared
    (Bonferroni) among its ``floor(max_outliers * c)`` steps, so pure noise
    loses at most about the fraction of values a cut at the limits with
    known noise would (a fixed ``alpha = 0.05`` flags 1 % of the values of 5).
``auto``
    By the number of frames ``n``: ``n <= 2`` none, ``3 <= n <= 6``
    percentile, ``7 <= n <= 14`` winsorized, ``n >= 15`` linear_fit.

The kept values are combined by their weighted mean (or their median);
the variance of the result comes from the per-value variances when given
(``sum w**2 var / (sum w)**2``) or else from the spread of the kept values
scaled by the effective number of kept values.
"""

import functools
import math

import numpy as np

from astrophot.calibration._kernel import MAD_TO_STD, sorting_network
from astrophot.combination import _reject_kernel as _ck

__all__ = ["REJECTIONS", "BandResult", "auto_rejection", "combine_stack", "sort_stack"]

#: Rejection rules understood by `combine_stack` (and ``stack_frames``).
REJECTIONS = (
    "none",
    "minmax",
    "percentile",
    "sigma",
    "mad",
    "winsorized",
    "linear_fit",
    "gesd",
    "auto",
)

_CENTERS = ("mean", "median")

#: Gaussian quantile of the percentile rule's spread (one standard deviation).
_PERCENTILE_Q = (15.865525393145708, 84.13447460685429)


def auto_rejection(n_frames):
    """
    The rejection rule ``"auto"`` picks for ``n_frames`` frames.

    Parameters
    ----------
    n_frames : int

    Returns
    -------
    str

    Examples
    --------
    >>> [auto_rejection(n) for n in (2, 5, 8, 20)]
    ['none', 'percentile', 'winsorized', 'linear_fit']
    """
    if n_frames <= 2:
        return "none"
    if n_frames <= 6:
        return "percentile"
    if n_frames <= 14:
        return "winsorized"
    return "linear_fit"


class BandResult:
    """
    The combination of one band.

    Attributes
    ----------
    value, variance, weight : ndarray (float64, ``n_pixels``)
        Combined value (NaN where nothing is kept), its variance (NaN where it
        cannot be estimated) and the sum of the weights of the kept values.
    n_input, coverage, n_low, n_high : ndarray (int, ``n_pixels``)
        Values present, values kept, values rejected low and high.
    rejected_per_frame, present_per_frame : ndarray (int, ``n_frames``)
        Values of each frame rejected and present in this band.
    kept : ndarray of bool (``n_frames, n_pixels``) or None
        Whether each frame's value was kept (in frame order), when asked for.
    """

    def __init__(self, **values):
        self.__dict__.update(values)


def sort_stack(values):
    """
    Sort a band's values per pixel, missing values last.

    Parameters
    ----------
    values : ndarray (``n_frames, n_pixels``)
        NaN (or inf) where a frame has no value.

    Returns
    -------
    sorted_values : ndarray (float64, ``n_frames, n_pixels``)
        Sorted along axis 0, +inf where missing.
    index : ndarray (int16, ``n_frames, n_pixels``)
        The frame each sorted value came from.
    n_valid : ndarray (intp, ``n_pixels``)
    """
    values = np.asarray(values)
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    return _ck.sort_band(values, _network(values.shape[0]))


@functools.cache
def _network(n):
    return np.array(sorting_network(n), dtype=np.intp).reshape(-1, 2)


class _Kept:
    """The kept range ``[lo, hi)`` of every pixel and statistics over it (compiled)."""

    def __init__(self, s, n_valid):
        self.s = s
        self.lo = np.zeros(s.shape[1], dtype=np.intp)
        self.hi = np.array(n_valid, dtype=np.intp)
        self.n_valid = self.hi.copy()

    @property
    def count(self):
        return self.hi - self.lo

    def at(self, pos):
        pos = np.clip(pos, 0, self.s.shape[0] - 1)
        return np.take_along_axis(self.s, pos[None, :], axis=0)[0]

    def median(self):
        return _ck.median(self.s, self.lo, self.hi)

    def mean_std(self, ddof=0):
        return _ck.mean_std(self.s, self.lo, self.hi, int(ddof))

    def mad_std(self, med):
        return _ck.mad_std(self.s, self.lo, self.hi, np.ascontiguousarray(med, dtype=np.float64), MAD_TO_STD)

    def percentile(self, q):
        return _ck.percentile(self.s, self.lo, self.hi, float(q))

    def clip_to(self, lower, upper, *, clamp=True):
        """
        Keep the values within ``[lower, upper]``; return how many pixels changed.

        With ``clamp`` the values already rejected stay rejected; without it
        every value present is tested (astropy's final mask).
        """
        if lower is None and upper is None:
            return 0
        m = self.s.shape[1]
        lower_ = _limit_array(lower, m)
        upper_ = _limit_array(upper, m)
        return _ck.clip(
            self.s,
            self.lo,
            self.hi,
            self.n_valid,
            lower_,
            upper_,
            lower is not None,
            upper is not None,
            clamp,
        )


def _limit_array(limit, m):
    if limit is None:
        return np.empty(0)
    return np.ascontiguousarray(np.broadcast_to(np.asarray(limit, dtype=np.float64), (m,)))


def _limits(centre, spread, sigma):
    low, high = sigma
    lower = None if low is None else centre - low * spread
    upper = None if high is None else centre + high * spread
    return lower, upper


def _winsorized_std(kept, centre):
    """
    The winsorized standard deviation of the kept values (see the module notes).

    The values are sorted, so the values a pass clips are the first and last few kept
    ranks; the sums of the values between come from running sums about the median of
    the values present (which keeps the one-pass variance well conditioned).
    """
    centre = np.ascontiguousarray(np.broadcast_to(centre, kept.lo.shape), dtype=np.float64)
    return _ck.winsorized_std(kept.s, kept.lo, kept.hi, kept.n_valid, centre)


def pooled(spread):
    """The spread of each pixel, raised to the median spread of the band where below it."""
    finite = spread[np.isfinite(spread)]
    if not finite.size:
        return spread
    return np.maximum(spread, np.median(finite))


def _iterate(kept, spread_of, sigma, max_iterations, spread, rule=None):
    """
    Iterated clipping about the median, as `astropy.stats.sigma_clip` does it.

    The bounds of each pass come from the values kept by the previous one;
    the loop ends when a pass rejects nothing (or after ``max_iterations``)
    and the final bounds are applied to every value present.
    """
    lower = upper = None
    for _ in range(max_iterations):
        centre = kept.median()
        width = spread_of(kept, centre)
        if spread == "pooled":
            width = pooled(_calibrated(kept, width, rule))
        lower, upper = _limits(centre, width, sigma)
        if not kept.clip_to(lower, upper):
            break
    if lower is not None or upper is not None:
        kept.clip_to(lower, upper, clamp=False)


def _reject_sigma(kept, sigma, max_iterations, spread, **_):
    _iterate(kept, lambda k, c: k.mean_std()[1], sigma, max_iterations, spread)


def _reject_mad(kept, sigma, max_iterations, spread, **_):
    _iterate(kept, _mad_spread, sigma, max_iterations, spread, rule="mad")


def _reject_winsorized(kept, sigma, max_iterations, spread, **_):
    _iterate(kept, _winsorized_std, sigma, max_iterations, spread)


def _percentile_spread(kept, centre=None):
    lo_q, hi_q = (kept.percentile(q) for q in _PERCENTILE_Q)
    return 0.5 * (hi_q - lo_q)


def _mad_spread(kept, centre):
    return kept.mad_std(centre)


def _reject_percentile(kept, sigma, spread, **_):
    width = _percentile_spread(kept)
    if spread == "pooled":
        width = pooled(_calibrated(kept, width, "percentile"))
    lower, upper = _limits(kept.median(), width, sigma)
    kept.clip_to(lower, upper)


def _reject_minmax(kept, n_low, n_high, **_):
    enough = kept.count > n_low + n_high
    kept.lo = np.where(enough, kept.lo + n_low, kept.lo)
    kept.hi = np.where(enough, kept.hi - n_high, kept.hi)


@functools.cache
def _blom_table(n):
    """``z[count, i]``: Blom's score of rank ``i`` (1-based) among ``count`` values, for counts up to ``n``."""
    from scipy.special import ndtri

    count = np.arange(n + 1)[:, None]
    i = np.arange(n + 2)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return ndtri((i - 0.375) / (count + 0.25))


def _line(kept):
    """Location and slope of the line through the central sorted kept values (|score| <= 1)."""
    return _ck.line(kept.s, kept.lo, kept.hi, _blom_table(kept.s.shape[0]))


def _line_spread(kept, centre=None):
    return _line(kept)[1]


def _reject_linear_fit(kept, sigma, max_iterations, spread, **_):
    for _ in range(max_iterations):
        fit = kept.count >= 3
        location, slope = _line(kept)
        if spread == "pooled":
            slope = pooled(_calibrated(kept, np.where(fit, slope, np.nan), "linear_fit"))
        lower, upper = _limits(location, slope, sigma)
        lower = np.where(fit, lower, -np.inf) if lower is not None else None
        upper = np.where(fit, upper, np.inf) if upper is not None else None
        if not kept.clip_to(lower, upper):
            break


#: The spread estimators made consistent for the number of values (``spread="pooled"``).
_SPREADS = {"percentile": _percentile_spread, "mad": _mad_spread, "linear_fit": _line_spread}
#: Values per simulated pixel beyond which the consistency factor of the largest is used.
_CONSISTENCY_MAX = 100
_CONSISTENCY_PIXELS = 8192


@functools.cache
def consistency(rule, n):
    """
    The median of a rule's spread estimate over pixels of ``n`` standard normal values.

    ``percentile``, ``mad`` and ``linear_fit`` estimate a standard deviation that, for few
    values, is biased low (the MAD of three values is the smaller of two deviations; the
    interpolated 16th-84th percentile range of five values is 0.74 sigma on average), so a
    3-sigma limit would reject several times the 0.27 % of good values a Gaussian loses.
    With ``spread="pooled"`` their spreads are divided by this factor (computed once per
    count from a seeded simulation of the same estimator) before the band's median is
    taken. ``sigma`` and ``winsorized`` are `astropy.stats.sigma_clip`'s definitions and
    are not corrected (their false rejections stay low: a value of ``n`` cannot lie more
    than ``(n - 1) / sqrt(n)`` sample standard deviations from their mean).

    Parameters
    ----------
    rule : {"percentile", "mad", "linear_fit"}
    n : int

    Returns
    -------
    float
        1 where the estimator is undefined (fewer than 2 values, or 3 for ``linear_fit``).

    Examples
    --------
    >>> round(consistency("mad", 3), 2) < 0.7 < round(consistency("mad", 50), 2)
    True
    """
    n = int(min(n, _CONSISTENCY_MAX))
    if n < (3 if rule == "linear_fit" else 2):
        return 1.0
    values = np.random.default_rng([20261204, n]).standard_normal((n, _CONSISTENCY_PIXELS))
    kept = _Kept(*sort_stack(values)[::2])
    value = float(np.median(_SPREADS[rule](kept, kept.median())))
    return value if np.isfinite(value) and value > 0 else 1.0


def _calibrated(kept, width, rule):
    """``width`` divided by the rule's `consistency` factor for each pixel's kept count."""
    if rule not in _SPREADS:
        return width
    table = np.array([consistency(rule, c) for c in range(kept.s.shape[0] + 1)])
    return width / table[np.clip(kept.count, 0, table.size - 1)]


@functools.cache
def _gesd_critical(n_max, alpha, r_max, tail=None, max_outliers=0.3):
    """
    Critical values lambda[c, i-1] of the generalised ESD test for c values.

    With ``tail``, alpha is ``c * tail`` shared (Bonferroni) among the pixel's
    ``floor(max_outliers * c)`` steps.
    """
    from scipy.stats import t

    table = np.full((n_max + 1, max(r_max, 1)), np.inf)
    for c in range(3, n_max + 1):
        steps = max(1, min(int(math.floor(max_outliers * c)), c - 2))
        a = alpha if tail is None else min(0.5, c * tail / steps)
        for i in range(1, min(r_max, c - 2) + 1):
            p = 1 - a / (2 * (c - i + 1))
            tv = t.ppf(p, c - i - 1)
            table[c, i - 1] = (c - i) * tv / math.sqrt((c - i - 1 + tv * tv) * (c - i + 1))
    return table


def gesd_statistics(kept, *, alpha=0.05, max_outliers=0.3, tail=None):
    """
    The generalised ESD test on the kept values of every pixel.

    With ``tail`` (a Gaussian tail probability) a pixel of ``c`` values is tested
    at significance ``min(0.5, c * tail)`` instead of ``alpha``.

    Returns
    -------
    statistic, critical : ndarray (``r_max, n_pixels``)
        The test statistics R_i and critical values lambda_i.
    low_end : ndarray of bool (``r_max, n_pixels``)
        Whether the i-th most extreme value was the lowest one.
    """
    c0 = kept.count.copy()
    n = kept.s.shape[0]
    r_all = np.floor(max_outliers * c0).astype(np.intp)
    r_max = int(r_all.max(initial=0))
    tail = None if tail is None else float(tail)
    table = _gesd_critical(n, float(alpha), max(r_max, 1), tail, float(max_outliers))
    m = c0.size
    stat = np.full((r_max, m), -np.inf)
    crit = np.full((r_max, m), np.inf)
    low_end = np.zeros((r_max, m), dtype=bool)
    lo, hi = kept.lo.copy(), kept.hi.copy()
    for i in range(r_max):
        active = (i < r_all) & (c0 - i >= 3)
        mean, std = kept.mean_std(ddof=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            dlow = (mean - kept.at(kept.lo)) / std
            dhigh = (kept.at(kept.hi - 1) - mean) / std
        is_low = dlow > dhigh
        stat[i] = np.where(active, np.where(is_low, dlow, dhigh), -np.inf)
        crit[i] = np.where(active, table[np.minimum(c0, n), i], np.inf)
        low_end[i] = is_low
        kept.lo = np.where(active & is_low, kept.lo + 1, kept.lo)
        kept.hi = np.where(active & ~is_low, kept.hi - 1, kept.hi)
    kept.lo, kept.hi = lo, hi
    return stat, crit, low_end


def _gaussian_tail(sigma):
    """Probability of a standard normal value beyond the limits ``(low, high)`` (None: no limit)."""
    from scipy.special import ndtr

    low, high = sigma
    tail = (0.0 if low is None else ndtr(-low)) + (0.0 if high is None else ndtr(-high))
    return float(tail) if tail > 0 else None


def _reject_gesd(kept, alpha, max_outliers, sigma, **_):
    tail = _gaussian_tail(sigma) if alpha is None else None
    alpha = 0.05 if alpha is None else alpha
    stat, crit, low_end = gesd_statistics(kept, alpha=alpha, max_outliers=max_outliers, tail=tail)
    if not stat.shape[0]:
        return
    above = stat > crit
    steps = np.arange(1, stat.shape[0] + 1)[:, None]
    n_out = np.max(np.where(above, steps, 0), axis=0)
    first = steps <= n_out
    kept.lo = kept.lo + np.count_nonzero(first & low_end, axis=0)
    kept.hi = kept.hi - np.count_nonzero(first & ~low_end, axis=0)


_RULES = {
    "none": lambda kept, **_: None,
    "minmax": _reject_minmax,
    "percentile": _reject_percentile,
    "sigma": _reject_sigma,
    "mad": _reject_mad,
    "winsorized": _reject_winsorized,
    "linear_fit": _reject_linear_fit,
    "gesd": _reject_gesd,
}


def _sigma_pair(sigma):
    if np.ndim(sigma) == 0:
        sigma = (sigma, sigma)
    low, high = sigma
    for value in (low, high):
        if value is not None and not (np.isfinite(value) and value > 0):
            raise ValueError(f"sigma limits must be positive numbers or None, not {sigma!r}")
    return (None if low is None else float(low), None if high is None else float(high))


def _combine_kept(kept, index, weights, variances, center):
    n, m = kept.s.shape
    w = np.ones(n) if weights is None else _per_frame(weights, n, m, "weights")
    w = np.broadcast_to(w[:, None], (n, m)) if w.ndim == 1 else w
    if variances is None:
        v = np.zeros((1, 1))
    else:
        v = _per_frame(variances, n, m, "variances", keep_float32=True)
        v = np.broadcast_to(v[:, None], (n, m)) if v.ndim == 1 else v
    return _ck.combine(kept.s, index, kept.lo, kept.hi, w, v, variances is not None, center == "median")


def _per_frame(values, n, m, name, keep_float32=False):
    values = np.asarray(values)
    if not (keep_float32 and values.dtype == np.float32):
        values = values.astype(np.float64, copy=False)
    if values.ndim == 1:
        if values.shape != (n,):
            raise ValueError(f"per-frame values must have {n} entries, not {values.shape[0]}")
    elif values.shape != (n, m):
        raise ValueError(f"{name} must have the shape of the values {(n, m)}, not {values.shape}")
    return values


def combine_stack(
    values,
    *,
    rejection="auto",
    sigma=(3.0, 3.0),
    weights=None,
    variances=None,
    center="mean",
    max_iterations=10,
    spread="pooled",
    n_low=1,
    n_high=1,
    alpha=None,
    max_outliers=0.3,
    n_frames=None,
    keep_mask=False,
):
    """
    Reject and combine the values of one band.

    Parameters
    ----------
    values : ndarray (``n_frames, n_pixels``)
        NaN where a frame does not cover a pixel.
    rejection : str
        One of `REJECTIONS` (see the module notes).
    sigma : float or (float or None, float or None)
        Lower and upper limits in standard deviations (None: no limit).
    weights : ndarray (``n_frames`` or ``n_frames, n_pixels``), optional
        Weights of the values (default: equal).
    variances : ndarray (``n_frames`` or ``n_frames, n_pixels``), optional
        Variances of the values; without them the variance of the result
        comes from the spread of the kept values.
    center : {"mean", "median"}
        Weighted mean or median of the kept values.
    max_iterations : int
        Passes of the iterated rules.
    spread : {"pooled", "pixel"}
        ``"pixel"``: the spread of ``percentile``, ``sigma``, ``mad``,
        ``winsorized`` and ``linear_fit`` is
        each pixel's own (exactly `astropy.stats.sigma_clip`); ``"pooled"``
        (default): a pixel's spread is raised to the median spread of the band
        where it is below it, so a few values cannot give a tiny spread that
        rejects good values.
    n_low, n_high : int
        Values dropped by ``minmax``.
    alpha : float or None
        Significance of ``gesd`` (None: from ``sigma``, see the module notes).
    max_outliers : float
        Largest fraction of outliers of ``gesd``.
    n_frames : int, optional
        The number of frames ``auto`` decides by (default: the rows of
        ``values``).
    keep_mask : bool
        Also return which value of each frame was kept.

    Returns
    -------
    BandResult

    Examples
    --------
    >>> import numpy as np
    >>> values = np.array([[1.0, 2.0], [1.1, np.nan], [0.9, 2.2], [50.0, 2.1], [1.0, 1.9]])
    >>> r = combine_stack(values, rejection="sigma", sigma=2.0)
    >>> r.value.round(3).tolist(), r.coverage.tolist(), r.n_high.tolist()
    ([1.0, 2.05], [4, 4], [1, 0])
    """
    if rejection not in REJECTIONS:
        raise ValueError(f"rejection must be one of {', '.join(REJECTIONS)}, not {rejection!r}")
    if spread not in ("pooled", "pixel"):
        raise ValueError(f"spread must be 'pooled' or 'pixel', not {spread!r}")
    if center not in _CENTERS:
        raise ValueError(f"center must be 'mean' or 'median', not {center!r}")
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"values must be a 2-D (frames, pixels) array, not {values.ndim}-D")
    n = values.shape[0]
    if rejection == "auto":
        rejection = auto_rejection(n if n_frames is None else n_frames)
    s, index, n_valid = sort_stack(values)
    kept = _Kept(s, n_valid)
    options = {
        "sigma": _sigma_pair(sigma),
        "max_iterations": int(max_iterations),
        "spread": spread,
        "n_low": int(n_low),
        "n_high": int(n_high),
        "alpha": None if alpha is None else float(alpha),
        "max_outliers": float(max_outliers),
    }
    _RULES[rejection](kept, **options)
    value, variance, wsum = _combine_kept(kept, index, weights, variances, center)
    rejected_per_frame, present_per_frame, mask = _ck.tally(index, kept.lo, kept.hi, n_valid, bool(keep_mask))
    return BandResult(
        value=value,
        variance=variance,
        weight=wsum,
        n_input=n_valid,
        coverage=kept.count,
        n_low=kept.lo.copy(),
        n_high=n_valid - kept.hi,
        rejected_per_frame=rejected_per_frame,
        present_per_frame=present_per_frame,
        rejection=rejection,
        kept=mask,
    )
