# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Shared helpers of the analysis stages: input normalisation, masks, plate scale."""

import math

import astropy.units as u
import numpy as np
from astropy.nddata import NDData

from astrophot._saturation import datamax_is_saturation
from astrophot.exceptions import FrameMismatchError
from astrophot.frames import DQFlag, flags_to_mask
from astrophot.frames._input import as_frame as _as_frame

__all__ = []

#: DQ bits that hide a pixel from detection: every bad bit except SATURATED
#: (a saturated star core keeps its values so the star is found whole).
DETECTION_BAD_BITS = int(DQFlag.bad_bits()) & ~int(DQFlag.SATURATED)


def frame_name(frame):
    """A short description of ``frame`` for messages."""
    name = getattr(frame, "name", None)
    if name:
        return name
    return f"<in-memory {type(frame).__name__}>"


def as_frame(frame, *, purpose):
    """
    Accept a frame, a frame file's path, a `~astropy.nddata.CCDData`/`NDData` or a 2-D array.

    The stages' one input contract (`astrophot.frames._input.as_frame`). Returns
    an object with ``data``, ``mask``, ``unit``, ``uncertainty``, ``meta``
    (``header``), ``wcs`` and ``flags`` attributes (flags may be None).
    """
    return _as_frame(frame, role=purpose, wrap=True)


def keyword_only(function, name, args, value):
    """
    The value of an argument that is keyword-only now (``stars=``), given positionally or not.

    A positional value still works, with an `~astropy.utils.exceptions.AstropyDeprecationWarning`
    (it was positional before issue 10 made ``stars``/``background`` keyword-only everywhere).
    """
    if not args:
        return value
    if len(args) > 1 or value is not None:
        raise TypeError(f"{function}() takes one positional argument (the frame); pass {name}= by keyword")
    import warnings

    from astropy.utils.exceptions import AstropyDeprecationWarning

    warnings.warn(
        f"{function}(frame, {name}): pass {name}={name} by keyword (positional use is deprecated)",
        AstropyDeprecationWarning,
        stacklevel=3,
    )
    return args[0]


def float_data(frame):
    """The pixels as a C-contiguous native float32 array (a copy only when needed)."""
    data = np.asarray(frame.data)
    if data.dtype != np.float32 or not data.flags.c_contiguous or not data.dtype.isnative:
        data = np.ascontiguousarray(data, dtype=np.float32)
    return data


def user_mask(mask, shape, *, name, what="mask"):
    """Validate a user mask (None or a boolean array of ``shape``)."""
    if mask is None:
        return None
    if isinstance(mask, NDData):
        mask = mask.data
    mask = np.asarray(mask)
    if mask.shape != tuple(shape):
        raise FrameMismatchError(
            f"{name}: {what} shape {mask.shape} does not match the image shape {tuple(shape)}"
        )
    return mask.astype(bool, copy=False)


def bad_pixel_mask(frame, data, *, extra=None, detection=False):
    """
    Pixels to ignore: the frame's mask, its DQ bad bits, non-finite values, ``extra``.

    With ``detection=True``, pixels flagged only SATURATED stay usable (their
    values are real, just clipped) so a saturated star is found whole.
    Returns None when nothing is masked.
    """
    masks = []
    flags = getattr(frame, "flags", None)
    if flags is not None:
        bits = DETECTION_BAD_BITS if detection else None
        fmask = flags_to_mask(flags, bits=bits)
        if fmask.any():
            masks.append(fmask)
    if frame.mask is not None:
        fmask = np.asarray(frame.mask, dtype=bool)
        if detection and flags is not None:
            # a mask derived from SATURATED-only pixels does not hide them from detection
            only_sat = (flags & int(DQFlag.bad_bits())) == int(DQFlag.SATURATED)
            fmask = fmask & ~only_sat
        if fmask.any():
            masks.append(fmask)
    if extra is not None and extra.any():
        masks.append(extra)
    finite = np.isfinite(data)
    if not finite.all():
        masks.append(~finite)
    if not masks:
        return None
    out = masks[0].copy()
    for m in masks[1:]:
        out |= m
    return out


