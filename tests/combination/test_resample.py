# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""resample_frame against truth: identity, shifts, geometry, flux, masks, noise, reproject as the peer."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.nddata import StdDevUncertainty
from astropy.wcs import WCS

from astrophot import DQFlag, ResampledFrame, read_frame, resample_frame, write_frame
from astrophot.combination import _core
from astrophot.datasets import make_solved_frame, sip_wcs
from astrophot.exceptions import CombinationError, FrameTypeError
from astrophot.frames import SolvedFrame

from ._grids import rotated_grid

KERNELS = ["nearest", "bilinear", "bicubic", "lanczos2", "lanczos3", "lanczos4"]


@pytest.fixture(scope="module")
def noisy_frame():
    return make_solved_frame(shape=(120, 150), n_stars=10, sky=300.0, seed=5)


def _tan_frame(data, wcs):
    return SolvedFrame(data.astype(np.float64), wcs=wcs, unit="electron", meta={"EXPTIME": 10.0})


@pytest.mark.parametrize("kernel", KERNELS)
def test_identity_every_kernel(noisy_frame, kernel):
    frame, _ = noisy_frame
    out = resample_frame(frame, frame, kernel=kernel, parallel=False)
    assert isinstance(out, ResampledFrame)
    a = KERNELS_HALF = _core.KERNELS[kernel]  # noqa: F841
    inner = (slice(a, -a), slice(a, -a))
    np.testing.assert_allclose(out.data[inner], frame.data[inner], rtol=1e-6)
    np.testing.assert_allclose(out.uncertainty.array[inner], frame.uncertainty.array[inner], rtol=1e-6)
    assert np.all(out.weight[inner] == 1.0)


@pytest.mark.parametrize("kernel", KERNELS)
def test_integer_shift_is_exact(kernel):
    # a TAN frame: shifting CRPIX of a SIP WCS would change its distortion
    frame, _ = make_solved_frame(shape=(80, 100), n_stars=8, sky=300.0, seed=6, distortion=0.0)
    target = frame.wcs.deepcopy()
    target.wcs.crpix = target.wcs.crpix + np.array([3.0, -2.0])
    out = resample_frame(frame, (target, frame.shape), kernel=kernel)
    # output (x, y) is input (x - 3, y + 2)
    np.testing.assert_array_equal(out.data[10:-10, 10:-10], frame.data[12:-8, 7:-13])


def test_half_pixel_shift_of_smooth_field_lanczos3():
    shape = (96, 128)
    wcs = sip_wcs(SkyCoord(150.0 * u.deg, 2.0 * u.deg), shape, 2.0, distortion=0)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)

    def field(x, y):
        return 1000.0 + 100.0 * np.sin(2 * np.pi * x / 40.0 + 0.3) * np.cos(2 * np.pi * y / 50.0 - 0.2)

    frame = _tan_frame(field(xx, yy), wcs)
    target = wcs.deepcopy()
    target.wcs.crpix = target.wcs.crpix + np.array([0.5, 0.5])
    out = resample_frame(frame, (target, shape), kernel="lanczos3")
    inner = (slice(12, -12), slice(12, -12))
    truth = field(xx - 0.5, yy - 0.5)
    relative = np.abs(out.data - truth)[inner] / truth[inner]
    assert relative.max() < 1e-4


def _centroid(data, x, y, radius):
    """Centroid in a circular aperture (exact overlap) iterated to its symmetric fixed point."""
    from photutils.aperture import ApertureStats, CircularAperture

    x, y = x + 0.3, y - 0.2  # start off the answer
    for _ in range(30):
        stats = ApertureStats(data, CircularAperture((x, y), r=radius))
        new_x, new_y = stats.x_centroid, stats.y_centroid
        if np.hypot(new_x - x, new_y - y) < 1e-5:
            break
        x, y = new_x, new_y
    return x, y


def test_geometry_stars_land_on_catalogue_positions(sip_frame):
    frame, truth = sip_frame
    wcs_out, shape = rotated_grid(
        frame.wcs, frame.shape, rotation=37.0, scale_ratio=1.0 / 1.3, shift=(7.3, -4.6)
    )
    out = resample_frame(frame, (wcs_out, shape), kernel="lanczos3")
    px, py = wcs_out.world_to_pixel_values(
        truth.stars["ra"].to_value(u.deg), truth.stars["dec"].to_value(u.deg)
    )
    # the same centroid method on the input finds the catalogue positions: its bias is the floor
    errors = []
    isolated = _isolated(truth.stars, 9.0)  # a neighbour would pull the centroid (input and output alike)
    assert isolated.sum() >= 5
    for x, y in zip(px[isolated], py[isolated], strict=True):
        mx, my = _centroid(out.data, x, y, 7.8)
        errors.append(np.hypot(mx - x, my - y))
    errors = np.array(errors)
    assert np.sqrt(np.mean(errors**2)) < 0.03
    assert errors.max() < 0.1


