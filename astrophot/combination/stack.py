# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""`stack_frames`: solved frames of one target and filter to one deep `~astrophot.StackedFrame`."""

import logging
import time
import warnings

import astropy.units as u
import numpy as np
from astropy.nddata import StdDevUncertainty

from astrophot.combination import _combine
from astrophot.combination._grid import find_optimal_wcs, parse_target
from astrophot.combination._normalize import (
    NORMALIZATIONS,
    frame_statistics,
    frame_weights,
    normalization,
    star_groups,
)
from astrophot.combination._reject import REJECTIONS, combine_stack
from astrophot.combination.resample import _clean_header
from astrophot.exceptions import AstrophotUserWarning, CombinationError, FrameMismatchError
from astrophot.frames import StackedFrame
from astrophot.frames._input import as_frame
from astrophot.provenance import start_step

__all__ = ["stack_frames"]

log = logging.getLogger("astrophot.combination")

#: Fewest pixels covered by every frame for the statistics to use the common overlap only.
_MIN_COMMON = 2000


def _key(value):
    return None if value is None else "".join(str(value).split()).lower()


def _attribute(frame, name):
    try:
        return getattr(frame, name)
    except Exception:  # a missing keyword: not a mismatch
        return None


def _check_group(frames, names):
    """Refuse frames of different filters or targets (naming the files)."""
    for attribute, what in (("filter", "filters"), ("target", "targets")):
        groups = {}
        for frame, name in zip(frames, names):
            value = _attribute(frame, attribute)
            groups.setdefault(_key(value), (value, []))[1].append(name)
        known = {k: v for k, v in groups.items() if k is not None}
        if len(known) > 1:
            listing = "; ".join(f"{value}: {', '.join(files)}" for value, files in known.values())
            raise FrameMismatchError(
                f"stack_frames combines frames of one target and filter; these have different {what} "
                f"({listing}). Stack each group separately (astrophot stack --by-filter)"
            )


def _quality_selection(frames, names, quality):
    """The frames select_frames accepted, and the reasons of those it left out."""
    if quality is None:
        return list(range(len(frames))), {}
    _, reasons = frame_weights("quality", quality=quality, names=names)
    kept = [i for i, reason in enumerate(reasons) if not reason]
    return kept, {names[i]: reasons[i] for i, reason in enumerate(reasons) if reason}


def _grid(frames, wcs, shape):
    if wcs is None:
        return parse_target(frames[0], shape)
    if isinstance(wcs, str) and wcs == "optimal":
        return find_optimal_wcs(frames)
    return parse_target(wcs, shape)


def _check_options(rejection, normalize, frames):
    if rejection not in REJECTIONS:
        raise ValueError(f"rejection must be one of {', '.join(REJECTIONS)}, not {rejection!r}")
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {', '.join(NORMALIZATIONS)}, not {normalize!r}")
    if isinstance(frames, (str, bytes)) or not hasattr(frames, "__len__"):
        raise TypeError("stack_frames needs a sequence of solved frames")
    if len(frames) == 0:
        raise CombinationError("stack_frames: no frames to stack")


