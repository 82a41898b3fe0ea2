# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Global background matching from pairwise overlaps against known per-frame planes."""

import numpy as np
import pytest

from astrophot.combination._background import fit_overlap, solve_backgrounds


def _layout():
    """A 2x2 mosaic on a 200x160 grid: frames of 110x90 pixels with known sky planes."""
    boxes = [(0, 110, 0, 90), (90, 200, 0, 90), (0, 110, 70, 160), (90, 200, 70, 160)]  # x0, x1, y0, y1
    planes = np.array([[10.0, 0.0, 0.0], [10.6, 0.004, -0.002], [9.6, -0.003, 0.003], [10.9, 0.002, 0.004]])
    return boxes, planes


def _overlaps(boxes, planes, rng, noise=1.0, nebula=None, protect=False, model="plane"):
    overlaps = []
    for i in range(4):
        for j in range(i + 1, 4):
            x0, x1 = max(boxes[i][0], boxes[j][0]), min(boxes[i][1], boxes[j][1])
            y0, y1 = max(boxes[i][2], boxes[j][2]), min(boxes[i][3], boxes[j][3])
            if x1 <= x0 or y1 <= y0:
                continue
            y, x = np.mgrid[y0:y1, x0:x1].reshape(2, -1).astype(float)
            sky = 50.0 + (nebula(x, y) if nebula else 0.0)
            di = sky + planes[i] @ [np.ones_like(x), x, y] + rng.normal(0, noise, x.size)
            dj = sky + planes[j] @ [np.ones_like(x), x, y] + rng.normal(0, noise, x.size)
            diff = di - dj
            if nebula is not None and i == 0 and j == 1:
                # the nebula lies on top of a sky that differs between the frames' reductions
                diff += 0.5 * nebula(x, y) * (0 if protect else 1)
            coef, rms, n, cov = fit_overlap(diff, x, y, model=model)
            overlaps.append(
                {"i": i, "j": j, "coefficients": coef, "covariance": cov, "x": x[::7], "y": y[::7]}
            )
    return overlaps


@pytest.mark.parametrize("reference", [None, 0])
def test_planes_recovered(reference):
    boxes, planes = _layout()
    rng = np.random.default_rng(0)
    overlaps = _overlaps(boxes, planes, rng)
    assert len(overlaps) == 6  # the diagonal pairs overlap too (a corner)
    models, residuals, used = solve_backgrounds(4, overlaps, model="plane", reference=reference)
    expected = planes - (planes[0] if reference == 0 else planes.mean(axis=0))
    for k in range(4):
        x0, x1, y0, y1 = boxes[k]
        y, x = np.mgrid[y0:y1, x0:x1].reshape(2, -1).astype(float)
        got = models[k] @ [np.ones_like(x), x, y]
        want = expected[k] @ [np.ones_like(x), x, y]
        # the matched sky is within 0.5 sigma (noise 1; measured 0.14 zero-mean, 0.32 with a reference) of the truth over the whole
        # frame, corners far from any overlap included
        assert np.max(np.abs(got - want)) < 0.5
        assert np.sqrt(np.mean((got - want) ** 2)) < 0.25  # measured at most 0.16
    # every seam within 0.5 sigma of the sky noise (measured: at most 0.15, in a 20x20 corner overlap)
    assert all(used) and max(residuals) < 0.5


def test_offsets_only():
    boxes, planes = _layout()
    planes[:, 1:] = 0.0
    rng = np.random.default_rng(1)
    overlaps = _overlaps(boxes, planes, rng, model="offset")
    models, residuals, used = solve_backgrounds(4, overlaps, model="offset", reference=0)
    assert all(used)
    # within 0.1 sigma of the sky noise (measured 0.046: the corner overlaps have 400 pixels)
    np.testing.assert_allclose(models[:, 0], planes[:, 0] - planes[0, 0], atol=0.1)


def test_fit_overlap_clips_a_nebula():
    y, x = np.mgrid[0:60, 0:80].reshape(2, -1).astype(float)
    rng = np.random.default_rng(2)
    diff = 1.5 + 0.01 * x + rng.normal(0, 0.2, x.size)
    blob = np.hypot(x - 40, y - 30) < 6
    diff[blob] += 30.0
    coef, rms, n, _ = fit_overlap(diff, x, y)
    # intercept at the corner (0, 0): its error is about 0.2 * 2 / sqrt(4800) = 0.006 per sigma
    np.testing.assert_allclose(coef[0], 1.5, atol=0.03)
    np.testing.assert_allclose(coef[1:], [0.01, 0.0], atol=1e-3)
    assert n <= x.size - blob.sum() and rms == pytest.approx(0.2, rel=0.1)
    with pytest.raises(ValueError, match="match_background"):
        solve_backgrounds(2, [], model="poly")
