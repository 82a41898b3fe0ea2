# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""simulate_night: files as iTelescope writes them, and truth consistent with the pixels."""

import datetime
import os
import shutil
import subprocess
import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.modeling import fitting, models
from astropy.wcs import WCS

from astrophot import MasterBias, MasterDark, MasterFlat, RawFrame, read_frame
from astrophot.datasets import (
    SimulationError,
    find_index_files,
    load_night,
    make_raw_frame,
    simulate_night,
)
from astrophot.datasets._headers import telescope_info


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    root = tmp_path_factory.mktemp("night")
    return simulate_night(
        root,
        shape=(240, 320),
        n_lights=2,
        filters=("Ha", "Red"),
        n_bias=4,
        n_darks=3,
        n_flats=2,
        fwhm=4.0,
        bad_frames=("defocused", "trailed", "clouded"),
        synthetic_density=0.0,  # Tycho-2 stars only: uncrowded even when defocused
        seed=5,
    )


def _files(root):
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def test_same_seed_gives_identical_bytes(tmp_path):
    kwargs = dict(shape=(48, 64), n_lights=1, n_bias=2, n_darks=2, n_flats=1, seed=12)
    a = simulate_night(tmp_path / "a", **kwargs)
    b = simulate_night(tmp_path / "b", **kwargs)
    c = simulate_night(tmp_path / "c", **{**kwargs, "seed": 13})
    files = _files(a.root)
    assert files == _files(b.root) and len(files) > 10
    for rel in files:
        assert (a.root / rel).read_bytes() == (b.root / rel).read_bytes(), rel
    assert (a.lights[0]).read_bytes() != (c.lights[0]).read_bytes()


def test_refuses_to_overwrite(tmp_path):
    kwargs = dict(shape=(32, 40), n_lights=1, n_bias=1, n_darks=1, n_flats=1, filters=("Red",))
    simulate_night(tmp_path, **kwargs)
    with pytest.raises(FileExistsError, match="does not overwrite"):
        simulate_night(tmp_path, **kwargs)


def test_bad_options_are_refused(tmp_path):
    with pytest.raises(SimulationError, match="unknown bad-frame reason"):
        simulate_night(tmp_path, shape=(32, 40), bad_frames=("foggy",))
    with pytest.raises(SimulationError, match="need at least"):
        simulate_night(tmp_path, shape=(32, 40), n_lights=1, filters=("Red",), bad_frames=("trailed",))
    with pytest.raises(SimulationError, match="plate scale unknown"):
        simulate_night(tmp_path, telescope="T05", shape=(32, 40))


def test_layout_and_file_names(night):
    itelescope = pytest.importorskip("astrophot.instruments.itelescope")
    assert len(night.lights) == 4
    for path in night.lights:
        assert path.parent == night.root / "lights"
        record = itelescope.parse_filename(path.name)
        truth = night.truth_for(path)
        assert record.telescope == "T20" and record.user == "astrophot" and record.target == "M31"
        assert record.filter == truth.filter and record.binning == 2
        assert record.exposure == truth.exposure * u.s
        assert record.pier_side == truth.pier_side
        # the name holds the local (Mountain Daylight, UT-6) time, not UT
        utc = truth.date_obs.to_datetime()
        assert record.local_time == (utc - datetime.timedelta(hours=6)).replace(microsecond=0)
    seqs = [itelescope.parse_filename(p.name).sequence for p in night.lights]
    assert seqs == [1, 2, 1, 2]
    for key in ("bias", "dark"):
        record = itelescope.parse_filename(night.masters[key].name)
        assert record.kind == "master" and record.shape == night.shape and record.binning == 2
    assert night.masters["dark"].name == "Master_Dark_2_320x240_Bin2x2_Temp-15C_ExpTime900s.fit"
    assert night.masters["dark"].parent == night.library / "T20" / "Masters" / "Darks" / "2021-10"
    flat = night.masters["flats"]["Ha"]
    assert flat.name.startswith("Master_Flat_Ha_2_Ha_320x240_Bin2x2_Temp-15C_ExpTime30s")
    assert itelescope.parse_filename(flat.name).filter == "Ha"