def _star_labels(values, location, noise, bands):
    """Star groups (labels) of the sample bands, from the median over the frames."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        profile = np.nanmedian(values - location[:, None, None], axis=0)
    labels = np.zeros(profile.shape, dtype=np.intp)
    start = 0
    for rows in bands:
        height = rows.stop - rows.start
        band = star_groups(profile[start : start + height], float(np.nanmedian(noise)))
        labels[start : start + height] = np.where(band > 0, band + labels.max(), 0)
        start += height
    return labels.reshape(-1)


def _statistics(inputs, wcs, shape, options, reference, rejection=None):
    """
    Sky location, sky noise and photometric scale of each frame on the common overlap.

    The scales come from star fluxes (`frame_statistics` with groups); with ``rejection``
    (the stack's rule and limits) the samples normalised by the estimate are rejected as the
    stack will reject them, the rejected values (a trail, a cosmic ray) are replaced by the
    combination brought back to the frame's level, and the scales estimated again (twice).
    """
    values, variances, bands = _combine.sample_rates(inputs, wcs, shape, **options)
    n = len(inputs)
    flat = values.reshape(n, -1)
    common = np.all(np.isfinite(flat), axis=0)
    if np.count_nonzero(common) < _MIN_COMMON:
        common = np.any(np.isfinite(flat), axis=0)
    flat, var = flat[:, common], variances.reshape(n, -1)[:, common]
    location, noise, _ = frame_statistics(flat, reference=reference)
    groups = _star_labels(values, location, noise, bands)[common]
    _, _, scale = frame_statistics(
        flat, reference=reference, groups=groups, variances=var, location=location, noise=noise
    )
    for _ in range(2 if rejection is not None and n > 2 else 0):
        factor, offset = normalization(location, scale, "additive_scale", reference=reference)
        normed = factor[:, None] * flat + offset[:, None]
        result = combine_stack(normed, variances=factor[:, None] ** 2 * var, keep_mask=True, **rejection)
        consensus = (result.value[None, :] - offset[:, None]) / factor[:, None]
        cleaned = np.where(np.isfinite(flat) & ~result.kept, consensus, flat)
        _, _, scale = frame_statistics(
            cleaned, reference=reference, groups=groups, variances=var, location=location, noise=noise
        )  # the sky as measured (the clipped median did not see the replaced outliers either)
    return location, noise * _smoothing(inputs, var), scale


def _smoothing(inputs, variances):
    """
    Per frame, the input's sky noise over the resampled one (the kernel smooths the noise of a
    frame by how far its pixels are from the grid's): so that noise weights compare the frames
    themselves, not how they were interpolated. 1 for a frame without an uncertainty.
    """
    factors = np.ones(len(inputs))
    for k, item in enumerate(inputs):
        if item.sigma is None or not np.isfinite(variances[k]).any():
            continue
        sigma = np.asarray(item.sigma)
        step = max(1, int(np.sqrt(sigma.size / 250_000)))
        intrinsic = np.nanmedian(np.square(sigma[::step, ::step], dtype=np.float64)) * item.to_rate**2
        factors[k] = np.sqrt(intrinsic / np.nanmedian(variances[k]))
    return factors


def _fwhm(frames, fwhm):
    if fwhm is not None:
        return np.asarray(fwhm, dtype=np.float64)
    from astrophot.analysis import measure_psf

    return np.array([measure_psf(frame, stars=frame.stars).fwhm for frame in frames], dtype=np.float64)


def _weights(weights, frames, inputs, stats, factor, quality, fwhm):
    names = [item.name for item in inputs]
    if isinstance(weights, str) and weights == "psf":
        fwhm = _fwhm(frames, fwhm)
    exposure = [item.exposure for item in inputs]
    return frame_weights(
        weights, noise=stats[1], factor=factor, fwhm=fwhm, exposure=exposure, quality=quality, names=names
    )


def _no_overlap(inputs, shape):
    missing = [item.name for item in inputs if item.rows is None]
    if missing:
        raise CombinationError(
            f"{', '.join(missing)}: do not overlap the stack's grid {shape} (frames of another field?)"
        )


def _header(first, inputs, result, options, wcs):
    header = _clean_header(first.header)
    header.update(wcs.to_header(relax=True))
    total = float(sum(item.exposure for item in inputs))
    header["EXPTIME"] = (total, "[s] total exposure of the frames combined")
    header["EXPOSURE"] = (total, "[s] total exposure of the frames combined")
    header["NCOMBINE"] = (len(inputs), "number of frames combined")
    header["BUNIT"] = ("electron / s", "data in electrons per second")
    header["APREJECT"] = (result.rejection, "astrophot stack rejection rule")
    header["APNORM"] = (options["normalize"], "astrophot stack normalisation")
    header["APKERNEL"] = (options["kernel"], "astrophot resampling kernel")
    if "pixfrac" in options:
        header["APPIXFRC"] = (options["pixfrac"], "astrophot drizzle drop size (input pixels)")
    return header


def _record(result, options, left_out, stats):
    frames = []
    for rec, loc, noise in zip(result.records, stats[0], stats[1]):
        frames.append({**rec, "sky": float(loc), "sky_noise": float(noise)})
    return {**options, "rejection": result.rejection, "left_out": left_out, "frames": frames}


def _product(first, inputs, result, wcs, record):
    variance = result.variance
    return StackedFrame(
        result.data,
        uncertainty=StdDevUncertainty(np.sqrt(variance)),
        unit=u.electron / u.s,
        wcs=wcs.deepcopy(),
        meta=_header(first, inputs, result, record, wcs),
        flags=result.flags,
        coverage=result.coverage,
        exposure_map=result.exposure,
        weight=result.weight,
        rejected_low=result.rejected_low,
        rejected_high=result.rejected_high,
        combination=record,
        solution=None,
        stars=None,
    )


def _drop_weightless(frames, inputs, weights, reasons, left_out):
    keep = [i for i, w in enumerate(weights) if w > 0]
    for i, w in enumerate(weights):
        if w <= 0:
            left_out[inputs[i].name] = reasons[i] or "weight 0"
    return [frames[i] for i in keep], [inputs[i] for i in keep], np.asarray(weights)[keep], keep


def _progress(shape, what="stack"):
    done = {"rows": 0, "next": 0.1}

    def report(rows):
        done["rows"] += rows.stop - rows.start
        fraction = done["rows"] / shape[0]
        if fraction >= done["next"]:
            log.info("%s: %3.0f%% of %d rows combined", what, 100 * fraction, shape[0])
            done["next"] = fraction + 0.1

    return report


def _prepare(frames, wcs, shape, quality):
    names = [_combine._name(frame, i) for i, frame in enumerate(frames)]
    _check_group(frames, names)
    kept, left_out = _quality_selection(frames, names, quality)
    frames = [frames[i] for i in kept]
    wcs_out, shape_out = _grid(frames, wcs, shape)
    inputs = _combine.prepare_inputs(frames, wcs_out, shape_out)
    _no_overlap(inputs, shape_out)
    return frames, inputs, wcs_out, shape_out, left_out


def stack_frames(
    frames,
    *,
    wcs=None,
    shape=None,
    rejection="auto",
    sigma=(3.0, 3.0),
    normalize="additive_scale",
    weights="noise",
    kernel="lanczos3",
    center="mean",
    quality=None,
    fwhm=None,
    reference=0,
    projection_error=0.001,
    min_weight=0.5,
    pixfrac=1.0,
    reject_options=None,
    band_rows=None,
    parallel=None,
):
    """
    Stack solved frames of one target and filter into one deep image.

    The frames are resampled onto one grid and combined per pixel over the frames that
    cover it, band by band over the output rows (`astrophot.combination._combine`): only
    one band of resampled values (``n_frames x band_rows x width``) per thread is ever in
    memory, never all the resampled frames. Data are converted to electrons per second
    (so different exposure times combine), normalised from robust statistics of each
    frame's sky on the common overlap, weighted, cleaned of outliers by the rejection rule
    and combined by the weighted mean (or the median) of the kept values.

    Parameters
    ----------
    frames : sequence of `~astrophot.SolvedFrame` (or their paths)
        In electrons (with ``EXPTIME``) or electrons per second, of one filter and target.
    wcs : None, ``"optimal"``, `~astropy.wcs.WCS`, header, path, frame or ``(wcs, shape)``
        The output grid: the first frame's (default), one covering every frame
        (`find_optimal_wcs`), or the one given.
    shape : tuple of int, optional
        ``(ny, nx)`` of the output when ``wcs`` does not say.
    rejection : str
        ``none``, ``minmax``, ``percentile``, ``sigma``, ``mad``, ``winsorized``,
        ``linear_fit``, ``gesd`` or ``auto``, which chooses by the number of frames ``n``:
        ``n <= 2`` none, ``3-6`` percentile, ``7-14`` winsorized, ``>= 15`` linear_fit.
    sigma : float or (float, float)
        Lower and upper rejection limits in standard deviations.
    normalize : {"additive_scale", "additive", "multiplicative", "none"}
        How each frame's sky level (and, for ``additive_scale``, its transparency) is
        brought to the reference frame's.
    weights : str or sequence of float
        ``noise`` (inverse sky variance, default), ``psf`` (point-source signal-to-noise:
        inverse of (FWHM x sky noise) squared), ``exptime``, ``quality`` (the ``weight``
        column of `~astrophot.select_frames`, given as ``quality=``), ``none``, or one
        weight per frame (0 leaves a frame out).
    kernel : str
        Resampling kernel (see `~astrophot.resample_frame`; ``exact`` is not available),
        or ``drizzle``: each frame dropped onto the grid by the drizzle package
        (``pip install drizzle``; the ``square`` kernel, drops ``pixfrac`` of an input
        pixel wide), for dithered, undersampled frames (FWHM < 2 px) stacked onto a finer
        grid. Values keep the surface brightness as with the other kernels.
    center : {"mean", "median"}
        Weighted mean (default) or median of the kept values.
    quality : `~astropy.table.Table`, optional
        The table of `~astrophot.select_frames`: the frames it rejected are left out
        (the reason recorded in ``combination["left_out"]``), whatever ``weights``.
    fwhm : sequence of float, optional
        PSF FWHM (pixels) of each frame for ``weights="psf"`` (default: measured with
        `~astrophot.measure_psf`).
    reference : int
        The frame whose sky level and transparency the normalisation keeps.
    projection_error, min_weight : float
        See `~astrophot.resample_frame` (``min_weight`` is not used by ``drizzle``: a pixel
        any good drop reaches has data).
    pixfrac : float
        The drizzle drop's side as a share of an input pixel's, in (0, 1] (``drizzle`` only).
    reject_options : dict, optional
        Other options of the rejection (``spread``, ``n_low``, ``n_high``, ``alpha``,
        ``max_outliers``, ``max_iterations``).
    band_rows : int, optional
        Output rows per band (default: about two million values per band buffer).
    parallel : None, bool or int
        Threads over bands (see `astrophot._concurrency`).

    Returns
    -------
    `~astrophot.StackedFrame`
        In electrons per second, with the uncertainty, ``NO_DATA`` flags where nothing
        covers, the coverage, exposure, weight and rejection maps, header ``EXPTIME``
        (total exposure) and ``NCOMBINE``, and the per-frame records in ``combination``.

    Raises
    ------
    astrophot.exceptions.FrameMismatchError
        Frames of different filters, targets or units.
    astrophot.exceptions.FrameTypeError
        A frame without a celestial WCS.
    astrophot.exceptions.CombinationError
        A frame that misses the grid, no frames, or every frame rejected.

    Warns
    -----
    astrophot.exceptions.AstrophotUserWarning
        A single frame: nothing can be rejected.

    Examples
    --------
    >>> from astrophot import stack_frames
    >>> from astrophot.datasets import make_dithered_frames
    >>> frames, truth = make_dithered_frames(5, shape=(60, 80), seed=1)
    >>> stack = stack_frames(frames, rejection="percentile")
    >>> stack.header["NCOMBINE"], stack.header["EXPTIME"], int(stack.coverage.max())
    (5, 300.0, 5)
    """
    started = time.perf_counter()
    _check_options(rejection, normalize, frames)
    if kernel == "exact":
        raise ValueError("stack_frames: kernel='exact' is not available for stacks; use lanczos3 or bilinear")
    frames = [as_frame(frame, role="stack_frames") for frame in frames]  # frames or frame files
    frames, inputs, wcs_out, shape_out, left_out = _prepare(frames, wcs, shape, quality)
    resample = {"kernel": kernel, "projection_error": projection_error, "min_weight": min_weight}
    if kernel == "drizzle":
        resample["pixfrac"] = float(pixfrac)
    rule = {"rejection": rejection, "sigma": sigma, **(reject_options or {})}
    stats = _statistics(inputs, wcs_out, shape_out, resample, reference, rule)
    factor, offset = normalization(stats[0], stats[2], normalize, reference=reference)
    w, reasons = _weights(weights, frames, inputs, stats, factor, quality, fwhm)
    frames, inputs, w, keep = _drop_weightless(frames, inputs, w, reasons, left_out)
    if len(inputs) == 1:
        warnings.warn(
            f"{inputs[0].name}: stacking a single frame: nothing was rejected",
            AstrophotUserWarning,
            stacklevel=2,
        )
    options = {
        "rejection": rejection,
        "sigma": sigma,
        "normalize": normalize,
        "weights": weights if isinstance(weights, str) else [float(v) for v in weights],
        "kernel": kernel,
        "center": center,
        "reference": reference,
        "shape": list(shape_out),
    }
    if kernel == "drizzle":
        options["pixfrac"] = float(pixfrac)
    rec = start_step(
        "stack_frames",
        parameters={**options, "target": wcs_out.to_header_string(relax=True), **(reject_options or {})},
        inputs={"frames": frames},
        software=("scipy",),
        started=started,
    )
    result = _combine.combine_frames(
        inputs,
        wcs_out,
        shape_out,
        factor=factor[keep],
        offset=offset[keep],
        weights=w,
        rejection=rejection,
        sigma=sigma,
        center=center,
        reject_options=reject_options,
        band_rows=band_rows,
        parallel=parallel,
        progress=_progress(shape_out),
        **resample,
    )
    stats = tuple(np.asarray(s)[keep] for s in stats)
    product = _product(frames[0], inputs, result, wcs_out, _record(result, options, left_out, stats))
    outcome = {"n_combined": len(inputs), "left_out": left_out, "frames": result.records}
    return rec.finish(product, outcome=outcome)
