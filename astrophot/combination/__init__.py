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

import importlib

#: Public name -> the module that defines it. The names are imported on first use, so
#: ``astrophot resample`` loads the resampling engine without the mosaic's background
#: matching, the continuum's photometry and the colour writers (and what they import).
_NAMES = {
    "BackgroundMatch": "astrophot.combination._match",
    "ColorComposite": "astrophot.combination.color",
    "find_optimal_wcs": "astrophot.combination._grid",
    "make_color_composite": "astrophot.combination.color",
    "make_mosaic": "astrophot.combination.mosaic",
    "match_backgrounds": "astrophot.combination._match",
    "plot_continuum_diagnostics": "astrophot.combination.continuum",
    "resample_frame": "astrophot.combination.resample",
    "stack_frames": "astrophot.combination.stack",
    "subtract_continuum": "astrophot.combination.continuum",
}

__all__ = sorted(_NAMES)


def __getattr__(name):
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'astrophot.combination' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_NAMES})
