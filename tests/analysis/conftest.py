# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Simulated frames with known truth for the analysis tests (made once per session)."""

import pytest

from astrophot.datasets import make_raw_frame

from ._truthcal import calibrate_from_truth


def _calibrated(**options):
    raw, truth = make_raw_frame(**options)
    return calibrate_from_truth(raw, truth), truth


@pytest.fixture(scope="session")
def round_frame():
    """A 600 x 800 calibrated frame, round Moffat PSF (FWHM 2.5 px), defects flagged."""
    return _calibrated(shape=(600, 800), fwhm=2.5, seed=3)


@pytest.fixture(scope="session")
def elliptical_frame():
    """A 600 x 800 calibrated frame, elliptical PSF (FWHM 3.5 px, e = 0.2, theta = 40 deg)."""
    return _calibrated(shape=(600, 800), fwhm=3.5, ellipticity=0.2, theta=40.0, seed=7)


@pytest.fixture(scope="session")
def steep_sky_frame():
    """A calibrated frame with stars and a steep sky gradient (30 % across the frame)."""
    return _calibrated(shape=(500, 700), fwhm=3.0, sky_slope=(0.06, -0.04), seed=11)
