# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Normalisation and weights of the frames of a stack.

Both work on samples of the frames on the common grid: an ``(n_frames,
n_samples)`` array of the same output pixels (NaN where a frame does not
cover one), taken from the part that every frame covers (the common overlap).

For each frame, robust statistics of the samples give the sky level
(``location``: sigma-clipped median), the sky noise (``noise``: MAD standard
deviation after clipping) and, from the pixels well above the sky in the
reference frame, the photometric ``scale`` of the frame relative to the
reference (median ratio of the sky-subtracted values: 0.8 for a frame
through 20 % more extinction). A frame's values are normalised as
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

import numpy as np
from astropy.stats import sigma_clipped_stats

__all__ = ["NORMALIZATIONS", "WEIGHTINGS", "frame_statistics", "normalization", "frame_weights"]

NORMALIZATIONS = ("none", "additive", "multiplicative", "additive_scale")
WEIGHTINGS = ("none", "noise", "psf", "exptime", "quality")

#: Fewest samples above the sky that make a photometric scale (else 1).
_MIN_BRIGHT = 20


def frame_statistics(samples, *, reference=0, bright_sigma=10.0):
    """
    Sky location, sky noise and photometric scale of each frame's samples.

    Parameters
    ----------
    samples : ndarray (``n_frames, n_samples``)
        Values of the frames at the same output pixels (NaN: not covered).
    reference : int
        The frame whose scale is 1.
    bright_sigma : float
        Pixels brighter than the reference's sky by this many noise sigma
        give the scales.

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
    location = np.full(n, np.nan)
    noise = np.full(n, np.nan)
    for i, row in enumerate(samples):
        row = row[np.isfinite(row)]
        if row.size:
            _, location[i], noise[i] = sigma_clipped_stats(row, sigma=3.0, maxiters=10, stdfunc="mad_std")
    ref = samples[reference] - location[reference]
    bright = ref > bright_sigma * noise[reference]
    scale = np.ones(n)
    for i in range(n):
        if i == reference:
            continue
        pick = bright & np.isfinite(samples[i])
        if np.count_nonzero(pick) >= _MIN_BRIGHT:
            scale[i] = float(np.median((samples[i, pick] - location[i]) / ref[pick]))
    return location, noise, scale


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
