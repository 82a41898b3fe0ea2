# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Science frames: calibrated and plate-solved."""

import astropy.units as u

from astrophot.frames._base import FrameBase
from astrophot.frames._hdus import RECORD, TABLE

__all__ = ["CalibratedFrame", "SolvedFrame"]


class CalibratedFrame(FrameBase):
    """
    A calibrated science frame, in electrons by default (ADU on request).

    It carries a `~astropy.nddata.StdDevUncertainty`, `~astrophot.DQFlag`
    bits in ``flags`` and a boolean ``mask`` derived from them.

    Parameters
    ----------
    data : array-like, `~astropy.nddata.CCDData` or frame
        The pixels (or a frame to convert).
    *args, **kwargs
        Passed to `~astrophot.frames.FrameBase` (``provenance``, ``flags``,
        ``source_path``) and `~astropy.nddata.CCDData` (``unit``,
        ``uncertainty``, ``mask``, ``wcs``, ``meta`` ...). Without a ``mask``
        and with ``flags``, the mask is derived from the flags.
    """

    _default_unit = u.electron

    def __init__(self, data, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        if self.mask is None and self.flags is not None:
            self.mask = self.mask_from_flags()


class SolvedFrame(CalibratedFrame):
    """
    A calibrated frame with a verified celestial WCS.

    Extra attributes (keyword-only, kept by ``copy`` and slicing):

    stars : `~astropy.table.QTable` or None
        The star list used for the solution, with ``ra``/``dec`` columns.
    solution : dict or None
        The solution record (backend, matched stars, RMS, scale, ...).
    """

    _carried = ("stars", "solution")
    _extensions = (("stars", TABLE, "STARS", None), ("solution", RECORD, "SOLUTION", "APSOLN"))
