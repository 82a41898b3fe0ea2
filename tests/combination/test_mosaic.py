# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Mosaics: background matching and `make_mosaic` against the simulated truth of a 2x2 mosaic."""

import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from astrophot import find_optimal_wcs
from astrophot.combination import _core
from astrophot.combination._match import match_backgrounds
from astrophot.combination.mosaic import make_mosaic
from astrophot.datasets import make_mosaic_frames
from astrophot.exceptions import AstrophotUserWarning, FrameMismatchError


@pytest.fixture(scope="module")
def mosaic():
    """The 2x2 mosaic: per-frame sky offsets (up to 0.9 e/s = 4 sigma) and gradients, a nebula in overlap 0-1."""
    frames, truth = make_mosaic_frames(seed=0)
    wcs, shape = find_optimal_wcs(frames)
    return frames, truth, wcs, shape


def _nebula_circle(truth, n_sigma=5.0):
    neb = truth.nebula
    return SkyCoord(neb["ra"] * u.deg, neb["dec"] * u.deg), n_sigma * neb["sigma"] * u.arcsec


def _true_sky(truth, k, wcs, shape, rows=None, cols=None):
    """The injected sky (electrons) of frame k at output pixels (NaN outside the frame)."""
    x, y = _core.pixel_map(truth.wcs[k], wcs, shape, rows=rows, cols=cols, projection_error=0)
    ny, nx = truth.expected[k].shape
    sx, sy = truth.sky_slope[k]
    t = truth.exposure[k]
    sky = t * (truth.sky_rate[k] + sx * (x - (nx - 1) / 2) + sy * (y - (ny - 1) / 2))
    inside = (x >= 0) & (x <= nx - 1) & (y >= 0) & (y <= ny - 1)
    return np.where(inside, sky, np.nan)


