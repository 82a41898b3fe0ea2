# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The generic combiner: `combine_frames`, and the helpers the master builders share."""

import logging

import astropy.units as u
import numpy as np
from astropy.nddata import StdDevUncertainty

from astrophot.calibration._kernel import combine_sources
from astrophot.calibration._sources import make_sources
from astrophot.exceptions import CalibrationError, FrameMismatchError, FrameTypeError
from astrophot.frames import FRAME_TYPES, CalibratedFrame, FrameBase, RawFrame
from astrophot.provenance import start_step

__all__ = ["DEFAULT_MEMORY_LIMIT", "combine_frames"]

log = logging.getLogger(__name__)

#: Default memory limit of the combiner (bytes).
DEFAULT_MEMORY_LIMIT = 2 * 2**30


def memory_bytes(value):
    """
    A memory size in bytes from an int, a float or a `~astropy.units.Quantity`.

    Examples
    --------
    >>> import astropy.units as u
    >>> memory_bytes(2 * u.GiB), memory_bytes(1e6)
    (2147483648, 1000000)
    """
    if value is None:
        return None
    if isinstance(value, u.Quantity):
        value = value.to_value(u.byte)
    try:
        value = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"memory_limit must be a number of bytes or a Quantity, not {value!r}") from None
    if value <= 0:
        raise ValueError(f"memory_limit must be positive, not {value}")
    return value


def combine_options(
    method, sigma_clip, n_sigma_low, n_sigma_high, max_iterations, n_low, n_high, clip_spread="pooled"
):
    """Validate the combination options; return them as a dict."""
    if clip_spread not in ("pooled", "pixel"):
        raise ValueError(f"clip_spread must be 'pooled' or 'pixel', not {clip_spread!r}")
    if method not in ("average", "median"):
        raise ValueError(f"method must be 'average' or 'median', not {method!r}")
    for name, value in (("n_sigma_low", n_sigma_low), ("n_sigma_high", n_sigma_high)):
        if value is not None and not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number or None, not {value!r}")
    if max_iterations is not None and int(max_iterations) < 1:
        raise ValueError(
            f"max_iterations must be at least 1 (or None: until nothing changes), not {max_iterations}"
        )
    return {
        "method": method,
        "sigma_clip": bool(sigma_clip),
        "n_sigma_low": None if n_sigma_low is None else float(n_sigma_low),
        "n_sigma_high": None if n_sigma_high is None else float(n_sigma_high),
        "max_iterations": None if max_iterations is None else int(max_iterations),
        "clip_spread": clip_spread,
        "n_low": int(n_low),
        "n_high": int(n_high),
    }


def source_unit(source):
    """The unit of a source: the frame's unit or the file's BUNIT (ADU when absent)."""
    frame = getattr(source, "frame", None)
    if frame is not None and getattr(frame, "unit", None) is not None:
        return u.Unit(frame.unit)
    text = source.header.get("BUNIT")
    if text:
        unit = u.Unit(str(text).strip(), parse_strict="silent")
        if not isinstance(unit, u.UnrecognizedUnit):
            return unit
    return u.adu


def run_kernel(sources, options, *, memory_limit, scales=None, weights=None, offsets=()):
    """Run the kernel; returns its result dict."""
    return combine_sources(
        sources,
        scales=scales,
        weights=weights,
        offsets=offsets,
        memory_limit=memory_bytes(memory_limit),
        **options,
    )


def rejection_outcome(result, n_frames):
    """Small summary of the rejection for the provenance outcome."""
    n_rejected = result["n_rejected"]
    total = int(n_rejected.sum(dtype=np.int64))
    return {
        "n_frames": int(n_frames),
        "n_rejected_values": total,
        "rejected_fraction": round(total / max(1, n_rejected.size * n_frames), 8),
        "n_pixels_without_data": int(np.count_nonzero(result["mask"])),
    }