def _isolated(stars, radius):
    x, y = np.asarray(stars["x"]), np.asarray(stars["y"])
    d = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :]) + np.eye(len(x)) * 1e9
    return d.min(axis=1) > 2.2 * radius


def _aperture_flux(data, x, y, radius):
    from photutils.aperture import CircularAperture, aperture_photometry

    table = aperture_photometry(np.nan_to_num(data), CircularAperture(np.column_stack([x, y]), r=radius))
    return np.asarray(table["aperture_sum"])


@pytest.mark.parametrize("rotation", [0.0, 45.0, 90.0, 137.0, 180.0])
@pytest.mark.parametrize("scale_ratio", [0.5, 0.97, 1.0, 1.3, 2.0])
def test_flux_conserved_per_star(sip_frame, rotation, scale_ratio):
    frame, truth = sip_frame
    radius = 10.0
    keep = _isolated(truth.stars, radius)
    stars = truth.stars[keep]
    flux_in = _aperture_flux(frame.data, stars["x"], stars["y"], radius)
    # output pixels are scale_ratio input pixels wide (above 1: oversampled, antialias on with flux)
    wcs_out, shape = rotated_grid(
        frame.wcs, frame.shape, rotation=rotation, scale_ratio=scale_ratio, shift=(0.37, 0.21)
    )
    out = resample_frame(frame, (wcs_out, shape), kernel="lanczos3", conserve="flux")
    assert out.resampling["antialias"] is True and out.header["APANTIAL"] is True
    px, py = wcs_out.world_to_pixel_values(stars["ra"].to_value(u.deg), stars["dec"].to_value(u.deg))
    flux_out = _aperture_flux(out.data, px, py, radius / scale_ratio)
    np.testing.assert_allclose(flux_out, flux_in, rtol=1e-3)


@pytest.mark.parametrize(("scale_ratio", "rotation"), [(1.3, 45.0), (0.97, 0.0)])
def test_point_sampling_aliases_star_flux(sip_frame, scale_ratio, rotation):
    # the reason for oversampling: lanczos at the output centres only aliases (0.58% at 1.3x, 45 deg;
    # 0.53% at 0.97x, 0 deg)
    frame, truth = sip_frame
    radius = 10.0
    stars = truth.stars[_isolated(truth.stars, radius)]
    flux_in = _aperture_flux(frame.data, stars["x"], stars["y"], radius)
    wcs_out, shape = rotated_grid(
        frame.wcs, frame.shape, rotation=rotation, scale_ratio=scale_ratio, shift=(0.37, 0.21)
    )
    out = resample_frame(frame, (wcs_out, shape), kernel="lanczos3", conserve="flux", antialias=False)
    px, py = wcs_out.world_to_pixel_values(stars["ra"].to_value(u.deg), stars["dec"].to_value(u.deg))
    error = np.abs(_aperture_flux(out.data, px, py, radius / scale_ratio) / flux_in - 1).max()
    assert error > 1e-3


@pytest.mark.parametrize(("scale_ratio", "rotation"), [(1.0 / 1.3, 37.0), (1.3, 37.0), (2.0, 137.0)])
def test_flux_agrees_with_exact_and_total_conserved(sip_frame, scale_ratio, rotation):
    frame, truth = sip_frame
    wcs_out, shape = rotated_grid(
        frame.wcs, frame.shape, rotation=rotation, scale_ratio=scale_ratio, shift=(0.4, 0.3)
    )
    lanczos = resample_frame(frame, (wcs_out, shape), kernel="lanczos3", conserve="flux")
    exact = resample_frame(frame, (wcs_out, shape), kernel="exact", conserve="flux")
    radius = 10.0
    stars = truth.stars[_isolated(truth.stars, radius)]
    px, py = wcs_out.world_to_pixel_values(stars["ra"].to_value(u.deg), stars["dec"].to_value(u.deg))
    np.testing.assert_allclose(
        _aperture_flux(lanczos.data, px, py, radius / scale_ratio),
        _aperture_flux(exact.data, px, py, radius / scale_ratio),
        rtol=1e-3,
    )
    # the whole frame: no sky, every star well inside -> total counts kept
    assert np.nansum(lanczos.data) == pytest.approx(float(np.sum(frame.data)), rel=5e-4)
    assert np.nansum(exact.data) == pytest.approx(float(np.sum(frame.data)), rel=5e-4)


