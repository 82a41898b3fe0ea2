# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Combination of solved frames: resampling onto a common grid, and, built on it,
stacks, mosaics, continuum subtraction and colour composites.

The shared resampling engine is `astrophot.combination._core` (``pixel_map``,
``resample_band``); the public functions here are thin wrappers around it.
"""

from astrophot.combination._grid import find_optimal_wcs
from astrophot.combination.resample import resample_frame

__all__ = ["find_optimal_wcs", "resample_frame"]