def saturated_pixels(frame, data, saturation=None):
    """Boolean map of saturated pixels (DQ bit, or at/above the level), or None."""
    sat = None
    flags = getattr(frame, "flags", None)
    if flags is not None:
        sat = (flags & int(DQFlag.SATURATED)) != 0
        if not sat.any():
            sat = None
    level = saturation_level(frame, saturation, data=data)
    if level is not None:
        above = data >= level
        if above.any():
            sat = above if sat is None else (sat | above)
    return sat


def saturation_level(frame, saturation=None, *, data=None):
    """
    The saturation level in the frame's unit, or None.

    The argument when given, else the header's SATURATE (or SATLEVEL), else
    its DATAMAX when it passes a cross-check (at a usual ADC ceiling such as
    65535, or reached by at least 3 pixels of ``data``: archives such as the
    Digitized Sky Survey write the frame's own maximum there), else (with
    ``data``) the image maximum when many pixels share it exactly: a clipped
    ceiling such as a DSLR's 13583 or a 16-bit 65535.
    """
    if saturation is not None:
        if isinstance(saturation, u.Quantity):
            return float(saturation.to_value(frame.unit))
        return float(saturation)
    header = getattr(frame, "meta", None) or {}
    for key in ("SATURATE", "SATLEVEL", "DATAMAX"):
        value = _positive(header.get(key))
        if value is None:
            continue
        if key != "DATAMAX" or datamax_is_saturation(value, data if data is not None else frame.data):
            return value
    if data is not None and data.size:
        return _clipped_ceiling(data)
    return None


def _positive(value):
    """``value`` as a positive float, or None."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def _clipped_ceiling(data):
    """A value near the top of ``data`` shared by far more pixels than any other: a clipped ceiling."""
    stride = max(1, int(math.sqrt(data.size / 20000)))
    sample = data[::stride, ::stride]
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return None
    top = float(np.nanmax(data))
    median = float(np.median(sample))
    if not math.isfinite(top) or top <= median:
        return None
    high = data[data >= median + 0.5 * (top - median)]
    if high.size < 5:
        return None
    values, counts = np.unique(high, return_counts=True)
    j = int(np.argmax(counts))
    others = (counts.sum() - counts[j]) / max(1, counts.size - 1)
    if counts[j] >= 5 and counts[j] >= 10 * max(others, 1.0):
        return float(values[j])
    return None


def electrons_per_unit(frame):
    """Poisson counts per data unit: 1 for electrons, the gain for ADU with a gain, else None."""
    unit = frame.unit
    if unit is None:
        return None
    try:
        if unit.is_equivalent(u.electron):
            return float((1 * unit).to_value(u.electron))
    except (AttributeError, ValueError):
        pass
    if unit == u.adu:
        gain = getattr(frame, "gain", None)
        if gain is not None:
            return float(gain.to_value(u.electron / u.adu))
    return None


def pixel_scale(frame):
    """
    Plate scale in arcsec per pixel, or None.

    From a celestial WCS when there is one, else from XPIXSZ (microns, after
    binning, as MaxIm DL writes it) and FOCALLEN (mm).
    """
    wcs = getattr(frame, "wcs", None)
    if wcs is not None and getattr(wcs, "has_celestial", False):
        try:
            from astropy.wcs.utils import proj_plane_pixel_scales

            scales = proj_plane_pixel_scales(wcs.celestial) * 3600.0
            value = float(np.sqrt(scales[0] * scales[1]))
            if math.isfinite(value) and value > 0:
                return value
        except Exception:
            pass
    header = getattr(frame, "meta", None) or {}
    try:
        pixsize = float(header.get("XPIXSZ"))
        focal = float(header.get("FOCALLEN"))
    except (TypeError, ValueError):
        return None
    if pixsize > 0 and focal > 0:
        return 206.264806 * pixsize / focal
    return None


def exposure_seconds(frame):
    """Exposure time in seconds from the header, or None."""
    value = getattr(frame, "exposure_time", None)
    if value is None:
        return None
    value = float(value.to_value(u.s))
    return value if value > 0 else None
