# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Normalisation and weights of the frames of a stack.

Both work on samples of the frames on the common grid: an ``(n_frames,
n_samples)`` array of the same output pixels (NaN where a frame does not
cover one), taken from the part that every frame covers (the common overlap).

For each frame, robust statistics of the samples give the sky level
(``location``: sigma-clipped median), the sky noise (``noise``: MAD standard
deviation after clipping) and, from the pixels well above the sky in the
median of the frames, the photometric ``scale`` of the frame relative to the
reference (the clipped least-squares slope of its sky-subtracted values
against that median, divided by the reference's: 0.8 for a frame through
20 % more extinction). A frame's values are normalised as
``factor * value + offset``:

``none``
    ``factor = 1, offset = 0``.
``additive``
    ``factor = 1, offset = location_ref - location``.
``multiplicative``
    ``factor = location_ref / location, offset = 0``.
``additive_scale``
    ``factor = 1 / scale, offset = location_ref - location / scale``: sky
    levels matched and the stars brought to the reference's transparency.

Weights (relative, the largest 1):

``noise``
    ``1 / (factor * noise)**2``: inverse variance of the normalised sky.
``psf``
    ``1 / (fwhm * factor * noise)**2``: the signal-to-noise squared of a
    point source in an aperture of the FWHM, so better seeing weighs more.
``exptime``
    The exposure times.
``quality``
    The ``weight`` column of `~astrophot.analysis.select_frames`, matched by
    file name; frames that it rejected are left out with its reason.
a sequence
    Given weights, one per frame.
``none``
    Equal weights.
"""

import warnings

import numpy as np
from astropy.stats import sigma_clip, sigma_clipped_stats

__all__ = [
    "NORMALIZATIONS",
    "WEIGHTINGS",
    "frame_statistics",
    "frame_weights",
    "normalization",
    "star_groups",
]

NORMALIZATIONS = ("none", "additive", "multiplicative", "additive_scale")
WEIGHTINGS = ("none", "noise", "psf", "exptime", "quality")

#: Fewest samples above the sky that make a photometric scale (else 1).
_MIN_BRIGHT = 20
#: Fewest stars (groups) that make a photometric scale from star fluxes (else 1).
_MIN_GROUPS = 3


def frame_statistics(
    samples, *, reference=0, bright_sigma=10.0, groups=None, variances=None, location=None, noise=None
):
    """
    Sky location, sky noise and photometric scale of each frame's samples.

    The scale of a frame is the slope of its sky-subtracted samples against the
    median over the frames of the sky-subtracted samples, on the pixels where that
    median is brighter than the sky by ``bright_sigma`` noise sigma (a trail or a
    cosmic ray in one frame, even the reference, is not in the median), fitted by
    least squares through the origin after the outlying ratios are clipped; the
    scales are then divided by the reference's. With ``groups`` (a label per sample:
    the pixels of one star, 0 for none) the fit is made on each group's summed
    values instead: the star fluxes, so a frame with worse seeing (lower peaks, the
    same flux) gets the same scale.

    Parameters
    ----------
    samples : ndarray (``n_frames, n_samples``)
        Values of the frames at the same output pixels (NaN: not covered).
    reference : int
        The frame whose scale is 1.
    bright_sigma : float
        Pixels brighter than the sky by this many noise sigma give the scales.
    groups : ndarray of int (``n_samples``), optional
        Star labels of the samples (0: not a star), e.g. from `star_groups`.
    variances : ndarray (``n_frames, n_samples``), optional
        Variances of the samples: with ``groups``, each star's flux ratio is weighted by
        its inverse variance and the ratios beyond 4 sigma (a cosmic ray on a star) are
        dropped (else a least-squares fit with 5 MAD-sigma clipping).
    location, noise : ndarray (``n_frames``), optional
        The sky location and noise of these samples when already known (from an earlier
        call on the same samples): they are not measured again.

    Returns
    -------
    location, noise, scale : ndarray (``n_frames``)

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> star = np.where(rng.random(5000) < 0.1, 500.0, 0.0)
    >>> a = 100 + star + rng.normal(0, 5, 5000)
    >>> b = 40 + 0.8 * star + rng.normal(0, 5, 5000)
    >>> loc, noise, scale = frame_statistics(np.stack([a, b]))
    >>> np.round(loc).tolist(), np.round(scale, 2).tolist()
    ([100.0, 40.0], [1.0, 0.8])
    """
    samples = np.asarray(samples, dtype=np.float64)
    n = samples.shape[0]
    if location is None or noise is None:
        location, noise = _sky_statistics(samples)
    location, noise = np.asarray(location, dtype=np.float64), np.asarray(noise, dtype=np.float64)
    above = samples - location[:, None]
    if groups is not None:
        return location, noise, _group_scales(above, groups, reference, variances)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pixels no frame covers
        profile = np.nanmedian(above, axis=0)
    with np.errstate(invalid="ignore"):
        bright = profile > bright_sigma * np.nanmedian(noise)
    scale = np.ones(n)
    for i in range(n):
        pick = bright & np.isfinite(above[i])
        if np.count_nonzero(pick) >= _MIN_BRIGHT:
            scale[i] = _slope(above[i, pick], profile[pick])
    if np.isfinite(scale[reference]) and scale[reference] > 0:
        scale = scale / scale[reference]
    return location, noise, scale


def _sky_statistics(samples):
    """Sigma-clipped median and MAD standard deviation of each frame's finite samples."""
    from astropy.utils.exceptions import AstropyUserWarning

    samples = np.asarray(samples, dtype=np.float64)
    finite = np.isfinite(samples)
    location = np.full(samples.shape[0], np.nan)
    noise = np.full(samples.shape[0], np.nan)
    rows = finite.any(axis=1)
    if rows.any():
        # all frames in one call: astropy's compiled clipping along an axis (the NaN of pixels a
        # frame does not cover are left out, as before), same values as frame by frame, 3x faster
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyUserWarning)  # "invalid values ... clipped": the NaN
            _, location[rows], noise[rows] = sigma_clipped_stats(
                samples[rows], axis=1, sigma=3.0, maxiters=10, stdfunc="mad_std"
            )
    return location, noise


