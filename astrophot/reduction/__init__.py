# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Reduction: from a raw light frame to a calibrated, repaired, annotated frame.

- `calibrate_frame`: bias, overscan, dark, flat, gain, uncertainty and
  data-quality flags; `prepare_calibration` reads, checks and hashes a set of
  masters once into a picklable `CalibrationPlan` for many lights.
- `fix_bad_pixels`: replace flagged pixels from their good neighbours
  (`REPAIRABLE` says which flags by default).
- `reject_cosmic_rays`: L.A.Cosmic (astroscrappy) with parameters taken from
  the frame (`estimate_fwhm` measures the stellar FWHM).
- `add_metadata`: target, site, time and sky-geometry keywords, offline;
  `resolve_name` (opt-in network, bounded by a time-out) and
  `load_keywords` (the user's YAML of keyword values) help it.
"""

from astrophot.reduction._badpix import REPAIRABLE, fix_bad_pixels
from astrophot.reduction._calibrate import CalibrationPlan, calibrate_frame, prepare_calibration
from astrophot.reduction._cosmics import estimate_fwhm, reject_cosmic_rays
from astrophot.reduction._metadata import NameResolveError, add_metadata, load_keywords, resolve_name

__all__ = [
    "CalibrationPlan",
    "NameResolveError",
    "REPAIRABLE",
    "add_metadata",
    "calibrate_frame",
    "estimate_fwhm",
    "fix_bad_pixels",
    "load_keywords",
    "prepare_calibration",
    "reject_cosmic_rays",
    "resolve_name",
]
