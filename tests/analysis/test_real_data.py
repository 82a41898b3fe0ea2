# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Star finding on the real frames in ../shared/data, compared with Source Extractor.

Source Extractor (Debian ``source-extractor``) is run on the same file with a
minimal configuration written to a temporary directory; stars found by both
(within 1 pixel) must agree in position, and their FWHM medians are compared.
Source Extractor's FWHM_IMAGE is known to run high for small, undersampled
stars (it measures the isophotal area above half the peak, pixels included):
on simulated frames with a known PSF it reads 10-17 % above the truth where
find_stars is within 2 % (see ``test_source_extractor_on_simulated_truth``).
The PANOPTES frame is a raw Bayer (RGGB) mosaic whose stars are about one
pixel wide, so the two FWHM differ most there; it is also compared after
2 x 2 binning, which makes a grey image of coarser pixels. find_stars
balances the mosaic's channels before measuring; its FWHM there is checked
against an independent fit made here, on the raw mosaic itself, of a Moffat
profile with its own amplitude and sky for each of the four channels,
integrated exactly (8 x 8 samples) over the pixels.
"""

import shutil
import subprocess
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from scipy.optimize import least_squares
from scipy.spatial import cKDTree

from astrophot import CalibratedFrame, read_frame
from astrophot.analysis import StarFlag, find_stars, measure_psf

SEX = shutil.which("source-extractor") or shutil.which("sex")
needs_sex = pytest.mark.skipif(SEX is None, reason="source-extractor (Debian package) is not installed")

PARAMS = ["NUMBER", "X_IMAGE", "Y_IMAGE", "FLUX_AUTO", "FLUXERR_AUTO", "FWHM_IMAGE", "FLAGS"]


def run_source_extractor(path, workdir, *, saturation=50000.0):
    """Source Extractor's catalogue of ``path`` (detection at 5 sigma, the default 3x3 filter)."""
    (workdir / "sex.param").write_text("\n".join(PARAMS) + "\n")
    (workdir / "sex.conv").write_text("CONV NORM\n1 2 1\n2 4 2\n1 2 1\n")
    catalog = workdir / "sex.cat"
    command = [
        SEX, str(path), "-c", "/dev/null",
        "-CATALOG_NAME", str(catalog), "-CATALOG_TYPE", "FITS_1.0",
        "-PARAMETERS_NAME", str(workdir / "sex.param"), "-FILTER_NAME", str(workdir / "sex.conv"),
        "-DETECT_THRESH", "5", "-ANALYSIS_THRESH", "5", "-SATUR_LEVEL", str(saturation),
        "-VERBOSE_TYPE", "QUIET", "-CHECKIMAGE_TYPE", "NONE",
    ]  # fmt: skip
    subprocess.run(command, check=True, cwd=workdir, capture_output=True, timeout=120)
    return Table.read(catalog, hdu=1)


def compare(stars, catalog, *, min_snr=20.0):
    """Matched unflagged stars: (offsets, our FWHM, Source Extractor's FWHM)."""
    sx = np.asarray(catalog["X_IMAGE"], dtype=float) - 1.0  # Source Extractor counts from 1
    sy = np.asarray(catalog["Y_IMAGE"], dtype=float) - 1.0
    distance, index = cKDTree(np.column_stack([sx, sy])).query(
        np.column_stack([stars["x"].value, stars["y"].value])
    )
    good = (distance < 1.0) & (stars["flags"] == 0) & (np.asarray(catalog["FLAGS"])[index] == 0)
    good &= stars["snr"] > min_snr
    return distance[good], stars["fwhm"].value[good], np.asarray(catalog["FWHM_IMAGE"])[index[good]]


