# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""estimate_background and subtract_background against simulated truth."""

import astropy.units as u
import numpy as np
import pytest
from astropy.nddata import CCDData

from astrophot import CalibratedFrame, RawFrame, SolvedFrame
from astrophot.analysis import estimate_background, subtract_background
from astrophot.datasets._model import sky_image
from astrophot.exceptions import AnalysisError, FrameMismatchError, FrameTypeError, UserRegionsError


def _sky(frame, truth):
    return sky_image(frame.shape, truth.sky_level, truth.sky_slope)


def _noise(truth):
    return np.sqrt(truth.sky_level + truth.detector.read_noise**2)


@pytest.mark.parametrize("which", ["round", "steep"])
def test_error_below_half_the_sky_noise(which, round_frame, steep_sky_frame):
    frame, truth = round_frame if which == "round" else steep_sky_frame
    background, rms = estimate_background(frame)
    sky = _sky(frame, truth)
    noise = _noise(truth)
    error = background.data - sky
    assert np.abs(error).max() < 0.5 * noise, (np.abs(error).max(), noise)
    assert abs(np.median(error)) < 0.05 * noise
    # the RMS is the sky noise (the flat field raises it a little towards the corners)
    assert np.median(rms.data) == pytest.approx(noise, rel=0.06)
    assert background.unit == frame.unit and rms.unit == frame.unit
    assert background.header["BKGRMS"] == pytest.approx(float(np.median(rms.data)), rel=0.05)


def test_stars_are_masked(steep_sky_frame):
    frame, truth = steep_sky_frame
    sky = _sky(frame, truth)
    masked, _ = estimate_background(frame)
    unmasked, _ = estimate_background(frame, mask_stars=False)
    # star light biases an unmasked estimate upwards; masking removes most of it
    bias_masked = np.median(masked.data - sky)
    bias_unmasked = np.median(unmasked.data - sky)
    assert bias_unmasked > bias_masked
    assert abs(bias_masked) < 0.05 * _noise(truth)


def test_protect_keeps_a_nebula(round_frame):
    frame, truth = round_frame
    ny, nx = frame.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    nebula = 60.0 * np.exp(-0.5 * (((xx - 400) / 70.0) ** 2 + ((yy - 300) / 60.0) ** 2))
    data = frame.data + nebula
    with_nebula = CalibratedFrame(data, unit=frame.unit, flags=frame.flags)
    sky = _sky(frame, truth)
    plain, _ = estimate_background(with_nebula)
    region = "image\nellipse(401,301,230,200,0)\n"
    kept, _ = estimate_background(with_nebula, protect=region)
    centre = (slice(280, 320), slice(380, 420))
    # without protection the nebula is taken for sky (most of its 60 e- peak); with it, the sky is kept
    assert np.median((plain.data - sky)[centre]) > 30
    assert abs(np.median((kept.data - sky)[centre])) < 0.5 * _noise(truth)
    subtracted = subtract_background(with_nebula, kept)
    assert np.median((subtracted.data - nebula)[centre]) == pytest.approx(0, abs=0.5 * _noise(truth))


def test_masks_from_files(tmp_path, round_frame):
    frame, _ = round_frame
    reg = tmp_path / "bad.reg"
    reg.write_text("# Region file format: DS9 version 4.1\nimage\nbox(101,51,40,20,0)\ncircle(300,300,10)\n")
    from astrophot.analysis._regions import load_mask

    mask = load_mask(reg, frame.shape, name="test", what="mask")
    assert mask[50, 100] and mask[299, 299]
    assert mask[41, 81] and not mask[39, 100]  # box rows 40.5-60.5 (1-based 41-61)
    assert mask.sum() == pytest.approx(40 * 20 + np.pi * 100, rel=0.1)
    fits_mask = tmp_path / "mask.fits"
    from astropy.io import fits

    fits.writeto(fits_mask, mask.astype(np.uint8))
    np.testing.assert_array_equal(load_mask(fits_mask, frame.shape, name="t", what="mask"), mask)
    a, _ = estimate_background(frame, mask=reg)
    b, _ = estimate_background(frame, mask=mask)
    np.testing.assert_array_equal(a.data, b.data)

    bad = tmp_path / "sky.reg"
    bad.write_text('fk5\ncircle(10:00:00,+20:00:00,5")\n')
    with pytest.raises(UserRegionsError, match="line 2"):
        estimate_background(frame, protect=bad)
    broken = tmp_path / "broken.reg"
    broken.write_text("image\ncircle(1,2)\n")
    with pytest.raises(UserRegionsError, match="line 2.*circle needs 3"):
        estimate_background(frame, mask=broken)
    with pytest.raises(FrameMismatchError, match="shape"):
        estimate_background(frame, mask=np.zeros((3, 3), bool))


