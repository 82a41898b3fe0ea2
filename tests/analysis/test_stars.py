# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""find_stars and measure_psf against simulated truth."""

import astropy.units as u
import numpy as np
import pytest
from astropy.nddata import CCDData
from astropy.table import QTable
from scipy.spatial import cKDTree

from astrophot import CalibratedFrame, DQFlag
from astrophot.analysis import StarFlag, ds9_regions, find_stars, measure_psf, select_psf_stars
from astrophot.datasets import make_raw_frame
from astrophot.exceptions import AnalysisError, FrameMismatchError

from ._truthcal import calibrate_from_truth, expected_snr, isolated


def _inside(truth_stars, shape, margin):
    ny, nx = shape
    x = np.asarray(truth_stars["x"])
    y = np.asarray(truth_stars["y"])
    return (x > margin) & (x < nx - 1 - margin) & (y > margin) & (y < ny - 1 - margin)


def _xy(table):
    return np.column_stack([table["x"].to_value(u.pix), table["y"].to_value(u.pix)])


@pytest.fixture(scope="module")
def round_stars(round_frame):
    frame, truth = round_frame
    return find_stars(frame)


def test_completeness_spurious_and_positions(round_frame, round_stars):
    frame, truth = round_frame
    stars = round_stars
    fwhm = truth.psf.fwhm
    radius = stars.meta["aperture_radius"]
    true = truth.stars[_inside(truth.stars, frame.shape, 3)]
    snr = expected_snr(true, truth, radius)
    # two stars closer than 2 FWHM are one detection: completeness counts isolated stars
    alone = isolated(true, 2 * fwhm)
    distance, index = cKDTree(_xy(stars)).query(np.column_stack([true["x"], true["y"]]))
    found = distance < 1.0
    bright = (snr > 20) & alone
    assert bright.sum() > 300
    completeness = found[bright].mean()
    assert completeness >= 0.95, completeness

    # a detection is spurious when no true star (of any brightness) lies within 1.5 FWHM
    all_true = np.column_stack([truth.stars["x"], truth.stars["y"]])
    nearest, _ = cKDTree(all_true).query(_xy(stars))
    spurious = (nearest > 1.5 * fwhm).mean()
    assert spurious < 0.01, spurious

    sel = found & (snr > 50) & alone
    dx = stars["x"].value[index[sel]] - np.asarray(true["x"])[sel]
    dy = stars["y"].value[index[sel]] - np.asarray(true["y"])[sel]
    rms = np.sqrt(np.mean(dx**2 + dy**2) / 2)
    assert rms < 0.1, rms
    # and no systematic shift (0-based pixel centres, as the truth)
    assert abs(np.median(dx)) < 0.02 and abs(np.median(dy)) < 0.02


def test_fluxes_against_truth(round_frame, round_stars):
    frame, truth = round_frame
    stars = round_stars
    true = truth.stars
    # stars with no neighbour brighter than 1 % of them within 3 FWHM: the aperture holds only them
    clean = isolated(true, 3 * truth.psf.fwhm, contrast=0.01)
    distance, index = cKDTree(np.column_stack([true["x"], true["y"]])).query(_xy(stars))
    good = (distance < 0.5) & (stars["flags"] == 0) & (stars["snr"] > 50) & clean[index]
    assert good.sum() > 30
    measured = stars["flux"].value[good]
    expected = np.asarray(true["flux"])[index[good]]
    ratio = measured / expected
    # a 1.5 FWHM aperture holds a fixed fraction of a Moffat (beta 3) star: about 0.9
    fraction = np.median(ratio)
    assert 0.85 < fraction < 0.95
    scatter = 1.4826 * np.median(np.abs(ratio - fraction))
    assert scatter < 0.03
    # the quoted errors describe the scatter around the truth (times the aperture fraction)
    pull = (measured - fraction * expected) / stars["flux_err"].value[good]
    robust = 1.4826 * np.median(np.abs(pull - np.median(pull)))
    assert 0.7 < robust < 1.4, robust
    exposure = frame.exposure_time.to_value(u.s)
    np.testing.assert_allclose(stars["mag"].value[good], -2.5 * np.log10(measured / exposure), rtol=1e-12)
    np.testing.assert_allclose(stars["snr"], stars["flux"].value / stars["flux_err"].value, rtol=1e-12)