def combine_frames(
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
    scale=None,
    weights=None,
    memory_limit=DEFAULT_MEMORY_LIMIT,
    frame_type=None,
):
    """
    Combine frames pixel by pixel, with rejection, reading each input once.

    The generic engine behind `make_master_bias`, `make_master_dark` and
    `make_master_flat`: no checks of image type, exposure or temperature are
    made here (only shape and unit).

    Parameters
    ----------
    frames : sequence of frame, `~astropy.nddata.CCDData` or path-like
        At least one. Files are read band by band (uncompressed FITS) or once
        whole (compressed files); frames in memory are used as they are.
        Masked and non-finite values are left out.
    method : {'average', 'median'}, optional
        Combine the kept values by their mean or their median.
    sigma_clip : bool, optional
        Reject values beyond ``n_sigma_low``/``n_sigma_high`` times the
        spread (1.4826 times the median absolute deviation) from the median
        of each pixel's values.
    n_sigma_low, n_sigma_high : float or None, optional
        Clipping limits below and above the median; None turns a side off.
    max_iterations : int or None, optional
        Clipping iterations (ccdproc's ``combine`` makes one); None repeats
        until nothing more is rejected. Values rejected stay rejected.
    clip_spread : {'pooled', 'pixel'}, optional
        ``'pixel'``: each pixel's own spread, as ccdproc does. ``'pooled'``
        (default): never less than the median spread of the pixels around
        (the band being combined), because the spread of a few values is
        often far too small and would reject good values.
    n_low, n_high : int, optional
        Reject this many of the lowest and highest values of every pixel
        first (IRAF's ``nlow``/``nhigh``).
    scale : sequence of float, optional
        One multiplicative factor per frame, applied before rejection.
    weights : sequence of float, optional
        One positive weight per frame (``method='average'`` only).
    memory_limit : int or `~astropy.units.Quantity`, optional
        Bytes the combination may use, the result included. Default 2 GiB.
    frame_type : type or str, optional
        Class of the result. Default: the class of the first input frame,
        or `~astrophot.CalibratedFrame` for raw frames and files.

    Returns
    -------
    frame : `~astrophot.frames.FrameBase` subclass
        ``data`` (float32), ``uncertainty`` (`~astropy.nddata.StdDevUncertainty`:
        the standard deviation of the kept values over the square root of
        their number, times sqrt(pi/2) for the median), ``mask`` where no
        value was left, and the attribute ``n_rejected`` (uint16 array: the
        number of inputs not used at each pixel, rejected or invalid).

    Raises
    ------
    astrophot.exceptions.CalibrationError
        No input, or the memory limit is too small.
    astrophot.exceptions.FrameMismatchError
        Inputs differ in shape or unit (the message lists them).
    astrophot.exceptions.FrameReadError
        A file cannot be read.

    See Also
    --------
    make_master_bias, make_master_dark, make_master_flat

    Notes
    -----
    Each pixel's values are sorted along the frame axis (a sorting network
    run on whole rows of a band), so the median, the count-based rejection
    and sigma clipping all work on index ranges of the sorted values. With
    ``clip_spread='pixel'`` the result equals ccdproc's ``combine`` with
    ``sigma_clip_func=np.ma.median`` and ``sigma_clip_dev_func=mad_std``
    for one iteration; for more, values rejected by one iteration are not
    re-admitted by a later one (as in IRAF's ``imcombine``).

    With few frames the median absolute deviation of one pixel's values
    scatters widely (about 40 % for 9 frames), so clipping at "5 sigma" of
    it rejects about 1 % of good values and leaves non-Gaussian tails in
    the master; the pooled spread avoids that.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.nddata import CCDData
    >>> from astrophot.calibration import combine_frames
    >>> frames = [CCDData(np.full((2, 3), v, dtype=np.float32), unit="adu") for v in (10, 11, 12, 500)]
    >>> out = combine_frames(frames, method="median", n_sigma_low=3, n_sigma_high=3)
    >>> float(out.data[0, 0]), int(out.n_rejected[0, 0])
    (11.0, 1)
    """
    options = combine_options(
        method, sigma_clip, n_sigma_low, n_sigma_high, max_iterations, n_low, n_high, clip_spread
    )
    frames = list(frames)
    if not frames:
        raise CalibrationError("combine_frames: no input frames")
    rec = start_step(
        "combine_frames",
        parameters={
            **options,
            "scale": None if scale is None else [float(s) for s in scale],
            "weights": None if weights is None else [float(w) for w in weights],
            "memory_limit": memory_bytes(memory_limit),
        },
    )
    sources = make_sources(frames)
    units = [source_unit(s) for s in sources]
    odd = [f"{s.name} ({unit})" for s, unit in zip(sources, units) if unit != units[0]]
    if odd:
        raise FrameMismatchError(
            f"frames differ in unit from {sources[0].name} ({units[0]}): {', '.join(odd)}"
        )
    if frame_type is None:
        first = frames[0]
        cls = (
            type(first)
            if isinstance(first, FrameBase) and not isinstance(first, RawFrame)
            else CalibratedFrame
        )
    elif isinstance(frame_type, str):
        if frame_type not in FRAME_TYPES:
            raise FrameTypeError(f"unknown frame type {frame_type!r}; expected one of {sorted(FRAME_TYPES)}")
        cls = FRAME_TYPES[frame_type]
    else:
        cls = frame_type
    result = run_kernel(sources, options, memory_limit=memory_limit, scales=scale, weights=weights)
    header = sources[0].header.copy()
    header["NCOMBINE"] = (len(sources), "number of frames combined")
    mask = result["mask"] if result["mask"].any() else None
    out = cls(
        result["data"],
        unit=units[0],
        meta=header,
        uncertainty=StdDevUncertainty(result["uncertainty"], copy=False),
        mask=mask,
    )
    out.n_rejected = result["n_rejected"]
    rec.inputs.extend(s.reference("frames") for s in sources)
    return rec.finish(out, outcome=rejection_outcome(result, len(sources)))