def test_bilinear_agrees_with_reproject_interp(noisy_frame):
    from reproject import reproject_interp

    frame, _ = noisy_frame
    wcs_out, shape = rotated_grid(frame.wcs, frame.shape, rotation=37.0, scale_ratio=1.3, shift=(0.3, 0.1))
    out = resample_frame(frame, (wcs_out, shape), kernel="bilinear", projection_error=1e-4)
    peer, footprint = reproject_interp(
        (np.asarray(frame.data, float), frame.wcs), wcs_out, shape_out=shape, order="bilinear"
    )
    both = np.isfinite(peer) & (footprint > 0) & (out.weight == 1.0)
    assert both.sum() > 0.3 * both.size
    relative = np.abs(out.data[both] - peer[both]) / np.abs(peer[both])
    assert relative.max() < 1e-4


def test_masked_bad_column_only_within_kernel_reach():
    frame, _ = make_solved_frame(shape=(120, 150), n_stars=5, sky=300.0, seed=7)
    flags = frame.flags.copy()
    flags[:, 70] |= np.uint32(DQFlag.BAD_COLUMN)
    data = np.array(frame.data)
    data[:, 70] = 1e7
    frame = SolvedFrame(
        data, uncertainty=frame.uncertainty, wcs=frame.wcs, meta=frame.meta, unit=frame.unit, flags=flags
    )
    wcs_out, shape = rotated_grid(frame.wcs, frame.shape, rotation=37.0, scale_ratio=1.3)
    out = resample_frame(frame, (wcs_out, shape), kernel="lanczos3")
    x_in, y_in = _core.pixel_map(frame.wcs, wcs_out, shape)
    a = _core.KERNELS["lanczos3"]
    interior = (x_in >= a) & (x_in <= 150 - 1 - a) & (y_in >= a) & (y_in <= 120 - 1 - a)
    reach = np.abs(x_in - 70) < a
    assert np.all(out.weight[interior & ~reach] == 1.0)
    low = interior & (out.weight < 1.0)
    assert low.any() and np.all(reach[low])
    no_data = (out.flags & int(DQFlag.NO_DATA)) != 0
    assert np.all(reach[interior & no_data])
    assert np.nanmax(out.data) < 1e5  # the garbage in the column never reaches the output


def test_noise_matches_recorded_correlation():
    kernel = "lanczos3"
    block = 12
    ratios_pixel, sums, predicted = [], [], []
    for seed in range(12):
        frame, truth = make_solved_frame(shape=(300, 300), n_stars=0, sky=1000.0, seed=seed, distortion=0.0)
        wcs_out, shape = rotated_grid(frame.wcs, frame.shape, rotation=37.0, scale_ratio=1.3, margin=0.6)
        out = resample_frame(frame, (wcs_out, shape), kernel=kernel)
        assert out.resampling["noise_correlation"] == pytest.approx(out.header["APNCORR"], rel=1e-5)
        resid = out.data - truth.sky
        sigma = out.uncertainty.array
        ratios_pixel.append((resid / sigma).ravel())
        x_in, y_in = _core.pixel_map(frame.wcs, wcs_out, shape)
        for y0 in range(0, shape[0] - block + 1, block):
            for x0 in range(0, shape[1] - block + 1, block):
                cut = (slice(y0, y0 + block), slice(x0, x0 + block))
                sums.append(resid[cut].sum() / np.sqrt(np.sum(sigma[cut] ** 2)))
                if seed == 0:
                    predicted.append(_core.noise_correlation(x_in[cut], y_in[cut], kernel, aperture=True))
    assert np.std(np.concatenate(ratios_pixel)) == pytest.approx(1.0, rel=0.03)
    assert np.std(sums) == pytest.approx(np.sqrt(np.mean(predicted)), rel=0.03)
    # the recorded large-aperture factor is the limit of the block factor
    big = _core.noise_correlation(x_in[:96, :96], y_in[:96, :96], kernel, aperture=True)
    assert out.resampling["noise_correlation"] == pytest.approx(big, rel=0.05)