def test_raw_headers_read_back(night):
    for path in night.lights:
        truth = night.truth_for(path)
        frame = read_frame(path)
        assert isinstance(frame, RawFrame)
        assert frame.data.dtype == np.uint16
        with fits.open(path) as hdul:
            header = hdul[0].header
            assert header["BITPIX"] == 16 and header["BZERO"] == 32768
            assert list(header)[5:7] == ["BSCALE", "BZERO"]
            assert header["OBJECT"] == "" and header["TELESCOP"] == ""
            assert header["SWCREATE"].startswith("MaxIm DL Version 6.27")
        assert frame.exposure_time == truth.exposure * u.s
        assert abs((frame.date_obs - truth.date_obs).to_value(u.s)) < 0.01
        assert frame.binning == (2, 2)
        assert frame.set_temperature == -15 * u.deg_C
        assert frame.ccd_temperature.to_value(u.deg_C) == pytest.approx(-15, abs=0.3)
        assert frame.filter == truth.filter
        assert frame.header["IMAGETYP"] == "Light Frame"
        t20 = telescope_info("T20")
        assert frame.header["XPIXSZ"] == 2 * t20.pixel_size and frame.header["FOCALLEN"] == t20.focal_length
        assert frame.header["SITELAT"] == "32 54 12"
        assert frame.coordinates.separation(night.center) < 1 * u.arcsec
        assert "EGAIN" not in frame.header  # T20 raw frames do not carry it
        np.testing.assert_array_equal(frame.data, fits.getdata(path).astype(np.uint16))
    assert read_frame(night.biases[0]).header["IMAGETYP"] == "Bias Frame"
    assert read_frame(night.darks[0]).exposure_time == 900 * u.s


def test_egain_and_missing_pointing_where_itelescope_omits_them(tmp_path):
    t05 = simulate_night(
        tmp_path / "t05",
        telescope="T05",
        binning=1,
        scale=1.5,
        shape=(40, 50),
        n_lights=1,
        filters=("V",),
        n_bias=1,
        n_darks=1,
        n_flats=1,
    )
    frame = read_frame(t05.lights[0])
    assert frame.gain == t05.detector.gain * u.electron / u.adu
    assert frame.header["EGAIN"] == t05.detector.gain
    t31 = simulate_night(
        tmp_path / "t31",
        telescope="T31",
        binning=1,
        shape=(40, 50),
        n_lights=1,
        filters=("Green",),
        n_bias=1,
        n_darks=1,
        n_flats=1,
    )
    header = read_frame(t31.lights[0]).header
    assert "OBJCTRA" not in header and "OBJCTDEC" not in header
    assert header["SITELAT"] == "-31 16 24"
    assert t31.scale == pytest.approx(1.0957, abs=1e-3)


def test_masters_match_truth(night):
    det = night.detector
    bias = read_frame(night.masters["bias"])
    dark = read_frame(night.masters["dark"])
    flat = read_frame(night.masters["flats"]["Red"])
    assert isinstance(bias, MasterBias) and isinstance(dark, MasterDark) and isinstance(flat, MasterFlat)
    assert dark.header["CALSTAT"].strip() == "M" and dark.bias_subtracted is False
    n_bias, n_dark = len(night.biases), len(night.darks)
    # the master bias is the mean of the raw biases: noise rn/sqrt(n)
    resid = np.asarray(bias.data) - det.bias
    assert np.std(resid) == pytest.approx(det.read_noise_adu / np.sqrt(n_bias), rel=0.1)
    # the master dark carries bias + dark current * 900 s (hot pixels included)
    hot = det.hot_pixel_mask
    expected = det.expected_dark(900.0)
    err = np.abs(np.asarray(dark.data) - expected)[hot]
    shot = np.sqrt(det.dark_current[hot] * 900 + det.read_noise**2) / det.gain / np.sqrt(n_dark)
    assert np.all(err < 5 * shot + 1)
    # the flat master, normalised, is the truth flat to the photon noise of 2 frames of 20000 ADU
    norm = np.asarray(flat.data) / np.mean(flat.data)
    good = ~(
        det.bad_line_mask | hot | np.any([night.truth_for(p).cosmic_rays for p in night.flats["Red"]], axis=0)
    )
    assert np.std((norm - det.flats["Red"])[good]) < 2.5 / np.sqrt(2 * 20000 * det.gain)


