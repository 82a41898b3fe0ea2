# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The triangle matcher on catalogue stars seen through known WCSs."""

import astropy.units as u
import numpy as np
import pytest

from astrophot.astrometry._matcher import TooFewReferenceStars, match_triangles
from astrophot.astrometry._wcsfit import refine_wcs
from astrophot.datasets import demo_fields, load_demo_catalog, make_wcs

SHAPE = (800, 1200)


def _observe(wcs, catalog, seed, *, missing=0.2, spurious=0.3):
    """Detected stars: catalogue stars through ``wcs``, some lost, some spurious, centroid noise."""
    rng = np.random.default_rng(seed)
    x, y = wcs.all_world2pix(catalog["ra"].value, catalog["dec"].value, 0)
    ny, nx = SHAPE
    inside = (x >= 0) & (x < nx) & (y >= 0) & (y < ny)
    x, y = x[inside], y[inside]
    mag = np.asarray(catalog["mag"])[inside]
    keep = rng.random(x.size) > missing
    x, y, mag = x[keep], y[keep], mag[keep]
    x, y = x + rng.normal(0, 0.1, x.size), y + rng.normal(0, 0.1, y.size)
    n_fake = int(spurious * x.size)
    x = np.r_[x, rng.uniform(0, nx, n_fake)]
    y = np.r_[y, rng.uniform(0, ny, n_fake)]
    flux = np.r_[
        10 ** (-0.4 * (mag + rng.normal(0, 0.4, mag.size))), 10 ** (-0.4 * rng.uniform(9, 13, n_fake))
    ]
    order = np.argsort(-flux)
    return x[order], y[order]


@pytest.mark.parametrize(
    ("field", "scale", "rotation", "flip"),
    [("Cygnus Loop", 6.0, 30.0, False), ("M31", 9.0, 200.0, True), ("NGC 55", 4.5, -75.0, False)],
)
def test_matcher_finds_rotation_scale_and_mirror(field, scale, rotation, flip):
    catalog = load_demo_catalog(field, 2.5)
    center = demo_fields()[field]
    wcs = make_wcs(center, SHAPE, scale, rotation)
    if flip:
        wcs.wcs.cd = wcs.wcs.cd * np.array([[-1.0, 1.0], [-1.0, 1.0]])
    x, y = _observe(wcs, catalog, seed=1)
    # the hint is 3 arcmin off the true centre
    hint = center.directional_offset_by(40 * u.deg, 3 * u.arcmin)
    candidates = match_triangles(
        x,
        y,
        SHAPE,
        catalog["ra"].value,
        catalog["dec"].value,
        ref_mag=np.asarray(catalog["mag"]),
        center=hint,
        radius_deg=0.1,
        scale_low=0.9 * scale,
        scale_high=1.1 * scale,
    )
    assert candidates
    refined, info = refine_wcs(candidates[0], x, y, catalog["ra"].value, catalog["dec"].value, SHAPE)
    ny, nx = SHAPE
    gx, gy = np.meshgrid(np.linspace(0, nx - 1, 5), np.linspace(0, ny - 1, 5))
    px, py = refined.world_to_pixel(wcs.pixel_to_world(gx, gy))
    assert np.max(np.hypot(px - gx, py - gy)) < 0.1
    assert np.sign(np.linalg.det(refined.wcs.cd)) == np.sign(np.linalg.det(wcs.wcs.cd))


def test_too_few_reference_stars():
    catalog = load_demo_catalog("M51", 2.5)
    center = demo_fields()["M51"]
    with pytest.raises(TooFewReferenceStars, match="too few reference stars"):
        match_triangles(
            np.arange(30.0),
            np.arange(30.0),
            (200, 200),
            catalog["ra"].value,
            catalog["dec"].value,
            center=center,
            radius_deg=0.0,
            scale_low=0.9,
            scale_high=1.1,
        )
