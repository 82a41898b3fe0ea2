# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The engine: the coarse pixel map against the per-pixel map, kernels, the noise correlation factor."""

import numpy as np
import pytest

from astrophot.combination import _core
from astrophot.datasets import make_solved_frame

from ._grids import rotated_grid


@pytest.mark.parametrize("tolerance", [1e-3, 1e-4])
def test_coarse_map_error_below_projection_error_on_sip(tolerance):
    frame, _ = make_solved_frame(shape=(300, 400), n_stars=0, distortion=4.0, seed=1)
    wcs_out, shape = rotated_grid(frame.wcs, frame.shape, rotation=37.0, scale_ratio=1.3, shift=(5.3, -2.1))
    x0, y0 = _core.pixel_map(frame.wcs, wcs_out, shape, projection_error=0)
    x1, y1 = _core.pixel_map(frame.wcs, wcs_out, shape, projection_error=tolerance)
    # the error in output pixels: input-pixel error divided by the input pixels per output pixel (1.3)
    error = np.hypot(x1 - x0, y1 - y0) / 1.3
    assert error.max() < tolerance
    # the map really carries the distortion (a TAN-only map is pixels off)
    assert np.abs(frame.wcs.sip.a).max() > 0


def test_pixel_map_band_matches_whole_map():
    frame, _ = make_solved_frame(shape=(120, 160), n_stars=0, seed=2)
    wcs_out, shape = rotated_grid(frame.wcs, frame.shape, rotation=20.0)
    x, y, area = _core.pixel_map(frame.wcs, wcs_out, shape, jacobian=True)
    xb, yb, ab = _core.pixel_map(
        frame.wcs, wcs_out, shape, rows=slice(40, 57), cols=slice(10, 90), jacobian=True
    )
    np.testing.assert_allclose(xb, x[40:57, 10:90], atol=2e-3)
    np.testing.assert_allclose(yb, y[40:57, 10:90], atol=2e-3)
    np.testing.assert_allclose(ab, area[40:57, 10:90], rtol=1e-4)
    np.testing.assert_allclose(
        np.median(area), 1.0, rtol=1e-2
    )  # same scale: one input pixel per output pixel


def test_kernel_weights_sum_to_one_and_interpolate():
    frac = np.linspace(0, 0.999, 50)
    for kernel in _core.KERNELS:
        weights = _core._kernel_weights(kernel, frac)
        np.testing.assert_allclose(sum(weights), 1.0, atol=1e-12)


def test_unknown_kernel():
    with pytest.raises(ValueError, match="unknown kernel 'lanczos9'"):
        _core.kernel_half_width("lanczos9")


@pytest.mark.parametrize(("kernel", "expected"), [("nearest", 1.0), ("bilinear", 4.0)])
def test_noise_correlation_known_values(kernel, expected):
    yy, xx = np.mgrid[0:32, 0:32].astype(float)
    # a half-pixel shift: bilinear averages 4 pixels with weight 1/4 -> Var(sum)/sum(Var) = 1 / (4/16) = 4
    assert _core.noise_correlation(xx + 0.5, yy + 0.5, kernel) == pytest.approx(expected, rel=1e-9)


def test_noise_correlation_large_aperture_limit():
    yy, xx = np.mgrid[0:160, 0:160].astype(float)
    th = np.radians(37.0)
    x = 1.3 * (np.cos(th) * xx - np.sin(th) * yy) + 300
    y = 1.3 * (np.sin(th) * xx + np.cos(th) * yy) + 300
    limit = _core.noise_correlation(x[:32, :32], y[:32, :32], "lanczos3")
    big = _core.noise_correlation(x, y, "lanczos3", aperture=True)
    assert big == pytest.approx(limit, rel=0.03)


def test_bad_pixel_does_not_leak_in_band():
    rng = np.random.default_rng(4)
    data = rng.normal(100, 1, (60, 60)).astype(np.float32)
    bad = np.zeros(data.shape, bool)
    data[:, 30] = 1e9
    bad[:, 30] = True
    yy, xx = np.mgrid[0:40, 0:40].astype(float)
    out, var, weight, flags = _core.resample_band(
        data, None, bad, None, xx + 10.37, yy + 10.21, kernel="lanczos3", conserve="surface_brightness"
    )
    assert var is None
    good = weight >= 0.5
    assert np.all(np.abs(out[good] - 100) < 20)
    assert np.all((flags[~good] & int(_core.DQFlag.NO_DATA)) != 0)
    far = np.abs(xx + 10.37 - 30) > 3.5
    assert np.all(weight[far] == 1.0)
