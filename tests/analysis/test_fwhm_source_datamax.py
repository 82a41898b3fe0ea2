# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Issue 17 finding 6: an assumed FWHM is never reported as measured; DATAMAX is cross-checked."""

import math
import warnings

import astropy.units as u
import numpy as np
import pytest
from scipy.spatial import cKDTree

from astrophot import CalibratedFrame, DQFlag, calibrate_frame
from astrophot.analysis import StarFlag, assess_quality, find_stars, select_frames
from astrophot.datasets import make_raw_frame
from astrophot.exceptions import AstrophotUserWarning


def _sparse_frame(n_stars, fwhm=6.0, seed=2):
    """A 200 x 200 sky (electrons, noise 5) with ``n_stars`` round Moffat stars of ``fwhm`` px."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:200, 0:200]
    alpha = fwhm / (2 * math.sqrt(2 ** (1 / 3.0) - 1))
    image = np.full((200, 200), 100.0)
    for i in range(n_stars):
        image += 500.0 * (1 + ((xx - 40 - 40 * i) ** 2 + (yy - 60 - 30 * i) ** 2) / alpha**2) ** -3.0
    return CalibratedFrame(rng.normal(image, 5.0).astype(np.float32), unit=u.electron)


def test_too_few_stars_flag_the_fwhm_as_assumed():
    frame = _sparse_frame(2)
    with pytest.warns(AstrophotUserWarning, match="too few isolated"):
        stars = find_stars(frame)
    assert len(stars) == 2
    # the 3 px starting guess stays the model's FWHM, but it is marked as such
    assert stars.meta["fwhm"] == 3.0 and stars.meta["fwhm_source"] == "default"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstrophotUserWarning)
        record = assess_quality(frame)
    assert record.fwhm_source == "default"
    assert math.isnan(record.fwhm) and record.fwhm_arcsec is None
    assert record.n_stars == 2


def test_measured_and_given_fwhm_say_so():
    frame = _sparse_frame(4)
    stars = find_stars(frame)
    assert stars.meta["fwhm_source"] == "measured"
    assert stars.meta["fwhm"] == pytest.approx(6.0, rel=0.05)
    assert find_stars(frame, fwhm=6.0).meta["fwhm_source"] == "argument"
    record = assess_quality(frame)
    assert record.fwhm_source == "measured" and record.fwhm == pytest.approx(6.0, rel=0.05)


def test_select_frames_does_not_take_an_assumed_fwhm_for_a_measurement():
    records = [assess_quality(_sparse_frame(4, seed=s)) for s in (3, 4, 5)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstrophotUserWarning)
        records.append(assess_quality(_sparse_frame(2, seed=6)))
    table = select_frames(records, rules={"stars_tolerance": 1.0})
    assert list(table["fwhm_source"]) == ["measured"] * 3 + ["default"]
    assert table["accepted"].tolist() == [True, True, True, False]
    assert "PSF not measured" in str(table["reason"][3])
    assert table["weight"][3] == 0
    # the robust limit comes from the three measured frames only
    limit, _ = table.meta["limits"][""]["fwhm"]
    assert limit == pytest.approx(1.25 * np.median(table["fwhm"][:3]), rel=1e-6)


def _adu_frame(raw, datamax):
    """The raw pixels as a frame in ADU with no DQ flags, its header's DATAMAX set."""
    meta = raw.meta.copy()
    meta["DATAMAX"] = datamax
    return CalibratedFrame(np.asarray(raw.data, dtype=np.float32), unit=u.adu, meta=meta)


def test_datamax_equal_to_the_frame_maximum_flags_nothing():
    # no hot pixels nor cosmic rays: the frame's maximum is the peak of its brightest star
    raw, truth = make_raw_frame(shape=(200, 300), exposure=300.0, seed=3, cosmic_ray_rate=0.0, hot_pixels=[])
    assert not truth.stars["saturated"].any() and raw.data.max() < 65535
    top = int(raw.data.max())
    assert np.count_nonzero(raw.data == top) == 1  # an archive's DATAMAX: one pixel's value
    stars = find_stars(_adu_frame(raw, top))
    assert len(stars) > 20
    iy, ix = np.unravel_index(np.argmax(raw.data), raw.data.shape)
    distance = np.hypot(stars["x"].value - ix, stars["y"].value - iy)
    assert distance.min() < 2  # a star holds that pixel
    assert not np.any(stars["flags"] & StarFlag.SATURATED)
    # nor does calibration flag the brightest pixel SATURATED
    header_raw = raw.copy()
    header_raw.header["DATAMAX"] = top
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no masters: said once
        calibrated = calibrate_frame(header_raw, gain=1.5, read_noise=10.0)
    assert not np.any(calibrated.flags & int(DQFlag.SATURATED))


def test_datamax_at_the_adc_ceiling_flags_saturated_stars():
    raw, truth = make_raw_frame(shape=(300, 400), exposure=6000.0, fwhm=2.5, seed=5)
    clipped = np.asarray(raw.data) >= 65535
    assert truth.stars["saturated"].sum() >= 3 and clipped.any()
    # DATAMAX at the ADC limit (here also the frame's maximum)
    stars = find_stars(_adu_frame(raw, 65535))
    sat = np.asarray(truth.stars["saturated"])
    xy = np.column_stack([stars["x"].value, stars["y"].value])
    distance, index = cKDTree(xy).query(np.column_stack([truth.stars["x"][sat], truth.stars["y"][sat]]))
    assert np.count_nonzero(distance < 2) >= 3
    assert np.all(stars["flags"][index[distance < 2]] & StarFlag.SATURATED)
    # a pile-up below any ADC ceiling is believed too (pixels clipped at a DATAMAX of 60000)
    lowered = raw.copy()
    lowered.data = np.minimum(raw.data, 60000).astype(np.uint16)
    stars = find_stars(_adu_frame(lowered, 60000))
    xy = np.column_stack([stars["x"].value, stars["y"].value])
    distance, index = cKDTree(xy).query(np.column_stack([truth.stars["x"][sat], truth.stars["y"][sat]]))
    assert np.all(stars["flags"][index[distance < 2]] & StarFlag.SATURATED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lowered.header["DATAMAX"] = 60000
        calibrated = calibrate_frame(lowered, gain=1.5, read_noise=10.0)
    assert np.array_equal((calibrated.flags & int(DQFlag.SATURATED)) != 0, np.asarray(lowered.data) >= 60000)