def test_table_layout(round_stars):
    stars = round_stars
    expected = [
        "id",
        "x",
        "y",
        "flux",
        "flux_err",
        "mag",
        "snr",
        "peak",
        "fwhm",
        "a",
        "b",
        "ellipticity",
        "theta",
        "flags",
    ]
    assert stars.colnames == expected
    assert stars["x"].unit == u.pix and stars["flux"].unit == u.electron and stars["theta"].unit == u.deg
    assert np.all(np.diff(stars["flux"].value) <= 0)  # brightest first
    np.testing.assert_array_equal(stars["id"], np.arange(1, len(stars) + 1))
    ok = np.isfinite(stars["fwhm"].value)
    np.testing.assert_allclose(stars["fwhm"][ok], 2 * np.sqrt(stars["a"][ok] * stars["b"][ok]))
    np.testing.assert_allclose(stars["ellipticity"][ok], 1 - stars["b"][ok] / stars["a"][ok])
    assert np.all(np.abs(stars["theta"].value[ok]) <= 90)
    for key in ("fwhm", "beta", "aperture_radius", "background", "background_rms", "n_sigma"):
        assert key in stars.meta


@pytest.mark.parametrize("which", ["round", "elliptical"])
def test_psf_matches_truth(which, round_frame, elliptical_frame):
    frame, truth = round_frame if which == "round" else elliptical_frame
    psf = measure_psf(frame)
    assert abs(psf.fwhm / truth.psf.fwhm - 1) < 0.05, (psf.fwhm, truth.psf.fwhm)
    assert abs(psf.ellipticity - truth.psf.ellipticity) < 0.03, (psf.ellipticity, truth.psf.ellipticity)
    assert psf.n_stars >= 50
    if truth.psf.ellipticity > 0.1:
        difference = (psf.theta - truth.psf.theta + 90) % 180 - 90
        assert abs(difference) < 5
    assert abs(psf.beta - truth.psf.beta) < 0.5
    # the FWHM map covers the field and is flat for a constant PSF
    assert psf.fwhm_grid.shape == (3, 3) and np.all(psf.n_grid > 0)
    assert np.nanmax(np.abs(psf.fwhm_grid / psf.fwhm - 1)) < 0.05
    # XPIXSZ 9 um at 530 mm focal length: 3.5 arcsec per pixel
    assert psf.scale == pytest.approx(3.5, rel=0.01)
    assert psf.fwhm_arcsec == pytest.approx(psf.fwhm * psf.scale)


def test_given_fwhm_gives_the_same_stars(round_frame, round_stars):
    frame, truth = round_frame
    again = find_stars(frame, fwhm=truth.psf.fwhm)
    assert abs(len(again) - len(round_stars)) < 0.03 * len(round_stars)
    assert again.meta["fwhm"] == truth.psf.fwhm


def test_undersampled_and_defocused_psf():
    for fwhm in (1.5, 6.0):
        raw, truth = make_raw_frame(shape=(400, 500), fwhm=fwhm, seed=21)
        psf = measure_psf(calibrate_from_truth(raw, truth))
        assert abs(psf.fwhm / fwhm - 1) < 0.05, (fwhm, psf.fwhm)


def test_saturated_stars_flagged():
    raw, truth = make_raw_frame(shape=(300, 400), exposure=6000.0, fwhm=2.5, seed=5)
    frame = calibrate_from_truth(raw, truth)
    true = truth.stars
    assert true["saturated"].sum() >= 3
    stars = find_stars(frame)
    distance, index = cKDTree(_xy(stars)).query(np.column_stack([true["x"], true["y"]]))
    sat = np.asarray(true["saturated"]) & (distance < 2)
    assert sat.sum() >= 3
    assert np.all(stars["flags"][index[sat]] & StarFlag.SATURATED)
    # and none of them is used for the PSF, which stays right
    assert abs(measure_psf(frame, stars=stars).fwhm / truth.psf.fwhm - 1) < 0.05


def test_saturation_from_a_clipped_ceiling():
    """With no DQ flags nor SATURATE card, a value shared by many top pixels is the ceiling."""
    raw, truth = make_raw_frame(shape=(300, 400), exposure=6000.0, fwhm=2.5, seed=5)
    frame = calibrate_from_truth(raw, truth, flag_defects=False)
    clipped = np.asarray(raw.data) >= 65535
    plain = CalibratedFrame(np.where(clipped, 60000.0, frame.data), unit=u.electron)
    stars = find_stars(plain)
    flagged = (stars["flags"] & StarFlag.SATURATED) != 0
    true = truth.stars[np.asarray(truth.stars["saturated"])]
    distance, index = cKDTree(_xy(stars)).query(np.column_stack([true["x"], true["y"]]))
    assert np.all(flagged[index[distance < 2]])
    # every flagged star has a clipped pixel within its aperture (+1 pixel)
    radius = stars.meta["aperture_radius"] + 1.5
    ys, xs = np.nonzero(clipped)
    near, _ = cKDTree(np.column_stack([xs, ys])).query(_xy(stars)[flagged])
    assert np.all(near <= radius)


