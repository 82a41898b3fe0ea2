# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
find_stars on colour-filter-array (Bayer) mosaics against simulated truth.

A simulated grey frame becomes a mosaic by multiplying each pixel of the
2 x 2 cell by a known channel response and adding a known sky offset per
channel, as a DSLR's raw frame has. The truth is the simulation's PSF and
the responses put in.
"""

import numpy as np
import pytest
from astropy.nddata import StdDevUncertainty

from astrophot import CalibratedFrame
from astrophot.analysis import find_stars, measure_psf
from astrophot.datasets import make_raw_frame

from ._truthcal import calibrate_from_truth

#: responses of the (row, column) = (0, 0), (0, 1), (1, 0), (1, 1) pixels: a G B / R G cell
RESPONSES = np.array([1.3, 0.75, 0.65, 1.3])
SKY_OFFSETS = np.array([40.0, -25.0, -30.0, 35.0])


def _cell_map(values, shape):
    ny, nx = shape
    return np.tile(np.asarray(values, dtype=np.float64).reshape(2, 2), ((ny + 1) // 2, (nx + 1) // 2))[
        :ny, :nx
    ]


@pytest.fixture(scope="module")
def grey_and_mosaic():
    raw, truth = make_raw_frame(shape=(400, 500), fwhm=1.6, seed=21)
    grey = calibrate_from_truth(raw, truth)
    gain = _cell_map(RESPONSES, grey.shape)
    data = np.asarray(grey.data, dtype=np.float64) * gain + _cell_map(SKY_OFFSETS, grey.shape)
    mosaic = CalibratedFrame(
        data.astype(np.float32),
        unit=grey.unit,
        uncertainty=StdDevUncertainty(grey.uncertainty.array * gain),
        flags=grey.flags,
        meta=grey.meta.copy(),
    )
    return grey, mosaic, truth


def test_mosaic_found_from_the_data_and_measured_like_grey(grey_and_mosaic):
    grey, mosaic, truth = grey_and_mosaic
    stars = find_stars(mosaic)
    assert stars.meta["cfa"] == "2x2"
    expected = RESPONSES / RESPONSES.mean()
    np.testing.assert_allclose(stars.meta["cfa_gains"], expected, atol=0.02)
    psf = measure_psf(mosaic, stars=stars)
    assert abs(psf.fwhm / truth.psf.fwhm - 1) < 0.05, (psf.fwhm, truth.psf.fwhm)
    assert abs(psf.ellipticity - truth.psf.ellipticity) < 0.03
    # the same stars as on the grey frame, at the same places
    reference = find_stars(grey)
    assert "cfa" not in reference.meta  # a grey frame is not taken for a mosaic
    assert abs(len(stars) - len(reference)) < 0.05 * len(reference)
    bright = reference[(reference["flags"] == 0) & (reference["snr"] > 50)]
    xy = np.column_stack([stars["x"].value, stars["y"].value])
    for row in bright:
        offset = np.min(np.hypot(xy[:, 0] - row["x"].value, xy[:, 1] - row["y"].value))
        assert offset < 0.05


def test_unbalanced_fit_of_a_mosaic_is_too_narrow(grey_and_mosaic):
    """Why it is needed: fitted as it is, the mosaic's pattern makes the stars look sharper than the truth."""
    _, mosaic, truth = grey_and_mosaic
    stars = find_stars(mosaic, cfa=False)
    assert "cfa" not in stars.meta
    assert measure_psf(mosaic, stars=stars).fwhm < 0.9 * truth.psf.fwhm


def test_header_pattern_and_switch(grey_and_mosaic):
    grey, mosaic, truth = grey_and_mosaic
    named = mosaic.copy()
    named.meta["BAYERPAT"] = "RGGB"
    before = np.array(named.data, copy=True)
    stars = find_stars(named)
    assert np.array_equal(named.data, before)  # the input is not modified
    assert stars.meta["cfa"] == "RGGB"
    # forcing it on a grey frame measures responses of 1 and changes nothing that matters
    forced = find_stars(grey, cfa=True)
    np.testing.assert_allclose(forced.meta["cfa_gains"], 1.0, atol=0.02)
    assert abs(measure_psf(grey, stars=forced).fwhm / truth.psf.fwhm - 1) < 0.05