def test_bias_level_and_read_noise_from_raw_biases(night):
    det = night.detector
    a, b = (read_frame(p).data.astype(float) for p in night.biases[:2])
    assert np.mean(a) == pytest.approx(det.bias_level, abs=0.1)
    rn = np.sqrt(np.var(a - b) / 2 - 1 / 12) * det.gain
    assert rn == pytest.approx(det.read_noise, rel=0.05)
    t20 = telescope_info("T20")  # the telescope table's facts, when it has them
    assert det.read_noise == (t20.read_noise or 10.0) and det.gain == (t20.gain or 1.5)


def _perfect_calibration(data, det, truth):
    """Raw ADU to sky-subtracted, flat-fielded electrons with the truth's own calibration."""
    electrons = (np.asarray(data, dtype=float) - det.bias) * det.gain - _dark(det, truth)
    return electrons / det.flats[truth.filter] - _sky(det, truth)


def _dark(det, truth):
    dark = det.dark_current * truth.exposure
    for key, factor in truth.dark_line_factors.items():
        index = int(key[1:])
        extra = det.bad_line_current * truth.exposure * factor
        if key[0] == "c":
            dark[:, index] += extra
        else:
            dark[index, :] += extra
    return dark


def _sky(det, truth):
    ny, nx = det.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    slope_x, slope_y = truth.sky_slope
    return truth.sky_level + slope_x * (xx - (nx - 1) / 2) + slope_y * (yy - (ny - 1) / 2)


def _calibrated(night, path):
    truth = night.truth_for(path)
    return _perfect_calibration(read_frame(path).data, night.detector, truth), truth


def _fit_moffat(image, stars, fwhm_guess, *, half=8, beta=3.0):
    """Moffat fits to isolated stars of a sky-subtracted image (converged fits only)."""
    fitter = fitting.TRFLSQFitter()
    ny, nx = image.shape
    fits_ = []
    for s in stars:
        xi, yi = int(round(s["x"])), int(round(s["y"]))
        if not (half <= xi < nx - half and half <= yi < ny - half):
            continue
        d = np.hypot(stars["x"] - s["x"], stars["y"] - s["y"])
        if np.sort(d)[1] < 1.5 * half:
            continue
        cut = image[yi - half : yi + half + 1, xi - half : xi + half + 1]
        yy, xx = np.mgrid[yi - half : yi + half + 1, xi - half : xi + half + 1]
        model = models.Moffat2D(cut.max(), s["x"], s["y"], fwhm_guess / 1.02, beta)
        model.gamma.bounds = (0.1, 10 * fwhm_guess)
        model.alpha.fixed = True  # the width alone is measured; beta is degenerate with it in noisy data
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fitted = fitter(model, xx, yy, cut)
        if not caught:  # keep converged fits only
            fits_.append(fitted)
    return fits_


def test_fwhm_from_the_images_matches_truth(night):
    good, defocused = night.lights[0], night.lights[1]
    image, truth = _calibrated(night, good)
    stars = truth.stars[(truth.stars["flux"] > 3000) & ~truth.stars["saturated"]]
    fitted = _fit_moffat(image, stars, truth.psf.fwhm)
    assert len(fitted) >= 3
    assert np.median([m.fwhm for m in fitted]) == pytest.approx(truth.psf.fwhm, rel=0.05)
    image, bad = _calibrated(night, defocused)
    assert bad.bad_reason == "defocused" and bad.psf.fwhm == pytest.approx(3 * truth.psf.fwhm, rel=0.2)
    stars = bad.stars[(bad.stars["flux"] > 3000) & ~bad.stars["saturated"]]
    fitted = _fit_moffat(image, stars, bad.psf.fwhm, half=25)
    assert len(fitted) >= 1
    assert np.median([m.fwhm for m in fitted]) == pytest.approx(bad.psf.fwhm, rel=0.1)


