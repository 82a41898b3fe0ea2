# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The in-memory makers: their pixels agree with their truth."""

import astropy.units as u
import numpy as np
import pytest

from astrophot import RawFrame
from astrophot.datasets import (
    PSF,
    make_bias_stack,
    make_dark_stack,
    make_flat_stack,
    make_raw_frame,
)


def test_bias_stack_is_deterministic_by_seed():
    a, _ = make_bias_stack(2, shape=(40, 50), seed=7)
    b, _ = make_bias_stack(2, shape=(40, 50), seed=7)
    c, _ = make_bias_stack(2, shape=(40, 50), seed=8)
    assert all(np.array_equal(x.data, y.data) for x, y in zip(a, b))
    assert not np.array_equal(a[0].data, c[0].data)


def test_bias_level_structure_and_read_noise_match_truth():
    n = 20
    frames, truth = make_bias_stack(n, shape=(120, 150), bias_level=1200.0, read_noise=9.0, gain=1.8, seed=3)
    assert all(isinstance(f, RawFrame) for f in frames)
    assert frames[0].unit == u.adu and frames[0].data.dtype == np.uint16
    stack = np.array([f.data for f in frames], dtype=float)
    npix = stack[0].size
    rn_adu = 9.0 / 1.8
    # mean level: sampling error of the mean of all pixels is rn/sqrt(n * npix)
    assert abs(stack.mean() - 1200.0) < 5 * rn_adu / np.sqrt(n * npix) + 0.01
    # the fixed pattern is recovered by the stack mean, to the noise of n frames
    residual = stack.mean(axis=0) - truth.bias
    assert abs(residual.std() - rn_adu / np.sqrt(n)) < 0.1 * rn_adu / np.sqrt(n) + 0.03
    # read noise from frame differences (quantisation adds 1/12 ADU^2)
    diff = stack[0] - stack[1]
    measured = np.sqrt(diff.var() / 2 - 1 / 12)
    assert measured == pytest.approx(rn_adu, rel=0.04)
    assert truth.read_noise_adu == pytest.approx(rn_adu)
    assert frames[0].header["IMAGETYP"] == "Bias Frame"
    assert frames[0].exposure_time == 0 * u.s


def test_dark_current_hot_pixels_and_bad_lines_match_truth():
    hot = [(10, 12, 20.0), (30, 5, 2.0)]
    frames, truth = make_dark_stack(
        8,
        exposure=600,
        shape=(60, 80),
        dark_current=0.1,
        hot_pixels=hot,
        bad_columns=[40],
        bad_rows=[50],
        cosmic_ray_rate=0.0,
        seed=5,
    )
    stack = np.array([f.data for f in frames], dtype=float)
    mean = stack.mean(axis=0)
    expected = truth.expected_dark(600)
    # normal pixels: mean dark signal 0.1 e-/s * 600 s / gain
    normal = ~(truth.hot_pixel_mask | truth.bad_line_mask)
    assert np.median((mean - truth.bias)[normal]) == pytest.approx(0.1 * 600 / truth.gain, abs=1.0)
    for x, y, rate in hot:
        total = truth.dark_current[y, x]
        assert total == pytest.approx(rate + 0.1)
        # shot noise of the mean of 8 frames
        sigma = np.sqrt(total * 600 + truth.read_noise**2) / truth.gain / np.sqrt(8)
        assert mean[y, x] - truth.bias[y, x] == pytest.approx(total * 600 / truth.gain, abs=4 * sigma)
    # a bad column carries its unstable extra charge, with the factors recorded per frame
    for i, f in enumerate(frames):
        factor = truth.frames[i].dark_line_factors["c40"]
        col = f.data[:, 40].astype(float) - truth.bias[:, 40]
        col_expected = (0.1 + truth.bad_line_current * factor) * 600 / truth.gain
        assert np.median(col[np.arange(60) != 50]) == pytest.approx(col_expected, rel=0.05)
    assert np.abs(mean - expected)[normal].mean() < 3.0
    assert truth.bad_columns == [40] and truth.bad_rows == [50]


def test_same_seed_gives_the_same_camera_in_every_maker():
    _, tb = make_bias_stack(1, shape=(30, 40), seed=11)
    _, td = make_dark_stack(1, shape=(30, 40), seed=11)
    _, tf = make_flat_stack(1, shape=(30, 40), seed=11)
    _, tl = make_raw_frame(shape=(30, 40), seed=11)
    for t in (td, tf, tl):
        np.testing.assert_array_equal(t.bias_structure, tb.bias_structure)
        np.testing.assert_array_equal(t.dark_current, td.dark_current)
    np.testing.assert_array_equal(tf.flats["Red"], tl.flats["Red"])


