# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Continuum subtraction: a narrow-band frame minus its scaled, PSF-matched broad-band frame."""

import logging
import warnings

import numpy as np
from astropy.nddata import StdDevUncertainty
from astropy.stats import sigma_clip, sigma_clipped_stats
from astropy.table import QTable
from astropy.utils.exceptions import AstropyWarning

from astrophot._concurrency import resolve_threads, thread_map
from astrophot.analysis._common import as_frame, frame_name
from astrophot.combination._psfmatch import convolve_frame, matching_kernel
from astrophot.combination._samegrid import same_grid_or_resample
from astrophot.exceptions import AnalysisError, AstrophotUserWarning, FrameMismatchError
from astrophot.frames import LineFrame
from astrophot.provenance._capture import start_step

__all__ = ["plot_continuum_diagnostics", "subtract_continuum"]

log = logging.getLogger(__name__)

_SCALES = ("stars", "noise", "bandwidth")


def _bad(obj):
    bad = ~np.isfinite(np.asarray(obj.data, dtype=float))
    if obj.mask is not None:
        bad |= np.asarray(obj.mask, dtype=bool)
    if getattr(obj, "flags", None) is not None:
        bad |= obj.mask_from_flags()
    return bad


def _variance(obj):
    if obj.uncertainty is None:
        return None
    unc = obj.uncertainty
    if not isinstance(unc, StdDevUncertainty):
        unc = unc.represent_as(StdDevUncertainty)
    return np.square(unc.array, dtype=float)


#: Most pixels the sky level and RMS are measured on (evenly spaced good pixels).
_SKY_SAMPLES = 1_000_000


