# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Master bias, dark and flat frames."""

import logging
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.nddata import StdDevUncertainty

from astrophot.calibration._checks import check_inputs, expand_inputs, temperature_value
from astrophot.calibration._combine import (
    DEFAULT_MEMORY_LIMIT,
    combine_options,
    memory_bytes,
    rejection_outcome,
    run_kernel,
)
from astrophot.calibration._sources import make_sources
from astrophot.exceptions import AstrophotUserWarning, CalibrationError, FrameMismatchError, FrameTypeError
from astrophot.frames import FrameBase, MasterBias, MasterDark, MasterFlat
from astrophot.provenance import start_step

__all__ = ["make_master_bias", "make_master_dark", "make_master_flat"]

log = logging.getLogger(__name__)

#: Header cards of single exposures that mean nothing in a master.
_EXPOSURE_CARDS = (
    "TIME-OBS",
    "UT",
    "UTC-OBS",
    "JD",
    "JD-OBS",
    "JD-HELIO",
    "MJD-OBS",
    "DATE-END",
    "OBJECT",
    "OBJCTRA",
    "OBJCTDEC",
    "OBJCTALT",
    "OBJCTAZ",
    "OBJCTHA",
    "AIRMASS",
    "PIERSIDE",
    "APFRAME",
    "APSIDECR",
    "APPROVID",
    "NCOMBINE",
)

_COMBINE_DOC = """method : {'average', 'median'}, optional
        Combine the kept values of each pixel by their mean (default) or median.
    sigma_clip : bool, optional
        Reject values more than ``n_sigma_low``/``n_sigma_high`` times the
        robust spread (1.4826 x median absolute deviation) from the median.
    n_sigma_low, n_sigma_high : float or None, optional
        Clipping limits (default 5 and 5); None turns a side off.
    max_iterations : int or None, optional
        Clipping iterations (default 1, as ccdproc's ``combine``); None
        repeats until nothing more is rejected.
    clip_spread : {'pooled', 'pixel'}, optional
        Clip with each pixel's own spread (``'pixel'``, as ccdproc) or with
        at least the median spread of its neighbourhood (``'pooled'``,
        default: the spread of a few values is too often too small).
    n_low, n_high : int, optional
        Reject this many lowest and highest values of each pixel first.
    memory_limit : int or `~astropy.units.Quantity`, optional
        Bytes the combination may use, result included (default 2 GiB).
        Uncompressed files are read band by band, once; compressed files
        are read once whole and must fit.
    temperature_tolerance : float or `~astropy.units.Quantity`, optional
        Degrees (default 1): SET-TEMP must agree within it; frames whose
        CCD-TEMP is further than it from the set-point are dropped with an
        `~astrophot.exceptions.AstrophotUserWarning`.
    check_image_type : bool, optional
        Refuse frames whose IMAGETYP names another kind (default True)."""


def _fill_doc(func):
    func.__doc__ = func.__doc__.replace("{combine}", _COMBINE_DOC)
    return func


def _as_master(value, cls, role):
    """A master given as a frame or a path."""
    if value is None:
        return None
    if isinstance(value, (str, Path)):
        from astrophot.io import read_frame

        return read_frame(value, frame_type=cls)
    if not isinstance(value, FrameBase):
        raise FrameTypeError(f"{role} must be a {cls.__name__} or a path, not {type(value).__name__}")
    return value


def _check_master(master, role, shape, binning):
    if master is None:
        return
    if master.data.shape != tuple(shape):
        raise FrameMismatchError(
            f"{master.name}: the {role} is {master.data.shape[0]}x{master.data.shape[1]} but the frames are "
            f"{shape[0]}x{shape[1]} (rows x columns)"
        )
    if master.binning != binning:
        raise FrameMismatchError(
            f"{master.name}: the {role} has binning {master.binning[0]}x{master.binning[1]} but the frames "
            f"have {binning[0]}x{binning[1]}"
        )


