# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""subtract_continuum against the simulated narrow/broad pair's known truth."""

import numpy as np
import pytest

from astrophot import LineFrame, read_frame, subtract_continuum, write_frame
from astrophot.datasets import make_continuum_pair
from astrophot.exceptions import AnalysisError, AstrophotUserWarning, FrameMismatchError


@pytest.fixture(scope="module")
def pair():
    return make_continuum_pair(seed=2)


@pytest.fixture(scope="module")
def line(pair):
    narrow, broad, _ = pair
    return subtract_continuum(narrow, broad, eps=1.0)


def _nebula_flux(frame, truth):
    yy, xx = np.indices(frame.data.shape)
    inside = np.hypot(xx - truth.nebula_center[0], yy - truth.nebula_center[1]) < 4 * truth.nebula_sigma
    return np.nansum(frame.data[inside]) / truth.line_image[inside].sum()


def _bright_residual(frame):
    stars = frame.stars
    bright = np.asarray(stars["flux_narrow"]) > 2e4
    assert bright.sum() >= 3
    return float(np.median(np.asarray(stars["residual"])[bright]))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_scale_recovered_within_one_percent(seed):
    narrow, broad, truth = make_continuum_pair(seed=seed)
    frame = subtract_continuum(narrow, broad)
    c = frame.continuum
    assert c["method"] == "stars"
    assert abs(c["k"] / truth.k - 1) < 0.01
    assert c["n_stars"] >= 8
    assert 0 < c["k_err"] < 0.01 * truth.k
    assert np.isfinite(c["scatter"])


def test_line_flux_with_and_without_eps(pair, line):
    narrow, broad, truth = pair
    assert isinstance(line, LineFrame)
    assert abs(_nebula_flux(line, truth) - 1) < 0.02
    uncorrected = subtract_continuum(narrow, broad, eps=0.0)
    bias = _nebula_flux(uncorrected, truth) - 1
    # without the correction the line is low by about k*eps
    assert bias == pytest.approx(-truth.k * truth.eps, abs=0.01)
    assert abs(bias) > 0.04


def test_star_residuals_need_psf_matching(pair, line):
    narrow, broad, _ = pair
    assert line.continuum["convolved"] == narrow.name  # the sharper (narrow) frame was convolved
    matched = _bright_residual(line)
    assert abs(matched) < 0.02
    unmatched = _bright_residual(subtract_continuum(narrow, broad, psf_match=False))
    assert unmatched > 0.1 > 5 * abs(matched)


def test_uncertainty_flags_and_provenance(pair, line):
    narrow, broad, _ = pair
    assert line.uncertainty is not None
    sky = np.isfinite(line.data) & (np.abs(line.data) < 50)
    # uncertainty of the line image in the sky: (var_n_conv + k^2 var_b)/(1-k)^2, below the raw sum
    err = line.uncertainty.array[sky]
    assert np.all(err > 0)
    pulls = line.data[100:140, 20:60] / line.uncertainty.array[100:140, 20:60]
    assert 0.7 < np.nanstd(pulls) < 1.3
    step = line.provenance.steps[-1]
    assert step.function == "astrophot.subtract_continuum"
    assert {r.role for r in step.inputs} == {"narrow", "broad"}
    assert narrow.data is not line.data
    assert np.all(np.isfinite(narrow.data))  # input untouched


def test_round_trip(tmp_path, line):
    path = write_frame(line, tmp_path / "line.fits")
    back = read_frame(path)
    assert isinstance(back, LineFrame)
    assert back.scale == pytest.approx(line.scale)
    assert back.continuum["method"] == "stars"
    assert len(back.stars) == len(line.stars)


def test_fallback_to_noise_then_bandwidth(pair):
    narrow, broad, truth = pair
    with pytest.warns(AstrophotUserWarning, match="from noise"):
        frame = subtract_continuum(narrow, broad, min_stars=1000)
    assert frame.continuum["method"] == "noise"
    assert abs(frame.scale / truth.k - 1) < 0.05
    assert frame.continuum["fallbacks"]
    frame = subtract_continuum(narrow, broad, scale="bandwidth")  # asked for: no warning
    assert frame.scale == pytest.approx(3.0 / 105.0)
    assert "filter table" in frame.continuum["source"]


def test_sky_offset_handled(pair):
    narrow, broad, truth = pair
    shifted = broad.copy()
    shifted.data[...] += 500.0
    frame = subtract_continuum(narrow, shifted)
    assert abs(_nebula_flux(frame, truth) - 1) < 0.02


def test_scale_outside_range_warns(pair):
    narrow, broad, _ = pair
    with pytest.warns(AstrophotUserWarning, match="outside"):
        subtract_continuum(narrow, broad, scale=-0.1)


def test_bad_inputs(pair):
    narrow, broad, _ = pair
    other = broad.copy()
    other.meta["OBJECT"] = "M31"
    with pytest.raises(FrameMismatchError, match="different targets"):
        subtract_continuum(narrow, other)
    empty = broad.copy()
    empty.data[...] = np.nan
    with pytest.raises(AnalysisError, match="no finite pixel"):
        subtract_continuum(narrow, empty)
    flat = broad.copy()
    flat.data[...] = np.random.default_rng(1).normal(800, 30, flat.shape)
    with pytest.raises(AnalysisError, match="PSF"):
        subtract_continuum(narrow, flat)


