# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Fitting, describing and verifying a WCS, on hand-made WCSs with known values."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS, Sip

from astrophot.astrometry import verify_wcs, wcs_summary
from astrophot.astrometry._wcsfit import add_inverse_sip, fit_wcs, match_positions, refine_wcs

SHAPE = (1000, 1500)


def _wcs(rotation=0.0, scale=2.0, flip=False, sip=False, center=(120.0, 30.0)):
    """TAN(-SIP) WCS: +y at ``rotation`` deg east of north, north up east left when 0."""
    ny, nx = SHAPE
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"] if sip else ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = list(center)
    w.wcs.crpix = [(nx + 1) / 2, (ny + 1) / 2]
    th = np.radians(rotation)
    s = scale / 3600
    cd = np.array([[-s * np.cos(th), s * np.sin(th)], [s * np.sin(th), s * np.cos(th)]])
    if flip:
        cd[:, 0] *= -1
    w.wcs.cd = cd
    if sip:
        a = np.zeros((3, 3))
        b = np.zeros((3, 3))
        a[2, 0], a[1, 1], b[0, 2], b[1, 1] = 2e-6, -1e-6, 1.5e-6, 1e-6
        w.sip = Sip(a, b, None, None, w.wcs.crpix)
    w.pixel_shape = (nx, ny)
    return w


def _inverse_sip(w, ra, dec):
    """0-based pixels from the sky with the inverse polynomials only (no iteration)."""
    tan = w.deepcopy()
    tan.sip = None
    tan.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    fx, fy = tan.wcs_world2pix(ra, dec, 1)
    u_, v_ = fx - w.wcs.crpix[0], fy - w.wcs.crpix[1]
    du = sum(
        w.sip.ap[p, q] * u_**p * v_**q for p in range(w.sip.ap_order + 1) for q in range(w.sip.ap_order + 1)
    )
    dv = sum(
        w.sip.bp[p, q] * u_**p * v_**q for p in range(w.sip.bp_order + 1) for q in range(w.sip.bp_order + 1)
    )
    return u_ + du + w.wcs.crpix[0] - 1, v_ + dv + w.wcs.crpix[1] - 1


def _points(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, SHAPE[1] - 1, n), rng.uniform(0, SHAPE[0] - 1, n)


def _grid_error(a, b):
    ny, nx = SHAPE
    gx, gy = np.meshgrid(np.linspace(0, nx - 1, 5), np.linspace(0, ny - 1, 5))
    px, py = a.world_to_pixel(b.pixel_to_world(gx, gy))
    return float(np.max(np.hypot(px - gx, py - gy)))


@pytest.mark.parametrize(("rotation", "flip"), [(0.0, False), (37.0, False), (-120.0, True)])
def test_summary_reads_scale_rotation_parity(rotation, flip):
    summary = wcs_summary(_wcs(rotation=rotation, scale=1.7, flip=flip), SHAPE)
    assert summary["pixel_scale"] == pytest.approx(1.7, rel=1e-9)
    assert summary["rotation"] == pytest.approx(rotation, abs=1e-6)
    assert summary["parity"] == ("flipped" if flip else "normal")
    assert summary["center"] == pytest.approx([120.0, 30.0], abs=1e-9)
    assert summary["field_width"] == pytest.approx(1500 * 1.7 / 3600)


def test_fit_recovers_tan_sip_and_writes_the_inverse():
    truth = _wcs(rotation=20.0, sip=True)
    x, y = _points(200)
    sky = truth.pixel_to_world(x, y)
    start = _wcs(rotation=19.5, scale=2.01, center=(120.01, 29.99))
    fitted = fit_wcs(x, y, sky.ra.deg, sky.dec.deg, SHAPE, sip_degree=2, initial=start)
    assert fitted.sip is not None and fitted.sip.ap is not None
    # the fit's tangent point is the starting frame centre, 40" from the truth's: TAN plus
    # order-2 SIP about another point matches the truth to a few thousandths of a pixel
    assert _grid_error(fitted, truth) < 0.01
    # the fitted inverse (AP, BP) alone maps the sky back to within 0.01 px
    px, py = _inverse_sip(fitted, sky.ra.deg, sky.dec.deg)
    assert np.max(np.hypot(px - x, py - y)) < 0.01
    # a pure TAN fit cannot follow the distortion
    tan = fit_wcs(x, y, sky.ra.deg, sky.dec.deg, SHAPE, initial=start)
    assert _grid_error(tan, truth) > 0.3


