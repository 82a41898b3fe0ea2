# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Simulated iTelescope.net data with known truth.

Seeded simulators of what a CCD camera on an iTelescope.net telescope
writes, with every value that produced the pixels kept beside them: the
camera (gain, read noise, bias level and structure, dark current, hot pixels,
bad columns and rows, flat fields), and for each light frame the exact WCS,
the stars (real Tycho-2 positions and magnitudes), the PSF, the sky and the
cosmic rays.

- `make_bias_stack`, `make_dark_stack`, `make_flat_stack`, `make_raw_frame`:
  in-memory `~astrophot.RawFrame` objects and their `Truth`, for tests and
  examples. The same ``seed`` gives the same camera in each of them.
- `simulate_night`: a night written to disk as iTelescope delivers it (raw
  lights with iTelescope names, calibration frames, a calibration library of
  masters) and its `Night` truth.
- `make_dithered_frames`, `make_mosaic_frames`: plate-solved frames of one
  field (dithers with cosmic rays and a satellite trail; a 2x2 mosaic with
  sky offsets, gradients and a nebula) and their `DitherTruth`, for stacks
  and mosaics.
- `make_continuum_pair`: a narrow-band/broad-band pair (stars of known
  colours, a nebula emitting only in the line) for continuum subtraction;
  `make_rgb_field`: red, green and blue frames of grey-on-average stars seen
  with unequal channel gains, for colour balance.
- `read_index_stars`, `load_demo_catalog`, `field_stars`, `demo_fields`: the
  real stars.
"""

from ._continuum import ContinuumTruth, make_continuum_pair, make_rgb_field
from ._dithers import DitherTruth, make_dithered_frames, make_mosaic_frames
from ._itelescope_night import DownloadedNight, simulate_itelescope_night
from ._makers import make_bias_stack, make_dark_stack, make_flat_stack, make_raw_frame, make_wcs, zero_point
from ._model import make_detector
from ._night import BAD_FRAME_REASONS, Night, SimulationError, load_night, simulate_night
from ._solved import SolvedTruth, make_solved_frame, sip_wcs
from ._truth import PSF, DetectorTruth, FrameTruth, Truth
from .catalog import (
    CatalogError,
    demo_fields,
    field_stars,
    find_index_files,
    load_demo_catalog,
    read_index_stars,
)

__all__ = [
    "BAD_FRAME_REASONS",
    "CatalogError",
    "ContinuumTruth",
    "DetectorTruth",
    "DitherTruth",
    "DownloadedNight",
    "FrameTruth",
    "Night",
    "PSF",
    "SimulationError",
    "SolvedTruth",
    "Truth",
    "demo_fields",
    "field_stars",
    "find_index_files",
    "load_demo_catalog",
    "load_night",
    "make_bias_stack",
    "make_continuum_pair",
    "make_dark_stack",
    "make_detector",
    "make_dithered_frames",
    "make_flat_stack",
    "make_mosaic_frames",
    "make_raw_frame",
    "make_rgb_field",
    "make_solved_frame",
    "make_wcs",
    "read_index_stars",
    "simulate_itelescope_night",
    "simulate_night",
    "sip_wcs",
    "zero_point",
]