def _prepare(frames, kind, *, temperature_tolerance, check_image_type, need_exposure=False):
    inputs = expand_inputs(frames)
    if not inputs:
        raise CalibrationError(f"no input frames to make a master {kind} from")
    sources = make_sources(inputs)
    kept, summary = check_inputs(
        sources,
        kind,
        temperature_tolerance=temperature_tolerance,
        check_image_type=check_image_type,
        need_exposure=need_exposure,
    )
    if len(kept) == 1:
        warnings.warn(
            f"a master {kind} made of one frame ({kept[0].name}): nothing is rejected (cosmic rays, "
            "hot pixels of that frame stay) and its noise is that of one frame; combine at least 3",
            AstrophotUserWarning,
            stacklevel=3,
        )
    return kept, summary


def _header(sources, kind, summary, n_combined):
    header = sources[0].header.copy()
    for key in _EXPOSURE_CARDS:
        header.remove(key, ignore_missing=True, remove_all=True)
    header["IMAGETYP"] = (f"Master {kind.title()}", "combined by astrophot")
    header["NCOMBINE"] = (int(n_combined), "number of frames combined")
    if summary.get("date_obs") is not None:
        header["DATE-OBS"] = (summary["date_obs"].isot, "start of the first frame combined (UTC)")
    if summary.get("ccd_temperature") is not None:
        header["CCD-TEMP"] = (round(summary["ccd_temperature"], 3), "mean CCD temperature of the frames (C)")
    return header


def _parameters(options, memory_limit, temperature_tolerance, check_image_type):
    return {
        **options,
        "memory_limit": memory_bytes(memory_limit),
        "temperature_tolerance": temperature_value(temperature_tolerance),
        "check_image_type": bool(check_image_type),
    }


def _outcome(result, kept, summary):
    outcome = rejection_outcome(result, len(kept))
    outcome["dropped"] = list(summary.get("dropped", []))
    return outcome


@_fill_doc
def make_master_bias(
    frames,
    *,
    method="average",
    sigma_clip=True,
    n_sigma_low=5.0,
    n_sigma_high=5.0,
    max_iterations=1,
    clip_spread="pooled",
    n_low=0,
    n_high=0,
    memory_limit=DEFAULT_MEMORY_LIMIT,
    temperature_tolerance=1.0,
    check_image_type=True,
):
    """
    Combine bias frames into a master bias.

    Parameters
    ----------
    frames : sequence of `~astrophot.RawFrame` or path-like, or a directory
        The bias frames (a directory stands for its FITS files, ``Master_*``
        files left out). They must agree in shape, binning, telescope and
        set temperature.
    {combine}

    Returns
    -------
    master : `~astrophot.MasterBias`
        In ADU (float32) with an uncertainty (standard deviation of the combined
        value), a mask where no value was left, and the attribute
        ``n_rejected`` (uint16: inputs not used at each pixel).

    Raises
    ------
    astrophot.exceptions.CalibrationError
        No frames (or an empty directory), or none left after dropping
        CCD-TEMP outliers.
    astrophot.exceptions.FrameMismatchError
        The frames differ in shape, binning, IMAGETYP, telescope or
        set temperature; the message lists the odd files.
    astrophot.exceptions.FrameReadError
        A file cannot be read.

    Warns
    -----
    astrophot.exceptions.AstrophotUserWarning
        Frames dropped for their CCD temperature.

    See Also
    --------
    make_master_dark : The next master, which can subtract this one.
    measure_read_noise : The read noise from two of the same bias frames.
    combine_frames : The combiner without checks.

    Notes
    -----
    The noise of an averaged master is the read noise over the square root
    of the number of frames; a median is about 25 % noisier.

    Examples
    --------
    >>> from astrophot.datasets import make_bias_stack
    >>> from astrophot.calibration import make_master_bias
    >>> frames, truth = make_bias_stack(9, shape=(60, 80), seed=4)
    >>> master = make_master_bias(frames)
    >>> master.header["IMAGETYP"], master.header["NCOMBINE"]
    ('Master Bias', 9)
    >>> bool(abs(float(master.data.mean()) - truth.bias_level) < 1)
    True
    """
    options = combine_options(
        method, sigma_clip, n_sigma_low, n_sigma_high, max_iterations, n_low, n_high, clip_spread
    )
    parameters = _parameters(options, memory_limit, temperature_tolerance, check_image_type)
    rec = start_step("make_master_bias", parameters=parameters)
    kept, summary = _prepare(
        frames, "bias", temperature_tolerance=temperature_tolerance, check_image_type=check_image_type
    )
    result = run_kernel(kept, options, memory_limit=memory_limit)
    master = MasterBias(
        result["data"],
        unit=u.adu,
        meta=_header(kept, "bias", summary, len(kept)),
        uncertainty=StdDevUncertainty(result["uncertainty"], copy=False),
        mask=result["mask"] if result["mask"].any() else None,
    )
    master.n_rejected = result["n_rejected"]
    rec.inputs.extend(s.reference("frames") for s in kept)
    return rec.finish(master, outcome=_outcome(result, kept, summary))