def _group_scales(above, groups, reference, variances=None):
    """Scales from the summed values of each star group, over the groups every frame covers whole."""
    groups = np.asarray(groups, dtype=np.intp)
    n_groups = int(groups.max(initial=0)) + 1

    def per_group(rows):
        return np.stack(
            [np.bincount(groups, weights=np.nan_to_num(r, nan=0.0), minlength=n_groups) for r in rows]
        )

    sums = per_group(above)
    size = np.bincount(groups, minlength=n_groups)
    covered = per_group(np.isfinite(above).astype(np.float64))
    usable = np.all(covered == size, axis=0) & (size > 0)
    usable[0] = False
    profile = np.median(sums, axis=0)
    usable &= profile > 0
    scale = np.ones(above.shape[0])
    if np.count_nonzero(usable) < _MIN_GROUPS:
        return scale
    flux, profile = sums[:, usable], profile[usable]
    var = None if variances is None else per_group(np.asarray(variances, dtype=np.float64))[:, usable]
    for i in range(above.shape[0]):
        if var is None or not np.all(np.isfinite(var[i])):
            scale[i] = _slope(flux[i], profile, minimum=_MIN_GROUPS)
            continue
        # the median's variance: pi/2 times that of a mean over the frames
        profile_var = np.pi / 2 * np.mean(var, axis=0) / var.shape[0]
        scale[i] = _ratio_fit(flux[i], profile, var[i], profile_var)
    return scale / scale[reference]


def _ratio_fit(flux, profile, var, profile_var, clip=4.0):
    """Inverse-variance mean of the flux ratios, the ratios beyond ``clip`` of their errors dropped."""
    ratio = flux / profile
    keep = np.ones(ratio.shape, dtype=bool)
    s = float(np.median(ratio))
    for _ in range(10):
        error = np.sqrt(var + s * s * profile_var) / profile
        new_keep = np.abs(ratio - s) <= clip * error
        if np.count_nonzero(new_keep) < _MIN_GROUPS:
            break
        keep = new_keep
        w = 1.0 / error[keep] ** 2
        new = float(np.sum(w * ratio[keep]) / np.sum(w))
        if new == s:
            break
        s = new
    return s


def star_groups(profile, noise, *, bright_sigma=10.0, grow=4):
    """
    Label the stars of a 2-D band: pixels above ``bright_sigma * noise``, grown by ``grow`` pixels.

    Groups touching the band's edges are left out (0): their flux is cut.

    Parameters
    ----------
    profile : ndarray (2-D)
        Sky-subtracted values (e.g. the median over the frames).
    noise : float
    bright_sigma : float
    grow : int

    Returns
    -------
    ndarray of int
        Label per pixel, 0 outside the usable stars.
    """
    from scipy import ndimage

    with np.errstate(invalid="ignore"):
        bright = profile > bright_sigma * noise
    if grow:
        bright = ndimage.binary_dilation(bright, iterations=int(grow))
    labels, _ = ndimage.label(bright)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    labels[np.isin(labels, edge[edge > 0])] = 0
    return labels


