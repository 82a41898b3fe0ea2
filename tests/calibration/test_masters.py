# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Master bias, dark and flat, and read noise, against simulator truth."""

import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits

from astrophot.calibration import (
    make_master_bias,
    make_master_dark,
    make_master_flat,
    measure_read_noise,
)
from astrophot.datasets import make_bias_stack, make_dark_stack, make_flat_stack
from astrophot.exceptions import (
    AstrophotUserWarning,
    CalibrationError,
    FrameMismatchError,
    MissingKeywordError,
)
from astrophot.frames import MasterBias, MasterDark, MasterFlat
from astrophot.io import read_frame, write_frame

SHAPE = (240, 320)


def _write(frames, directory, stem):
    directory.mkdir(exist_ok=True)
    paths = []
    for i, frame in enumerate(frames):
        path = directory / f"{stem}_{i:02d}.fit"
        fits.PrimaryHDU(frame.data, header=frame.header).writeto(path)
        paths.append(path)
    return paths


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_read_noise_within_3_percent_of_truth(seed):
    frames, truth = make_bias_stack(2, shape=(400, 500), read_noise=8.0 + seed, gain=1.3, seed=seed)
    in_electrons = measure_read_noise(frames[0], frames[1], gain=1.3)
    assert in_electrons.read_noise.unit == u.electron
    assert in_electrons.read_noise.value == pytest.approx(truth.detector.read_noise, rel=0.03)
    in_adu = measure_read_noise(frames[0], frames[1])
    assert in_adu.gain is None and in_adu.read_noise.unit == u.adu
    assert in_adu.read_noise.value == pytest.approx(truth.detector.read_noise_adu, rel=0.03)


def test_read_noise_gain_from_header_and_keyword():
    frames, truth = make_bias_stack(2, shape=(200, 300), gain=1.7, telescope="T05", seed=4)
    result = measure_read_noise(frames[0], frames[1])
    assert result.gain_source == "EGAIN" and result.gain.value == pytest.approx(1.7)
    assert result.read_noise.value == pytest.approx(truth.detector.read_noise, rel=0.03)
    by_keyword = measure_read_noise(frames[0], frames[1], gain="EGAIN")
    assert by_keyword.read_noise == result.read_noise
    with pytest.raises(MissingKeywordError, match="GAIN"):
        measure_read_noise(frames[0], frames[1], gain="GAIN")


def test_read_noise_errors_and_figure():
    frames, _ = make_bias_stack(2, shape=(60, 80), telescope="T05", seed=5)
    other = frames[1].copy()
    other.meta["EGAIN"] = 2.5
    with pytest.raises(FrameMismatchError, match="disagree on the gain"):
        measure_read_noise(frames[0], other)
    with pytest.raises(CalibrationError, match="same frame"):
        measure_read_noise(frames[0], frames[0])
    small, _ = make_bias_stack(1, shape=(30, 80), seed=5)
    with pytest.raises(FrameMismatchError, match="differ in shape"):
        measure_read_noise(frames[0], small[0])
    figure = measure_read_noise(frames[0], frames[1], plot=True).figure
    assert len(figure.axes) == 2


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_master_bias_noise_is_read_noise_over_sqrt_n(seed):
    n = 16
    frames, truth = make_bias_stack(n, shape=SHAPE, read_noise=10.0, gain=1.5, seed=seed)
    master = make_master_bias(frames)
    assert isinstance(master, MasterBias) and master.header["NCOMBINE"] == n
    residual = master.data - truth.detector.bias
    expected = truth.detector.read_noise_adu / np.sqrt(n)
    assert residual.std() == pytest.approx(expected, rel=0.10)
    assert abs(residual.mean()) < 3 * expected / np.sqrt(residual.size) + 0.5  # rounding of the raw ADU
    # the per-pixel uncertainty describes the same noise
    assert np.median(master.uncertainty.array) == pytest.approx(expected, rel=0.10)
    assert master.n_rejected.dtype == np.uint16


