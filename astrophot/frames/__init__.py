# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Typed frames: `~astropy.nddata.CCDData` subclasses with provenance."""

from astrophot.frames._base import FrameBase, data_checksum
from astrophot.frames.dqflags import DQFlag, flags_to_mask
from astrophot.frames.masters import BadPixelMap, MasterBias, MasterDark, MasterFlat
from astrophot.frames.products import LineFrame, ResampledFrame, StackedFrame
from astrophot.frames.raw import RawFrame
from astrophot.frames.science import CalibratedFrame, SolvedFrame

__all__ = [
    "BadPixelMap",
    "CalibratedFrame",
    "DQFlag",
    "FrameBase",
    "LineFrame",
    "MasterBias",
    "MasterDark",
    "MasterFlat",
    "RawFrame",
    "ResampledFrame",
    "SolvedFrame",
    "StackedFrame",
    "data_checksum",
    "flags_to_mask",
]

#: Frame classes by name.
FRAME_TYPES = {
    cls.__name__: cls
    for cls in (
        RawFrame,
        MasterBias,
        MasterDark,
        MasterFlat,
        BadPixelMap,
        CalibratedFrame,
        SolvedFrame,
        ResampledFrame,
        LineFrame,
        StackedFrame,
    )
}