def test_mask_and_flags_are_respected(round_frame):
    frame, truth = round_frame
    region = np.zeros(frame.shape, dtype=bool)
    region[100:300, 200:450] = True
    stars = find_stars(frame, mask=region)
    x, y = stars["x"].value, stars["y"].value
    # nothing deep inside; a star straddling the edge may be found from its visible half (and is flagged)
    margin = 2.5  # the FWHM
    deep = (x > 200 + margin) & (x < 449 - margin) & (y > 100 + margin) & (y < 299 - margin)
    assert not deep.any()
    inside = (x > 199.5) & (x < 449.5) & (y > 99.5) & (y < 299.5)
    assert np.all(stars["flags"][inside] & StarFlag.NEAR_MASKED)
    # stars just outside the mask whose aperture reaches into it are flagged
    r = stars.meta["aperture_radius"] - 0.5
    near = (x > 200 - r) & (x < 449 + r) & (y > 100 - r) & (y < 299 + r) & ~inside
    assert near.any()
    assert np.all(stars["flags"][near] & StarFlag.NEAR_MASKED)
    # the same region as DQ flags in the frame behaves the same
    flags = frame.flags.copy()
    flags[region] |= int(DQFlag.USER)
    flagged = CalibratedFrame(frame.data, unit=frame.unit, flags=flags, uncertainty=frame.uncertainty)
    stars2 = find_stars(flagged)
    assert len(stars2) == len(stars)
    with pytest.raises(FrameMismatchError, match="mask shape"):
        find_stars(frame, mask=region[:10])


def test_edge_flag(round_stars, round_frame):
    frame, _ = round_frame
    radius = round_stars.meta["aperture_radius"]
    ny, nx = frame.shape
    x, y = round_stars["x"].value, round_stars["y"].value
    # (the flag is set before the PSF fit refines the centre by a fraction of a pixel)
    inner = radius - 0.5
    edge = (x < inner) | (y < inner) | (x > nx - 1 - inner) | (y > ny - 1 - inner)
    assert edge.any()
    assert np.all(round_stars["flags"][edge] & StarFlag.NEAR_EDGE)
    interior = (x > 3 * radius) & (x < nx - 3 * radius) & (y > 3 * radius) & (y < ny - 3 * radius)
    assert not np.any(round_stars["flags"][interior] & StarFlag.NEAR_EDGE)


def test_cosmic_rays_are_not_stars():
    """Cosmic rays left unflagged (no reject_cosmic_rays run) are dropped as sharper than the PSF."""
    raw, truth = make_raw_frame(shape=(400, 500), fwhm=3.0, cosmic_ray_rate=60.0, seed=8)
    frame = calibrate_from_truth(raw, truth)
    flags = frame.flags & ~np.uint32(DQFlag.COSMIC_RAY)
    unflagged = CalibratedFrame(frame.data, unit=frame.unit, flags=flags, uncertainty=frame.uncertainty)
    assert truth.n_cosmic_rays > 30
    kept = find_stars(unflagged, keep_sharp=True)
    stars = find_stars(unflagged)
    truth_xy = np.column_stack([truth.stars["x"], truth.stars["y"]])
    nearest_kept, _ = cKDTree(truth_xy).query(_xy(kept))
    assert (nearest_kept > 1.5 * truth.psf.fwhm).sum() > 20  # the cosmic rays are detected ...
    nearest, _ = cKDTree(truth_xy).query(_xy(stars))
    spurious = nearest > 1.5 * truth.psf.fwhm
    assert spurious.mean() < 0.01, spurious.sum()  # ... and dropped


def test_bad_corner_does_not_crowd_out_the_field(round_frame):
    """Many bright compact artefacts in a corner: the PSF stays that of the real stars."""
    frame, truth = round_frame
    data = np.array(frame.data, copy=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:9, 0:9]
    for _ in range(60):
        x0, y0 = rng.uniform(10, 140, 2)
        ix, iy = int(x0), int(y0)
        blob = 2e5 * np.exp(-0.5 * (((xx - 4) / 1.4) ** 2 + ((yy - 4) / 2.6) ** 2))  # elongated, wrong width
        data[iy : iy + 9, ix : ix + 9] += blob
    spoiled = CalibratedFrame(data, unit=frame.unit, flags=frame.flags, uncertainty=frame.uncertainty)
    psf = measure_psf(spoiled)
    assert abs(psf.fwhm / truth.psf.fwhm - 1) < 0.05
    assert psf.ellipticity < 0.05
    # at most max_per_cell stars come from the spoiled cell
    assert psf.n_grid[0, 0] <= 25


