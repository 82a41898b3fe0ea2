# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Calibration products: master frames, read noise, bad-pixel maps and the
calibration library that picks the masters for a light frame.

- `make_master_bias`, `make_master_dark`, `make_master_flat`: masters from
  raw frames, combined band by band with each file read once
  (`combine_frames` is the combiner without the checks).
- `measure_read_noise`: read noise from two bias frames.
- `find_bad_pixels`: a `~astrophot.BadPixelMap` from a master dark, a flat
  and user regions; `find_bad_columns`: bad columns and rows of a frame;
  `BadPixelRegions`: the user's bad-pixel YAML.
- `CalibrationLibrary`: index master libraries and select masters.
"""

from astrophot.calibration._badpix import find_bad_columns, find_bad_pixels
from astrophot.calibration._combine import combine_frames
from astrophot.calibration._library import CalibrationEntry, CalibrationLibrary, CalibrationSelection
from astrophot.calibration._masters import make_master_bias, make_master_dark, make_master_flat
from astrophot.calibration._readnoise import ReadNoise, measure_read_noise
from astrophot.calibration._regions import BadPixelRegions

__all__ = [
    "BadPixelRegions",
    "CalibrationEntry",
    "CalibrationLibrary",
    "CalibrationSelection",
    "ReadNoise",
    "combine_frames",
    "find_bad_columns",
    "find_bad_pixels",
    "make_master_bias",
    "make_master_dark",
    "make_master_flat",
    "measure_read_noise",
]