def test_different_grids_refused_or_resampled():
    narrow, broad, _ = make_continuum_pair(seed=2, shift=(7.3, -4.1), n_stars=20, shape=(120, 120))
    import astrophot.combination as combination

    if not hasattr(combination, "resample_frame"):
        with pytest.raises(FrameMismatchError, match="resample"):
            subtract_continuum(narrow, broad)
    with pytest.raises(FrameMismatchError, match="resample"):
        subtract_continuum(narrow, broad, resample=False)
    far = broad.copy()
    far.wcs.wcs.crval = [far.wcs.wcs.crval[0] + 5.0, far.wcs.wcs.crval[1]]
    far.wcs.wcs.set()
    with pytest.raises(FrameMismatchError, match="do not overlap"):
        subtract_continuum(narrow, far)


@pytest.mark.parametrize("seed, shift, rotation", [(2, (7.3, -4.1), 0.0), (3, (5.6, 3.2), 25.0)])
def test_broad_frame_on_another_grid_resampled_to_truth(seed, shift, rotation):
    """The broad frame on a shifted (and rotated) grid: resampled onto the narrow one, k and flux to truth."""
    narrow, broad, truth = make_continuum_pair(seed=seed, shift=shift, rotation=rotation)
    assert not np.allclose(truth.x_broad, truth.x)
    frame = subtract_continuum(narrow, broad)
    assert frame.data.shape == narrow.data.shape
    c = frame.continuum
    assert c["method"] == "stars" and c["n_stars"] >= 8
    assert abs(c["k"] / truth.k - 1) < 0.01
    assert abs(_nebula_flux(frame, truth) - 1) < 0.02
    inputs = {r.role: r.frame_type for r in frame.provenance.steps[-1].inputs}
    assert inputs == {"narrow": "CalibratedFrame", "broad": "ResampledFrame"}


def test_diagnostic_figure(line):
    from astrophot.combination import plot_continuum_diagnostics

    fig = plot_continuum_diagnostics(line)
    ax_k, ax_r = fig.axes
    assert ax_k.get_ylabel().startswith("k")
    assert len(ax_k.lines) >= 2


def test_convolution_equals_scipy():
    from scipy.signal import oaconvolve

    from astrophot.combination._psfmatch import convolve_frame, convolve_same, matching_kernel

    rng = np.random.default_rng(4)
    image = rng.normal(100.0, 10.0, (700, 333))
    kernel = matching_kernel({"fwhm": 2.6, "beta": 3.0, "ellipticity": 0.1, "theta": 30.0}, {"fwhm": 4.0})
    reference = oaconvolve(image, kernel, mode="same")
    assert np.abs(convolve_same(image, kernel) - reference).max() < 1e-9
    # no bad pixel: the weights (near the edges) come from the kernel, not a convolution
    weight = oaconvolve(np.ones(image.shape), kernel, mode="same")
    out, var = convolve_frame(image, np.full(image.shape, 4.0), np.zeros(image.shape, bool), kernel)
    kept = weight > 0.5  # the rest (the corners) is NaN
    assert np.array_equal(np.isfinite(out), kept) and np.array_equal(np.isfinite(var), kept)
    assert np.abs(out - reference / weight)[kept].max() < 1e-9
    expected_var = oaconvolve(np.full(image.shape, 4.0), kernel**2, mode="same") / weight**2
    assert np.abs(var - expected_var)[kept].max() < 1e-12


def test_star_photometry_equals_photutils():
    from astropy.stats import SigmaClip
    from photutils.aperture import ApertureStats, CircularAnnulus, CircularAperture, aperture_photometry

    from astrophot.combination.continuum import _annulus_medians, _circle_sums

    rng = np.random.default_rng(5)
    data = rng.normal(100.0, 10.0, (200, 220))
    data[rng.random(data.shape) < 0.002] += 5000.0  # outliers for the clipping
    bad = rng.random(data.shape) < 0.01
    positions = rng.uniform(20, 180, (40, 2))
    local = _annulus_medians(data, bad, positions, 7.5, 12.5)
    stats = ApertureStats(
        data, CircularAnnulus(positions, 7.5, 12.5), mask=bad, sigma_clip=SigmaClip(sigma=3.0, maxiters=5)
    )
    assert np.allclose(local, np.asarray(stats.median), rtol=1e-9)
    filled = np.where(bad, 0.0, data)
    sums = _circle_sums(filled, positions, 5.0)
    reference = np.asarray(aperture_photometry(filled, CircularAperture(positions, r=5.0))["aperture_sum"])
    assert np.allclose(sums, reference, rtol=1e-7)  # sep and photutils round the overlaps apart


def test_stars_found_in_windows_of_a_large_pair():
    # 2100 x 2100: the stars (PSFs and scale) come from four 1024 x 1024 windows
    narrow, broad, truth = make_continuum_pair(shape=(2100, 2100), n_stars=600, seed=3)
    frame = subtract_continuum(narrow, broad)
    c = frame.continuum
    assert c["method"] == "stars" and c["n_stars"] >= 8
    assert abs(c["k"] / truth.k - 1) < 0.01
    assert abs(c["fwhm_narrow"] / 2.6 - 1) < 0.05 and abs(c["fwhm_broad"] / 4.0 - 1) < 0.05
    assert abs(_nebula_flux(frame, truth) - 1) < 0.02
