# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Fitting, refining, describing and verifying a celestial WCS against a catalogue."""

import logging
import math
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS, Sip
from astropy.wcs.utils import fit_wcs_from_points
from scipy.spatial import cKDTree

from astrophot._warnings import quiet

__all__ = [
    "Verification",
    "add_inverse_sip",
    "fit_wcs",
    "match_positions",
    "project",
    "refine_wcs",
    "verify_wcs",
    "wcs_summary",
]

log = logging.getLogger(__name__)


def project(wcs, ra, dec):
    """Catalogue positions to 0-based pixels (NaN where the projection fails)."""
    with quiet():
        with np.errstate(all="ignore"):
            try:
                x, y = wcs.all_world2pix(np.asarray(ra, float), np.asarray(dec, float), 0, quiet=True)
            except Exception:
                x, y = wcs.wcs_world2pix(np.asarray(ra, float), np.asarray(dec, float), 0)
    return np.asarray(x, float), np.asarray(y, float)


def match_positions(x1, y1, x2, y2, radius):
    """
    One-to-one nearest matches between two position lists within ``radius``.

    Returns
    -------
    i1, i2 : numpy.ndarray of int
        Matched indices into the first and second list.
    distance : numpy.ndarray
    """
    x1, y1, x2, y2 = (np.asarray(v, float) for v in (x1, y1, x2, y2))
    ok1 = np.flatnonzero(np.isfinite(x1) & np.isfinite(y1))
    ok2 = np.flatnonzero(np.isfinite(x2) & np.isfinite(y2))
    if len(ok1) == 0 or len(ok2) == 0:
        empty = np.zeros(0, int)
        return empty, empty, np.zeros(0)
    tree = cKDTree(np.c_[x2[ok2], y2[ok2]])
    dist, j = tree.query(np.c_[x1[ok1], y1[ok1]], distance_upper_bound=radius)
    found = np.isfinite(dist)
    i1, j2, d = ok1[found], ok2[j[found]], dist[found]
    # keep the closest pair when one star of list 2 is claimed twice
    order = np.argsort(d, kind="stable")
    _, first = np.unique(j2[order], return_index=True)
    keep = order[first]
    return i1[keep], j2[keep], d[keep]


def _sip_terms(u_, v_, degree, min_order=2):
    terms, names = [], []
    for p in range(degree + 1):
        for q in range(degree + 1 - p):
            if p + q >= min_order:
                terms.append(u_**p * v_**q)
                names.append((p, q))
    return np.array(terms).T, names


def add_inverse_sip(wcs, shape, *, degree=None):
    """
    Add the inverse SIP polynomials (``AP``, ``BP``) to a WCS with forward SIP.

    `~astropy.wcs.utils.fit_wcs_from_points` fits only the forward terms;
    FITS readers such as SWarp or ds9 also want the inverse ones. They are
    fitted by least squares on a grid over the frame.

    Parameters
    ----------
    wcs : `~astropy.wcs.WCS`
        Modified in place (a WCS the caller owns).
    shape : tuple of int
        Frame shape ``(ny, nx)``.
    degree : int, optional
        Inverse order (default: forward order + 1).
    """
    sip = wcs.sip
    if sip is None:
        return wcs
    order = int(sip.a_order)
    degree = degree or order + 1
    ny, nx = shape
    crpix = wcs.wcs.crpix
    gx, gy = np.meshgrid(np.linspace(0.5, nx + 0.5, 40), np.linspace(0.5, ny + 0.5, 40))
    u_ = gx.ravel() - crpix[0]
    v_ = gy.ravel() - crpix[1]
    f = np.zeros_like(u_)
    g = np.zeros_like(u_)
    for p in range(order + 1):
        for q in range(order + 1 - p):
            f += sip.a[p, q] * u_**p * v_**q
            g += sip.b[p, q] * u_**p * v_**q
    big_u, big_v = u_ + f, v_ + g
    design, names = _sip_terms(big_u, big_v, degree, min_order=0)
    coef_u, *_ = np.linalg.lstsq(design, u_ - big_u, rcond=None)
    coef_v, *_ = np.linalg.lstsq(design, v_ - big_v, rcond=None)
    ap = np.zeros((degree + 1, degree + 1))
    bp = np.zeros((degree + 1, degree + 1))
    for (p, q), cu, cv in zip(names, coef_u, coef_v):
        ap[p, q] = cu
        bp[p, q] = cv
    wcs.sip = Sip(sip.a, sip.b, ap, bp, crpix)
    return wcs


