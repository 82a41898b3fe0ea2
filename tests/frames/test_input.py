# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The stages' one input contract: a frame or a frame file's path gives the same result (issue 10)."""

import numpy as np
import pytest

import astrophot as ap
from astrophot import read_frame, write_frame
from astrophot.datasets import make_raw_frame, make_solved_frame
from astrophot.exceptions import FrameMismatchError, FrameTypeError
from astrophot.frames._input import as_frame


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A calibrated and a solved frame, in memory and on disk."""
    folder = tmp_path_factory.mktemp("input")
    raw, _ = make_raw_frame(shape=(200, 300), fwhm=3.0, seed=2)
    calibrated = ap.calibrate_frame(raw, unit="adu", gain=1.0, read_noise=8.0)
    solved, _ = make_solved_frame(shape=(120, 150), n_stars=10, sky=300.0, seed=5)
    paths = {"calibrated": folder / "cal.fits", "solved": folder / "nav.fits"}
    write_frame(calibrated, paths["calibrated"])
    write_frame(solved, paths["solved"])
    # the frames as read back: what a path gives, bit for bit
    return {kind: (read_frame(path), path) for kind, path in paths.items()}


def _same_table(a, b):
    assert a.colnames == b.colnames and len(a) == len(b) > 0
    for name in ("x", "y", "flux", "fwhm"):
        np.testing.assert_array_equal(np.asarray(a[name]), np.asarray(b[name]))


@pytest.mark.parametrize("as_text", [False, True])
def test_analysis_stages_take_a_path(files, as_text):
    frame, path = files["calibrated"]
    given = str(path) if as_text else path
    _same_table(ap.find_stars(given), ap.find_stars(frame))
    background, rms = ap.estimate_background(given)
    np.testing.assert_array_equal(background.data, ap.estimate_background(frame)[0].data)
    assert ap.assess_quality(given).fwhm == ap.assess_quality(frame).fwhm
    stars = ap.find_stars(frame)
    assert ap.measure_psf(given, stars=stars).fwhm == ap.measure_psf(frame, stars=stars).fwhm


def test_reduction_stages_take_a_path(files):
    frame, path = files["calibrated"]
    np.testing.assert_array_equal(ap.fix_bad_pixels(path).data, ap.fix_bad_pixels(frame).data)
    np.testing.assert_array_equal(ap.reject_cosmic_rays(path).data, ap.reject_cosmic_rays(frame).data)


def test_combination_stages_take_paths(files):
    frame, path = files["solved"]
    grid = ap.find_optimal_wcs([frame])
    np.testing.assert_array_equal(ap.resample_frame(path, grid).data, ap.resample_frame(frame, grid).data)
    a = ap.stack_frames([path, path, path], rejection="none")
    b = ap.stack_frames([frame, frame, frame], rejection="none")
    np.testing.assert_array_equal(a.data, b.data)


def test_solve_takes_a_path(tmp_path):
    raw, truth = make_raw_frame(
        target="Cygnus Loop", shape=(400, 600), scale=9.0, rotation=20.0, synthetic_density=300.0, seed=3
    )
    path = write_frame(ap.calibrate_frame(raw, unit="adu", gain=1.0, read_noise=8.0), tmp_path / "cal.fits")
    solved = ap.solve_astrometry(path, backend="matcher", catalog="demo", scale=9.0)
    assert solved.solution["verified"]
    assert solved.provenance.steps[-1].inputs[0].path.endswith("cal.fits")  # the file named as the input
    with pytest.raises(FrameTypeError, match="calibrate it first"):
        ap.solve_astrometry(write_frame(raw, tmp_path / "raw.fits"), backend="matcher", catalog="demo")


def test_refusals_name_the_stage_and_the_file(files, tmp_path):
    with pytest.raises(FrameTypeError, match="find_stars needs a frame, a frame file's path, CCDData"):
        ap.find_stars(None)
    with pytest.raises(FrameTypeError, match="resample_frame needs a frame or a frame file's path, not int"):
        ap.resample_frame(3, files["solved"][0])
    cube = ap.CalibratedFrame(np.zeros((2, 5, 5), np.float32), unit="electron")
    with pytest.raises(FrameMismatchError, match="find_stars needs a 2-D image, not shape"):
        ap.find_stars(cube)
    frame, _ = files["solved"]
    with pytest.raises(FrameTypeError, match="must be a MasterBias, not a SolvedFrame"):
        as_frame(frame, ap.MasterBias, role="bias")
    with pytest.raises(Exception, match="missing.fits"):
        ap.find_stars(tmp_path / "missing.fits")
    assert as_frame(None, ap.MasterBias, role="bias", optional=True) is None