def test_select_psf_stars_spreads_over_cells():
    rng = np.random.default_rng(1)
    x = np.concatenate([np.full(100, 5.0), rng.uniform(0, 300, 200)])
    y = np.concatenate([np.full(100, 5.0), rng.uniform(0, 300, 200)])
    snr = np.concatenate([np.full(100, 1000.0), np.full(200, 50.0)])
    chosen = select_psf_stars(x, y, snr, np.ones(300, bool), (300, 300), grid=3, per_cell=10)
    assert (chosen < 100).sum() <= 10
    assert (chosen >= 100).sum() >= 75  # 8 other cells, 10 each (less where a cell has fewer)
    # and nothing below min_snr or unusable
    usable = np.ones(300, bool)
    usable[100:150] = False
    chosen = select_psf_stars(x, y, snr, usable, (300, 300), min_snr=60)
    assert set(chosen) <= set(range(100))


def test_inputs_accepted_and_not_modified(round_frame):
    frame, _ = round_frame
    before = frame.data.copy()
    flags_before = frame.flags.copy()
    cut = frame.data[:200, :300]
    from_array = find_stars(np.asarray(cut, dtype=np.float64))
    from_ccd = find_stars(CCDData(cut, unit="electron"))
    assert len(from_array) == len(from_ccd) > 10
    assert from_array["flux"].unit == u.dimensionless_unscaled
    np.testing.assert_array_equal(frame.data, before)
    np.testing.assert_array_equal(frame.flags, flags_before)


def test_max_stars_keeps_the_brightest(round_stars, round_frame):
    frame, _ = round_frame
    top = find_stars(frame, max_stars=25)
    assert len(top) == 25
    np.testing.assert_allclose(top["flux"].value, round_stars["flux"].value[:25], rtol=1e-6)


def test_empty_sky_gives_an_empty_table():
    rng = np.random.default_rng(3)
    frame = CalibratedFrame(rng.normal(100.0, 5.0, (200, 200)))
    stars = find_stars(frame, n_sigma=8)
    assert len(stars) == 0
    assert "flux" in stars.colnames
    with pytest.raises(AnalysisError, match="no stars"):
        measure_psf(frame, stars=stars)


def test_all_masked_is_a_clear_error():
    frame = CalibratedFrame(np.ones((64, 64)), mask=np.ones((64, 64), bool))
    with pytest.raises(AnalysisError, match="no unmasked"):
        find_stars(frame)


def test_bad_options():
    frame = CalibratedFrame(np.ones((64, 64)))
    with pytest.raises(ValueError, match="n_sigma"):
        find_stars(frame, n_sigma=0)
    with pytest.raises(ValueError, match="fwhm"):
        find_stars(frame, fwhm=-1)
    with pytest.raises(TypeError, match="only used"):
        measure_psf(frame, stars=QTable(), n_sigma=3)


def test_ds9_regions(round_stars):
    text = ds9_regions(round_stars)
    lines = text.splitlines()
    assert lines[2] == "image"
    circles = [line for line in lines if line.startswith("circle(")]
    assert len(circles) == len(round_stars)
    first = circles[0]
    x = float(first[7:].split(",")[0])
    assert x == pytest.approx(round_stars["x"][0].value + 1, abs=1e-3)  # ds9 counts from 1


def test_stars_is_keyword_only_with_a_deprecation_for_positional_use():
    """issue 10: ``stars``/``background`` keyword-only everywhere; the old positional call still works."""
    from astropy.utils.exceptions import AstropyDeprecationWarning

    raw, truth = make_raw_frame(shape=(200, 300), fwhm=3.0, seed=2)
    frame = calibrate_from_truth(raw, truth)
    stars = find_stars(frame)
    with pytest.warns(AstropyDeprecationWarning, match="pass stars=stars by keyword"):
        positional = measure_psf(frame, stars)
    assert positional.fwhm == measure_psf(frame, stars=stars).fwhm
    with pytest.raises(TypeError, match="pass stars= by keyword"):
        measure_psf(frame, stars, stars=stars)
