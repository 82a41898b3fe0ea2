# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
astrophot: raw CCD frames from iTelescope.net (or any CCD/CMOS camera) to
calibrated, plate-solved, quality-graded frames, mosaics and colour composites.

The public names are imported lazily, so ``import astrophot`` stays fast.
"""

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("astrophot-pipeline")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0.dev0"

#: Public name -> module that defines it.
_PUBLIC = {
    # frames
    "RawFrame": "astrophot.frames",
    "MasterBias": "astrophot.frames",
    "MasterDark": "astrophot.frames",
    "MasterFlat": "astrophot.frames",
    "BadPixelMap": "astrophot.frames",
    "CalibratedFrame": "astrophot.frames",
    "SolvedFrame": "astrophot.frames",
    "ResampledFrame": "astrophot.frames",
    "LineFrame": "astrophot.frames",
    "StackedFrame": "astrophot.frames",
    "DQFlag": "astrophot.frames",
    # I/O
    "read_frame": "astrophot.io",
    "write_frame": "astrophot.io",
    # provenance
    "Provenance": "astrophot.provenance",
    "ProcessingStep": "astrophot.provenance",
    "FrameReference": "astrophot.provenance",
    # calibration products
    "make_master_bias": "astrophot.calibration",
    "make_master_dark": "astrophot.calibration",
    "make_master_flat": "astrophot.calibration",
    "measure_read_noise": "astrophot.calibration",
    "find_bad_pixels": "astrophot.calibration",
    "find_bad_columns": "astrophot.calibration",
    "BadPixelRegions": "astrophot.calibration",
    "CalibrationLibrary": "astrophot.calibration",
    # reduction
    "calibrate_frame": "astrophot.reduction",
    "prepare_calibration": "astrophot.reduction",
    "CalibrationPlan": "astrophot.reduction",
    "fix_bad_pixels": "astrophot.reduction",
    "reject_cosmic_rays": "astrophot.reduction",
    "add_metadata": "astrophot.reduction",
    # analysis
    "find_stars": "astrophot.analysis",
    "measure_psf": "astrophot.analysis",
    "estimate_background": "astrophot.analysis",
    "Background": "astrophot.analysis",
    "subtract_background": "astrophot.analysis",
    "image_arithmetic": "astrophot.analysis",
    "assess_quality": "astrophot.analysis",
    "summarize_quality": "astrophot.analysis",
    "select_frames": "astrophot.analysis",
    # astrometry
    "solve_astrometry": "astrophot.astrometry",
    # combination
    "find_optimal_wcs": "astrophot.combination",
    "resample_frame": "astrophot.combination",
    "stack_frames": "astrophot.combination",
    "make_mosaic": "astrophot.combination",
    # batch
    "process_night": "astrophot.pipeline",
    # combination
    "subtract_continuum": "astrophot.combination",
    "make_color_composite": "astrophot.combination",
}

#: Names of the design that later stages add (combination and the night runner).
_PLANNED = {}

__all__ = sorted([*_PUBLIC, "__version__"])


def __getattr__(name):
    module = _PUBLIC.get(name)
    if module is None:
        if name in _PLANNED:
            raise AttributeError(
                f"astrophot.{name} ({_PLANNED[name]}) is part of the design but not implemented in "
                f"astrophot {__version__} yet"
            )
        raise AttributeError(f"module 'astrophot' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    # the API only (not the helpers this module imports)
    return list(__all__)