def _true_seams(truth, wcs, shape, planes):
    """Per overlapping pair: the largest |difference| of the true skies after subtracting the planes."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    skies = []
    for k in range(4):
        a, p, q = planes[k]
        skies.append(_true_sky(truth, k, wcs, shape) - (a + p * xx + q * yy))
    worst = {}
    for i in range(4):
        for j in range(i + 1, 4):
            both = np.isfinite(skies[i]) & np.isfinite(skies[j])
            if both.any():
                worst[i, j] = float(np.max(np.abs(skies[i][both] - skies[j][both])))
    return worst


def _sky_sigma(truth):
    """Per-pixel sky noise (electrons) of the faintest-sky frame: Poisson of the sky plus read noise."""
    return float(np.sqrt(truth.exposure[0] * truth.sky_rate.min() + truth.read_noise**2))


def test_matching_recovers_the_injected_planes_to_a_fraction_of_the_sky_noise(mosaic):
    frames, truth, wcs, shape = mosaic
    match = match_backgrounds(frames, wcs, shape, protect=_nebula_circle(truth))
    sigma = _sky_sigma(truth)
    after = _true_seams(truth, wcs, shape, match.planes)
    before = _true_seams(truth, wcs, shape, np.zeros((4, 3)))
    assert len(after) == 6 and len(match.overlaps) == 6  # the diagonal pairs share a corner
    # matched: every seam of the true skies within 0.5 sigma anywhere in the overlap (measured max 0.30; 2.2 to 7.2 sigma unmatched)
    assert max(after.values()) < 0.5 * sigma, {k: v / sigma for k, v in after.items()}
    # unmatched: the seams are several sigma (offsets 0.4-0.9 e/s x 60 s and gradients)
    assert min(before.values()) > 1.0 * sigma and max(before.values()) > 3.0 * sigma
    # the report agrees with the truth: small after, large before, in sigma of the sky noise
    assert match.worst_seam() < 0.5 < 1.0 < match.worst_seam(corrected=False)
    assert np.allclose(
        match.sky_rms, np.sqrt(truth.exposure * truth.sky_rate + truth.read_noise**2), rtol=0.1
    )
    # zero mean of the corrections (no reference)
    assert abs(match.planes[:, 0].mean()) < 1e-6
    seams = match.seam_map()
    assert np.nanmax(seams) < 0.5 * sigma < np.nanmax(match.seam_map(corrected=False))


def test_reference_frame_gets_no_correction_and_offsets_match_the_truth():
    frames, truth = make_mosaic_frames(shape=(90, 120), sky_slopes=((0.0, 0.0),) * 4, nebula=False, seed=6)
    wcs, shape = find_optimal_wcs(frames)
    match = match_backgrounds(frames, wcs, shape, model="offset", reference=2)
    assert np.all(match.planes[2] == 0.0) and np.all(match.planes[:, 1:] == 0.0)
    want = truth.exposure * (truth.sky_rate - truth.sky_rate[2])
    # within 0.2 sigma of the sky noise of the truth (offsets of 24-78 electrons; measured within 0.08 sigma)
    assert np.max(np.abs(match.planes[:, 0] - want)) < 0.2 * _sky_sigma(truth), match.planes[:, 0] - want
    record = match.as_record()
    assert [f["name"] for f in record["frames"]] == truth.names and record["reference"] == 2
    assert len(record["overlaps"]) == 6 and all(o["used"] for o in record["overlaps"])


def test_protect_leaves_the_nebula_out_of_the_overlap_fit(mosaic):
    frames, truth, wcs, shape = mosaic
    centre, radius = _nebula_circle(truth)
    match = match_backgrounds(frames, wcs, shape, protect=(centre, radius))
    x, y = wcs.world_to_pixel(centre)
    yy, xx = np.meshgrid(match.y, match.x, indexing="ij")
    near = np.hypot(xx - x, yy - y) < 0.5 * radius.to_value(u.arcsec) / truth.scale
    assert near.any() and match.protected[near].all()
    # an output-grid mask protects the same points
    grid_mask = np.zeros(shape, dtype=bool)
    oy, ox = np.mgrid[0 : shape[0], 0 : shape[1]]
    grid_mask[np.hypot(ox - x, oy - y) < radius.to_value(u.arcsec) / truth.scale] = True
    by_mask = match_backgrounds(frames, wcs, shape, protect=grid_mask)
    assert by_mask.protected[near].all()
    for k in range(4):  # the same corrections, to 0.05 sigma anywhere on the grid
        diff = by_mask.background(k, ox, oy) - match.background(k, ox, oy)
        assert np.max(np.abs(diff)) < 0.05 * _sky_sigma(truth)
    with pytest.raises(FrameMismatchError, match="output grid"):
        match_backgrounds(frames, wcs, shape, protect=grid_mask[:-1])
    with pytest.raises(FrameMismatchError, match="3 masks for 4 frames"):
        match_backgrounds(frames, wcs, shape, protect=[None, None, None])


def test_frames_without_overlap_are_named_and_left_alone():
    frames, truth = make_mosaic_frames(shape=(60, 80), overlap=-0.3, nebula=False, seed=3)
    wcs, shape = find_optimal_wcs(frames)
    with pytest.warns(
        AstrophotUserWarning, match="mosaic_0.fits, mosaic_1.fits, mosaic_2.fits, mosaic_3.fits"
    ):
        match = match_backgrounds(frames, wcs, shape)
    assert match.overlaps == [] and len(match.groups) == 4
    assert match.unconnected == truth.names and np.all(match.planes == 0.0)


def _moved(frame, ddec, name):
    """A copy of a frame pointed ``ddec`` degrees further north, under another name."""
    out = frame.copy()
    wcs = frame.wcs.deepcopy()
    wcs.wcs.crval = [wcs.wcs.crval[0], wcs.wcs.crval[1] + ddec]
    wcs.wcs.set()
    out.wcs = wcs
    out.source_path = name
    return out


def test_two_unconnected_groups_are_each_matched():
    frames, truth = make_mosaic_frames(shape=(60, 80), nebula=False, seed=4)
    group = [
        frames[0],
        frames[1],
        _moved(frames[0], 0.15, "far_0.fits"),
        _moved(frames[1], 0.15, "far_1.fits"),
    ]
    group.append(_moved(frames[3], -0.15, "alone.fits"))
    wcs, shape = find_optimal_wcs(group)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        match = match_backgrounds(group, wcs, shape, model="offset")
    text = " ".join(str(w.message) for w in caught)
    assert "alone.fits overlap(s) no other frame" in text
    assert "2 unconnected groups ([mosaic_0.fits, mosaic_1.fits]; [far_0.fits, far_1.fits])" in text
    assert match.unconnected == ["alone.fits"] and np.all(match.planes[4] == 0.0)
    assert sorted(len(g) for g in match.groups) == [1, 2, 2]
    # each group has zero mean, and the same pair gives the same offsets in both places (up to where the
    # coarse grid samples each copy: measured 4e-4 electrons)
    assert abs(match.planes[0, 0] + match.planes[1, 0]) < 1e-9
    assert abs(match.planes[0, 0] - match.planes[2, 0]) < 0.01 * _sky_sigma(truth)


# ----------------------------------------------------------------------
# make_mosaic
def _stars_and_nebula(truth, wcs, shape, nebula=True):
    """The true star (and nebula) light on the output grid, electrons per second."""
    from astrophot.datasets import _model
    from astrophot.datasets._dithers import _nebula_image

    x, y = wcs.world_to_pixel_values(truth.stars["ra"].to_value(u.deg), truth.stars["dec"].to_value(u.deg))
    light = _model.render_stars(shape, x, y, np.asarray(truth.stars["rate"], dtype=float), truth.psf[0])
    if nebula:
        light = light + _nebula_image(wcs, shape, truth.nebula, truth.scale)
    return light


def _cover_sets(truth, wcs, shape, margin):
    """Per output pixel, the bit mask of the frames covering it (at least ``margin`` pixels inside their edges)."""
    label = np.zeros(shape, dtype=int)
    for k in range(len(truth.wcs)):
        x, y = _core.pixel_map(truth.wcs[k], wcs, shape, projection_error=0)
        ny, nx = truth.expected[k].shape
        inside = (x >= margin) & (x <= nx - 1 - margin) & (y >= margin) & (y <= ny - 1 - margin)
        label |= inside.astype(int) << k
    return label


def _seam_jumps(residual, label, exclude, width=8):
    """The jump of ``residual`` across every boundary where one more frame covers (median of strips)."""
    from scipy import ndimage

    jumps = {}
    for a in np.unique(label):
        for k in range(4):
            b = a | (1 << k)
            if a == 0 or b == a or not (label == b).any():
                continue
            near_b = ndimage.distance_transform_edt(label != b) <= width
            near_a = ndimage.distance_transform_edt(label != a) <= width
            side_a = (label == a) & near_b & ~exclude
            side_b = (label == b) & near_a & ~exclude
            if side_a.sum() > 50 and side_b.sum() > 50:
                jumps[a, b] = float(np.nanmedian(residual[side_b]) - np.nanmedian(residual[side_a]))
    return jumps


def _pair_differences(frames, mosaic, wcs, shape, exclude):
    """Sigma-clipped median of frame i - frame j (each minus its plane) over each overlap, e-/s."""
    from astropy.stats import sigma_clipped_stats

    from astrophot.combination import _combine

    inputs = _combine.prepare_inputs(frames, wcs, shape)
    values, _ = _combine.resample_rates(inputs, wcs, shape, slice(0, shape[0]), kernel="bilinear")
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    for k, rec in enumerate(mosaic.combination["frames"]):
        values[k] -= (
            rec.get("background_a", 0.0)
            + rec.get("background_p", 0.0) * xx
            + rec.get("background_q", 0.0) * yy
        )
    out = {}
    for i in range(4):
        for j in range(i + 1, 4):
            both = np.isfinite(values[i]) & np.isfinite(values[j]) & ~exclude
            if both.sum() > 100:
                out[i, j] = sigma_clipped_stats(values[i][both] - values[j][both], sigma=3.0)[1]
    return out


def _nebula_flux(image, truth, wcs, shape, stars):
    """Aperture (5 sigma) minus annulus (6-9 sigma) flux of the nebula, stars removed, e-/s."""
    centre, _ = _nebula_circle(truth)
    x0, y0 = wcs.world_to_pixel(centre)
    sig = truth.nebula["sigma"] / truth.scale
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    r = np.hypot(xx - x0, yy - y0)
    aperture, annulus = r < 5 * sig, (r > 6 * sig) & (r < 9 * sig)
    rest = np.asarray(image.data, dtype=float) - stars
    return float(np.sum(rest[aperture]) - np.median(rest[annulus]) * aperture.sum())


@pytest.fixture(scope="module")
def mosaics(mosaic):
    frames, truth, wcs, shape = mosaic
    matched = make_mosaic(frames, wcs=(wcs, shape), protect=_nebula_circle(truth), kernel="lanczos3")
    plain = make_mosaic(frames, wcs=(wcs, shape), match_background=None, kernel="lanczos3")
    return matched, plain


def test_mosaic_seams_below_half_sigma_after_matching_and_visible_without(mosaic, mosaics):
    frames, truth, wcs, shape = mosaic
    matched, plain = mosaics
    sigma = _sky_sigma(truth) / truth.exposure[0]  # per-pixel sky noise, e-/s
    light = _stars_and_nebula(truth, wcs, shape)
    label = _cover_sets(truth, wcs, shape, margin=0)
    centre, radius = _nebula_circle(truth)
    x0, y0 = wcs.world_to_pixel(centre)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    exclude = np.hypot(xx - x0, yy - y0) < 1.2 * radius.to_value(u.arcsec) / truth.scale
    after = _seam_jumps(np.asarray(matched.data) - light, label, exclude)
    before = _seam_jumps(np.asarray(plain.data) - light, label, exclude)
    assert len(after) >= 8 and after.keys() == before.keys()
    # every step in the mosaic where one more frame covers: < 0.5 sigma with matching (measured max 0.25),
    # up to several sigma without (measured 0.28 to 3.9): the seams are visible
    assert max(abs(v) for v in after.values()) < 0.5 * sigma, {k: v / sigma for k, v in after.items()}
    assert max(abs(v) for v in before.values()) > 2.0 * sigma, {k: v / sigma for k, v in before.items()}
    # the frames themselves (each minus its plane) agree in every overlap to < 0.5 sigma (measured at most
    # 0.10; 1.0 to 6.5 sigma without matching)
    pairs = _pair_differences(frames, matched, wcs, shape, exclude)
    assert len(pairs) == 6 and max(abs(v) for v in pairs.values()) < 0.5 * sigma, {
        k: v / sigma for k, v in pairs.items()
    }
    raw = _pair_differences(frames, plain, wcs, shape, exclude)
    assert max(abs(v) for v in raw.values()) > 2.0 * sigma
    # what the product records agrees
    background = matched.combination["background"]
    assert background["worst_seam_sigma"] < 0.5 < 2.0 < background["worst_seam_before_sigma"]
    assert plain.combination["background"] is None and matched.header["APBGMAT"] == "plane"


def test_mosaic_keeps_the_protected_nebula_flux(mosaic, mosaics):
    frames, truth, wcs, shape = mosaic
    matched, plain = mosaics
    stars = _stars_and_nebula(truth, wcs, shape, nebula=False)
    want = truth.nebula["rate"]  # e-/s; the 5-sigma aperture holds all but 4e-6 of it
    got = _nebula_flux(matched, truth, wcs, shape, stars)
    # within 1% (measured -0.43%, -0.82% without matching: the noise of the aperture is about 0.4%)
    assert abs(got / want - 1) < 0.01, got / want - 1
    # noiseless frames: the matching and combination leave the nebula within 0.5% (measured -0.30%: the
    # sky under the protected region is interpolated, 0.02 sigma off over the aperture; +0.03% unmatched)
    quiet = []
    for frame, expected in zip(frames, truth.expected):
        copy = frame.__class__(
            expected, wcs=frame.wcs, unit=frame.unit, meta=frame.meta, uncertainty=frame.uncertainty
        )
        copy.source_path = frame.source_path
        quiet.append(copy)
    noiseless = make_mosaic(quiet, wcs=(wcs, shape), protect=_nebula_circle(truth), kernel="lanczos3")
    assert abs(_nebula_flux(noiseless, truth, wcs, shape, stars) / want - 1) < 0.005


def test_mosaic_product_and_provenance(mosaic, mosaics):
    frames, truth, wcs, shape = mosaic
    matched, _ = mosaics
    assert matched.data.shape == shape and matched.unit == u.electron / u.s
    assert matched.header["NCOMBINE"] == 4 and matched.header["EXPTIME"] == 240.0
    # coverage: the analytic count of frames covering each pixel, wherever it is the same 4 px inside
    # and 4 px outside every frame's edge (the kernel's reach from an edge has no data)
    inner, outer = (_cover_sets(truth, wcs, shape, margin=m) for m in (4, -4))
    counts = sum((inner >> k) & 1 for k in range(4))
    sure = inner == outer
    assert sure.mean() > 0.7 and set(np.unique(counts[sure])) == {0, 1, 2, 4}
    assert np.array_equal(matched.coverage[sure], counts[sure])
    assert np.array_equal(matched.exposure_map[sure], 60.0 * counts[sure])
    step = matched.provenance.steps[-1]
    assert step.function == "astrophot.make_mosaic" and len(step.inputs) == 4
    assert len(step.outcome["background"]["overlaps"]) == 6
    planes = [
        (r["background_a"], r["background_p"], r["background_q"]) for r in matched.combination["frames"]
    ]
    assert np.allclose(np.mean(planes, axis=0), 0.0, atol=1e-9)  # zero mean without a reference
    # a match computed first (in the frames' electrons) gives the same mosaic: planes brought to e-/s
    match = match_backgrounds(frames, wcs, shape, protect=_nebula_circle(truth))
    again = make_mosaic(frames, wcs=(wcs, shape), match_background=match, kernel="lanczos3")
    assert np.allclose(again.data, matched.data, atol=1e-6, equal_nan=True)


def test_mosaic_refuses_frames_of_different_filters(mosaic):
    frames, truth, wcs, shape = mosaic
    other = frames[3].copy()
    other.meta["FILTER"] = "R"
    other.source_path = "red_3.fits"
    with pytest.raises(
        FrameMismatchError, match=r"Ha: mosaic_0.fits, mosaic_1.fits, mosaic_2.fits; R: red_3.fits"
    ):
        make_mosaic([*frames[:3], other])


def test_mosaic_of_disjoint_frames_still_combines_and_names_them():
    frames, truth = make_mosaic_frames(shape=(60, 80), overlap=-0.3, nebula=False, seed=3)
    with pytest.warns(AstrophotUserWarning, match="overlap.* no other frame"):
        out = make_mosaic(frames, kernel="bilinear")
    assert out.combination["background"]["unconnected"] == truth.names
    assert out.coverage.max() == 1 and (out.coverage == 1).sum() > 0.9 * 4 * 60 * 80


# ----------------------------------------------------------------------
# the command line
def test_cli_mosaic_by_filter_in_a_subprocess(tmp_path, capsys):
    import os
    import subprocess
    import sys

    from astrophot import StackedFrame, read_frame, write_frame

    frames, truth = make_mosaic_frames(shape=(60, 80), nebula=False, seed=7)
    red, _ = make_mosaic_frames(shape=(60, 80), nebula=False, filter_name="R", seed=8)
    paths = []
    for frame in [*frames, *red[:2]]:
        path = tmp_path / f"{frame.filter}-{frame.name}"
        write_frame(frame, path)
        paths.append(str(path))
    out = tmp_path / "m42.fits"
    command = [sys.executable, "-m", "astrophot.cli.main", "mosaic", *paths, "-o", str(out), "--by-filter"]
    done = subprocess.run(
        [*command, "--kernel", "bilinear"],
        capture_output=True,
        text=True,
        env=os.environ,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    ha, r = read_frame(tmp_path / "m42-Ha.fits"), read_frame(tmp_path / "m42-R.fits")
    assert isinstance(ha, StackedFrame) and ha.header["NCOMBINE"] == 4 and r.header["NCOMBINE"] == 2
    assert ha.combination["background"]["worst_seam_sigma"] < 0.5
    assert [Path(f["file"]).name for f in ha.combination["frames"]] == [f"Ha-{n}" for n in truth.names]
    # progress and the overlaps' residuals on stderr (the log)
    assert "[6/6] read" in done.stderr and f"overlap {paths[0]} / {paths[1]}" in done.stderr
    assert "worst seam" in done.stderr and "rows combined" in done.stderr
    # without --by-filter the mixed set is refused, naming the files, in one line (in-process: faster)
    from astrophot.cli.main import main

    assert main(["mosaic", *paths, "-o", str(tmp_path / "mixed.fits")]) == 1
    err = capsys.readouterr().err
    assert f"R: {paths[4]}, {paths[5]}" in err and "Traceback" not in err


@pytest.mark.parametrize("rejection", ["percentile", "winsorized"])
def test_mosaic_with_rejection_where_four_frames_overlap(rejection):
    frames, truth = make_mosaic_frames(shape=(60, 80), nebula=False, seed=9)
    out = make_mosaic(frames, kernel="bilinear", rejection=rejection)  # warnings are errors here
    assert out.combination["rejection"] == rejection
    no_data = out.coverage == 0
    assert no_data.any() and np.all(np.isnan(out.data[no_data]))
    # good pixels only: rejection at a few per mille of the values, nothing where one frame covers
    assert all(r["rejected_fraction"] < 0.01 for r in out.combination["frames"])
    assert np.all(out.rejected_low[out.coverage == 1] + out.rejected_high[out.coverage == 1] == 0)
