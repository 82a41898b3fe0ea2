# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Image analysis: stars and PSF, sky background, image arithmetic, and frame quality.

- `find_stars`, `measure_psf`: star lists with positions, fluxes and Moffat
  shapes; the PSF of a frame and its variation across the field.
- `estimate_background` (a `Background`), `subtract_background`: the smooth sky and its RMS.
- `image_arithmetic`: ``+ - * /`` between frames, or a frame and a number,
  with uncertainties, masks, flags and provenance.
- `assess_quality`, `summarize_quality`, `select_frames`,
  `write_quality_report`: per-frame quality, the night's table, accepted and
  rejected frames with reasons and stacking weights, and a report for a person.
"""

from astrophot.analysis.arithmetic import image_arithmetic
from astrophot.analysis.background import Background, estimate_background, subtract_background
from astrophot.analysis.psf import PSFSummary, measure_psf
from astrophot.analysis.quality import (
    DEFAULT_RULES,
    QualityRecord,
    assess_quality,
    select_frames,
    summarize_quality,
)
from astrophot.analysis.report import make_thumbnail, write_quality_report
from astrophot.analysis.stars import StarFlag, ds9_regions, find_stars, select_psf_stars

__all__ = [
    "DEFAULT_RULES",
    "Background",
    "PSFSummary",
    "QualityRecord",
    "StarFlag",
    "assess_quality",
    "ds9_regions",
    "estimate_background",
    "find_stars",
    "image_arithmetic",
    "make_thumbnail",
    "measure_psf",
    "select_frames",
    "select_psf_stars",
    "subtract_background",
    "summarize_quality",
    "write_quality_report",
]
