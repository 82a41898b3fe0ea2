# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""A perfect calibration of simulated raw lights, from their truth (test helper)."""

import astropy.units as u
import numpy as np
from astropy.nddata import StdDevUncertainty

from astrophot.frames import CalibratedFrame, DQFlag


def calibrate_from_truth(raw, truth, *, index=0, flag_defects=True, frame_truth=None):
    """
    The calibrated frame a perfect reduction would make from ``raw`` (electrons).

    Bias, dark and flat come from the simulation's truth; the uncertainty is
    the expected Poisson plus read noise; hot pixels, bad lines, cosmic rays
    and saturated pixels are flagged in ``flags`` when ``flag_defects``.
    """
    det = truth.detector
    ft = frame_truth if frame_truth is not None else truth.frames[index]
    flat = det.flats[ft.filter]
    adu = (
        np.asarray(raw.data, dtype=np.float64) - det.bias - det.expected_dark(ft.exposure, include_bias=False)
    )
    electrons = adu * det.gain / flat
    expected = (
        np.clip(ft.noiseless, 0, None) if ft.noiseless is not None else np.clip(electrons * flat, 0, None)
    )
    sigma = np.sqrt(expected + det.read_noise**2) / flat
    flags = np.zeros(electrons.shape, dtype=np.uint32)
    if flag_defects:
        flags[det.hot_pixel_mask] |= int(DQFlag.HOT)
        if det.bad_columns:
            flags[:, list(det.bad_columns)] |= int(DQFlag.BAD_COLUMN)
        if det.bad_rows:
            flags[list(det.bad_rows), :] |= int(DQFlag.BAD_ROW)
        flags[ft.cosmic_rays] |= int(DQFlag.COSMIC_RAY)
        flags[np.asarray(raw.data) >= det.saturation] |= int(DQFlag.SATURATED)
    return CalibratedFrame(
        electrons.astype(np.float32),
        unit=u.electron,
        uncertainty=StdDevUncertainty(sigma.astype(np.float32)),
        flags=flags,
        meta=raw.meta.copy(),
    )


def expected_snr(stars, truth, radius):
    """Signal-to-noise ratio of each true star in a circular aperture of ``radius`` pixels."""
    sky = truth.sky_level
    area = np.pi * radius**2
    return np.asarray(stars["flux"]) / np.sqrt(
        np.asarray(stars["flux"]) + area * (sky + truth.detector.read_noise**2)
    )


def isolated(stars, radius, *, contrast=0.1):
    """True for each star with no other star brighter than ``contrast`` times it within ``radius``."""
    from scipy.spatial import cKDTree

    x = np.asarray(stars["x"], dtype=float)
    y = np.asarray(stars["y"], dtype=float)
    flux = np.asarray(stars["flux"], dtype=float)
    tree = cKDTree(np.column_stack([x, y]))
    out = np.ones(len(x), dtype=bool)
    for i, neighbours in enumerate(tree.query_ball_point(np.column_stack([x, y]), radius)):
        for j in neighbours:
            if j != i and flux[j] > contrast * flux[i]:
                out[i] = False
                break
    return out