def _template(wcs):
    """A TAN template (CD only, no SIP) for the fit's starting point."""
    tmpl = WCS(naxis=2)
    tmpl.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    if wcs is not None:
        cel = wcs.celestial
        tmpl.wcs.crval = cel.wcs.crval
        tmpl.wcs.crpix = cel.wcs.crpix
        tmpl.wcs.cd = cel.pixel_scale_matrix
    return tmpl


def fit_wcs(x, y, ra, dec, shape, *, sip_degree=None, initial=None):
    """
    Fit a TAN (or TAN-SIP) WCS to matched pixel and sky positions.

    A thin wrapper of `~astropy.wcs.utils.fit_wcs_from_points` with the
    tangent point at the frame centre, the previous solution as the starting
    point, and inverse SIP terms added.

    Parameters
    ----------
    x, y : numpy.ndarray
        0-based pixel positions.
    ra, dec : numpy.ndarray
        Matched catalogue positions (deg).
    shape : tuple of int
        Frame shape ``(ny, nx)``.
    sip_degree : int, optional
        SIP order (None or 0 for pure TAN).
    initial : `~astropy.wcs.WCS`, optional
        Starting point (used for the tangent point and the CD guess).

    Returns
    -------
    `~astropy.wcs.WCS`
    """
    ny, nx = shape
    world = SkyCoord(np.asarray(ra) * u.deg, np.asarray(dec) * u.deg, frame="icrs")
    if initial is not None:
        proj_point = initial.pixel_to_world((nx - 1) / 2, (ny - 1) / 2)
    else:
        proj_point = "center"
    template = _template(initial) if initial is not None else "TAN"
    with quiet():
        wcs = fit_wcs_from_points(
            (np.asarray(x, float), np.asarray(y, float)),
            world,
            proj_point=proj_point,
            projection=template,
            sip_degree=int(sip_degree) if sip_degree else None,
        )
    wcs.pixel_shape = (nx, ny)
    if wcs.sip is not None:
        add_inverse_sip(wcs, shape)
    return wcs


def _inliers(r, n_sigma=3.0):
    """Boolean mask of residuals below ``n_sigma`` robust sigmas (2-D, Rayleigh-distributed)."""
    r = np.asarray(r, float)
    if len(r) < 8:
        return np.ones(len(r), dtype=bool)
    sigma = np.median(r) / 1.1774  # median of a Rayleigh distribution is 1.1774 sigma
    return r <= max(n_sigma * sigma, 1e-3)


def _clipped_fit(x, y, ra, dec, shape, *, initial, sip_degree=None):
    """Fit, drop residuals beyond 3 robust sigmas, fit again: (wcs, kept mask)."""
    wcs = fit_wcs(x, y, ra, dec, shape, sip_degree=sip_degree, initial=initial)
    dx, dy = _residuals(wcs, x, y, ra, dec)
    keep = _inliers(np.hypot(dx, dy))
    if keep.all() or keep.sum() < max(6, 0.5 * len(x)):
        return wcs, np.ones(len(x), dtype=bool)
    wcs = fit_wcs(x[keep], y[keep], ra[keep], dec[keep], shape, sip_degree=sip_degree, initial=wcs)
    return wcs, keep


def _rms(dx, dy):
    return float(np.sqrt(np.mean(dx**2 + dy**2))) if len(dx) else float("nan")


def _residuals(wcs, x, y, ra, dec):
    px, py = project(wcs, ra, dec)
    return px - x, py - y


