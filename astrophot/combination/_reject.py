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
sorted values, a V-shaped sequence sorted by the kernel's bitonic merger.

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

from astrophot.calibration._kernel import MAD_TO_STD, bitonic_merger, sorting_network
from astrophot.calibration._kernel import _apply as apply_network

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
    n, m = values.shape
    rows = [np.array(row, dtype=np.float64) for row in values]
    n_valid = np.zeros(m, dtype=np.intp)
    for row in rows:
        bad = ~np.isfinite(row)
        row[bad] = np.inf
        n_valid += ~bad
    index = [np.full(m, i, dtype=np.int16) for i in range(n)]
    apply_network(rows, sorting_network(n), np.empty(m), index, np.empty(m, dtype=np.int16))
    return np.stack(rows), np.stack(index), n_valid


class _Kept:
    """The kept range ``[lo, hi)`` of every pixel and masked statistics over it."""

    def __init__(self, s, n_valid):
        self.s = s
        self.rank = np.arange(s.shape[0])[:, None]
        self.lo = np.zeros(s.shape[1], dtype=np.intp)
        self.hi = n_valid.copy()
        self.n_valid = n_valid

    @property
    def count(self):
        return self.hi - self.lo

    def mask(self):
        return (self.rank >= self.lo) & (self.rank < self.hi)

    def at(self, pos):
        pos = np.clip(pos, 0, self.s.shape[0] - 1)
        return np.take_along_axis(self.s, pos[None, :], axis=0)[0]

    def median(self):
        out = 0.5 * (self.at((self.lo + self.hi - 1) // 2) + self.at((self.lo + self.hi) // 2))
        out[self.count <= 0] = np.nan
        return out

    def mean_std(self, ddof=0, values=None):
        values = self.s if values is None else values
        keep = self.mask()
        count = self.count
        x = np.where(keep, values, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):  # pixels with too few values: NaN
            mean = x.sum(axis=0) / count
            d = np.where(keep, values - mean, 0.0)
            var = np.einsum("ij,ij->j", d, d) / (count - ddof)
        return mean, np.sqrt(var)

    def mad_std(self, med):
        dev = np.abs(self.s - med)
        dev[~self.mask()] = np.inf
        rows = list(dev)
        apply_network(rows, bitonic_merger(len(rows)), np.empty(dev.shape[1]))
        dev = np.stack(rows)
        c = self.count
        mad = 0.5 * (
            np.take_along_axis(dev, np.maximum((c - 1) // 2, 0)[None], 0)[0]
            + np.take_along_axis(dev, np.maximum(c // 2, 0)[None], 0)[0]
        )
        return MAD_TO_STD * mad

    def percentile(self, q):
        pos = self.lo + (self.count - 1) * (q / 100.0)
        below = np.floor(pos).astype(np.intp)
        frac = pos - below
        a = self.at(below)
        b = self.at(np.minimum(below + 1, self.hi - 1))
        with np.errstate(invalid="ignore"):  # pixels without values: +inf - inf
            return a + frac * (b - a)

    def clip_to(self, lower, upper, *, clamp=True):
        """
        Keep the values within ``[lower, upper]``; return how many pixels changed.

        With ``clamp`` the values already rejected stay rejected; without it
        every value present is tested (astropy's final mask).
        """
        first = self.lo if clamp else 0
        last = self.hi if clamp else self.n_valid
        with np.errstate(invalid="ignore"):
            lo = np.maximum(first, np.count_nonzero(self.s < lower, axis=0)) if lower is not None else self.lo
            hi = np.minimum(last, np.count_nonzero(self.s <= upper, axis=0)) if upper is not None else self.hi
        valid = np.isfinite(lower if lower is not None else upper)
        lo = np.where(valid, lo, self.lo)
        hi = np.where(valid, np.maximum(hi, lo), self.hi)
        changed = (lo != self.lo) | (hi != self.hi)
        self.lo, self.hi = lo, hi
        return np.count_nonzero(changed)


def _limits(centre, spread, sigma):
    low, high = sigma
    lower = None if low is None else centre - low * spread
    upper = None if high is None else centre + high * spread
    return lower, upper


class _PrefixSums:
    """
    Running sums of each pixel's sorted values and their squares, about a per-pixel reference.

    The sum (or sum of squares) of the sorted values at ranks ``[i, j)`` is ``p[j] - p[i]``.
    The reference (the median of the values present) keeps the one-pass variance well
    conditioned; ``d`` holds the sorted values less the reference (+inf where missing).
    """

    def __init__(self, s, n_valid):
        n, m = s.shape
        mid = np.clip((n_valid - 1) // 2, 0, n - 1)
        self.columns = np.arange(m)
        self.ref = np.where(n_valid > 0, s[mid, self.columns], 0.0)
        self.d = s - self.ref
        finite = np.where(np.isfinite(self.d), self.d, 0.0)  # missing values lie beyond every kept rank
        self.p1 = np.zeros((n + 1, m))
        self.p2 = np.zeros((n + 1, m))
        np.cumsum(finite, axis=0, out=self.p1[1:])
        np.cumsum(finite * finite, axis=0, out=self.p2[1:])

    def between(self, i, j, columns=None):
        """Sums of the values and of their squares (about ``ref``) at ranks ``[i, j)``."""
        columns = self.columns if columns is None else columns
        return self.p1[j, columns] - self.p1[i, columns], self.p2[j, columns] - self.p2[i, columns]


def _prefix(kept):
    if getattr(kept, "_prefix", None) is None:
        kept._prefix = _PrefixSums(kept.s, kept.n_valid)
    return kept._prefix


def _std_from_sums(total, squares, count):
    with np.errstate(invalid="ignore", divide="ignore"):  # pixels with too few values: NaN
        var = (squares - total * total / count) / (count - 1)
    return np.sqrt(np.maximum(var, 0.0))


def _winsorized_std(kept, centre):
    """
    The winsorized standard deviation of the kept values (see the module notes).

    The values are sorted, so the values a pass clips are the first and last few kept
    ranks: each pass costs two comparisons per value of the pixels not yet converged and
    a few gathers, with the sums of the values between from `_PrefixSums`.
    """
    sums = _prefix(kept)
    lo, hi = kept.lo, kept.hi
    count = (hi - lo).astype(np.float64)
    sigma = _std_from_sums(*sums.between(lo, hi), count)
    active = np.flatnonzero(np.isfinite(sigma) & (sigma > 0))
    centre = np.broadcast_to(centre, sigma.shape) - sums.ref
    for _ in range(10):
        if not active.size:
            break
        old = sigma[active]
        low = centre[active] - 1.5 * old
        high = centre[active] + 1.5 * old
        d = sums.d[:, active]
        a_lo, a_hi = lo[active], hi[active]
        with np.errstate(invalid="ignore"):
            i0 = np.clip(np.count_nonzero(d < low, axis=0), a_lo, a_hi)
            i1 = np.clip(np.count_nonzero(d <= high, axis=0), i0, a_hi)
        middle, middle2 = sums.between(i0, i1, active)
        n_low, n_high = (i0 - a_lo), (a_hi - i1)
        total = n_low * low + n_high * high + middle
        squares = n_low * low * low + n_high * high * high + middle2
        new = 1.134 * _std_from_sums(total, squares, count[active])
        sigma[active] = new
        active = active[np.abs(new - old) > 5e-4 * old]
    return sigma


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


def _blom(kept):
    """Blom's expected normal order statistics of the kept ranks (0 outside)."""
    # the scores depend on two small integers only: looked up (the same values as ndtri of each, 5x faster)
    n = kept.s.shape[0]
    mask = kept.mask()
    i = np.where(mask, kept.rank - kept.lo + 1, 0)  # within 1..count where kept
    z = _blom_table(n).ravel().take(kept.count * (n + 2) + i)
    return np.where(mask, z, 0.0)


def _line(kept):
    """Location and slope of the line through the central sorted kept values (|score| <= 1)."""
    z = _blom(kept)
    # the line is fitted to the central values (|score| <= 1), out of reach of the outliers
    keep = kept.mask() & (np.abs(z) <= 1.0)
    z = np.where(keep, z, 0.0)
    y = np.where(keep, kept.s, 0.0)
    count = np.maximum(np.count_nonzero(keep, axis=0), 1)
    zm, ym = z.sum(0) / count, y.sum(0) / count
    dz = np.where(keep, z - zm, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.einsum("ij,ij->j", dz, y - ym) / np.einsum("ij,ij->j", dz, dz)
    return ym - slope * zm, slope


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
    keep = kept.mask()
    count = kept.count
    n = kept.s.shape[0]
    w = np.ones(kept.s.shape) if weights is None else _gather(weights, index, n)
    w = np.where(keep, w, 0.0)
    wsum = w.sum(axis=0)
    x = np.where(keep, kept.s, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.einsum("ij,ij->j", w, x) / wsum
        w2 = np.einsum("ij,ij->j", w, w)
        if variances is not None:
            v = np.where(keep, _gather(variances, index, n), 0.0)
            variance = np.einsum("ij,ij,ij->j", w, w, v) / (wsum * wsum)
        else:
            d = np.where(keep, kept.s - mean, 0.0)
            spread = np.einsum("ij,ij,ij->j", w, d, d) / wsum * count / (count - 1)
            variance = spread * w2 / (wsum * wsum)
            variance[count < 2] = np.nan
    if center == "median":
        mean = kept.median()
        variance = variance * (math.pi / 2)
    mean[count <= 0] = np.nan
    variance[count <= 0] = np.nan
    return mean, variance, wsum


def _gather(per_frame, index, n):
    per_frame = np.asarray(per_frame, dtype=np.float64)
    if per_frame.ndim == 1:
        if per_frame.shape != (n,):
            raise ValueError(f"per-frame values must have {n} entries, not {per_frame.shape[0]}")
        return per_frame[index]
    return np.take_along_axis(per_frame, index.astype(np.intp), axis=0)


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
    keep = kept.mask()
    present = kept.rank < n_valid
    rejected = present & ~keep
    result = BandResult(
        value=value,
        variance=variance,
        weight=wsum,
        n_input=n_valid,
        coverage=kept.count,
        n_low=kept.lo.copy(),
        n_high=n_valid - kept.hi,
        rejected_per_frame=np.bincount(index[rejected], minlength=n),
        present_per_frame=np.bincount(index[present], minlength=n),
        rejection=rejection,
        kept=None,
    )
    if keep_mask:
        mask = np.zeros(values.shape, dtype=bool)
        np.put_along_axis(mask, index.astype(np.intp), keep, axis=0)
        result.kept = mask
    return result