def test_master_dark_with_and_without_bias(tmp_path):
    biases, truth = make_bias_stack(8, shape=SHAPE, seed=7)
    darks, _ = make_dark_stack(8, shape=SHAPE, exposure=120, seed=7, detector=truth.detector)
    bias = make_master_bias(biases)
    with_bias = make_master_dark(darks, bias=bias)
    kept = make_master_dark(darks)
    assert isinstance(with_bias, MasterDark)
    assert (with_bias.header["CALSTAT"], with_bias.bias_subtracted) == ("BM", True)
    assert (kept.header["CALSTAT"], kept.bias_subtracted) == ("M", False)
    assert with_bias.exposure_time == 120 * u.s
    det = truth.detector
    good = ~det.bad_line_mask
    expected = det.expected_dark(120, include_bias=False)
    residual = (with_bias.data - expected)[good]
    noise = np.sqrt(det.read_noise**2 + det.dark_current_level * 120) / det.gain / np.sqrt(8)
    assert abs(residual.mean()) < 0.3
    assert residual.std() == pytest.approx(np.hypot(noise, det.read_noise_adu / np.sqrt(8)), rel=0.15)
    np.testing.assert_allclose(kept.data - bias.data, with_bias.data, atol=1e-3)
    roles = [r.role for r in with_bias.provenance.steps[-1].inputs]
    assert roles.count("bias") == 1 and roles.count("frames") == 8
    path = write_frame(with_bias, tmp_path / "dark.fits")
    back = read_frame(path)
    assert isinstance(back, MasterDark) and back.bias_subtracted is True