def _read(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # old headers: non-standard cards
        return read_frame(path)


@pytest.mark.parametrize(
    "name",
    [
        "panoptes/unsolved.fits",
        "panoptes/solved.fits.fz",
        "panoptes/tiny.fits",
        "dss/dss_test1.fits",
        "maximdl_headers/maximdl_6_18_header.fit",
        "maximdl_headers/aspen_trimmed.fit",
        "maximdl_headers/neon-on-dome-10-sec-high-res-though-scope.fit",
    ],
)
def test_runs_on_real_frames(shared_data, name):
    frame = _read(shared_data / name)
    with warnings.catch_warnings():
        # a frame with too few stars to fit the PSF says so
        warnings.filterwarnings("ignore", message=".*too few isolated.*")
        stars = find_stars(frame)
    good = stars[(stars["flags"] == 0) & (stars["snr"] > 10)]
    if len(good) >= 3:
        fwhm = np.median(good["fwhm"].value)
        assert 0.5 < fwhm < 10.0, fwhm  # pixels: stars, not noise or smooth structure
    # positions inside the image, fluxes positive
    ny, nx = frame.shape
    x, y = stars["x"].value, stars["y"].value
    assert np.all((x >= -0.5) & (x <= nx - 0.5) & (y >= -0.5) & (y <= ny - 0.5))
    assert np.all(stars["flux"].value[stars["snr"] > 5] > 0)


def test_panoptes_psf_and_saturation(shared_data):
    frame = _read(shared_data / "panoptes/unsolved.fits")
    stars = find_stars(frame)
    assert len(stars) > 300
    # the DSLR's clipped ceiling (13583) is found and the brightest stars are flagged
    assert np.all(stars["flags"][:5] & StarFlag.SATURATED)
    psf = measure_psf(frame, stars=stars)
    assert 0.7 < psf.fwhm < 2.5 and psf.n_stars > 50
    solved = _read(shared_data / "panoptes/solved.fits.fz")
    psf_solved = measure_psf(solved)
    # 10.3 arcsec/pixel from the TAN-SIP WCS
    assert psf_solved.scale == pytest.approx(10.3, rel=0.05)
    assert psf_solved.fwhm_arcsec == pytest.approx(psf_solved.fwhm * psf_solved.scale)


@needs_sex
def test_dss_plate_agrees_with_source_extractor(shared_data, tmp_path):
    path = shared_data / "dss/dss_test1.fits"
    catalog = run_source_extractor(path, tmp_path, saturation=20000.0)
    stars = find_stars(_read(path))
    offsets, ours, theirs = compare(stars, catalog, min_snr=10)
    assert offsets.size >= 5
    assert np.median(offsets) < 0.15
    print(
        f"DSS plate: {offsets.size} stars, median offset {np.median(offsets):.3f} px, "
        f"FWHM median {np.median(ours):.2f} (find_stars) vs {np.median(theirs):.2f} (Source Extractor)"
    )
    assert np.median(ours) == pytest.approx(np.median(theirs), rel=0.2)


@needs_sex
def test_panoptes_agrees_with_source_extractor(shared_data, tmp_path):
    path = shared_data / "panoptes/unsolved.fits"
    catalog = run_source_extractor(path, tmp_path, saturation=13583.0)
    stars = find_stars(_read(path))
    offsets, ours, theirs = compare(stars, catalog)
    assert offsets.size > 150
    # a Bayer mosaic: colour-dependent centroids still agree to a fifth of a pixel
    assert np.median(offsets) < 0.25
    print(
        f"PANOPTES raw Bayer: {offsets.size} stars, median offset {np.median(offsets):.3f} px, "
        f"FWHM median {np.median(ours):.2f} (find_stars) vs {np.median(theirs):.2f} (Source Extractor)"
    )

    # 2 x 2 binned (one grey super-pixel per RGGB cell)
    data = np.asarray(_read(path).data, dtype=np.float32)
    ny, nx = (data.shape[0] // 2) * 2, (data.shape[1] // 2) * 2
    binned = data[:ny, :nx].reshape(ny // 2, 2, nx // 2, 2).sum(axis=(1, 3))
    binned_path = tmp_path / "binned.fits"
    fits.writeto(binned_path, binned)
    catalog = run_source_extractor(binned_path, tmp_path, saturation=4 * 13583.0 * 0.98)
    stars = find_stars(CalibratedFrame(binned, unit="adu"), saturation=4 * 13583.0 * 0.98)
    offsets, ours, theirs = compare(stars, catalog)
    assert offsets.size > 100
    assert np.median(offsets) < 0.2
    print(
        f"PANOPTES binned 2x2: {offsets.size} stars, median offset {np.median(offsets):.3f} px, "
        f"FWHM median {np.median(ours):.2f} (find_stars) vs {np.median(theirs):.2f} (Source Extractor)"
    )
    # both undersampled: ours (a pixel-integrated Moffat) is smaller; Source Extractor's is biased up
    assert 0.4 < np.median(ours) / np.median(theirs) < 1.1


@needs_sex
def test_source_extractor_on_simulated_truth(tmp_path):
    """On a simulated frame with a known PSF, both tools find the same stars; ours has the truth's FWHM."""
    from astrophot.datasets import make_raw_frame

    from ._truthcal import calibrate_from_truth

    raw, truth = make_raw_frame(shape=(400, 500), fwhm=2.5, seed=3)
    frame = calibrate_from_truth(raw, truth, flag_defects=False)
    path = tmp_path / "sim.fits"
    fits.writeto(path, np.asarray(frame.data, dtype=np.float32))
    catalog = run_source_extractor(path, tmp_path)
    stars = find_stars(frame)
    offsets, ours, theirs = compare(stars, catalog)
    assert offsets.size > 100 and np.median(offsets) < 0.1
    assert np.median(ours) == pytest.approx(truth.psf.fwhm, rel=0.03)
    assert np.median(theirs) > np.median(ours)  # Source Extractor's FWHM_IMAGE runs high
    ours, theirs = np.median(ours), np.median(theirs)
    print(f"simulated FWHM {truth.psf.fwhm}: find_stars {ours:.3f}, Source Extractor {theirs:.3f}")


def _moffat_on_pixels(x0, y0, fwhm, beta, xx, yy, samples=8):
    """A unit-peak Moffat averaged over each pixel on a ``samples`` x ``samples`` grid."""
    offsets = (np.arange(samples) + 0.5) / samples - 0.5
    alpha2 = (fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))) ** 2
    dx = xx[..., None, None] + offsets[None, None, None, :] - x0
    dy = yy[..., None, None] + offsets[None, None, :, None] - y0
    return ((1.0 + (dx * dx + dy * dy) / alpha2) ** -beta).mean(axis=(-1, -2))


def cfa_moffat_fwhm(data, x, y, *, beta=None, half=6):
    """
    FWHM of each star from a fit to the raw mosaic, each 2 x 2 channel with its own amplitude and sky.

    ``beta`` fixed, or fitted when None. Independent of find_stars: scipy's
    least squares, exact pixel integration, no balancing of the channels.
    """
    ny, nx = data.shape
    widths = []
    for xs, ys in zip(x, y):
        xc, yc = int(round(xs)), int(round(ys))
        if not (half <= xc < nx - half and half <= yc < ny - half):
            continue
        yy, xx = np.mgrid[yc - half : yc + half + 1, xc - half : xc + half + 1]
        values = data[yc - half : yc + half + 1, xc - half : xc + half + 1]
        channel = (yy % 2) * 2 + xx % 2
        sky = [np.median(values[channel == k]) for k in range(4)]

        def residuals(p, xx=xx, yy=yy, channel=channel, values=values):
            shape = _moffat_on_pixels(p[0], p[1], p[2], p[11] if beta is None else beta, xx, yy)
            return (p[3:7][channel] * shape + p[7:11][channel] - values).ravel()

        start = [xs, ys, 1.5] + [values.max() - min(sky)] * 4 + sky
        low, high = [xc - 2, yc - 2, 0.2] + [-np.inf] * 8, [xc + 2, yc + 2, 10.0] + [np.inf] * 8
        if beta is None:
            start, low, high = start + [2.5], low + [1.01], high + [20.0]
        fit = least_squares(residuals, start, bounds=(low, high), x_scale="jac")
        widths.append(fit.x[2])
    return np.array(widths)


def test_panoptes_fwhm_agrees_with_an_independent_mosaic_fit(shared_data):
    frame = _read(shared_data / "panoptes/unsolved.fits")
    stars = find_stars(frame)
    assert stars.meta["cfa"] == "RGGB"  # FILTER says so; the stars agree
    # the green pixels (diagonal of the 2 x 2 cell) see the stars best
    gains = np.asarray(stars.meta["cfa_gains"])
    assert min(gains[0], gains[3]) > max(gains[1], gains[2])
    bright = stars[(stars["flags"] == 0) & (stars["snr"] > 50)][:30]
    data = np.asarray(frame.data, dtype=float)
    x, y = bright["x"].value, bright["y"].value
    ours = np.median(bright["fwhm"].value)
    same_beta = np.median(cfa_moffat_fwhm(data, x, y, beta=stars.meta["beta"]))
    free_beta = np.median(cfa_moffat_fwhm(data, x, y))
    print(
        f"PANOPTES FWHM median of {len(bright)} bright stars: find_stars {ours:.3f} px (beta "
        f"{stars.meta['beta']:.2f}); mosaic fit with the same beta {same_beta:.3f}, with a free beta {free_beta:.3f}"
    )
    assert ours == pytest.approx(same_beta, rel=0.07)
    # the Moffat index is not well constrained by stars of one pixel: with heavier wings the
    # core is narrower, but the widths stay within 15 %
    assert ours == pytest.approx(free_beta, rel=0.15)
    # the whole frame's PSF: a star image a pixel wide (10 arcsec), not narrower
    assert measure_psf(frame, stars=stars).fwhm == pytest.approx(same_beta, rel=0.1)