def _sky(data, bad):
    """Sky level and RMS: sigma-clipped median of the good pixels (every n-th of them, about a million)."""
    flat_bad = bad.reshape(-1)
    n_good = flat_bad.size - int(np.count_nonzero(flat_bad))
    if n_good == 0:
        raise AnalysisError("no valid pixel")
    step = max(1, n_good // _SKY_SAMPLES)
    flat = data.reshape(-1)
    values = flat[::step] if n_good == flat.size else flat[~flat_bad][::step]
    # along an axis: astropy's compiled clipping (1.7x faster on a full frame; float64 sums)
    _, median, std = sigma_clipped_stats(values[None, :], sigma=3.0, maxiters=10, axis=1)
    return float(median[0]), float(std[0])


def _find_stars(obj, name):
    """The frame's stars; a large bright nebula can overflow the deblender, then only brighter stars (10 sigma)."""
    from astrophot.analysis import find_stars

    try:
        return find_stars(obj)
    except AnalysisError as exc:
        if "deblending overflow" not in str(exc):
            raise
        log.info("%s: deblending overflowed (an extended nebula?): stars found above 10 sigma instead", name)
        return find_stars(obj, n_sigma=10.0)


#: Side of the windows the stars of a large frame are found in (pixels).
_WINDOW_SIDE = 1024


def _star_windows(shape):
    """
    Where the stars are looked for: the whole frame, or, on frames of more than
    2 x 2 windows, the four windows of ``_WINDOW_SIDE`` centred on the quarter points
    (about 40 % of a 4008 x 2672 frame, spread over the field as the PSF and the
    scale need; finding stars is most of the time of a full-frame subtraction).
    """
    ny, nx = shape
    if min(ny, nx) < 2 * _WINDOW_SIDE:
        return [(slice(0, ny), slice(0, nx))]
    half = _WINDOW_SIDE // 2
    ys = [slice(int(c) - half, int(c) - half + _WINDOW_SIDE) for c in (ny / 4, 3 * ny / 4)]
    xs = [slice(int(c) - half, int(c) - half + _WINDOW_SIDE) for c in (nx / 4, 3 * nx / 4)]
    return [(y, x) for y in ys for x in xs]


def _window_stars(obj, name, window):
    """The stars of one window of ``obj``, their positions in the whole frame's pixels."""
    ys, xs = window
    whole = (ys.start, xs.start) == (0, 0) and (ys.stop, xs.stop) == obj.data.shape
    stars = _find_stars(obj if whole else obj[ys, xs], name)
    for column, offset in (("x", xs.start), ("y", ys.start)):
        unit = getattr(stars[column], "unit", None)
        stars[column] = stars[column] + (offset * unit if unit is not None else offset)
    return stars


def _combined(tables, windows):
    """The windows' star tables as one, with each star's window and the windows' median PSF in the meta."""
    from astropy.table import vstack

    if len(tables) == 1:
        stars = tables[0]
    else:
        stars = vstack(tables, metadata_conflicts="silent")
        for key in ("fwhm", "beta"):
            values = [t.meta.get(key) for t in tables if t.meta.get(key) is not None]
            if values:
                stars.meta[key] = float(np.median(values))
        stars["id"] = np.arange(1, len(stars) + 1)
    stars.meta["windows"] = [(w[0].start, w[0].stop, w[1].start, w[1].stop) for w in windows]
    stars["window"] = np.repeat(np.arange(len(tables)), [len(t) for t in tables])
    return stars


def _psf_shape(obj, name, stars):
    from astrophot.analysis import measure_psf

    try:
        psf = measure_psf(obj, stars=stars)
    except AnalysisError as exc:
        raise AnalysisError(f"{name}: cannot measure the PSF for continuum subtraction ({exc})") from exc
    return {"fwhm": psf.fwhm, "beta": psf.beta, "ellipticity": psf.ellipticity, "theta": psf.theta}


def _psfs(frames, names, n_threads):
    """Each frame's stars (found in `_star_windows`, all windows of both frames on the threads) and PSF."""
    windows = _star_windows(frames[0].data.shape)
    tasks = [(obj, name, w) for obj, name in zip(frames, names) for w in windows]

    def find(task):
        obj, name, window = task
        try:
            return _window_stars(obj, name, window)
        except AnalysisError as exc:
            raise AnalysisError(f"{name}: cannot measure the PSF for continuum subtraction ({exc})") from exc

    found = thread_map(find, tasks, n_threads=n_threads)
    out = []
    for index, (obj, name) in enumerate(zip(frames, names)):
        stars = _combined(found[index * len(windows) : (index + 1) * len(windows)], windows)
        out.append((stars, _psf_shape(obj, name, stars)))
    return out


def _match(frames, psfs, names, n_threads):
    """Convolve the sharper frame to the broader PSF; returns (data arrays, variances, record)."""
    (n, b), (pn, pb) = frames, psfs
    record = {"fwhm_narrow": pn["fwhm"], "fwhm_broad": pb["fwhm"], "convolved": None}
    if abs(pn["fwhm"] - pb["fwhm"]) < 0.02 * max(pn["fwhm"], pb["fwhm"]):
        return [n, b], record
    sharp, target = (0, 1) if pn["fwhm"] < pb["fwhm"] else (1, 0)
    kernel = matching_kernel(psfs[sharp], psfs[target])
    data, var, bad = frames[sharp]
    conv, conv_var = convolve_frame(data, var, bad, kernel, n_threads=n_threads)
    out = [n, b]
    out[sharp] = (conv, conv_var, bad | ~np.isfinite(conv))
    record.update(convolved=names[sharp], kernel_size=int(kernel.shape[0]), fwhm_matched=psfs[target]["fwhm"])
    return out, record


def _circle_sums(image, positions, radius):
    """Sums of ``image`` over circles (exact pixel overlap: sep's ``subpix=0``, photutils' ``method='exact'``)."""
    import sep

    image = np.ascontiguousarray(image, dtype=np.float64)
    x = np.ascontiguousarray(positions[:, 0], dtype=np.float64)
    y = np.ascontiguousarray(positions[:, 1], dtype=np.float64)
    if x.size == 0:
        return np.zeros(0)
    total, _, _ = sep.sum_circle(image, x, y, float(radius), subpix=0)
    return np.asarray(total, dtype=float)


def _annulus_medians(data, bad, positions, r_in, r_out, *, sigma=3.0, maxiters=5):
    """
    The sigma-clipped median of each annulus's good pixels, as photutils' ``ApertureStats``
    (pixels whose centre lies in the annulus, non-finite and masked ones left out), for
    all stars in one array: a box of pixels around each, clipped along an axis.
    """
    n = len(positions)
    if n == 0:
        return np.zeros(0)
    half = int(np.ceil(r_out)) + 1
    offsets = np.arange(-half, half + 1)
    cx = np.rint(positions[:, 0]).astype(int)
    cy = np.rint(positions[:, 1]).astype(int)
    ny, nx = data.shape
    ix = cx[:, None] + offsets[None, :]  # (n, m)
    iy = cy[:, None] + offsets[None, :]
    dx2 = (ix - positions[:, 0:1]) ** 2
    dy2 = (iy - positions[:, 1:2]) ** 2
    d2 = dy2[:, :, None] + dx2[:, None, :]  # (n, m, m)
    inside = (d2 >= r_in**2) & (d2 < r_out**2)
    inside &= ((iy >= 0) & (iy < ny))[:, :, None] & ((ix >= 0) & (ix < nx))[:, None, :]
    rows = np.clip(iy, 0, ny - 1)[:, :, None]
    cols = np.clip(ix, 0, nx - 1)[:, None, :]
    values = data[rows, cols].astype(float)
    inside &= ~bad[rows, cols] & np.isfinite(values)
    values[~inside] = np.nan
    values = values.reshape(n, -1)
    with warnings.catch_warnings():
        # the NaNs are the pixels left out; a star with no good annulus pixel gets NaN
        warnings.simplefilter("ignore", AstropyWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        clipped = sigma_clip(values, sigma=sigma, maxiters=maxiters, axis=1, masked=False)
        return np.nanmedian(clipped, axis=1)


def _photometry(data, var, bad, positions, fwhm):
    radius = 2.0 * fwhm
    filled = np.where(bad, 0.0, data)
    local = _annulus_medians(data, bad, positions, 3.0 * fwhm, 5.0 * fwhm)
    area = _circle_sums((~bad).astype(np.float64), positions, radius)
    flux = _circle_sums(filled, positions, radius) - local * area
    if var is not None:
        err = np.sqrt(_circle_sums(np.where(bad, 0, var), positions, radius))
    else:
        err = np.sqrt(np.clip(flux, 1, None))
    return flux, err, area, local


def _isolated(x, y, distance):
    """Stars whose nearest neighbour is farther than ``distance``."""
    if x.size <= 1:
        return np.ones(x.size, bool)
    from scipy.spatial import cKDTree

    points = np.column_stack([x, y])
    nearest, _ = cKDTree(points).query(points, k=2)
    return nearest[:, 1] > distance


def _candidate_stars(stars, shape, fwhm):
    from astrophot.analysis import StarFlag

    x = np.asarray(getattr(stars["x"], "value", stars["x"]), float)
    y = np.asarray(getattr(stars["y"], "value", stars["y"]), float)
    flags = np.asarray(stars["flags"], int)
    snr = np.asarray(stars["snr"], float)
    edge = 5.0 * fwhm + 1
    # away from the edges of the window each star was found in (its neighbours all found)
    windows = np.array(stars.meta.get("windows") or [(0, shape[0], 0, shape[1])], float)
    y0, y1, x0, x1 = windows[np.asarray(stars["window"], int) if "window" in stars.colnames else 0].T
    inside = (x > x0 + edge) & (y > y0 + edge) & (x < x1 - 1 - edge) & (y < y1 - 1 - edge)
    bad_bits = int(StarFlag.SATURATED | StarFlag.NEAR_MASKED | StarFlag.BLENDED)
    keep = inside & ((flags & bad_bits) == 0) & (snr > 10) & _isolated(x, y, 4.0 * fwhm)
    return x[keep], y[keep]


def _robust_ratio(ratio, err):
    """Clipped weighted mean of per-star scales: (k, k_err, scatter, used mask)."""
    clipped = sigma_clip(ratio, sigma=3.0, maxiters=10, stdfunc="mad_std")
    used = ~np.ma.getmaskarray(clipped) & np.isfinite(ratio) & (err > 0)
    w = 1.0 / err[used] ** 2
    k = float(np.sum(w * ratio[used]) / np.sum(w))
    chi2 = float(np.sum(w * (ratio[used] - k) ** 2) / max(used.sum() - 1, 1))
    k_err = float(np.sqrt(max(chi2, 1.0) / np.sum(w)))
    scatter = float(np.nanstd(ratio[used], ddof=1)) if used.sum() > 1 else float("nan")
    return k, k_err, scatter, used


def _scale_from_stars(matched, positions, fwhm, min_stars):
    """k from matched-aperture photometry of the same stars in both frames."""
    (dn, vn, bn), (db, vb, bb) = matched
    fn, en, area, _ = _photometry(dn, vn, bn, positions, fwhm)
    fb, eb, _, _ = _photometry(db, vb, bb, positions, fwhm)
    good = (fb > 0) & np.isfinite(fn) & np.isfinite(fb) & (fb / eb > 20)
    table = QTable()
    table["x"], table["y"] = positions[:, 0], positions[:, 1]
    table["flux_narrow"], table["flux_broad"] = fn, fb
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = fn / fb
        ratio_err = np.abs(ratio) * np.sqrt((en / fn) ** 2 + (eb / fb) ** 2)
        table["mag_broad"] = -2.5 * np.log10(fb)
    table["k"], table["k_err"] = ratio, ratio_err
    table["used"] = np.zeros(len(table), bool)
    if good.sum() < min_stars:
        return None, table
    k, k_err, scatter, used = _robust_ratio(ratio[good], ratio_err[good])
    table["used"][np.flatnonzero(good)[used]] = True
    result = {"k": k, "k_err": k_err, "scatter": scatter, "n_stars": int(used.sum()), "method": "stars"}
    return result, table


def _scale_from_noise(matched):
    """k minimising the residual of narrow - k broad over the bright (star) pixels of the broad frame."""
    (dn, _, bn), (db, _, bb) = matched
    good = ~(bn | bb) & np.isfinite(dn) & np.isfinite(db)
    _, sky_rms = _sky(db, ~good)
    bright = good & (db > 5.0 * sky_rms)
    if bright.sum() < 50:
        return None
    n, b = dn[bright], db[bright]
    k = float(np.sum(n * b) / np.sum(b * b))
    for _ in range(5):
        res = n - k * b
        keep = np.abs(res - np.median(res)) < 3.0 * 1.4826 * np.median(np.abs(res - np.median(res)))
        k = float(np.sum(n[keep] * b[keep]) / np.sum(b[keep] ** 2))
    k_err = float(np.std(n[keep] - k * b[keep]) / np.sqrt(np.sum(b[keep] ** 2)))
    return {"k": k, "k_err": k_err, "scatter": float("nan"), "n_stars": 0, "method": "noise"}


def _scale_from_bandwidth(narrow, broad, line_fraction):
    from astrophot.instruments.itelescope import UnknownFilterError, bandwidth_ratio, get_filter

    if line_fraction is not None:
        return {
            "k": float(line_fraction),
            "k_err": float("nan"),
            "method": "bandwidth",
            "source": "line_fraction",
        }
    try:
        k = bandwidth_ratio(narrow.filter, broad.filter)
    except UnknownFilterError as exc:
        raise AnalysisError(
            f"{frame_name(narrow)}, {frame_name(broad)}: too few stars for the continuum scale and no "
            f"bandwidth ratio ({exc}); give scale= a number or line_fraction="
        ) from None
    source = f"filter table: {get_filter(narrow.filter).source}"
    return {"k": k, "k_err": float("nan"), "method": "bandwidth", "source": source}


def _measure_scale(scale, matched, frames, positions, fwhm, *, line_fraction, min_stars):
    """The continuum scale with the fallbacks tried, in order; returns (record, star table)."""
    narrow, broad = frames
    if not isinstance(scale, str):
        return {"k": float(scale), "k_err": 0.0, "method": "given", "fallbacks": []}, None
    if scale not in _SCALES:
        raise ValueError(f"scale={scale!r}: expected one of {_SCALES} or a number")
    order = list(_SCALES[_SCALES.index(scale) :])
    tried, table = [], None
    for method in order:
        if method == "stars":
            result, table = _scale_from_stars(matched, positions, fwhm, min_stars)
            if result is None:
                n_good = int(np.sum(np.isfinite(table["k"]))) if table is not None else 0
                tried.append(f"stars: {n_good} usable stars, fewer than min_stars={min_stars}")
        elif method == "noise":
            result = _scale_from_noise(matched)
            if result is None:
                tried.append("noise: fewer than 50 bright pixels in the broad frame")
        else:
            result = _scale_from_bandwidth(narrow, broad, line_fraction)
        if result is not None:
            if tried:
                warnings.warn(
                    f"{frame_name(narrow)}: continuum scale from {method} ({'; '.join(tried)})",
                    AstrophotUserWarning,
                    stacklevel=4,
                )
            result["fallbacks"] = tried
            return result, table
    raise AnalysisError(f"{frame_name(narrow)}: no continuum scale could be measured")  # pragma: no cover


def _star_residuals(table, line, line_var, bad, fwhm, k, norm):
    """Fraction of each star's narrow-band flux left in the line image (absolute residual, noise removed)."""
    positions = np.column_stack([np.asarray(table["x"], float), np.asarray(table["y"], float)])
    radius = 2.0 * fwhm
    good = line[~bad]  # finite: bad holds the non-finite pixels
    local = float(np.median(good)) if good.size else 0.0
    absolute = np.abs(np.where(bad, 0.0, line - local))
    total = _circle_sums(absolute, positions, radius)
    if line_var is not None:
        noise = np.sqrt(2.0 / np.pi) * np.sqrt(np.where(bad, 0.0, line_var))
        total -= _circle_sums(noise, positions, radius)
    with np.errstate(divide="ignore", invalid="ignore"):
        return total * norm / (k * np.asarray(table["flux_broad"], float))


def _check_inputs(narrow, broad):
    n = as_frame(narrow, purpose="subtract_continuum")
    b = as_frame(broad, purpose="subtract_continuum")
    if n.unit != b.unit:
        raise FrameMismatchError(
            f"{frame_name(n)} ({n.unit}) and {frame_name(b)} ({b.unit}): the frames must share a unit"
        )
    tn, tb = n.target, b.target
    if tn and tb and tn.strip().lower() != tb.strip().lower():
        raise FrameMismatchError(
            f"{frame_name(n)} (target {tn!r}) and {frame_name(b)} (target {tb!r}): different targets"
        )
    for obj in (n, b):
        if not np.any(np.isfinite(np.asarray(obj.data, dtype=float))):
            raise AnalysisError(f"{frame_name(obj)}: no finite pixel")
    return n, b


def _prepare(n, b):
    """(data, variance, bad) of each frame, sky-subtracted; and the sky levels."""
    prepared, skies = [], []
    for obj in (n, b):
        data = np.asarray(obj.data, dtype=float)
        bad = _bad(obj)
        sky, rms = _sky(data, bad)
        prepared.append((data - sky, _variance(obj), bad))
        skies.append({"level": sky, "rms": rms})
    return prepared, skies


def _warn_range(k, name, record):
    if not 0.0 < k < 1.0:
        warnings.warn(
            f"{name}: continuum scale k = {k:.4g} +/- {record.get('k_err', float('nan')):.2g} "
            f"({record['method']}) is outside (0, 1); check the filters and the frames",
            AstrophotUserWarning,
            stacklevel=3,
        )


def subtract_continuum(
    narrow,
    broad,
    *,
    scale="stars",
    psf_match=True,
    line_fraction=None,
    eps=1.0,
    min_stars=5,
    resample=True,
    parallel=None,
):
    """
    Remove the stellar and nebular continuum from a narrow-band frame.

    The line image is ``(N - k B) / (1 - k eps)`` (Gil de Paz et al. 2003,
    ApJS 147, 29, appendix A), with ``N`` and ``B`` the sky-subtracted,
    PSF-matched narrow- and broad-band frames, ``k`` the continuum scale and
    ``eps`` the broad filter's throughput at the line relative to the narrow
    filter's (the line light the broad frame also holds).

    Parameters
    ----------
    narrow : `~astrophot.CalibratedFrame`, `~astrophot.SolvedFrame`, a combination product or `~astropy.nddata.CCDData`
        The narrow-band (line) frame; its grid is the output grid.
    broad : same types
        The broad-band frame of the same target, in the same unit.
    scale : {'stars', 'noise', 'bandwidth'} or float, optional
        How ``k`` is found. ``'stars'``: matched-aperture photometry (local
        background annuli) of isolated, unsaturated stars in both frames,
        a clipped weighted mean with its uncertainty; when fewer than
        ``min_stars`` stars are usable it falls back to ``'noise'`` (the
        least-squares scale over the broad frame's bright pixels), then to
        ``'bandwidth'`` (the filters' width ratio from
        `astrophot.instruments.itelescope.FILTERS`, or ``line_fraction``).
        Each fallback is warned about and recorded. A number is used as is.
    psf_match : bool, optional
        Convolve the sharper frame to the broader one's PSF first (a kernel
        from the two frames' Moffat fits by `~astrophot.measure_psf`); the
        uncertainty is propagated through the convolution.
    line_fraction : float, optional
        The narrow filter's width over the broad filter's, for the
        ``'bandwidth'`` scale (default: from the filter table).
    eps : float, optional
        Broad-band line counts over narrow-band line counts (1 when both
        filters pass the line equally in the frames' units); 0 skips the
        correction.
    min_stars : int, optional
        Fewest stars for the ``'stars'`` scale.
    resample : bool, optional
        Frames on different grids are resampled onto the narrow frame's grid
        (with ``resample_frame``); False refuses them.
    parallel : None, bool or int, optional
        Threads (see `astrophot._concurrency`): the two frames' PSFs are
        measured concurrently.

    Returns
    -------
    `~astrophot.frames.LineFrame`
        The line image (narrow frame's unit, grid and WCS) with uncertainty,
        flags (union of both frames'), ``continuum`` (``k``, ``k_err``,
        ``n_stars``, ``scatter``, ``method``, fallbacks, sky levels, PSFs)
        and ``stars`` (per-star ``k`` and ``residual``).

    Raises
    ------
    astrophot.exceptions.FrameMismatchError
        Different units, targets or shapes, or grids that do not overlap.
    astrophot.exceptions.AnalysisError
        A frame with no finite pixel or whose PSF cannot be measured, or no
        scale at all.

    Warns
    -----
    astrophot.exceptions.AstrophotUserWarning
        A fallback scale was used, or ``k`` is outside (0, 1).

    See Also
    --------
    astrophot.stack_frames : Makes the frames this is meant for.
    make_color_composite : HaRGB composites take the line image.
    plot_continuum_diagnostics : The report's figures.

    Examples
    --------
    >>> from astrophot import subtract_continuum
    >>> from astrophot.datasets import make_continuum_pair
    >>> narrow, broad, truth = make_continuum_pair(seed=1)
    >>> line = subtract_continuum(narrow, broad)
    >>> abs(line.scale / truth.k - 1) < 0.01
    True
    """
    n, b = _check_inputs(narrow, broad)
    b = same_grid_or_resample(n, b, resample=resample, purpose="subtract_continuum", parallel=parallel)
    names = (frame_name(n), frame_name(b))
    record = start_step(
        "subtract_continuum",
        parameters={
            "scale": scale,
            "psf_match": psf_match,
            "line_fraction": line_fraction,
            "eps": eps,
            "min_stars": min_stars,
        },
        inputs={"narrow": n, "broad": b},
        software=("photutils", "scipy"),
    )
    prepared, skies = _prepare(n, b)
    found = _psfs((n, b), names, resolve_threads(parallel))
    psfs = [found[0][1], found[1][1]]
    if psf_match:
        matched, psf_record = _match(prepared, psfs, names, resolve_threads(parallel))
    else:
        matched, psf_record = (
            prepared,
            {"fwhm_narrow": psfs[0]["fwhm"], "fwhm_broad": psfs[1]["fwhm"], "convolved": None},
        )
    fwhm = max(psfs[0]["fwhm"], psfs[1]["fwhm"])
    x, y = _candidate_stars(found[1][0], n.data.shape, fwhm)
    positions = np.column_stack([x, y])
    scale_record, table = _measure_scale(
        scale, matched, (n, b), positions, fwhm, line_fraction=line_fraction, min_stars=min_stars
    )
    k = scale_record["k"]
    _warn_range(k, names[0], scale_record)
    norm = 1.0 - k * float(eps)
    if not norm > 0:
        raise ValueError(f"{names[0]}: 1 - k*eps = {norm:.3g} (k = {k:.4g}, eps = {eps}) must be positive")
    (dn, vn, bn), (db, vb, bb) = matched
    line = (dn - k * db) / norm
    var = None if vn is None or vb is None else (vn + k**2 * vb) / norm**2
    bad = bn | bb | ~np.isfinite(line)
    if table is not None:
        table["residual"] = _star_residuals(table, line, var, bad, fwhm, k, norm)
    frame = _line_frame(n, b, line, var, bad)
    frame.continuum = {
        **scale_record,
        "eps": float(eps),
        "norm": norm,
        "sky_narrow": skies[0],
        "sky_broad": skies[1],
        "psf_narrow": psfs[0],
        "psf_broad": psfs[1],
        **psf_record,
    }
    frame.stars = table
    log.info(
        "%s: continuum scale k = %.5g +/- %.2g (%s)",
        names[0],
        k,
        scale_record.get("k_err", np.nan),
        scale_record["method"],
    )
    return record.finish(frame, primary=n if hasattr(n, "provenance") else None, outcome=_outcome(frame))


def _outcome(frame):
    c = frame.continuum
    out = {key: c.get(key) for key in ("k", "k_err", "n_stars", "scatter", "method", "fallbacks", "eps")}
    out["convolved"] = c.get("convolved")
    return out


def _line_frame(n, b, line, var, bad):
    flags = None
    fn, fb = getattr(n, "flags", None), getattr(b, "flags", None)
    if fn is not None or fb is not None:
        flags = (fn if fn is not None else 0) | (fb if fb is not None else 0)
        flags = np.broadcast_to(np.asarray(flags, np.uint32), line.shape).copy()
    meta = n.meta.copy() if n.meta is not None else {}
    meta["FILTER"] = f"{n.filter or 'narrow'}-cont"
    frame = LineFrame(
        np.where(bad, np.nan, line).astype(np.float32),
        uncertainty=None if var is None else StdDevUncertainty(np.sqrt(var).astype(np.float32)),
        mask=bad,
        flags=flags,
        wcs=n.wcs,
        meta=meta,
        unit=n.unit,
    )
    return frame


def plot_continuum_diagnostics(line, *, figure=None):
    """
    The report's figures for a `subtract_continuum` result.

    ``k`` per star against broad-band magnitude, and the star residuals.

    Parameters
    ----------
    line : `~astrophot.frames.LineFrame`
        What `subtract_continuum` returned, with its star measurements.
    figure : `matplotlib.figure.Figure`, optional
        The figure drawn in (two axes added); default a new 9 x 3.6 inch figure.

    Returns
    -------
    `matplotlib.figure.Figure`
        The figure: ``k`` per star (used and rejected) with the fitted scale,
        and the star flux left in the line image (per cent).

    Raises
    ------
    astrophot.exceptions.AnalysisError
        When ``line`` has no star measurements.

    Examples
    --------
    >>> from astrophot import subtract_continuum
    >>> from astrophot.combination import plot_continuum_diagnostics
    >>> from astrophot.datasets import make_continuum_pair
    >>> narrow, broad, _ = make_continuum_pair(seed=1)
    >>> fig = plot_continuum_diagnostics(subtract_continuum(narrow, broad))
    >>> len(fig.axes)
    2
    """
    from matplotlib.figure import Figure

    if line.stars is None or len(line.stars) == 0:
        raise AnalysisError(
            f"{frame_name(line)}: no star measurements to plot (scale={line.continuum.get('method')})"
        )
    fig = figure or Figure(figsize=(9, 3.6), layout="constrained")
    ax_k, ax_r = fig.subplots(1, 2)
    t = line.stars
    used = np.asarray(t["used"], bool)
    mag = np.asarray(t["mag_broad"], float)
    k = np.asarray(t["k"], float)
    ax_k.errorbar(mag[used], k[used], yerr=np.asarray(t["k_err"])[used], fmt="o", ms=3, label="used")
    ax_k.plot(mag[~used], k[~used], "x", color="0.5", label="rejected")
    ax_k.axhline(line.scale, color="C3", label=f"k = {line.scale:.4f} +/- {line.continuum['k_err']:.1g}")
    ax_k.set(xlabel="broad-band instrumental magnitude", ylabel="k (narrow / broad)")
    ax_k.legend(fontsize="small")
    if "residual" in t.colnames:
        ax_r.plot(mag, 100 * np.asarray(t["residual"], float), "o", ms=3)
    ax_r.axhline(0, color="0.5", lw=0.5)
    ax_r.set(xlabel="broad-band instrumental magnitude", ylabel="star flux left in the line image (%)")
    return fig