@_fill_doc
def make_master_dark(
    frames,
    *,
    bias=None,
    method="average",
    sigma_clip=True,
    n_sigma_low=5.0,
    n_sigma_high=5.0,
    max_iterations=1,
    clip_spread="pooled",
    n_low=0,
    n_high=0,
    memory_limit=DEFAULT_MEMORY_LIMIT,
    temperature_tolerance=1.0,
    check_image_type=True,
):
    """
    Combine dark frames of one exposure time into a master dark.

    Parameters
    ----------
    frames : sequence of `~astrophot.RawFrame` or path-like, or a directory
        The dark frames: same shape, binning, telescope, exposure time and
        set temperature.
    bias : `~astrophot.MasterBias` or path-like, optional
        Subtracted from the combined dark (``CALSTAT='BM'``). Without it the
        bias stays in (``CALSTAT='M'``), as in many iTelescope masters.
    {combine}

    Returns
    -------
    master : `~astrophot.MasterDark`
        In ADU (float32) with an uncertainty (the bias's added in quadrature), the
        common exposure time in EXPTIME/EXPOSURE, ``CALSTAT`` and the
        attribute ``n_rejected``.

    Raises
    ------
    astrophot.exceptions.MissingKeywordError
        A frame has no EXPOSURE/EXPTIME (the message names the file).
    astrophot.exceptions.FrameMismatchError
        The frames differ in shape, binning, IMAGETYP, telescope, exposure
        time or set temperature (the message lists the odd files), or the
        bias does not match them.
    astrophot.exceptions.CalibrationError
        No frames, or none left after dropping CCD-TEMP outliers.

    Warns
    -----
    astrophot.exceptions.AstrophotUserWarning
        Frames dropped for their CCD temperature.

    See Also
    --------
    make_master_bias : The bias to remove.
    make_master_flat : The next master, which can use this one.
    find_bad_pixels : Hot and cold pixels from this master.

    Examples
    --------
    >>> from astrophot.datasets import make_bias_stack, make_dark_stack
    >>> from astrophot.calibration import make_master_bias, make_master_dark
    >>> biases, _ = make_bias_stack(5, shape=(60, 80), seed=4)
    >>> darks, truth = make_dark_stack(5, shape=(60, 80), exposure=300, seed=4)
    >>> dark = make_master_dark(darks, bias=make_master_bias(biases))
    >>> dark.header["CALSTAT"], dark.bias_subtracted, dark.exposure_time
    ('BM', True, <Quantity 300. s>)
    """
    options = combine_options(
        method, sigma_clip, n_sigma_low, n_sigma_high, max_iterations, n_low, n_high, clip_spread
    )
    bias = _as_master(bias, MasterBias, "bias")
    rec = start_step(
        "make_master_dark",
        parameters=_parameters(options, memory_limit, temperature_tolerance, check_image_type),
        inputs={"bias": bias},
    )
    kept, summary = _prepare(
        frames, "dark", temperature_tolerance=temperature_tolerance, check_image_type=check_image_type
    )
    _check_master(bias, "bias", kept[0].shape, kept[0].info.binning)
    result = run_kernel(kept, options, memory_limit=memory_limit)
    data, uncertainty = result["data"], result["uncertainty"]
    if bias is not None:
        data -= np.asarray(bias.data, dtype=np.float32)
        if bias.uncertainty is not None:
            bias_unc = np.asarray(bias.uncertainty.represent_as(StdDevUncertainty).array, dtype=np.float32)
            uncertainty = np.sqrt(uncertainty**2 + bias_unc**2)
    header = _header(kept, "dark", summary, len(kept))
    header["CALSTAT"] = ("BM" if bias is not None else "M", "M: bias included; BM: bias removed")
    exposure = summary["exposure"]
    for key in ("EXPTIME", "EXPOSURE"):
        if key in header or key == "EXPTIME":
            header[key] = (float(exposure), "exposure time of the darks (s)")
    mask = result["mask"]
    if bias is not None and bias.mask is not None:
        mask = mask | np.asarray(bias.mask, dtype=bool)
    master = MasterDark(
        data,
        unit=u.adu,
        meta=header,
        uncertainty=StdDevUncertainty(uncertainty, copy=False),
        mask=mask if mask.any() else None,
    )
    master.n_rejected = result["n_rejected"]
    rec.inputs.extend(s.reference("frames") for s in kept)
    outcome = _outcome(result, kept, summary)
    outcome["bias_subtracted"] = bias is not None
    return rec.finish(master, outcome=outcome)


