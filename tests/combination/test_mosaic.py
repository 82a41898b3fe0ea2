# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Mosaics: background matching and `make_mosaic` against the simulated truth of a 2x2 mosaic."""

import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from astrophot import find_optimal_wcs
from astrophot.combination import _core
from astrophot.combination._match import match_backgrounds
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
    # matched: every seam of the true skies within 0.5 sigma anywhere in the overlap (measured max 0.20)
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
    # within 0.2 sigma of the sky noise of the truth (offsets of 24-78 electrons; measured within 0.05 sigma)
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
