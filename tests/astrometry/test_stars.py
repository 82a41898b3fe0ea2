# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The star list fed to the solvers: usable stars, spread over the field, bad corners excluded."""

import numpy as np
import pytest
from astropy.table import QTable

from astrophot.astrometry._stars import normalize_stars, select_stars
from astrophot.exceptions import AstrometryError

SHAPE = (400, 600)


def _uniform(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, SHAPE[1] - 1, n), rng.uniform(0, SHAPE[0] - 1, n), rng.uniform(1, 100, n)


def test_selection_is_spread_over_the_field():
    x, y, flux = _uniform(400)
    # the 100 brightest stars all crowd into the left third
    flux[x < 200] *= 1000
    chosen = select_stars(x, y, flux, np.ones(len(x), bool), SHAPE, n_max=48)
    # every cell of the (4 x 6) grid contributes in the first rounds
    cells = set(zip((y[chosen[:24]] / 100).astype(int), (x[chosen[:24]] / 100).astype(int)))
    assert len(cells) == 24
    # within a round the brightest come first: the first star is the brightest of all
    assert chosen[0] == np.argmax(flux)
    assert len(chosen) == 48 and len(set(chosen)) == 48


def test_bad_corner_and_masked_pixels_are_excluded():
    x, y, flux = _uniform(300)
    rng = np.random.default_rng(3)
    # a bright artefact in the top-right corner: 200 spurious detections
    ax, ay = rng.uniform(500, 599, 200), rng.uniform(300, 399, 200)
    x, y = np.r_[x, ax], np.r_[y, ay]
    flux = np.r_[flux, np.full(200, 1e6)]
    mask = np.zeros(SHAPE, bool)
    mask[:, 250:260] = True  # a bad column band
    chosen = select_stars(x, y, flux, np.ones(len(x), bool), SHAPE, mask=mask, n_max=500)
    assert not np.any((x[chosen] >= 500) & (y[chosen] >= 300))  # the corner cell is ignored
    assert not np.any((np.round(x[chosen]) >= 250) & (np.round(x[chosen]) < 260))
    # without the automatic corner test the artefacts would come first
    plain = select_stars(x, y, flux, np.ones(len(x), bool), SHAPE, exclude_corners=False, n_max=500)
    assert np.any((x[plain] >= 500) & (y[plain] >= 300))
    # a fixed corner radius removes stars near every corner
    fixed = select_stars(x, y, flux, np.ones(len(x), bool), SHAPE, exclude_corners=0.2, n_max=500)
    for cx, cy in ((0, 0), (600, 0), (0, 400), (600, 400)):
        assert np.all(np.hypot(x[fixed] - cx, y[fixed] - cy) > 0.2 * 0.5 * np.hypot(600, 400))


def test_normalize_reads_flags_and_units():
    import astropy.units as u

    table = QTable(
        {
            "x": [10.0, 20.0, 30.0, 40.0, 50.0] * u.pix,
            "y": [1.0, 2.0, 3.0, 4.0, 5.0] * u.pix,
            "flux": [5.0, 4.0, 3.0, 2.0, 1.0] * u.electron,
            # find_stars' StarFlag bits: SATURATED, NEAR_MASKED, NEAR_EDGE, BLENDED
            "flags": np.array([0, 1, 2, 4, 8], dtype=np.int32),
        }
    )
    x, y, flux, good = normalize_stars(table)
    np.testing.assert_array_equal(x, [10, 20, 30, 40, 50])
    np.testing.assert_array_equal(good, [True, False, False, True, True])
    # a magnitude orders stars when there is no flux
    x, y, flux, good = normalize_stars(QTable({"x": [1.0, 2.0], "y": [1.0, 2.0], "mag": [12.0, 10.0]}))
    assert flux[1] > flux[0]


def test_upper_case_xy_are_refused():
    with pytest.raises(AstrometryError, match="1-based"):
        normalize_stars(QTable({"X": [1.0], "Y": [2.0]}))
