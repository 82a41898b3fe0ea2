# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Raw frames, as read from the camera."""

import astropy.units as u

from astrophot.frames._base import FrameBase

__all__ = ["RawFrame"]


class RawFrame(FrameBase):
    """
    A frame as the camera wrote it, in ADU.

    Unsigned 16-bit data stored with BZERO arrive as unsigned integers and
    MaxIm DL's ``PEDESTAL`` has been added (see `~astrophot.read_frame`).
    A raw frame is never modified or overwritten by astrophot.

    Examples
    --------
    >>> import numpy as np
    >>> from astrophot import RawFrame
    >>> raw = RawFrame(np.zeros((4, 5), dtype=np.uint16), meta={"EXPTIME": 30.0})
    >>> raw.unit, raw.exposure_time
    (Unit("adu"), <Quantity 30. s>)
    """

    _default_unit = u.adu

    # a property, documented as an attribute: no Returns section (RT01 ignored)
    @property
    def image_type(self):  # numpydoc ignore=RT01
        """IMAGETYP normalised to 'light', 'bias', 'dark', 'flat' or None."""
        from astrophot.io._fits import classify_imagetyp

        return classify_imagetyp(self.header.get("IMAGETYP"))
