# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Helpers of the combination tests: target grids."""

import numpy as np

from astrophot.datasets import sip_wcs

__all__ = ["rotated_grid"]


def rotated_grid(frame_wcs, shape, *, rotation=0.0, scale_ratio=1.0, shift=(0.0, 0.0), margin=1.3):
    """A TAN grid at the frame's tangent point: rotated, scaled (output px / input px) and shifted."""
    scale = 3600.0 * np.sqrt(abs(np.linalg.det(frame_wcs.celestial.pixel_scale_matrix))) * scale_ratio
    center = frame_wcs.pixel_to_world((shape[1] - 1) / 2, (shape[0] - 1) / 2)
    side = int(np.ceil(max(shape) * margin / scale_ratio))
    w = sip_wcs(center, (side, side), scale, rotation, distortion=0.0, offset=shift)
    return w, (side, side)