def test_provenance_types_and_purity(round_frame):
    frame, _ = round_frame
    before = frame.data.copy()
    background, rms = estimate_background(frame, box_size=64)
    np.testing.assert_array_equal(frame.data, before)
    assert type(background) is CalibratedFrame and type(rms) is CalibratedFrame
    step = background.provenance.steps[-1]
    assert step.function == "astrophot.estimate_background"
    assert step.parameters["box_size"] == 64
    assert step.inputs[0].sha256 == frame.checksum()
    assert background.header["BKGBOX"] == 64
    assert background.header["IMAGETYP"] == "Background" and rms.header["IMAGETYP"] == "Background RMS"

    solved = SolvedFrame(frame.data, unit=frame.unit, solution={"rms": 0.1})
    bkg, _ = estimate_background(solved)
    assert type(bkg) is SolvedFrame and bkg.solution == {"rms": 0.1}

    subtracted = subtract_background(frame, background)
    assert type(subtracted) is CalibratedFrame
    np.testing.assert_allclose(subtracted.data, frame.data - background.data, rtol=1e-6)
    np.testing.assert_array_equal(subtracted.flags, frame.flags)
    np.testing.assert_array_equal(subtracted.uncertainty.array, frame.uncertainty.array)
    last = subtracted.provenance.steps[-1]
    assert last.function == "astrophot.subtract_background"
    assert {ref.role for ref in last.inputs} == {"frame", "background"}
    np.testing.assert_array_equal(frame.data, before)


def test_subtract_background_inputs(round_frame):
    frame, _ = round_frame
    auto = subtract_background(frame, box_size=64)
    explicit = subtract_background(frame, estimate_background(frame, box_size=64)[0])
    np.testing.assert_array_equal(auto.data, explicit.data)
    whole = subtract_background(frame, estimate_background(frame, box_size=64))  # the Background result
    np.testing.assert_array_equal(whole.data, explicit.data)
    number = subtract_background(frame, 100.0)
    np.testing.assert_allclose(number.data, frame.data - 100.0, rtol=1e-6)
    quantity = subtract_background(frame, 0.1 * u.Unit("1000 electron"))
    np.testing.assert_allclose(quantity.data, number.data, rtol=1e-6)
    with pytest.raises(FrameMismatchError, match="unit"):
        subtract_background(frame, 5 * u.adu)
    with pytest.raises(FrameMismatchError, match="shape"):
        subtract_background(frame, np.zeros((3, 3)))
    with pytest.raises(FrameTypeError, match="calibrate"):
        subtract_background(RawFrame(np.ones((10, 10))))
    with pytest.raises(TypeError, match="only used"):
        subtract_background(frame, 100.0, box_size=32)
    with pytest.raises(TypeError):
        subtract_background(frame, box_sizes=32)
    plain = subtract_background(CCDData(np.full((64, 64), 7.0), unit="electron"), 2.0)
    assert type(plain) is CalibratedFrame and np.all(plain.data == 5.0)


def test_bad_options_and_empty_images():
    frame = CalibratedFrame(np.random.default_rng(0).normal(10, 1, (64, 64)))
    with pytest.raises(ValueError, match="estimator"):
        estimate_background(frame, estimator="mean")
    with pytest.raises(ValueError, match="filter_size"):
        estimate_background(frame, filter_size=2)
    with pytest.raises(ValueError, match="box_size"):
        estimate_background(frame, box_size=2)
    with pytest.raises(ValueError, match="n_sigma"):
        estimate_background(frame, n_sigma=0)
    masked = CalibratedFrame(np.ones((64, 64)), mask=np.ones((64, 64), bool))
    with pytest.raises(AnalysisError, match="no unmasked"):
        estimate_background(masked)
    nan = CalibratedFrame(np.full((64, 64), np.nan))
    with pytest.raises(AnalysisError):
        estimate_background(nan)


def test_mode_estimator_and_odd_shapes():
    rng = np.random.default_rng(5)
    ny, nx = 203, 317  # not multiples of any box or bin
    sky = 50.0 + 0.02 * np.arange(nx)[None, :] - 0.01 * np.arange(ny)[:, None]
    frame = CalibratedFrame(rng.normal(sky, 4.0, (ny, nx)))
    for estimator in ("median", "mode"):
        background, rms = estimate_background(frame, estimator=estimator)
        assert background.shape == (ny, nx)
        assert np.abs(background.data - sky).max() < 2.0  # half the noise
        assert np.median(rms.data) == pytest.approx(4.0, rel=0.05)
    partial = np.zeros((ny, nx), bool)
    partial[:, :40] = True
    background, _ = estimate_background(frame, mask=partial)
    assert np.abs(background.data - sky)[:, 40:].max() < 2.0