def _slope(y, x, minimum=None):
    """Least-squares slope of ``y = s x`` after the ratios ``y / x`` beyond 5 MAD sigma are clipped."""
    ratio = y / x
    keep = ~sigma_clip(ratio, sigma=5.0, maxiters=10, stdfunc="mad_std").mask
    if np.count_nonzero(keep) < (_MIN_BRIGHT if minimum is None else minimum):
        keep = np.ones(ratio.shape, dtype=bool)
    return float(np.dot(x[keep], y[keep]) / np.dot(x[keep], x[keep]))


def normalization(location, scale, method, *, reference=0):
    """
    The ``factor`` and ``offset`` of each frame for a normalisation method.

    Parameters
    ----------
    location, scale : array-like (``n_frames``)
        From `frame_statistics`.
    method : str
        One of `NORMALIZATIONS`.
    reference : int

    Returns
    -------
    factor, offset : ndarray (``n_frames``)

    Examples
    --------
    >>> normalization([100.0, 40.0], [1.0, 0.8], "additive_scale")
    (array([1.  , 1.25]), array([ 0., 50.]))
    """
    location = np.asarray(location, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    if method not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {', '.join(NORMALIZATIONS)}, not {method!r}")
    ones = np.ones_like(location)
    ref = location[reference]
    if method == "none":
        return ones, np.zeros_like(location)
    if method == "additive":
        return ones, ref - location
    if method == "multiplicative":
        if np.any(location <= 0):
            raise ValueError("normalize='multiplicative' needs a positive sky level in every frame")
        return ref / location, np.zeros_like(location)
    if np.any(scale <= 0) or not np.all(np.isfinite(scale)):
        raise ValueError("normalize='additive_scale' found a frame without a positive photometric scale")
    factor = 1.0 / scale
    return factor, ref - location * factor


def frame_weights(weights, *, noise=None, factor=None, fwhm=None, exposure=None, quality=None, names=None):
    """
    Relative weights of the frames (the largest 1).

    Parameters
    ----------
    weights : str or sequence of float
        One of `WEIGHTINGS`, or one weight per frame.
    noise, factor, fwhm, exposure : array-like, optional
        Sky noise, normalisation factor, PSF FWHM (pixels) and exposure time
        of each frame, as the method needs.
    quality : `~astropy.table.Table`, optional
        The table of `~astrophot.analysis.select_frames` (``weights="quality"``).
    names : sequence of str, optional
        The frames' file names, matched against ``quality["file"]``.

    Returns
    -------
    weights : ndarray (``n_frames``)
        0 for a frame left out.
    reasons : list of str
        Why each frame was left out ("" when kept).

    Examples
    --------
    >>> w, _ = frame_weights("psf", noise=[1.0, 1.0], factor=[1.0, 1.0], fwhm=[2.0, 4.0])
    >>> w.tolist()
    [1.0, 0.25]
    """
    if not isinstance(weights, str):
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 1 or not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
            raise ValueError("explicit weights must be one non-negative number per frame, not all zero")
        reasons = ["weight 0" if v == 0 else "" for v in w]
        return w / w.max(), reasons
    if weights not in WEIGHTINGS:
        raise ValueError(f"weights must be one of {', '.join(WEIGHTINGS)} or a sequence, not {weights!r}")
    if weights == "quality":
        return _quality_weights(quality, names)
    if weights == "none":
        n = len(next(v for v in (noise, factor, fwhm, exposure, names) if v is not None))
        w = np.ones(n)
    elif weights == "exptime":
        w = np.asarray(exposure, dtype=np.float64)
    else:
        sigma = np.asarray(noise, dtype=np.float64) * np.asarray(factor, dtype=np.float64)
        w = 1.0 / sigma**2
        if weights == "psf":
            w = w / np.asarray(fwhm, dtype=np.float64) ** 2
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError(f"weights={weights!r} gave a weight that is not a positive number: {w.tolist()}")
    return w / w.max(), [""] * w.size


def _quality_weights(quality, names):
    if quality is None or names is None:
        raise ValueError(
            "weights='quality' needs the table of select_frames (quality=) and the frames' files"
        )
    by_file = {str(row["file"]): row for row in quality}
    by_name = {str(row["file"]).replace("\\", "/").rsplit("/", 1)[-1]: row for row in quality}
    w = np.zeros(len(names))
    reasons = []
    for i, name in enumerate(names):
        row = by_file.get(str(name)) or by_name.get(str(name).replace("\\", "/").rsplit("/", 1)[-1])
        if row is None:
            raise ValueError(f"{name}: not in the quality table of select_frames")
        if not row["accepted"]:
            reasons.append(f"rejected by select_frames: {row['reason']}")
            continue
        w[i] = float(row["weight"])
        reasons.append("" if w[i] > 0 else "weight 0 in the quality table")
    if not np.any(w > 0):
        raise ValueError(
            "select_frames rejected every frame: " + "; ".join(f"{n}: {r}" for n, r in zip(names, reasons))
        )
    return w / w.max(), reasons