def test_flat_stack_recovers_the_flat_field():
    frames, truth = make_flat_stack(
        10, filter="OIII", level=25000, shape=(80, 100), cosmic_ray_rate=0, seed=4
    )
    stack = np.array([f.data for f in frames], dtype=float)
    signal = stack.mean(axis=0) - truth.expected_dark(truth.frames[0].exposure)
    recovered = signal / signal.mean()
    flat = truth.flats["OIII"]
    assert flat.mean() == pytest.approx(1.0)
    # photon noise of 10 frames at 25000 ADU * gain electrons: ~0.2 % per pixel
    assert np.std(recovered - flat) < 0.004
    assert flat.min() < 0.95  # vignetting and dust are there
    assert frames[0].header["IMAGETYP"] == "Flat Field" and frames[0].filter == "OIII"


def test_light_frame_positions_flux_and_psf_match_truth():
    frame, truth = make_raw_frame(
        shape=(200, 260), fwhm=3.0, cosmic_ray_rate=0, synthetic_density=2000.0, seed=9
    )
    stars = truth.stars
    assert len(stars) > 5 and (~stars["synthetic"]).any()
    # stars are where the WCS puts them
    x, y = truth.wcs.all_world2pix(stars["ra"].to_value(u.deg), stars["dec"].to_value(u.deg), 0)
    np.testing.assert_allclose(x, stars["x"], atol=1e-6)
    np.testing.assert_allclose(y, stars["y"], atol=1e-6)
    # the noiseless image less dark and sky, divided by the flat, holds the stars alone
    ny, nx = truth.detector.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    sky = (
        truth.sky_level + truth.sky_slope[0] * (xx - (nx - 1) / 2) + truth.sky_slope[1] * (yy - (ny - 1) / 2)
    )
    dark = truth.detector.dark_current * truth.exposure
    image = (truth.noiseless - dark) / truth.flats["Red"] - sky
    bad = truth.bad_line_mask
    checked = 0
    for s in stars:
        xi, yi = int(round(s["x"])), int(round(s["y"]))
        if not (8 <= xi < nx - 8 and 8 <= yi < ny - 8) or s["flux"] < 2000:
            continue
        if bad[yi - 7 : yi + 8, xi - 7 : xi + 8].any():
            continue
        d = np.hypot(stars["x"] - s["x"], stars["y"] - s["y"])
        if np.sort(d)[1] < 15:
            continue
        cut = image[yi - 7 : yi + 8, xi - 7 : xi + 8]
        w = np.clip(cut, 0, None)
        xx, yy = np.mgrid[yi - 7 : yi + 8, xi - 7 : xi + 8][::-1]
        assert (w * xx).sum() / w.sum() == pytest.approx(s["x"], abs=0.1)
        assert (w * yy).sum() / w.sum() == pytest.approx(s["y"], abs=0.1)
        # nearly all the flux within 7 px (the Moffat wings hold the rest)
        assert cut.sum() == pytest.approx(s["flux"], rel=0.03)
        checked += 1
    assert checked >= 3
    assert isinstance(truth.psf, PSF) and truth.psf.fwhm == 3.0


def test_raw_frame_header_reads_back():
    frame, truth = make_raw_frame(shape=(40, 50), exposure=120, filter="Ha", seed=1)
    assert frame.exposure_time == 120 * u.s
    assert frame.filter == "Ha"
    assert frame.binning == (1, 1)
    assert frame.set_temperature is not None
    assert frame.header["OBJCTRA"] == "00 42 44.33"  # M31 demo centre, 10.6847 deg
    assert frame.date_obs.isot.startswith(truth.date_obs.isot[:19])


def test_public_names_are_sorted_and_importable():
    import astrophot.datasets as datasets

    assert datasets.__all__ == sorted(datasets.__all__)
    for name in datasets.__all__:
        assert getattr(datasets, name) is not None


def test_truth_attribute_errors_are_clear():
    _, truth = make_bias_stack(2, shape=(20, 30), seed=0)
    assert truth.gain == 1.5 and len(truth) == 2 and truth[1].index == 1
    with pytest.raises(AttributeError, match="truth.frames"):
        getattr(truth, "exposure")  # noqa: B009 - two frames: per-frame facts are not guessed
    with pytest.raises(ValueError, match="outside"):
        make_dark_stack(1, shape=(20, 30), hot_pixels=[(40, 1)])
