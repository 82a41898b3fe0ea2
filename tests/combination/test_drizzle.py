# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
``stack_frames(kernel="drizzle")``: against the drizzle package's own whole-frame
result (the peer), and against the simulation's truth on undersampled dithers.
"""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from astrophot import find_optimal_wcs, stack_frames
from astrophot.datasets import make_dithered_frames

drizzle = pytest.importorskip("drizzle", reason="the drizzle package is an optional dependency")


def _reference(frames, wcs, shape, pixfrac, bad):
    """Each frame drizzled whole by the drizzle package (exact per-pixel map), in e-/s; NaN where nothing."""
    from drizzle.resample import Drizzle

    out = []
    for frame, mask in zip(frames, bad):
        ny, nx = frame.data.shape
        y, x = np.mgrid[0:ny, 0:nx]
        ox, oy = wcs.world_to_pixel(frame.wcs.pixel_to_world(x, y))
        driz = Drizzle(kernel="square", out_shape=shape, fillval="NaN")
        data = np.where(mask, 0, frame.data).astype(np.float32)
        driz.add_image(
            data,
            exptime=1.0,
            pixmap=np.dstack([ox, oy]),
            weight_map=(~mask).astype(np.float32),
            pixfrac=pixfrac,
            in_units="cps",
        )
        out.append(np.where(driz.out_wht > 0, driz.out_img, np.nan) / frame.header["EXPTIME"])
    return np.array(out)


@pytest.mark.parametrize("band_rows", [1, 7, None])
def test_banded_drizzle_equals_the_whole_frame_drizzle(band_rows):
    frames, _ = make_dithered_frames(3, shape=(60, 80), cosmic_rays=0, seed=2)
    bad = [np.zeros(f.data.shape, dtype=bool) for f in frames]
    bad[0][:, 30] = True  # a bad column drops nothing
    frames[0].mask = bad[0]
    wcs, shape = find_optimal_wcs(frames, scale=0.75 * u.arcsec)
    stack = stack_frames(
        frames,
        wcs=(wcs, shape),
        kernel="drizzle",
        pixfrac=0.7,
        rejection="none",
        weights="none",
        normalize="none",
        projection_error=0,
        band_rows=band_rows,  # one row, a few rows (drops cross the bands' edges), the default
    )
    reference = _reference(frames, wcs, shape, 0.7, bad)
    covered = np.all(np.isfinite(reference), axis=0)
    assert covered.mean() > 0.5
    expected = reference.mean(axis=0)
    np.testing.assert_allclose(stack.data[covered], expected[covered], rtol=2e-5, atol=1e-6)
    assert np.array_equal(stack.coverage[covered], np.full(np.count_nonzero(covered), 3))
    # where no frame drops anything: no data
    nothing = np.all(~np.isfinite(reference), axis=0)
    assert np.all(np.isnan(stack.data[nothing])) and np.all(stack.coverage[nothing] == 0)
    assert stack.combination["pixfrac"] == 0.7 and stack.header["APKERNEL"] == "drizzle"


def _centroid(data, x, y, half=4):
    """Offset (dx, dy) of the light-weighted centroid above the median from (x, y)."""
    ix, iy = int(round(x)), int(round(y))
    box = np.clip(
        np.nan_to_num(data[iy - half : iy + half + 1, ix - half : ix + half + 1] - np.nanmedian(data)),
        0,
        None,
    )
    yy, xx = np.mgrid[iy - half : iy + half + 1, ix - half : ix + half + 1]
    return (box * xx).sum() / box.sum() - x, (box * yy).sum() / box.sum() - y


def _fitted_fwhm(data, x, y, half=4):
    """FWHM (output pixels) of a circular Gaussian fitted to the star's core."""
    from astropy.modeling import fitting, models

    ix, iy = int(round(x)), int(round(y))
    box = np.nan_to_num(data[iy - half : iy + half + 1, ix - half : ix + half + 1] - np.nanmedian(data))
    yy, xx = np.mgrid[iy - half : iy + half + 1, ix - half : ix + half + 1]
    start = models.Gaussian2D(box.max(), x, y, 1.5, 1.5) + models.Const2D(0.0)
    start.y_stddev_0.tied = lambda m: m.x_stddev_0
    fit = fitting.LevMarLSQFitter()(start, xx, yy, box)
    return 2.3548 * abs(fit.x_stddev_0.value)


def test_drizzle_on_undersampled_dithers_flux_positions_and_sharpness():
    frames, truth = make_dithered_frames(
        8, shape=(80, 100), fwhm=1.3, dither=4.0, cosmic_rays=0, star_density=30000.0, seed=3
    )
    wcs, shape = find_optimal_wcs(frames, scale=0.75 * u.arcsec)  # twice as fine as the frames
    common = {"wcs": (wcs, shape), "rejection": "none", "normalize": "none", "weights": "none"}
    drizzled = stack_frames(frames, kernel="drizzle", pixfrac=0.8, **common)
    assert np.mean(drizzled.coverage[20:-20, 20:-20] == 0) < 0.001  # 8 dithers fill the finer grid
    bilinear = stack_frames(frames, kernel="bilinear", **common)
    x, y = wcs.world_to_pixel(SkyCoord(truth.stars["ra"], truth.stars["dec"]))
    rate = np.asarray(truth.stars["rate"], dtype=float)  # electrons per second (transparency 1)
    ny, nx = shape
    inside = (x > 20) & (x < nx - 21) & (y > 20) & (y < ny - 21)
    # isolated bright stars: no other star within 12 output pixels
    bright = np.flatnonzero(inside & (rate > np.percentile(rate[inside], 60)))
    isolated = [i for i in bright if np.sum(np.hypot(x - x[i], y - y[i]) < 12) == 1]
    assert len(isolated) >= 4
    # the stars where the truth puts them
    offsets = [np.hypot(*_centroid(drizzled.data, x[i], y[i])) for i in isolated]
    assert np.median(offsets) < 0.1, offsets
    # sharper than bilinear interpolation onto the same grid: in Gaussian terms (output pixels)
    # the true 2.6 px FWHM with the input pixel, plus the 1.6 px drop and the output pixel,
    # predicts 3.20 px; with bilinear's triangle of +/-2 px instead, 3.51 px (a ratio of 0.91)
    fwhm_d = np.median([_fitted_fwhm(drizzled.data, x[i], y[i]) for i in isolated])
    fwhm_b = np.median([_fitted_fwhm(bilinear.data, x[i], y[i]) for i in isolated])
    assert fwhm_d < 0.95 * fwhm_b, (fwhm_d, fwhm_b)
    # surface brightness kept: the aperture sum x (output / input pixel area) is the true rate
    yy, xx = np.mgrid[0:ny, 0:nx]
    sky = np.nanmedian(drizzled.data)
    ratios = []
    for i in isolated:
        aperture = np.hypot(xx - x[i], yy - y[i]) <= 9
        ratios.append((np.nansum(drizzled.data[aperture]) - aperture.sum() * sky) * 0.25 / rate[i])
    assert abs(np.median(ratios) - 1) < 0.01, ratios


def test_drizzle_options_checked():
    frames, _ = make_dithered_frames(2, shape=(30, 40), cosmic_rays=0, seed=1)
    with pytest.raises(ValueError, match="pixfrac"):
        stack_frames(frames, kernel="drizzle", pixfrac=0)
