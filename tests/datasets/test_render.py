# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The star renderer: flux conserved, centred where asked, the FWHM it was given."""

import numpy as np
import pytest
from astropy.modeling import models
from hypothesis import given, settings
from hypothesis import strategies as st

from astrophot.datasets import PSF
from astrophot.datasets._model import render_stars


def _pixel_moments(x, y, psf):
    """
    The first moments of a star's pixel image: the integral of round(x) and round(y) over its profile.

    A pixel at integer (i, j) holds the flux falling within half a pixel of it, so the pixel-weighted
    centroid of an image is the profile's mean of the *rounded* coordinates, not its centre: for a star
    narrower than a pixel the two differ by up to 0.03 px ("pixel locking"), for a 2 px star by < 1e-4.
    Computed here from the analytic elliptical Moffat on a fine grid, independently of render_stars.
    """
    alpha_major = PSF.alpha_from_fwhm(psf.fwhm_major, psf.beta)
    alpha_minor = PSF.alpha_from_fwhm(psf.fwhm_minor, psf.beta)
    half = int(np.ceil(max(10.0, 8.0 * psf.fwhm_major)))
    n = 40 if psf.fwhm_minor < 2.0 else 8  # samples per pixel, each strictly inside its pixel
    within = (np.arange(n) + 0.5) / n - 0.5
    px = np.rint(x) + np.arange(-half, half + 1)
    py = np.rint(y) + np.arange(-half, half + 1)
    kx, ky = np.meshgrid(np.repeat(px, n), np.repeat(py, n))  # the pixel each sample is in
    sx, sy = np.meshgrid(
        np.repeat(px, n) + np.tile(within, px.size), np.repeat(py, n) + np.tile(within, py.size)
    )
    t = np.radians(psf.theta)
    u = (sx - x) * np.cos(t) + (sy - y) * np.sin(t)
    v = -(sx - x) * np.sin(t) + (sy - y) * np.cos(t)
    weight = (1.0 + (u / alpha_major) ** 2 + (v / alpha_minor) ** 2) ** -psf.beta
    return (kx * weight).sum() / weight.sum(), (ky * weight).sum() / weight.sum()


@settings(max_examples=40, deadline=None)
@given(
    x=st.floats(110, 130),
    y=st.floats(110, 130),
    fwhm=st.floats(1.2, 6.0),
    beta=st.floats(2.0, 6.0),
    ellipticity=st.floats(0.0, 0.6),
    theta=st.floats(0.0, 180.0),
)
def test_flux_is_conserved_and_the_star_is_where_asked(x, y, fwhm, beta, ellipticity, theta):
    psf = PSF(fwhm, beta, ellipticity, theta)
    # the frame holds the whole stamp (up to 8 major-axis FWHM each side), so no flux falls off the edge
    image = render_stars((241, 241), [x], [y], [1000.0], psf)
    assert image.sum() == pytest.approx(1000.0, rel=1e-9)
    yy, xx = np.mgrid[0:241, 0:241]
    # the star is at (x, y): its pixel image has the moments of a profile centred there (the
    # centroid itself is off by up to 0.034 px for the narrowest elliptical stars: pixel locking)
    mx, my = _pixel_moments(x, y, psf)
    assert (image * xx).sum() / 1000.0 == pytest.approx(mx, abs=0.02)
    assert (image * yy).sum() / 1000.0 == pytest.approx(my, abs=0.02)


def test_narrow_stars_pixel_lock_as_the_analytic_profile_does():
    """The case Hypothesis found: minor-axis FWHM 0.76 px, star at 0.3 px from a pixel centre."""
    psf = PSF(1.2, 6.0, 0.6, 0.0)
    image = render_stars((241, 241), [120.0], [120.3], [1000.0], psf)
    yy, xx = np.mgrid[0:241, 0:241]
    mx, my = _pixel_moments(120.0, 120.3, psf)
    assert abs(my - 120.3) > 0.02  # the centroid is not the centre here
    # render_stars' 5 samples per pixel for such a star: within 0.005 px of the fine-grid moments
    assert (image * yy).sum() / 1000.0 == pytest.approx(my, abs=0.005)
    assert (image * xx).sum() / 1000.0 == pytest.approx(mx, abs=0.005)


@pytest.mark.parametrize(("fwhm", "beta", "ellipticity"), [(1.2, 3.0, 0.0), (2.5, 3.0, 0.0), (4.0, 2.5, 0.3)])
def test_pixels_match_astropy_moffat_integrated_over_each_pixel(fwhm, beta, ellipticity):
    psf = PSF(fwhm, beta, ellipticity, 30.0)
    x0, y0 = 30.3, 29.8
    image = render_stars((61, 61), [x0], [y0], [1.0], psf)
    # an independent model: astropy's elliptical Moffat (the circular one, stretched), 21x21 samples per pixel
    sub = (np.arange(21) + 0.5) / 21 - 0.5
    yy, xx = np.mgrid[20:41, 20:41]
    shape = (21, 21, 21, 21)
    sx = np.broadcast_to(xx[:, :, None, None] + sub[None, None, None, :], shape).ravel() - x0
    sy = np.broadcast_to(yy[:, :, None, None] + sub[None, None, :, None], shape).ravel() - y0
    t = np.radians(30.0)
    u = sx * np.cos(t) + sy * np.sin(t)
    v = -sx * np.sin(t) + sy * np.cos(t)
    q = np.sqrt(1 - ellipticity)
    moffat = models.Moffat2D(1.0, 0.0, 0.0, PSF.alpha_from_fwhm(fwhm, beta), beta)
    values = moffat(u * q, v / q).reshape(21, 21, 21, 21).mean(axis=(2, 3))
    values *= image[20:41, 20:41].sum() / values.sum()
    assert np.abs(image[20:41, 20:41] - values).max() < 0.01 * values.max()


def test_stars_off_the_edge_lose_their_outer_part_only():
    # the first star is centred on the frame's edge (pixel 0 spans -0.5 to 0.5): half of it is in,
    # all of the second, none of the third
    image = render_stars((30, 30), [-0.5, 15.0, -50.0], [15.0, 15.0, 15.0], [100.0, 100.0, 100.0], PSF(2.0))
    assert image.sum() == pytest.approx(150.0, rel=0.01)