def test_add_inverse_sip_round_trip():
    w = _wcs(sip=True)
    add_inverse_sip(w, SHAPE)
    x, y = _points(50, seed=2)
    ra, dec = w.all_pix2world(x, y, 0)
    bx, by = _inverse_sip(w, ra, dec)
    assert np.max(np.hypot(bx - x, by - y)) < 1e-3


def test_refine_from_a_rough_start_with_distortion_and_outliers():
    truth = _wcs(rotation=-15.0, sip=True)
    x, y = _points(300, seed=4)
    sky = truth.pixel_to_world(x, y)
    rng = np.random.default_rng(5)
    sx, sy = x + rng.normal(0, 0.05, x.size), y + rng.normal(0, 0.05, y.size)
    sx[:10] += 2.0  # ten blended stars with biased centres
    rough = _wcs(rotation=-15.3, scale=2.004, center=(120.002, 30.001))
    refined, info = refine_wcs(rough, sx, sy, sky.ra.deg, sky.dec.deg, SHAPE, match_radius=5.0)
    assert info["sip_degree"] >= 2
    assert info["n_matched"] >= 280
    assert _grid_error(refined, truth) < 0.05


def test_refine_keeps_tan_without_distortion():
    truth = _wcs(rotation=10.0)
    x, y = _points(150, seed=6)
    sky = truth.pixel_to_world(x, y)
    rng = np.random.default_rng(7)
    refined, info = refine_wcs(
        _wcs(rotation=10.1, center=(120.001, 30.0)),
        x + rng.normal(0, 0.05, x.size),
        y + rng.normal(0, 0.05, y.size),
        sky.ra.deg,
        sky.dec.deg,
        SHAPE,
    )
    assert info["sip_degree"] == 0
    assert refined.sip is None
    assert _grid_error(refined, truth) < 0.05


def test_verify_accepts_the_truth_and_rejects_a_shifted_wcs():
    truth = _wcs(rotation=25.0)
    x, y = _points(120, seed=8)
    sky = truth.pixel_to_world(x, y)
    # the catalogue: 60 of the stars plus 40 the detector missed
    ref_x, ref_y = _points(40, seed=9)
    ref = truth.pixel_to_world(np.r_[x[:60], ref_x], np.r_[y[:60], ref_y])
    good = verify_wcs(truth, x, y, ref.ra.deg, ref.dec.deg, SHAPE)
    assert good.accepted, good.reason
    assert good.n_matched == 60
    assert good.n_reference == 100
    assert good.rms_pixels < 1e-6
    assert good.logodds > 100
    shifted = truth.deepcopy()
    shifted.wcs.crpix = shifted.wcs.crpix + [25.0, -10.0]
    bad = verify_wcs(shifted, x, y, ref.ra.deg, ref.dec.deg, SHAPE)
    assert not bad.accepted
    assert "not above chance" in bad.reason
    assert bad.expected_chance > 0
    assert sky is not None


def test_verify_needs_enough_matches():
    truth = _wcs()
    x, y = _points(5, seed=10)
    ref = truth.pixel_to_world(x, y)
    check = verify_wcs(truth, x, y, ref.ra.deg, ref.dec.deg, SHAPE, min_matches=6)
    assert not check.accepted
    assert "only 5 catalogue stars matched" in check.reason


def test_match_positions_is_one_to_one():
    i1, i2, d = match_positions([0.0, 0.5, 10.0], [0.0, 0.0, 0.0], [0.2, 10.0], [0.0, 0.0], 1.0)
    assert sorted(zip(i1.tolist(), i2.tolist())) == [(0, 0), (2, 1)]
    assert d == pytest.approx([0.2, 0.0]) or sorted(d) == pytest.approx([0.0, 0.2])


def test_summary_center_is_the_frame_center():
    w = _wcs(rotation=45.0)
    summary = wcs_summary(w, SHAPE)
    center = SkyCoord(*summary["center"], unit="deg")
    ny, nx = SHAPE
    assert center.separation(w.pixel_to_world((nx - 1) / 2, (ny - 1) / 2)).to_value(u.arcsec) < 1e-6
