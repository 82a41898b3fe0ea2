# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""A 2 x 2 sky pattern (raw colour mosaic without a pattern keyword) is removed before detection."""

import warnings

import numpy as np
import pytest

from astrophot.analysis import find_stars
from astrophot.datasets import make_raw_frame
from astrophot.io import read_frame

#: The stars a person sees on a PNG of pole.fits (channel offsets removed, 1 px smoothing):
#: (x, y), 0-based. Two more sharp points, (109, 194) and (185, 151), are left out: the first
#: sits on the same pixel in rotation.fits (a hot pixel).
POLE_STARS = [
    (160, 135),
    (136, 18),
    (76, 188),
    (122, 14),
    (117, 70),
    (149, 41),
    (144, 99),
    (96, 192),
    (14, 52),
]


def _read(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_frame(path)


def test_pole_finds_the_stars_a_person_sees(shared_data):
    # FILTER='' and no BAYERPAT: the four channel sky levels differ by up to 400 ADU
    frame = _read(shared_data / "panoptes" / "pole.fits")
    stars = find_stars(frame)
    offsets = np.array(stars.meta["cfa_sky_offsets"])
    assert np.ptp(offsets) > 300  # measured: [103.75, 80.75, -291.25, 106.75] ADU
    assert stars.meta["background_rms"] < 25  # measured 17.6 (220 with the pattern left in)
    x, y = np.asarray(stars["x"]), np.asarray(stars["y"])
    for sx, sy in POLE_STARS:
        assert np.min(np.hypot(x - sx, y - sy)) < 2.5, (sx, sy)
    assert len(stars) >= len(POLE_STARS)  # measured: 11 (the 9 and the two sharp points)
    # given the Background of estimate_background (as the night does), the pattern is still removed:
    # that mesh saw the channel offsets, so the sky is fitted again without them, the same stars found
    from astrophot.analysis import estimate_background

    given = find_stars(frame, background=estimate_background(frame))
    assert given.meta["cfa_sky_offsets"] == stars.meta["cfa_sky_offsets"]
    np.testing.assert_array_equal(np.asarray(given["x"]), x)


def test_rotation_frame_pattern_removed(shared_data):
    # star trails (the mount rotated); the pattern left in, 7 detections; removed, 8 (the trails'
    # fragments); the faint point star at (39, 78) needs n_sigma=3
    frame = _read(shared_data / "panoptes" / "rotation.fits")
    stars = find_stars(frame)
    assert np.ptp(stars.meta["cfa_sky_offsets"]) > 250
    assert len(stars) >= 8
    faint = find_stars(frame, n_sigma=3)
    assert np.min(np.hypot(np.asarray(faint["x"]) - 39, np.asarray(faint["y"]) - 78)) < 2


@pytest.mark.parametrize("amplitude", [0.0, 300.0])
def test_simulated_pattern_removed_only_when_present(amplitude):
    frame, truth = make_raw_frame(shape=(200, 240), seed=4)
    data = np.array(frame.data, dtype=float)
    pattern = np.array([[1.0, 0.3], [-1.5, 0.2]]) * amplitude
    data += np.tile(pattern, (100, 120))
    stars = find_stars(frame.__class__(data, unit=frame.unit, meta=frame.meta))
    if amplitude == 0:
        assert "cfa_sky_offsets" not in stars.meta
    else:
        removed = np.array(stars.meta["cfa_sky_offsets"])
        expected = pattern.ravel() - pattern.mean()
        assert removed == pytest.approx(expected, abs=3.0)