def refine_wcs(
    wcs,
    star_x,
    star_y,
    ref_ra,
    ref_dec,
    shape,
    *,
    match_radius=3.0,
    sip_degree="auto",
    n_iter=3,
    min_matches=6,
):
    """
    Improve a WCS by matching catalogue stars to detections and refitting.

    Parameters
    ----------
    wcs : `~astropy.wcs.WCS`
        Starting solution.
    star_x, star_y : numpy.ndarray
        Detected stars (0-based pixels).
    ref_ra, ref_dec : numpy.ndarray
        Catalogue stars (deg).
    shape : tuple of int
    match_radius : float, optional
        Initial match radius (pixels); it shrinks to 3 times the RMS.
    sip_degree : int, None or "auto", optional
        "auto": TAN, with SIP order 2 (30+ matches) or 3 (100+) kept only
        when it lowers the RMS by more than 10%.
    n_iter : int, optional
    min_matches : int, optional
        Fewer matches than this: the input WCS is returned unchanged.

    Returns
    -------
    wcs : `~astropy.wcs.WCS`
    info : dict
        ``n_matched``, ``rms_pixels``, ``sip_degree``.
    """
    ny, nx = shape
    star_x = np.asarray(star_x, float)
    star_y = np.asarray(star_y, float)
    ref_ra = np.asarray(ref_ra, float)
    ref_dec = np.asarray(ref_dec, float)
    radius = float(match_radius)
    current = wcs
    info = {"n_matched": 0, "rms_pixels": float("nan"), "sip_degree": 0}

    def matches(w, r):
        px, py = project(w, ref_ra, ref_dec)
        inside = np.flatnonzero((px > -r) & (px < nx - 1 + r) & (py > -r) & (py < ny - 1 + r))
        i_ref, i_star, _ = match_positions(px[inside], py[inside], star_x, star_y, r)
        return inside[i_ref], i_star

    # 1. TAN fits while the match radius shrinks towards 3x the RMS
    previous = None
    for _ in range(max(1, n_iter)):
        i_ref, i_star = matches(current, radius)
        if len(i_ref) < min_matches:
            return current, info
        key = (tuple(i_ref), tuple(i_star))
        if key == previous:
            break
        previous = key
        sx, sy, rra, rdec = star_x[i_star], star_y[i_star], ref_ra[i_ref], ref_dec[i_ref]
        try:
            fitted, keep = _clipped_fit(sx, sy, rra, rdec, shape, initial=current)
        except (ValueError, np.linalg.LinAlgError) as exc:
            log.debug("TAN fit failed: %s", exc)
            break
        dx, dy = _residuals(fitted, sx[keep], sy[keep], rra[keep], rdec[keep])
        rms = _rms(dx, dy)
        if not np.isfinite(rms):
            break
        current = fitted
        info = {"n_matched": int(len(i_ref)), "rms_pixels": rms, "sip_degree": 0}
        radius = min(radius, max(3.0 * rms, 1.0))

    # 2. distortion: SIP when enough stars support it and it pays. Match with the
    # full radius again (the TAN residuals grow towards the edges when there is
    # distortion) and let each fit clip its own outliers.
    if sip_degree in (None, 0):
        return current, info
    i_ref, i_star = matches(current, float(match_radius))
    degrees = _sip_degrees(sip_degree, len(i_ref))
    if not degrees:
        return current, info
    args = (star_x[i_star], star_y[i_star], ref_ra[i_ref], ref_dec[i_ref])
    best = _best_sip_fit(args, shape, current, degrees, sip_degree)
    if best is not None:
        current = best[0]
        info = {"n_matched": best[3], "rms_pixels": best[1], "sip_degree": best[2]}
    return current, info


def _sip_degrees(sip_degree, n):
    """The SIP orders worth trying with ``n`` matches."""
    if sip_degree == "auto":
        return [d for d, need in ((2, 30), (3, 100)) if n >= need]
    need = 3 * (int(sip_degree) + 1) * (int(sip_degree) + 2) // 2
    return [int(sip_degree)] if n >= need else []


def _best_sip_fit(args, shape, current, degrees, sip_degree):
    """TAN and each SIP order in turn; a higher order must earn its keep."""
    best = None
    for degree in [0, *degrees]:
        try:
            fitted, keep = _clipped_fit(*args, shape, initial=current, sip_degree=degree)
        except (ValueError, np.linalg.LinAlgError) as exc:
            log.debug("SIP %d fit failed: %s", degree, exc)
            continue
        dx, dy = _residuals(fitted, *(a[keep] for a in args))
        rms = _rms(dx, dy)
        if not np.isfinite(rms):
            continue
        # a higher order must earn its keep: 10% lower RMS than the simpler fit,
        # unless the caller asked for this order
        if best is None or (sip_degree != "auto" and degree) or rms < 0.9 * best[1]:
            best = (fitted, rms, degree, int(keep.sum()))
        elif sip_degree == "auto":
            break  # no gain from order 2: do not try order 3
    return best


@dataclass(frozen=True)
class Verification:
    """
    How well a WCS maps the catalogue onto the detected stars.

    Attributes
    ----------
    accepted : bool
    n_matched : int
        Catalogue stars with a detection within the match radius.
    n_reference : int
        Catalogue stars that fall on the frame (those tested).
    n_detected : int
        Detected stars tested.
    expected_chance : float
        Matches expected by chance at this star density.
    logodds : float
        ``-ln P(at least n_matched chance matches)``: 20 means odds of
        about one in 500 million that the matches are a coincidence.
    rms_pixels, rms_arcsec : float
    reason : str
        Why it was rejected ('' when accepted).
    """

    accepted: bool
    n_matched: int
    n_reference: int
    n_detected: int
    expected_chance: float
    logodds: float
    rms_pixels: float
    rms_arcsec: float
    reason: str = ""


