# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Named data-quality bits carried by frames and bad-pixel maps."""

import enum

import numpy as np

__all__ = ["DQFlag", "flags_to_mask"]


class DQFlag(enum.IntFlag):
    """
    Data-quality bits, one per reason a pixel may be untrustworthy.

    The bits are stored in an unsigned 32-bit integer array (``frame.flags``
    of a science frame, ``data`` of a `~astrophot.BadPixelMap`). A pixel
    whose bits include any of `~astrophot.DQFlag.bad_bits` and not ``REPAIRED`` is
    masked.

    Examples
    --------
    >>> from astrophot import DQFlag
    >>> flags = DQFlag.HOT | DQFlag.REPAIRED
    >>> DQFlag.HOT in flags
    True
    >>> DQFlag.describe(int(flags))
    ['HOT', 'REPAIRED']
    """

    #: Hot pixel (dark current far above the median).
    HOT = 1
    #: Cold pixel (dark or bias far below the median).
    COLD = 2
    #: Part of a bad column.
    BAD_COLUMN = 4
    #: Part of a bad row.
    BAD_ROW = 8
    #: Marked by the user (YAML regions or a mask).
    USER = 16
    #: At or above the saturation level.
    SATURATED = 32
    #: Hit by a cosmic ray.
    COSMIC_RAY = 64
    #: Value replaced by an interpolation of good neighbours.
    REPAIRED = 128
    #: No data (outside the footprint, non-finite value).
    NO_DATA = 256
    #: Flat-field response zero, negative or very low: not divided by.
    LOW_RESPONSE = 512
    #: Dead or weak pixel found in a flat.
    DEAD = 1024
    #: Value was not finite after processing.
    NONFINITE = 2048

    @classmethod
    def bad_bits(cls):
        """
        All bits that make a pixel untrustworthy (everything but REPAIRED).

        Returns
        -------
        DQFlag
            The OR of every flag except ``REPAIRED``.
        """
        value = 0
        for member in cls:
            if member is not cls.REPAIRED:
                value |= int(member)
        return cls(value)

    @classmethod
    def describe(cls, value):
        """
        Return the names of the bits set in an integer ``value``.

        Parameters
        ----------
        value : int or `DQFlag`
            Data-quality bits of one pixel (or their OR).

        Returns
        -------
        list of str
            The flag names, lowest bit first.
        """
        return [m.name for m in cls if int(value) & int(m)]


def flags_to_mask(flags, *, bits=None):
    """
    Derive a boolean mask from an array of `DQFlag` bits.

    Parameters
    ----------
    flags : array-like of int
        Data-quality bits.
    bits : int or `DQFlag`, optional
        The bits that mask a pixel. Default: `~astrophot.DQFlag.bad_bits`.

    Returns
    -------
    `numpy.ndarray` of bool
        True where a pixel has any of ``bits`` set and is not ``REPAIRED``.
    """
    flags = np.asarray(flags)
    bits = int(DQFlag.bad_bits() if bits is None else bits)
    return ((flags & bits) != 0) & ((flags & int(DQFlag.REPAIRED)) == 0)