def test_fwhm_of_a_high_snr_frame():
    frame, truth = make_raw_frame(shape=(240, 240), fwhm=4.0, seed=2, cosmic_ray_rate=0)
    image = _perfect_calibration(frame.data, truth.detector, truth.frames[0])
    stars = truth.stars[(truth.stars["flux"] > 5000) & ~truth.stars["saturated"]]
    fitted = _fit_moffat(image, stars, 4.0, half=7)
    assert len(fitted) >= 10
    assert np.median([m.fwhm for m in fitted]) == pytest.approx(4.0, rel=0.05)
    offsets = [np.hypot(m.x_0.value - s_x, m.y_0.value - s_y) for m, s_x, s_y in _positions(fitted, stars)]
    assert np.median(offsets) < 0.1


def _positions(fitted, stars):
    for m in fitted:
        d = np.hypot(stars["x"] - m.x_0.value, stars["y"] - m.y_0.value)
        i = int(np.argmin(d))
        yield m, stars["x"][i], stars["y"][i]


def _stars_only(night, truth):
    """The noiseless image less dark current, bad-line charge and sky, divided by the flat."""
    det = night.detector
    return (truth.noiseless - _dark(det, truth)) / det.flats[truth.filter] - _sky(det, truth)


def test_trailed_and_clouded_frames(night):
    truths = night.light_truths
    reasons = [t.bad_reason for t in truths]
    assert reasons == [None, "defocused", "trailed", "clouded"]
    trailed, clouded, good = truths[2], truths[3], truths[0]
    assert trailed.psf.ellipticity == 0.5
    # the trail shows in the shape of a bright star of the noiseless image
    image = _stars_only(night, trailed)
    h = 16
    ny, nx = night.shape
    st = trailed.stars
    inside = (
        (st["x"] > h) & (st["x"] < nx - h - 1) & (st["y"] > h) & (st["y"] < ny - h - 1) & ~st["saturated"]
    )
    s = st[np.argmax(np.where(inside, st["flux"], 0))]
    xi, yi = int(round(s["x"])), int(round(s["y"]))
    cut = image[yi - h : yi + h + 1, xi - h : xi + h + 1]
    yy, xx = np.mgrid[-h : h + 1, -h : h + 1]
    # moments of the isophote at 5 % of the peak: an ellipse with the PSF's axis ratio
    w = (cut > 0.05 * cut.max()).astype(float)
    w /= w.sum()
    mx, my = (w * xx).sum(), (w * yy).sum()
    cxx, cyy, cxy = (w * (xx - mx) ** 2).sum(), (w * (yy - my) ** 2).sum(), (w * (xx - mx) * (yy - my)).sum()
    lam = np.linalg.eigvalsh([[cxx, cxy], [cxy, cyy]])
    assert 1 - np.sqrt(lam[0] / lam[1]) == pytest.approx(0.5, abs=0.1)
    # clouds: a fifth of the starlight and three times the sky of a clear frame in the same filter
    assert clouded.filter == trailed.filter and trailed.bad_reason == "trailed"
    assert clouded.transparency == 0.2
    assert clouded.sky_level / trailed.sky_level == pytest.approx(3.0)
    real = ~clouded.stars["synthetic"]
    ratio = np.median(clouded.stars["flux"][real]) / np.median(
        trailed.stars["flux"][~trailed.stars["synthetic"]]
    )
    assert ratio == pytest.approx(0.2 / trailed.transparency, rel=0.05)
    assert good.transparency > 0.9


def test_cosmic_rays_are_where_the_truth_says(night):
    det = night.detector
    total = 0
    for path in night.lights + night.darks:
        truth = night.truth_for(path)
        if truth.cosmic_ray_electrons is None:
            continue
        raw = read_frame(path).data.astype(float)
        excess = (raw - det.bias) * det.gain - (truth.noiseless if truth.noiseless is not None else 0)
        strong = (truth.cosmic_ray_electrons > 1000) & (raw < det.saturation)
        if truth.kind == "dark":
            excess = excess - det.dark_current * truth.exposure
            strong &= ~det.hot_pixel_mask & ~det.bad_line_mask
        # the excess charge is the deposit, within the photon and read noise
        assert np.all(excess[strong] > 0.5 * truth.cosmic_ray_electrons[strong])
        total += strong.sum()
    assert total > 5