def verify_wcs(
    wcs,
    star_x,
    star_y,
    ref_ra,
    ref_dec,
    shape,
    *,
    match_radius=3.0,
    min_matches=6,
    min_logodds=20.0,
    max_rms=None,
    ref_mag=None,
    n_detected_max=500,
):
    """
    Check a WCS: do catalogue stars land on detected stars, beyond chance?

    Parameters
    ----------
    wcs : `~astropy.wcs.WCS`
    star_x, star_y : numpy.ndarray
        Detected stars (0-based pixels), brightest first.
    ref_ra, ref_dec : numpy.ndarray
        Catalogue stars (deg).
    shape : tuple of int
    match_radius : float, optional
        Pixels.
    min_matches : int, optional
    min_logodds : float, optional
        Natural-log odds against a chance alignment required.
    max_rms : float, optional
        Largest RMS residual (pixels); default half the match radius.
    ref_mag : numpy.ndarray, optional
        Catalogue magnitudes: only the brightest ``2 * n_detected`` stars
        on the frame are tested, so a deep catalogue does not drown the
        test in chance matches.
    n_detected_max : int, optional
        Use at most this many (brightest) detections.

    Returns
    -------
    Verification
    """
    ny, nx = shape
    max_rms = 0.5 * match_radius if max_rms is None else max_rms
    sx = np.asarray(star_x, float)[:n_detected_max]
    sy = np.asarray(star_y, float)[:n_detected_max]
    px, py = project(wcs, ref_ra, ref_dec)
    inside = np.flatnonzero((px >= 0) & (px <= nx - 1) & (py >= 0) & (py <= ny - 1))
    if ref_mag is not None and len(inside) > max(2 * len(sx), 30):
        mags = np.asarray(ref_mag, float)[inside]
        inside = inside[np.argsort(np.where(np.isfinite(mags), mags, np.inf), kind="stable")]
        inside = inside[: max(2 * len(sx), 30)]
    n_ref, n_det = len(inside), len(sx)
    i_ref, i_star, dist = match_positions(px[inside], py[inside], sx, sy, match_radius)
    n = len(i_ref)
    area = float(nx * ny)
    expected = n_ref * min(1.0, n_det * math.pi * match_radius**2 / area)
    from scipy.stats import poisson  # slow to import: only when verifying

    if n == 0:
        logodds = 0.0
    else:
        logodds = float(min(-poisson.logsf(n - 1, max(expected, 1e-12)), 9999.0))
    rms_px = float(np.sqrt(np.mean(dist**2))) if n else float("nan")
    scale = _pixel_scale_arcsec(wcs)
    rms_arcsec = rms_px * scale if n else float("nan")
    reasons = []
    if n < min_matches:
        reasons.append(
            f"only {n} catalogue stars matched (need {min_matches}; {n_ref} on the frame, {n_det} detected)"
        )
    if logodds < min_logodds:
        reasons.append(
            f"matches not above chance (log-odds {logodds:.1f} < {min_logodds:g}; "
            f"{expected:.1f} expected by chance)"
        )
    if n and rms_px > max_rms:
        reasons.append(f"residual RMS {rms_px:.2f} px above {max_rms:.2f} px")
    return Verification(
        accepted=not reasons,
        n_matched=int(n),
        n_reference=int(n_ref),
        n_detected=int(n_det),
        expected_chance=float(expected),
        logodds=logodds,
        rms_pixels=rms_px,
        rms_arcsec=rms_arcsec,
        reason="; ".join(reasons),
    )


def _pixel_scale_arcsec(wcs):
    matrix = wcs.celestial.pixel_scale_matrix
    return float(math.sqrt(abs(np.linalg.det(matrix))) * 3600.0)


def wcs_summary(wcs, shape):
    """
    Centre, pixel scale, rotation and parity of a celestial WCS.

    Returns
    -------
    dict
        ``center`` [ra, dec] (deg) of the frame centre, ``pixel_scale``
        (arcsec/pix), ``rotation`` (deg east of north of the frame's +y
        axis, in (-180, 180]), ``parity`` ('normal' when the sky appears as seen
        on the sky, east anticlockwise from north; 'flipped' for a mirror
        image), ``field_width``/``field_height`` (deg).
    """
    ny, nx = shape
    cx, cy = (nx - 1) / 2.0, (ny - 1) / 2.0
    with quiet():
        center = wcs.pixel_to_world(cx, cy)
        up = wcs.pixel_to_world(cx, cy + 10.0)
    rotation = float(center.position_angle(up).to_value(u.deg)) % 360.0
    if rotation > 180.0:
        rotation -= 360.0
    det = np.linalg.det(wcs.celestial.pixel_scale_matrix)
    scale = _pixel_scale_arcsec(wcs)
    return {
        "center": [float(center.ra.deg), float(center.dec.deg)],
        "pixel_scale": scale,
        "rotation": rotation,
        "parity": "normal" if det < 0 else "flipped",
        "field_width": nx * scale / 3600.0,
        "field_height": ny * scale / 3600.0,
    }
