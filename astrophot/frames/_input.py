# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The one input contract of the stages (private).

Every stage that takes a frame accepts what `as_frame` accepts: an astrophot
frame, or the path of a frame file (read with `~astrophot.io.read_frame`).
The analysis and combination stages also take a `~astropy.nddata.CCDData`,
an `~astropy.nddata.NDData`, a `~astropy.units.Quantity` or a 2-D array
(``wrap=True``); the reduction stages want typed frames (``cls``), whose own
type stamp and IMAGETYP must agree with the role they are given in
(`check_role`).
"""

import os

import astropy.units as u
import numpy as np
from astropy.nddata import CCDData, NDData

from astrophot.exceptions import FrameMismatchError, FrameTypeError
from astrophot.frames._base import FrameBase

__all__ = ["as_frame", "check_role"]

#: The kind of data each frame class holds (for `check_role`).
_KIND_OF_TYPE = {
    "MasterBias": "bias",
    "MasterDark": "dark",
    "MasterFlat": "flat",
    "BadPixelMap": "bad-pixel map",
    "CalibratedFrame": "light",
    "SolvedFrame": "light",
}
_EXPECTED_KIND = {
    "MasterBias": "bias",
    "MasterDark": "dark",
    "MasterFlat": "flat",
    "BadPixelMap": "bad-pixel map",
}


def _kinds_claimed(frame):
    """(what, kind) pairs the frame says about itself: its type stamp and IMAGETYP."""
    from astrophot.io import classify_imagetyp

    claims = []
    stamp = getattr(frame, "stamped_type", None)
    if stamp in _KIND_OF_TYPE:
        claims.append((f"its type stamp says {stamp}", _KIND_OF_TYPE[stamp]))
    imagetyp = frame.header.get("IMAGETYP") if frame.header is not None else None
    kind = classify_imagetyp(imagetyp)
    if kind is not None and kind != "badpix":
        claims.append((f"IMAGETYP is {str(imagetyp).strip()!r}", kind.replace("master ", "")))
    return claims


def check_role(frame, cls, role):
    """
    Refuse a frame whose own type stamp or IMAGETYP names another kind than its role.

    A master dark given as the bias, or a raw light given as the flat, is a
    `~astrophot.exceptions.FrameTypeError` with the reason. Frames that say
    nothing about their kind pass. Returns ``frame``.
    """
    expected = _EXPECTED_KIND.get(cls.__name__, "light" if role == "light frame" else None)
    if expected is None:
        return frame
    for what, kind in _kinds_claimed(frame):
        if kind != expected:
            raise FrameTypeError(
                f"{frame.name}: given as the {role} but {what} (a {kind}, not a {expected}); "
                "pass the right file, or fix the card if the file is mislabelled"
            )
    return frame


def _is_path(value):
    return isinstance(value, (str, bytes)) or hasattr(value, "__fspath__")


def _wrapped(value):
    """A CCDData, NDData, Quantity or array as a `FrameBase` (sharing its arrays), or None."""
    if isinstance(value, CCDData):
        return FrameBase(value, copy=False)
    if isinstance(value, NDData):
        return FrameBase(
            value.data, unit=value.unit or u.dimensionless_unscaled, mask=value.mask, meta=value.meta
        )
    if isinstance(value, u.Quantity):
        return FrameBase(value.value, unit=value.unit)
    if isinstance(value, np.ndarray):
        return FrameBase(value, unit=u.dimensionless_unscaled)
    return None


def _typed(value, cls, role, accept):
    """A frame given for ``role``: a ``cls`` (or an ``accept`` class) passes, other frames are refused."""
    if isinstance(value, (cls, *accept)):
        return check_role(value, cls, role) if isinstance(value, FrameBase) else value
    if isinstance(value, FrameBase):
        raise FrameTypeError(
            f"{value.name}: the {role} must be a {cls.__name__}, not a {value.frame_type} "
            f"(read it with read_frame(path, frame_type={cls.__name__!r}) if the file is mislabelled)"
        )
    raise FrameTypeError(f"the {role} must be a {cls.__name__} or a path, not {type(value).__name__}")


def as_frame(value, cls=None, *, role, accept=(), wrap=False, optional=False):
    """
    ``value`` as the frame a stage works on.

    Parameters
    ----------
    value : frame, str or path-like, or (with ``wrap``) CCDData, NDData, Quantity or array
        A path is read with `~astrophot.io.read_frame` (as a ``cls`` when given).
    cls : type, optional
        The frame class the stage wants; other frames are refused with the
        reason, and the frame's own kind must agree with ``role``
        (`check_role`). Default: any frame.
    role : str
        What the frame is for (``"bias"``, ``"find_stars"``), for messages.
    accept : tuple of type, optional
        Other classes accepted as they are.
    wrap : bool, optional
        Also accept a CCDData, NDData, Quantity or array, as a
        `~astrophot.frames.FrameBase` sharing its arrays.
    optional : bool, optional
        None is returned as None (a master not given) instead of refused.

    Returns
    -------
    frame or None
        A 2-D image.

    Raises
    ------
    astrophot.exceptions.FrameTypeError
        ``value`` is of another kind than the stage takes.
    astrophot.exceptions.FrameMismatchError
        The image is not 2-D.
    astrophot.exceptions.FrameReadError
        A path cannot be read.

    Examples
    --------
    >>> import numpy as np
    >>> from astrophot.frames._input import as_frame
    >>> as_frame(np.zeros((3, 4)), role="find_stars", wrap=True).shape
    (3, 4)
    >>> as_frame(None, role="find_stars", wrap=True)
    Traceback (most recent call last):
    ...
    astrophot.exceptions.FrameTypeError: find_stars needs a frame, a frame file's path, CCDData or a 2-D array, not NoneType
    """
    if value is None and optional:
        return None
    if _is_path(value):
        from astrophot.io import read_frame

        frame = read_frame(os.fsdecode(value) if isinstance(value, bytes) else value, frame_type=cls)
        frame = check_role(frame, cls, role) if cls is not None else frame
    elif cls is not None:
        frame = _typed(value, cls, role, accept)
    elif isinstance(value, (FrameBase, *accept)):
        frame = value
    else:
        frame = _wrapped(value) if wrap else None
        if frame is None:
            kinds = (
                "a frame, a frame file's path, CCDData or a 2-D array"
                if wrap
                else "a frame or a frame file's path"
            )
            raise FrameTypeError(f"{role} needs {kinds}, not {type(value).__name__}")
    if np.ndim(frame.data) != 2:
        name = getattr(frame, "name", None) or f"<in-memory {type(frame).__name__}>"
        raise FrameMismatchError(f"{name}: {role} needs a 2-D image, not shape {np.shape(frame.data)}")
    return frame