@pytest.mark.parametrize(("kernel", "scale_ratio", "block"), [("lanczos3", 1.3, 8), ("bilinear", 2.0, 6)])
def test_noise_matches_recorded_correlation_when_oversampled(kernel, scale_ratio, block):
    ratios_pixel, sums, predicted = [], [], []
    for seed in range(8):
        frame, truth = make_solved_frame(shape=(300, 300), n_stars=0, sky=1000.0, seed=seed, distortion=0.0)
        wcs_out, shape = rotated_grid(
            frame.wcs, frame.shape, rotation=37.0, scale_ratio=scale_ratio, margin=0.6
        )
        out = resample_frame(frame, (wcs_out, shape), kernel=kernel, antialias=True)
        resid = out.data - truth.sky
        sigma = out.uncertainty.array
        ratios_pixel.append((resid / sigma).ravel())
        x_in, y_in = _core.pixel_map(frame.wcs, wcs_out, shape)
        for y0 in range(0, shape[0] - block + 1, block):
            for x0 in range(0, shape[1] - block + 1, block):
                cut = (slice(y0, y0 + block), slice(x0, x0 + block))
                sums.append(resid[cut].sum() / np.sqrt(np.sum(sigma[cut] ** 2)))
                if seed == 0:
                    predicted.append(
                        _core.noise_correlation(x_in[cut], y_in[cut], kernel, aperture=True, antialias=True)
                    )
    # the per-pixel variance of the merged samples (one factor per band for the shared inputs)
    assert np.std(np.concatenate(ratios_pixel)) == pytest.approx(1.0, rel=0.03)
    assert np.std(sums) == pytest.approx(np.sqrt(np.mean(predicted)), rel=0.03)
    big = _core.noise_correlation(x_in[:60, :60], y_in[:60, :60], kernel, aperture=True, antialias=True)
    assert out.resampling["noise_correlation"] == pytest.approx(big, rel=0.05)


def test_header_clean_and_keywords_kept(noisy_frame):
    frame, _ = noisy_frame
    wcs_out, shape = rotated_grid(frame.wcs, frame.shape, rotation=10.0)
    out = resample_frame(frame, (wcs_out, shape))
    header = out.header
    assert not any(key.startswith(("A_", "B_", "AP_", "BP_", "CD1_", "PC1_", "CRPIX")) for key in header)
    assert header["EXPTIME"] == 300.0 and header["FILTER"] == "Red" and header["DATE-OBS"].startswith("2026")
    assert header["APKERNEL"] == "lanczos3"
    step = out.provenance.steps[-1]
    assert step.function == "astrophot.resample_frame"
    assert step.parameters["kernel"] == "lanczos3"
    assert step.inputs[0].sha256 == frame.checksum()
    assert "noise_correlation" in step.outcome
    assert frame.wcs.sip is not None  # input untouched


def test_round_trip_through_files(tmp_path, noisy_frame):
    frame, _ = noisy_frame
    out = resample_frame(frame, rotated_grid(frame.wcs, frame.shape, rotation=30.0), kernel="bilinear")
    path = tmp_path / "resampled.fits"
    write_frame(out, path)
    back = read_frame(path)
    assert isinstance(back, ResampledFrame)
    np.testing.assert_array_equal(back.weight, out.weight)
    np.testing.assert_array_equal(back.flags, out.flags)
    assert back.resampling["kernel"] == "bilinear"
    assert "A_ORDER" not in back.header and "CD1_1" not in back.header
    np.testing.assert_allclose(back.wcs.wcs.crpix, out.wcs.wcs.crpix)


def test_parallel_bands_match_serial(noisy_frame, monkeypatch):
    from astrophot.combination import resample as module

    frame, _ = noisy_frame
    grid = rotated_grid(frame.wcs, frame.shape, rotation=30.0)
    # per-pixel maps: bands of any height then give the same numbers
    serial = resample_frame(frame, grid, parallel=False, projection_error=0)
    monkeypatch.setattr(module, "BAND_PIXELS", 2000)
    threaded = resample_frame(frame, grid, parallel=2, projection_error=0)
    np.testing.assert_allclose(threaded.data, serial.data, rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(threaded.weight, serial.weight, rtol=1e-6)


def test_errors_name_the_frame(noisy_frame):
    frame, _ = noisy_frame
    plain = SolvedFrame(np.ones((10, 10)), unit="electron")
    with pytest.raises(FrameTypeError, match="solve it first"):
        resample_frame(plain, frame)
    with pytest.raises(ValueError, match="unknown kernel 'cubic'"):
        resample_frame(frame, frame, kernel="cubic")
    far = sip_wcs(frame.wcs.pixel_to_world(0, 0).directional_offset_by(0 * u.deg, 10 * u.deg), (50, 50), 3.5)
    with pytest.raises(CombinationError, match="does not overlap"):
        resample_frame(frame, (far, (50, 50)))
    nan = SolvedFrame(np.full(frame.shape, np.nan), wcs=frame.wcs, unit="electron")
    with pytest.raises(CombinationError, match="all NaN"):
        resample_frame(nan, frame)
    spectral = WCS(naxis=3)
    spectral.wcs.ctype = ["RA---TAN", "DEC--TAN", "FREQ"]
    with pytest.raises(FrameTypeError, match="spectral"):
        resample_frame(frame, (spectral, (5, 5)))
    uncertain = SolvedFrame(
        np.ones(frame.shape),
        wcs=frame.wcs,
        unit="electron",
        uncertainty=StdDevUncertainty(np.ones(frame.shape)),
    )
    assert resample_frame(uncertain, frame, kernel="nearest").uncertainty is not None
