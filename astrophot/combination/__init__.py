# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Combination of solved frames: resampling onto a common grid, and, built on it,
stacks, mosaics, continuum subtraction and colour composites.

The shared resampling engine is `astrophot.combination._core` (``pixel_map``,
``resample_band``); the public functions here are thin wrappers around it.

- `stack_frames`: solved frames of one target and filter to one deep
  `~astrophot.StackedFrame` with coverage, exposure, weight and rejection maps
  (the shared band-by-band driver is `astrophot.combination._combine`).
- `make_mosaic`: pointings that only partly overlap on one grid, their
  backgrounds matched (`match_backgrounds`: per-frame planes from one
  least-squares solution over all the overlaps, a `BackgroundMatch` with the
  residual of every overlap and a seam map), as a `~astrophot.StackedFrame`.
- `subtract_continuum`: a narrow-band frame minus its scaled, PSF-matched
  broad-band frame, a `~astrophot.frames.LineFrame`;
  `plot_continuum_diagnostics` draws its star figures.
- `make_color_composite`: three frames (or a palette of filters) to a
  `ColorComposite` picture, written as TIFF, PNG, JPEG or a FITS cube.
"""

from astrophot.combination._grid import find_optimal_wcs
from astrophot.combination._match import BackgroundMatch, match_backgrounds
from astrophot.combination.color import ColorComposite, make_color_composite
from astrophot.combination.continuum import plot_continuum_diagnostics, subtract_continuum
from astrophot.combination.mosaic import make_mosaic
from astrophot.combination.resample import resample_frame
from astrophot.combination.stack import stack_frames

__all__ = [
    "BackgroundMatch",
    "ColorComposite",
    "find_optimal_wcs",
    "make_color_composite",
    "make_mosaic",
    "match_backgrounds",
    "plot_continuum_diagnostics",
    "resample_frame",
    "stack_frames",
    "subtract_continuum",
]