def _dark_current(dark, bias, flat_exposures, dark_includes_bias):
    """(array to subtract per second of exposure or None, whole dark or None, note)."""
    t_dark = dark.require("exposure_time", purpose="scaling the dark to the flats").to_value(u.s)
    if t_dark <= 0:
        raise CalibrationError(f"{dark.name}: the dark's exposure time is {t_dark} s; cannot scale it")
    includes_bias = dark_includes_bias
    if includes_bias is None:
        known = dark.bias_subtracted
        if known is None:
            warnings.warn(
                f"{dark.name}: no CALSTAT card says whether the bias was removed from the dark; "
                "assuming it was (pass dark_includes_bias to say otherwise)",
                AstrophotUserWarning,
                stacklevel=3,
            )
            includes_bias = False
        else:
            includes_bias = not known
    data = np.asarray(dark.data, dtype=np.float32)
    if not includes_bias:
        return data / np.float32(t_dark), "dark scaled by exposure"
    if bias is not None:
        current = (data - np.asarray(bias.data, dtype=np.float32)) / np.float32(t_dark)
        return current, "dark minus bias, scaled"
    if all(abs(t - t_dark) <= 1e-3 * max(1.0, t_dark) for t in flat_exposures):
        return None, "dark (bias included) subtracted as is"
    raise CalibrationError(
        f"{dark.name}: the dark still contains the bias (CALSTAT='M') and the flats' exposure times "
        f"({', '.join(f'{t:g}' for t in sorted(set(flat_exposures)))} s) differ from its {t_dark:g} s; "
        "give bias= so that the dark current alone can be scaled"
    )