def test_master_flat_matches_truth_with_mixed_sky_flats():
    biases, truth = make_bias_stack(6, shape=SHAPE, seed=8)
    det = truth.detector
    darks, _ = make_dark_stack(6, shape=SHAPE, exposure=60, seed=8, detector=det)
    bias = make_master_bias(biases)
    dark = make_master_dark(darks)  # bias still in: the flat must take the bias out of it
    bright, _ = make_flat_stack(4, filter="Ha", exposure=20, level=25000, seed=8, detector=det)
    faint, _ = make_flat_stack(4, filter="Ha", exposure=45, level=9000, seed=9, detector=det)
    flat = make_master_flat([*bright, *faint], bias=bias, dark=dark)
    assert isinstance(flat, MasterFlat) and flat.filter == "Ha"
    assert flat.header["CALSTAT"] == "BDM"
    ny, nx = SHAPE
    centre = flat.data[ny // 4 : 3 * ny // 4, nx // 4 : 3 * nx // 4]
    assert np.median(centre) == pytest.approx(1.0, abs=1e-6)
    ratio = flat.data / det.flats["Ha"]
    ratio /= np.median(ratio)
    # what is left is noise, described by the uncertainty
    assert ratio.std() == pytest.approx(np.median(flat.uncertainty.array), rel=0.2)
    assert ratio.std() < 0.01
    levels = flat.provenance.steps[-1].outcome["levels"]
    assert max(levels) / min(levels) > 2  # levels differ, yet the flat is right


def test_biased_dark_without_bias_needs_equal_exposures():
    biases, truth = make_bias_stack(4, shape=(60, 80), seed=10)
    darks, _ = make_dark_stack(4, shape=(60, 80), exposure=30, seed=10, detector=truth.detector)
    flats, _ = make_flat_stack(4, filter="V", exposure=10, shape=(60, 80), seed=10, detector=truth.detector)
    dark = make_master_dark(darks)
    with pytest.raises(CalibrationError, match="still contains the bias"):
        make_master_flat(flats, dark=dark)
    same, _ = make_flat_stack(4, filter="V", exposure=30, shape=(60, 80), seed=10, detector=truth.detector)
    flat = make_master_flat(same, dark=dark)
    assert flat.header["CALSTAT"] == "BDM"


def test_mixed_inputs_are_refused_naming_the_files(tmp_path):
    darks, truth = make_dark_stack(3, shape=(40, 50), exposure=60, seed=11)
    longer, _ = make_dark_stack(1, shape=(40, 50), exposure=90, seed=11, detector=truth.detector)
    paths = _write(darks, tmp_path / "darks", "dark")
    odd = _write(longer, tmp_path / "odd", "long_dark")
    with pytest.raises(FrameMismatchError, match=r"exposure time.*long_dark_00\.fit"):
        make_master_dark([*paths, *odd])
    small, _ = make_dark_stack(1, shape=(30, 50), exposure=60, seed=11)
    odd = _write(small, tmp_path / "small", "small_dark")
    with pytest.raises(FrameMismatchError, match=r"shape.*small_dark_00\.fit"):
        make_master_dark([*paths, *odd])
    binned = fits.getheader(paths[0])
    binned["XBINNING"] = binned["YBINNING"] = 2
    binned_path = tmp_path / "binned_dark.fit"
    fits.PrimaryHDU(fits.getdata(paths[0]), header=binned).writeto(binned_path)
    with pytest.raises(FrameMismatchError, match=r"binning.*binned_dark\.fit"):
        make_master_dark([*paths, binned_path])
    with pytest.raises(FrameMismatchError, match=r"not bias frames.*dark_00\.fit"):
        make_master_bias(paths)


def test_missing_exposure_names_the_file(tmp_path):
    darks, _ = make_dark_stack(2, shape=(40, 50), seed=12)
    paths = _write(darks, tmp_path, "dark")
    header = fits.getheader(paths[1])
    del header["EXPTIME"], header["EXPOSURE"]
    fits.PrimaryHDU(fits.getdata(paths[1]), header=header).writeto(paths[1], overwrite=True)
    with pytest.raises(MissingKeywordError, match=r"dark_01\.fit.*EXPOSURE or EXPTIME"):
        make_master_dark(paths)


def test_empty_directory_and_no_frames(tmp_path):
    with pytest.raises(CalibrationError, match=f"{tmp_path.name}.*no FITS files"):
        make_master_bias(tmp_path)
    with pytest.raises(CalibrationError, match="no input frames"):
        make_master_bias([])


def test_temperatures(tmp_path):
    frames, truth = make_bias_stack(5, shape=(40, 50), seed=13)
    warm = frames[2].copy()
    warm.meta["CCD-TEMP"] = truth.detector.set_temperature + 3.0
    warm.source_path = "warm_bias.fit"
    with pytest.warns(AstrophotUserWarning, match=r"dropping 1 bias.*warm_bias\.fit"):
        master = make_master_bias([*frames, warm])
    assert master.header["NCOMBINE"] == 5
    assert master.provenance.steps[-1].outcome["dropped"] == ("warm_bias.fit",)
    other = frames[0].copy()
    other.meta["SET-TEMP"] = truth.detector.set_temperature + 5.0
    other.source_path = "other_setpoint.fit"
    with pytest.raises(FrameMismatchError, match=r"set temperature.*other_setpoint\.fit"):
        make_master_bias([*frames, other])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert make_master_bias([*frames, warm], temperature_tolerance=5).header["NCOMBINE"] == 6


def test_directory_input_skips_masters(tmp_path):
    frames, _ = make_bias_stack(3, shape=(40, 50), seed=14)
    _write(frames, tmp_path, "bias")
    fits.PrimaryHDU(np.zeros((5, 5), dtype=np.float32)).writeto(tmp_path / "Master_Bias_1_50x40.fit")
    master = make_master_bias(tmp_path)
    assert master.header["NCOMBINE"] == 3
    paths = {r.path for r in master.provenance.steps[-1].inputs}
    assert all("Master_" not in p for p in paths)
