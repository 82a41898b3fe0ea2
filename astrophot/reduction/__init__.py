# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Reduction: from a raw light frame to a calibrated, repaired, annotated frame.

- `calibrate_frame`: bias, overscan, dark, flat, gain, uncertainty and
  data-quality flags.
- `fix_bad_pixels`: replace flagged pixels from their good neighbours.
- `reject_cosmic_rays`: L.A.Cosmic (astroscrappy) with parameters taken from
  the frame.
- `add_metadata`: target, site, time and sky-geometry keywords, offline.
"""

from astrophot.reduction._badpix import fix_bad_pixels
from astrophot.reduction._calibrate import calibrate_frame
from astrophot.reduction._cosmics import reject_cosmic_rays
from astrophot.reduction._metadata import add_metadata

__all__ = ["add_metadata", "calibrate_frame", "fix_bad_pixels", "reject_cosmic_rays"]
