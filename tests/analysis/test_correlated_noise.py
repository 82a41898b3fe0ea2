# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Issue 17 finding 5: the detection noise model holds on correlated noise (photographic grain).

A scanned plate's grain correlates neighbouring pixels, so the noise of the
image filtered for detection is several times the white-noise prediction
(per-pixel RMS x ||kernel||). find_stars measures it at the detection scale
(and the flux errors from empty apertures). Checked against truth on a
simulated correlated-noise frame, and against Source Extractor on a real
POSS-I plate and its star-free reflected copy (the image reflected about its
median: stars become holes, grain and nebulosity stay).
"""

import math
import shutil
import subprocess
import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from scipy.ndimage import gaussian_filter
from scipy.spatial import cKDTree

from astrophot import CalibratedFrame
from astrophot.analysis import find_stars
from astrophot.datasets import make_raw_frame

from ._truthcal import calibrate_from_truth

SEX = shutil.which("source-extractor") or shutil.which("sex")
needs_sex = pytest.mark.skipif(SEX is None, reason="source-extractor (Debian package) is not installed")

#: Source Extractor's default 3 x 3 filter; NORM makes it sum to 1.
SEX_KERNEL = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=float) / 16.0


def run_source_extractor(image, workdir, *, snr):
    """
    Source Extractor's detections on ``image`` at the threshold matching a filtered SNR of ``snr``.

    Its threshold applies to the filtered image in units of the per-pixel
    RMS, so for white noise a filtered signal-to-noise ratio of ``snr`` is
    ``DETECT_THRESH = snr * ||kernel||`` (0.375 for the 3 x 3 filter).
    """
    path = workdir / "image.fits"
    fits.writeto(path, np.asarray(image, dtype=np.float32), overwrite=True)
    (workdir / "sex.param").write_text("NUMBER\nX_IMAGE\nY_IMAGE\nFLAGS\n")
    (workdir / "sex.conv").write_text("CONV NORM\n1 2 1\n2 4 2\n1 2 1\n")
    threshold = snr * float(np.sqrt(np.sum(SEX_KERNEL**2)))
    catalog = workdir / "sex.cat"
    command = [
        SEX, str(path), "-c", "/dev/null",
        "-CATALOG_NAME", str(catalog), "-CATALOG_TYPE", "FITS_1.0",
        "-PARAMETERS_NAME", str(workdir / "sex.param"), "-FILTER_NAME", str(workdir / "sex.conv"),
        "-DETECT_THRESH", f"{threshold:.4f}", "-ANALYSIS_THRESH", f"{threshold:.4f}",
        "-SATUR_LEVEL", "1e9", "-VERBOSE_TYPE", "QUIET", "-CHECKIMAGE_TYPE", "NONE",
    ]  # fmt: skip
    subprocess.run(command, check=True, cwd=workdir, capture_output=True, timeout=120)
    return Table.read(catalog, hdu=1)


def _plate(shared_data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # old DSS header cards
        return fits.getdata(shared_data / "dss/wcstest.mt").astype(np.float32)


def _find(image):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a star-free image has no PSF to measure
        return find_stars(CalibratedFrame(image, unit=u.adu))


@needs_sex
def test_reflected_plate_has_no_more_spurious_detections_than_source_extractor(shared_data, tmp_path):
    plate = _plate(shared_data)
    reflected = 2 * np.median(plate) - plate
    ours = _find(reflected)
    theirs = run_source_extractor(reflected, tmp_path, snr=10.0)
    spurious = int(np.count_nonzero(ours["snr"] > 10))
    print(
        f"reflected POSS-I plate: find_stars {len(ours)} detections, {spurious} with SNR > 10; "
        f"Source Extractor {len(theirs)} at the matched threshold; noise factors "
        f"{ours.meta['detection_noise_factor']} (detection), {ours.meta['aperture_noise_factor']} (aperture)"
    )
    assert spurious <= len(theirs)
    # the grain is measured: the filtered noise is well above the white-noise value
    assert ours.meta["detection_noise_factor"] > 2


@needs_sex
def test_real_plate_stars_agree_with_source_extractor(shared_data, tmp_path):
    plate = _plate(shared_data)
    ours = _find(plate)
    theirs = run_source_extractor(plate, tmp_path, snr=10.0)
    bright = ours[ours["snr"] > 10]
    sx = np.asarray(theirs["X_IMAGE"], dtype=float) - 1.0
    sy = np.asarray(theirs["Y_IMAGE"], dtype=float) - 1.0
    distance, _ = cKDTree(np.column_stack([sx, sy])).query(
        np.column_stack([bright["x"].value, bright["y"].value])
    )
    matched = np.count_nonzero(distance < 1.5)
    print(
        f"POSS-I plate: find_stars {len(bright)} at SNR > 10 ({matched} also Source Extractor's), "
        f"Source Extractor {len(theirs)} at the matched threshold"
    )
    # the stars called significant are real: Source Extractor finds them too (its threshold,
    # which assumes white noise, lets through more: it is the upper bound of this plate's count)
    assert len(bright) >= 30
    assert matched >= 0.9 * len(bright)
    assert len(bright) <= len(theirs)


def _grainy_frame(seed, *, stars=()):
    """Unit-variance noise correlated by a Gaussian of sigma 1.2 px, 100 per pixel, plus round stars."""
    rng = np.random.default_rng(seed)
    white = rng.normal(0.0, 1.0, (400, 400))
    grain = gaussian_filter(white, 1.2)
    grain /= grain.std()
    image = 1000.0 + 100.0 * grain
    yy, xx = np.mgrid[0:400, 0:400]
    sigma = 2.5 / 2.3548
    for x0, y0, flux in stars:
        image += flux / (2 * math.pi * sigma**2) * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma**2))
    return image.astype(np.float32)


def _true_aperture_noise(radius, seed=99):
    """RMS of empty-aperture sums of the grain (truth by brute force on a separate noise draw)."""
    image = _grainy_frame(seed) - 1000.0
    yy, xx = np.mgrid[0:400, 0:400]
    sums = []
    for y0 in range(20, 380, 12):
        for x0 in range(20, 380, 12):
            sums.append(image[(xx - x0) ** 2 + (yy - y0) ** 2 <= radius**2].sum())
    return float(np.std(sums))


def test_correlated_noise_snr_against_truth():
    """No spurious detections on pure grain; injected stars' SNR is their flux over the true noise."""
    empty = _find(_grainy_frame(1))
    assert np.count_nonzero(empty["snr"] > 10) == 0
    assert len(empty) <= 3  # about what a 5-sigma threshold lets through on this many pixels
    rng = np.random.default_rng(5)
    positions = [(x, y) for y in range(40, 380, 60) for x in range(40, 380, 60)]
    stars = [(x + rng.uniform(-0.5, 0.5), y + rng.uniform(-0.5, 0.5), 20000.0) for x, y in positions]
    found = _find(_grainy_frame(2, stars=stars))
    assert len(found) == len(stars)
    radius = found.meta["aperture_radius"]
    true_snr = (
        20000.0 * (1 - math.exp(-(radius**2) / (2 * (2.5 / 2.3548) ** 2))) / _true_aperture_noise(radius)
    )
    ratio = np.median(found["snr"]) / true_snr
    print(f"grain: SNR of injected stars {np.median(found['snr']):.1f}, truth {true_snr:.1f}")
    assert 0.85 < ratio < 1.15


def test_white_noise_frames_keep_the_white_noise_model():
    raw, truth = make_raw_frame(shape=(300, 400), fwhm=2.5, seed=3)
    stars = find_stars(calibrate_from_truth(raw, truth))
    assert stars.meta["detection_noise_factor"] == 1.0
    assert stars.meta["aperture_noise_factor"] == 1.0
