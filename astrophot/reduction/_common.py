# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Helpers shared by the reduction transforms (private)."""

import logging
import re

import astropy.units as u
import numpy as np

from astrophot.exceptions import FrameMismatchError
from astrophot.frames._input import as_frame as _as_frame
from astrophot.frames._input import check_role

__all__ = [
    "as_frame",
    "check_role",
    "check_compatible",
    "header_float",
    "parse_section",
    "quantity_value",
    "telescope_fact",
]

log = logging.getLogger(__name__)

_SECTION = re.compile(r"^\s*\[\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*\]\s*$")


def as_frame(value, cls, role, *, accept=()):
    """
    ``value`` as a frame of class ``cls`` (None stays None): `astrophot.frames._input.as_frame`.

    Parameters
    ----------
    value : `~astrophot.frames.FrameBase`, str or path-like, or None
    cls : type
        The expected frame class.
    role : str
        What the frame is for (``"bias"``), for messages.
    accept : tuple of type, optional
        Other frame classes accepted as they are.
    """
    return _as_frame(value, cls, role=role, accept=accept, optional=True)


def parse_section(text, shape, *, keyword, source):
    """
    Convert a 1-based inclusive FITS section ``'[x1:x2,y1:y2]'`` to numpy slices.

    Parameters
    ----------
    text : str
        The section, as written in BIASSEC/TRIMSEC/DATASEC.
    shape : tuple of int
        The array shape ``(ny, nx)`` the section refers to.
    keyword, source : str
        For error messages.

    Returns
    -------
    tuple of slice
        ``(rows, columns)``.

    Raises
    ------
    FrameMismatchError
        If the section is malformed or does not fit in ``shape``.

    Examples
    --------
    >>> parse_section("[1:10,2:5]", (8, 20), keyword="TRIMSEC", source="x.fits")
    (slice(1, 5, None), slice(0, 10, None))
    """
    match = _SECTION.match(str(text))
    if match is None:
        raise FrameMismatchError(f"{source}: {keyword} = {text!r} is not a FITS section like '[1:100,1:200]'")
    x1, x2, y1, y2 = (int(v) for v in match.groups())
    x1, x2 = sorted((x1, x2))
    y1, y2 = sorted((y1, y2))
    ny, nx = shape
    if x1 < 1 or y1 < 1 or x2 > nx or y2 > ny:
        raise FrameMismatchError(
            f"{source}: {keyword} = {text!r} does not fit in a {nx}x{ny} (NAXIS1xNAXIS2) image"
        )
    return slice(y1 - 1, y2), slice(x1 - 1, x2)


def header_float(header, *keys):
    """First of ``keys`` in ``header`` whose value is a finite number (numeric strings accepted)."""
    for key in keys:
        if key in header:
            value = header[key]
            if isinstance(value, bool):
                continue
            try:
                number = float(str(value).strip())
            except ValueError:
                continue
            if np.isfinite(number):
                return key, number
    return None, None


def telescope_fact(frame, attribute):
    """
    A fact (``gain``, ``read_noise``, ``saturation`` ...) from the iTelescope table.

    Returns `None` when the frame's telescope is unknown or the fact is not in
    the table.
    """
    name = frame.telescope
    if not name:
        return None
    try:
        from astrophot.instruments.itelescope import get_telescope

        telescope = get_telescope(name)
    except Exception:
        return None
    if attribute == "saturation":
        value = getattr(telescope, "effective_saturation", None)
        if value is None:
            value = getattr(telescope, "saturation", None)
    else:
        value = getattr(telescope, attribute, None)
    return value


def _origin(frame):
    values = []
    for key in ("XORGSUBF", "YORGSUBF"):
        value = frame.header.get(key, 0)
        try:
            values.append(int(value))
        except (TypeError, ValueError):
            values.append(0)
    return tuple(values)


def check_compatible(light, master, role, *, shape=None):
    """
    Raise `FrameMismatchError` unless ``master`` can calibrate ``light``.

    Compares the shape (``shape`` overrides the light's, after trimming),
    the binning and the subframe origin (XORGSUBF/YORGSUBF). The message
    names both files.
    """
    shape = tuple(light.data.shape) if shape is None else tuple(shape)
    problems = []
    if tuple(master.data.shape) != shape:
        problems.append(
            f"shape {master.data.shape[1]}x{master.data.shape[0]} (NAXIS1xNAXIS2) != {shape[1]}x{shape[0]}"
        )
    if master.binning != light.binning:
        problems.append(
            f"binning {master.binning[0]}x{master.binning[1]} != {light.binning[0]}x{light.binning[1]}"
        )
    if _origin(master) != _origin(light):
        problems.append(f"subframe origin (XORGSUBF, YORGSUBF) {_origin(master)} != {_origin(light)}")
    if problems:
        raise FrameMismatchError(
            f"the {role} {master.name} does not match the light frame {light.name}: " + "; ".join(problems)
        )


def quantity_value(value, unit, *, what, equivalent=None):
    """A plain float in ``unit`` from a number or a `~astropy.units.Quantity`."""
    if value is None:
        return None
    if isinstance(value, u.Quantity):
        try:
            return float(value.to_value(unit))
        except u.UnitConversionError:
            if equivalent is not None:
                return float(value.to_value(equivalent))
            raise ValueError(f"{what} must be in {unit}, got {value.unit}") from None
    return float(value)