def _central_level(source, offsets, index, fraction=0.5, max_rows=256):
    """Median of the central region of one frame after the offsets (reads a sample of rows)."""
    ny, nx = source.shape
    r0, r1 = int(ny * (1 - fraction) / 2), max(int(ny * (1 + fraction) / 2), int(ny * (1 - fraction) / 2) + 1)
    c0, c1 = int(nx * (1 - fraction) / 2), max(int(nx * (1 + fraction) / 2), int(nx * (1 - fraction) / 2) + 1)
    step = max(1, (r1 - r0) // max_rows)
    row = np.empty(nx, dtype=source.dtype)
    values = []
    for r in range(r0, r1, step):
        source.read_rows(r, r + 1, row)
        v = row.astype(np.float64)
        for arr, coef in offsets:
            if coef[index] != 0:
                v = v - coef[index] * arr[r]
        invalid = source.invalid_rows(r, r + 1)
        v = v[c0:c1]
        if invalid is not None:
            v = v[~invalid[c0:c1]]
        values.append(v[np.isfinite(v)])
    values = np.concatenate(values) if values else np.empty(0)
    if not values.size:
        return np.nan
    return float(np.median(values))


def _flat_offsets(kept, bias, dark, dark_includes_bias):
    """What to subtract from each flat (``(array, per-frame factors)`` pairs) and the CALSTAT."""
    n = len(kept)
    offsets = []
    removed = ""
    if bias is not None:
        offsets.append((np.asarray(bias.data, dtype=np.float32), np.ones(n)))
        removed += "B"
    if dark is not None:
        exposures = [s.info.require("exposure_time", purpose="scaling the dark").to_value(u.s) for s in kept]
        per_second, note = _dark_current(dark, bias, exposures, dark_includes_bias)
        if per_second is None:
            # a biased dark of the flats' exposure removes bias and dark current at once
            offsets = [(np.asarray(dark.data, dtype=np.float32), np.ones(n))]
            removed = "BD"
        else:
            offsets.append((per_second, np.asarray(exposures, dtype=np.float64)))
            removed += "D"
        log.debug("flat: %s", note)
    return offsets, removed + "M"


def _flat_levels(kept, offsets, fraction):
    """Each flat's central level after the offsets; a level that is not positive is an error."""
    levels = []
    try:
        for src in kept:
            src.open()
        for i, src in enumerate(kept):
            level = _central_level(src, offsets, i, fraction=fraction)
            if not (np.isfinite(level) and level > 0):
                raise CalibrationError(
                    f"{src.name}: the flat's level after bias and dark removal is {level:g}; "
                    "it cannot be normalised (a bias or dark frame among the flats?)"
                )
            levels.append(level)
    finally:
        for src in kept:
            src.close()
    return levels


def _central_median(data, f):
    """Median of the finite values of the centred region of ``f`` of each axis (NaN if none)."""
    ny, nx = data.shape
    r0, r1 = int(ny * (1 - f) / 2), max(int(ny * (1 + f) / 2), int(ny * (1 - f) / 2) + 1)
    c0, c1 = int(nx * (1 - f) / 2), max(int(nx * (1 + f) / 2), int(nx * (1 - f) / 2) + 1)
    centre = data[r0:r1, c0:c1]
    return float(np.median(centre[np.isfinite(centre)])) if np.isfinite(centre).any() else np.nan


@_fill_doc
def make_master_flat(
    frames,
    *,
    bias=None,
    dark=None,
    dark_includes_bias=None,
    method="median",
    sigma_clip=True,
    n_sigma_low=5.0,
    n_sigma_high=5.0,
    max_iterations=1,
    clip_spread="pooled",
    n_low=0,
    n_high=0,
    memory_limit=DEFAULT_MEMORY_LIMIT,
    temperature_tolerance=1.0,
    check_image_type=True,
    normalisation_region=0.5,
):
    """
    Combine flat fields of one filter into a normalised master flat.

    Each flat has the bias and the dark current (scaled to its exposure)
    removed and is divided by the median of its central region, so that
    twilight flats of different exposure and level combine; the result is
    divided by the median of its own central region (1 there).

    Parameters
    ----------
    frames : sequence of `~astrophot.RawFrame` or path-like, or a directory
        The flats: same shape, binning, telescope, filter and set
        temperature; exposure times may differ.
    bias : `~astrophot.MasterBias` or path-like, optional
        Subtracted from every flat.
    dark : `~astrophot.MasterDark` or path-like, optional
        Its dark current, scaled by exposure time, is subtracted. A dark
        that still holds the bias (``CALSTAT='M'``) needs ``bias`` unless
        every flat has the dark's exposure time.
    dark_includes_bias : bool, optional
        Overrides the dark's ``CALSTAT``.
    method : {'median', 'average'}, optional
        Default ``'median'`` (robust against stars in sky flats).
    {combine}
    normalisation_region : float, optional
        Fraction of each axis, centred, whose median normalises (default 0.5).

    Returns
    -------
    master : `~astrophot.MasterFlat`
        Dimensionless float32, median 1 in the central region, with its
        uncertainty, FILTER, ``CALSTAT`` (``'M'`` plus ``'B'``/``'D'`` for
        what was removed) and the attribute ``n_rejected``.

    Raises
    ------
    astrophot.exceptions.MissingKeywordError
        A flat or the dark has no EXPOSURE/EXPTIME while the dark is used.
    astrophot.exceptions.FrameMismatchError
        The flats differ in shape, binning, IMAGETYP, telescope, filter or
        set temperature, or a master does not match them.
    astrophot.exceptions.CalibrationError
        No flats; a flat whose level is not positive after bias and dark
        removal; a biased dark that cannot be scaled.

    Warns
    -----
    astrophot.exceptions.AstrophotUserWarning
        Frames dropped for their CCD temperature; a dark without CALSTAT.

    See Also
    --------
    make_master_dark : The dark to remove.
    find_bad_pixels : Dead pixels from this flat.

    Examples
    --------
    >>> import numpy as np
    >>> from astrophot.datasets import make_bias_stack, make_flat_stack
    >>> from astrophot.calibration import make_master_bias, make_master_flat
    >>> bias = make_master_bias(make_bias_stack(5, shape=(60, 80), seed=5)[0])
    >>> flats, truth = make_flat_stack(5, filter="Ha", shape=(60, 80), seed=5)
    >>> flat = make_master_flat(flats, bias=bias)
    >>> flat.filter, round(float(np.median(flat.data[15:45, 20:60])), 3)
    ('Ha', 1.0)
    """
    options = combine_options(
        method, sigma_clip, n_sigma_low, n_sigma_high, max_iterations, n_low, n_high, clip_spread
    )
    if not 0 < normalisation_region <= 1:
        raise ValueError(f"normalisation_region must be in (0, 1], not {normalisation_region!r}")
    bias = _as_master(bias, MasterBias, "bias")
    dark = _as_master(dark, MasterDark, "dark")
    parameters = _parameters(options, memory_limit, temperature_tolerance, check_image_type)
    parameters["normalisation_region"] = float(normalisation_region)
    parameters["dark_includes_bias"] = dark_includes_bias
    rec = start_step("make_master_flat", parameters=parameters, inputs={"bias": bias, "dark": dark})
    kept, summary = _prepare(
        frames,
        "flat",
        temperature_tolerance=temperature_tolerance,
        check_image_type=check_image_type,
        need_exposure=dark is not None,
    )
    shape, binning = kept[0].shape, kept[0].info.binning
    _check_master(bias, "bias", shape, binning)
    _check_master(dark, "dark", shape, binning)
    n = len(kept)
    offsets, calstat = _flat_offsets(kept, bias, dark, dark_includes_bias)
    levels = _flat_levels(kept, offsets, normalisation_region)
    result = run_kernel(
        kept, options, memory_limit=memory_limit, scales=[1.0 / v for v in levels], offsets=offsets
    )
    data, uncertainty = result["data"], result["uncertainty"]
    norm = _central_median(data, float(normalisation_region))
    if not (np.isfinite(norm) and norm > 0):
        raise CalibrationError(f"the combined flat has no positive level in its centre (median {norm:g})")
    data /= np.float32(norm)
    uncertainty /= np.float32(norm)
    header = _header(kept, "flat", summary, n)
    header["CALSTAT"] = (calstat, "B: bias removed; D: dark removed; M: master")
    if summary.get("filter") is not None:
        header["FILTER"] = summary["filter"]
    mask = result["mask"]
    master = MasterFlat(
        data,
        unit=u.dimensionless_unscaled,
        meta=header,
        uncertainty=StdDevUncertainty(uncertainty, copy=False),
        mask=mask if mask.any() else None,
    )
    master.n_rejected = result["n_rejected"]
    rec.inputs.extend(s.reference("frames") for s in kept)
    outcome = _outcome(result, kept, summary)
    outcome["levels"] = [round(v, 4) for v in levels]
    outcome["normalisation"] = round(norm, 8)
    return rec.finish(master, outcome=outcome)
