# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Master calibration frames and bad-pixel maps."""

import astropy.units as u
import numpy as np

from astrophot.frames._base import FrameBase
from astrophot.frames.dqflags import DQFlag, flags_to_mask

__all__ = ["BadPixelMap", "MasterBias", "MasterDark", "MasterFlat"]


class _Master(FrameBase):
    """A combined calibration frame; ``n_rejected`` counts rejected inputs per pixel."""

    _carried = ("n_rejected",)
    _extensions = (("n_rejected", np.uint16, "NREJECT", None),)


class MasterBias(_Master):
    """
    A combined bias frame in ADU, with its uncertainty.

    ``n_rejected`` (uint16 array or None) counts the inputs rejected at each pixel.
    """

    _default_unit = u.adu


class MasterDark(_Master):
    """
    A combined dark frame in ADU, with its uncertainty.

    iTelescope's ``CALSTAT`` card says whether the bias is still in the dark:
    ``'M'`` (bias included) or ``'BM'`` (bias removed).
    """

    _default_unit = u.adu

    # a property, documented as an attribute: no Returns section (RT01 ignored)
    @property
    def bias_subtracted(self):  # numpydoc ignore=RT01
        """True if the bias was removed (CALSTAT contains 'B'), False if not, None if unknown."""
        calstat = str(self.header.get("CALSTAT", "")).strip().upper()
        if not calstat:
            return None
        return "B" in calstat


class MasterFlat(_Master):
    """
    A combined, normalised flat field (dimensionless, median 1).

    Flats from other software (iTelescope's library) may arrive in ADU and
    unnormalised; `~astrophot.calibrate_frame` normalises what it is given.
    """

    _default_unit = u.dimensionless_unscaled


class BadPixelMap(FrameBase):
    """
    A map of `~astrophot.DQFlag` bits: ``data`` holds the bits (uint32).

    Parameters
    ----------
    data : array-like of int, `~astropy.nddata.CCDData` or frame
        The bits (stored as uint32); ``mask`` is derived from them
        (`~astrophot.frames.flags_to_mask`).
    *args, **kwargs
        Passed to `~astrophot.frames.FrameBase` and `~astropy.nddata.CCDData`.

    Examples
    --------
    >>> import numpy as np
    >>> from astrophot import BadPixelMap, DQFlag
    >>> bits = np.zeros((3, 3), dtype=np.uint32)
    >>> bits[1, 1] = DQFlag.HOT
    >>> bpm = BadPixelMap(bits)
    >>> int(bpm.mask.sum()), bpm.count(DQFlag.HOT)
    (1, 1)
    """

    _default_unit = u.dimensionless_unscaled

    def __init__(self, data, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        if self.data.dtype != np.uint32:
            self.data = np.asarray(self.data).astype(np.uint32)
        # the mask is derived from the bits
        self.mask = flags_to_mask(self.data)

    def count(self, flag=None):
        """
        Number of pixels with ``flag`` set (any bad bit when None).

        Parameters
        ----------
        flag : int or `~astrophot.DQFlag`, optional
            The bits counted; default `~astrophot.DQFlag.bad_bits`.

        Returns
        -------
        int
            Pixels with any of those bits set.
        """
        bits = int(DQFlag.bad_bits() if flag is None else flag)
        return int(np.count_nonzero(self.data & bits))