def test_star_positions_follow_the_wcs(night):
    for truth in night.light_truths:
        x, y = truth.wcs.all_world2pix(
            truth.stars["ra"].to_value(u.deg), truth.stars["dec"].to_value(u.deg), 0
        )
        np.testing.assert_allclose(x, truth.stars["x"], atol=1e-6)
        np.testing.assert_allclose(y, truth.stars["y"], atol=1e-6)
        assert truth.pointing.separation(night.center) < 60 * u.arcsec
        assert (~truth.stars["synthetic"]).sum() >= 3


def test_truth_round_trips_through_yaml(night):
    loaded = load_night(night.root)
    assert loaded.lights == night.lights and loaded.masters == night.masters
    np.testing.assert_allclose(loaded.detector.bias_structure, night.detector.bias_structure, atol=1e-4)
    np.testing.assert_allclose(loaded.detector.flats["Ha"], night.detector.flats["Ha"], rtol=1e-6)
    assert loaded.detector.bad_columns == night.detector.bad_columns
    for name, truth in night.frames.items():
        other = loaded.frames[name]
        np.testing.assert_array_equal(other.cosmic_rays, truth.cosmic_rays)
        assert other.date_obs.isot == truth.date_obs.isot
        if truth.kind == "light":
            assert other.psf == truth.psf and other.bad_reason == truth.bad_reason
            np.testing.assert_allclose(other.wcs.pixel_scale_matrix, truth.wcs.pixel_scale_matrix, rtol=1e-10)
            np.testing.assert_allclose(other.wcs.wcs.crval, truth.wcs.wcs.crval, rtol=1e-12)
            np.testing.assert_allclose(other.stars["x"], truth.stars["x"])
            assert other.local_time == truth.local_time


@pytest.mark.solver
def test_solve_field_recovers_the_truth_wcs(tmp_path):
    solve_field = shutil.which("solve-field")
    index_files = find_index_files()
    if os.environ.get("CI"):
        assert solve_field, "CI must have astrometry.net's solve-field"
        assert index_files, "CI must have the Tycho-2 index files"
    if not solve_field or not index_files:
        pytest.skip("solve-field or the astrometry.net Tycho-2 index files are not installed")
    night = simulate_night(
        tmp_path / "night",
        shape=(640, 800),
        n_lights=1,
        filters=("Red",),
        n_bias=0,
        n_darks=0,
        n_flats=0,
        calibration_library=False,
        seed=3,
    )
    truth = night.light_truths[0]
    work = tmp_path / "solve"
    work.mkdir()
    config = work / "astrometry.cfg"
    dirs = sorted({str(p.parent) for p in index_files})
    config.write_text("inparallel\ncpulimit 60\n" + "".join(f"add_path {d}\n" for d in dirs) + "autoindex\n")
    centre = night.center
    result = subprocess.run(
        [
            solve_field,
            "--config",
            str(config),
            "--no-plots",
            "--overwrite",
            "--dir",
            str(work),
            "--scale-units",
            "arcsecperpix",
            "--scale-low",
            str(0.9 * night.scale),
            "--scale-high",
            str(1.1 * night.scale),
            "--ra",
            str(centre.ra.deg),
            "--dec",
            str(centre.dec.deg),
            "--radius",
            "2",
            "--cpulimit",
            "60",
            "--tweak-order",
            "1",
            "--new-fits",
            "none",
            str(night.lights[0]),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    wcs_file = work / (night.lights[0].stem + ".wcs")
    assert wcs_file.exists(), result.stdout[-2000:] + result.stderr[-2000:]
    header = fits.getheader(wcs_file)
    ny, nx = night.shape
    header["NAXIS"], header["NAXIS1"], header["NAXIS2"] = 2, nx, ny  # the .wcs file is header-only
    solved = WCS(header)
    yy, xx = np.mgrid[0 : ny - 1 : 15j, 0 : nx - 1 : 15j]
    sep = truth.wcs.pixel_to_world(xx.ravel(), yy.ravel()).separation(
        solved.pixel_to_world(xx.ravel(), yy.ravel())
    )
    assert sep.max() < 1 * u.arcsec
