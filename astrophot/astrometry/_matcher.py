# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
astrophot's own plate solver: triangle matching against a reference catalogue.

With a position and scale hint, the brightest detected stars and the
brightest catalogue stars around the hint are turned into triangles made
of each star and its nearest neighbours. Triangles are compared by their
shape (two side ratios, invariant under rotation, scale and mirroring);
each pair of similar triangles proposes a similarity transform (rotation,
scale, shift, with or without a mirror), transforms outside the hinted
scale and radius are dropped, and the proposals are ranked by how many
stars they bring onto a catalogue star. The best proposals are turned into
a TAN WCS, refined against every catalogue star on the frame with
`~astropy.wcs.utils.fit_wcs_from_points`, and returned for verification.
"""

import itertools
import logging
import math
import time

import numpy as np
from astropy.wcs import WCS
from scipy.spatial import cKDTree

from astrophot.exceptions import AstrometryError

__all__ = ["TooFewReferenceStars", "match_triangles"]

log = logging.getLogger(__name__)


class TooFewReferenceStars(AstrometryError):
    """The catalogue has too few stars in the field for pattern matching."""


def tangent_plane(ra, dec, center_ra, center_dec):
    """Gnomonic standard coordinates (arcsec; xi towards east) about a centre."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [center_ra, center_dec]
    wcs.wcs.crpix = [0.0, 0.0]
    wcs.wcs.cd = np.eye(2) / 3600.0
    with np.errstate(all="ignore"):
        xi, eta = wcs.wcs_world2pix(np.asarray(ra, float), np.asarray(dec, float), 0)
    return np.asarray(xi), np.asarray(eta)


def _triangles(x, y, k):
    """Triangles of each point with its k nearest neighbours: index triples, invariants."""
    n = len(x)
    if n < 3:
        return np.zeros((0, 3), int), np.zeros((0, 2)), np.zeros(0)
    pts = np.c_[x, y]
    k = min(k, n - 1)
    _, nbrs = cKDTree(pts).query(pts, k + 1)
    triples = set()
    for row in np.atleast_2d(nbrs):
        for combo in itertools.combinations(sorted(int(i) for i in row), 3):
            triples.add(combo)
    tri = np.array(sorted(triples), dtype=int)
    p = pts[tri]  # (m, 3, 2)
    # side i is opposite vertex i
    sides = np.stack(
        [
            np.hypot(*(p[:, 1] - p[:, 2]).T),
            np.hypot(*(p[:, 0] - p[:, 2]).T),
            np.hypot(*(p[:, 0] - p[:, 1]).T),
        ],
        axis=1,
    )
    order = np.argsort(sides, axis=1)  # vertex opposite the shortest side first
    tri = np.take_along_axis(tri, order, axis=1)
    sides = np.take_along_axis(sides, order, axis=1)
    with np.errstate(all="ignore"):
        inv = np.c_[sides[:, 0] / sides[:, 2], sides[:, 1] / sides[:, 2]]
    ok = np.all(np.isfinite(inv), axis=1) & (sides[:, 0] > 0)
    return tri[ok], inv[ok], sides[ok, 2]


def _similarity(src, dst, mirror):
    """
    Least-squares similarity transforms dst ~ a * src' + b, vectorised.

    ``src`` and ``dst`` are complex arrays of shape (m, 3); ``src'`` is the
    complex conjugate when ``mirror``. Returns a, b (complex, shape (m,)).
    """
    if mirror:
        src = np.conj(src)
    sc = src - src.mean(axis=1, keepdims=True)
    dc = dst - dst.mean(axis=1, keepdims=True)
    a = np.sum(dc * np.conj(sc), axis=1) / np.sum(np.abs(sc) ** 2, axis=1)
    b = dst.mean(axis=1) - a * src.mean(axis=1)
    return a, b


def _apply(a, b, z, mirror):
    return a * (np.conj(z) if mirror else z) + b


def match_triangles(
    star_x,
    star_y,
    shape,
    ref_ra,
    ref_dec,
    *,
    center,
    radius_deg,
    scale_low,
    scale_high,
    ref_mag=None,
    n_stars=30,
    n_neighbours=5,
    invariant_tolerance=0.015,
    match_radius=3.0,
    n_candidates=5,
    min_reference=6,
    time_limit=None,
):
    """
    Find similarity transforms that bring detected stars onto catalogue stars.

    Parameters
    ----------
    star_x, star_y : numpy.ndarray
        Detected stars (0-based pixels), in the order to use them (brightest,
        spread over the field, first).
    shape : tuple of int
        Frame shape ``(ny, nx)``.
    ref_ra, ref_dec : numpy.ndarray
        Catalogue stars (deg).
    center : `~astropy.coordinates.SkyCoord`
        Hinted field centre.
    radius_deg : float
        How far the true centre may be from ``center``.
    scale_low, scale_high : float
        Pixel scale range (arcsec/pix).
    ref_mag : numpy.ndarray, optional
        Catalogue magnitudes (brightest stars are used first).
    n_stars : int, optional
        Detected stars used to build triangles.
    n_neighbours : int, optional
        Each star makes triangles with this many nearest neighbours.
    invariant_tolerance : float, optional
        Largest difference of triangle side ratios for a match.
    match_radius : float, optional
        Pixels, for counting stars brought onto catalogue stars.
    n_candidates : int, optional
        How many of the best transforms to return.
    min_reference : int, optional
        Fewer catalogue stars than this on the hinted field: error.
    time_limit : float, optional
        Seconds; the search stops early when exceeded.

    Returns
    -------
    list of `~astropy.wcs.WCS`
        Candidate TAN solutions, best first (to be refined and verified).

    Raises
    ------
    TooFewReferenceStars
        When the catalogue has fewer than ``min_reference`` stars on the field.
    """
    t0 = time.perf_counter()
    ny, nx = shape
    s0 = math.sqrt(scale_low * scale_high)
    cx, cy = (nx - 1) / 2.0, (ny - 1) / 2.0
    half_diag = 0.5 * math.hypot(nx, ny) * scale_high  # arcsec
    search = radius_deg * 3600.0 + half_diag
    xi, eta = tangent_plane(ref_ra, ref_dec, center.ra.deg, center.dec.deg)
    n_img = min(n_stars, len(star_x))
    near, n_ref, offsets = _reference_windows(
        xi, eta, ref_mag, search, half_diag, n_img, nx * ny * scale_high**2, min_reference
    )
    ref_all = near[: max(offsets[-1] + n_ref, 4 * n_img)]
    ref_xy = np.c_[xi[ref_all], eta[ref_all]]
    tree_all = cKDTree(ref_xy)

    ix = (np.asarray(star_x[:n_img], float) - cx) * s0
    iy = (np.asarray(star_y[:n_img], float) - cy) * s0
    n_check = min(len(star_x), 3 * n_img)
    cz = ((np.asarray(star_x[:n_check], float) - cx) + 1j * (np.asarray(star_y[:n_check], float) - cy)) * s0

    itri, iinv, iside = _triangles(ix, iy, n_neighbours)
    keep = iside > 10.0 * s0
    itri, iinv = itri[keep], iinv[keep]
    if len(itri) == 0:
        return []
    limits = (
        scale_low / s0,
        scale_high / s0,
        radius_deg * 3600.0 + 2 * match_radius * s0,
        2 * match_radius * s0,
    )
    proposals = []
    for offset in offsets:
        use = near[offset : offset + n_ref]
        proposals += _propose(
            ix + 1j * iy, itri, iinv, xi[use], eta[use], n_neighbours, invariant_tolerance, limits, offset
        )
        if time_limit is not None and time.perf_counter() - t0 > time_limit:
            break
    log.debug("matcher: %d proposals within the scale/radius hint", len(proposals))
    if not proposals:
        return []
    # count stars each proposal brings near a catalogue star (loose radius:
    # a transform from one triangle is least accurate far from it)
    loose = max(match_radius, 0.01 * math.hypot(nx, ny)) * s0
    a_arr = np.array([p[0] for p in proposals])
    b_arr = np.array([p[1] for p in proposals])
    m_arr = np.array([p[2] for p in proposals])
    deadline = None if time_limit is None else t0 + time_limit
    counts = _count_hits(a_arr, b_arr, m_arr, cz, tree_all, loose, deadline)
    order = np.argsort(-counts, kind="stable")
    results = []
    seen = []
    tight = match_radius * s0
    for k in order:
        if counts[k] < 4 or len(results) >= n_candidates:
            break
        a, b, mirror = a_arr[k], b_arr[k], bool(m_arr[k])
        if any(
            abs(a - a2) < 0.01 * abs(a) and abs(b - b2) < 3 * tight and mirror == m2 for a2, b2, m2 in seen
        ):
            continue
        seen.append((a, b, mirror))
        a, b = _refit(a, b, mirror, cz, tree_all, ref_xy, (loose, tight * 2))
        results.append(_to_wcs(a, b, mirror, s0, center, cx, cy, shape))
    return results


def _reference_windows(xi, eta, ref_mag, search, half_diag, n_img, field_area, min_reference):
    """
    The catalogue stars within the search circle, brightest first, how many
    to use at a time and the brightness offsets to try.
    """
    dist = np.hypot(xi, eta)
    near = np.flatnonzero(np.isfinite(dist) & (dist <= search))
    if ref_mag is not None:
        mags = np.asarray(ref_mag, float)[near]
        near = near[np.argsort(np.where(np.isfinite(mags), mags, np.inf), kind="stable")]
    # how many catalogue stars would fall on the frame around the hint
    search_area = math.pi * search**2
    on_field = int(np.count_nonzero(dist[near] <= half_diag))
    if on_field < min_reference:
        raise TooFewReferenceStars(
            f"too few reference stars: the catalogue has {on_field} star(s) within "
            f"{half_diag / 3600:.2f} deg of the hinted centre (need at least {min_reference}); "
            "use a deeper catalogue (catalog='gaia' with network access, or a catalogue file)"
        )
    if n_img < 3:
        raise AstrometryError(f"too few detected stars to match ({n_img}; need at least 3)")
    # the catalogue may cover less than the search circle (an extract): use
    # the area it really covers to match its star density to the image's
    if len(near):
        covered = min(search, float(np.max(dist[near])))
        search_area = min(search_area, math.pi * covered**2)
    density_ratio = max(1.0, search_area / field_area)
    n_ref = int(min(len(near), max(1.5 * n_img * density_ratio, 2 * n_img), 2500))
    # Catalogue windows by brightness: the brightest catalogue stars are often
    # saturated (and dropped) in the image, so the image's brightest usable
    # stars may be the catalogue's 30th to 100th: try a few offsets.
    offsets = [0]
    for fraction in (0.5, 1.0, 2.0):
        offset = int(fraction * n_ref)
        if offset + n_img < len(near):
            offsets.append(offset)
    return near, n_ref, offsets


def _propose(iz, itri, iinv, rx, ry, n_neighbours, invariant_tolerance, limits, offset):
    """Similarity transforms of similar triangle pairs within the scale and position limits."""
    ratio_low, ratio_high, max_shift, max_err = limits
    rtri, rinv, _ = _triangles(rx, ry, n_neighbours)
    if len(rtri) == 0:
        return []
    pairs = cKDTree(rinv).query_ball_point(iinv, invariant_tolerance)
    ii = np.repeat(np.arange(len(itri)), [len(p) for p in pairs])
    jj = np.fromiter(itertools.chain.from_iterable(pairs), dtype=int, count=len(ii))
    log.debug(
        "matcher: catalogue stars %d-%d: %d image / %d reference triangles, %d similar pairs",
        offset, offset + len(rx), len(itri), len(rtri), len(ii),
    )  # fmt: skip
    if len(ii) == 0:
        return []
    src = iz[itri[ii]]
    dst = rx[rtri[jj]] + 1j * ry[rtri[jj]]
    proposals = []
    for mirror in (False, True):
        a, b = _similarity(src, dst, mirror)
        fit_err = np.max(np.abs(_apply(a[:, None], b[:, None], src, mirror) - dst), axis=1)
        ok = (
            (np.abs(a) >= ratio_low)
            & (np.abs(a) <= ratio_high)
            & (np.abs(b) <= max_shift)
            & (fit_err <= max_err)
        )
        for k in np.flatnonzero(ok):
            proposals.append((a[k], b[k], mirror))
    return proposals


def _count_hits(a_arr, b_arr, m_arr, cz, tree, radius, deadline):
    """How many stars each transform brings within ``radius`` of a catalogue star."""
    counts = np.zeros(len(a_arr), dtype=int)
    chunk = max(1, 200_000 // max(1, len(cz)))
    for start in range(0, len(a_arr), chunk):
        sl = slice(start, start + chunk)
        z = np.where(m_arr[sl, None], np.conj(cz)[None, :], cz[None, :])
        w = a_arr[sl, None] * z + b_arr[sl, None]
        d, _ = tree.query(np.c_[w.real.ravel(), w.imag.ravel()], distance_upper_bound=radius)
        counts[sl] = np.isfinite(d).reshape(w.shape).sum(axis=1)
        if deadline is not None and time.perf_counter() > deadline:
            log.debug("matcher: time limit reached while ranking proposals")
            counts[start + chunk :] = 0
            break
    return counts


def _refit(a, b, mirror, cz, tree, ref_xy, radii):
    """Refit the similarity on all stars it matches (loose, then tight radius)."""
    for radius in radii:
        w = _apply(a, b, cz, mirror)
        d, j = tree.query(np.c_[w.real, w.imag], distance_upper_bound=radius)
        hit = np.isfinite(d)
        if hit.sum() < 3:
            break
        src_m = cz[hit][None, :]
        dst_m = (ref_xy[j[hit], 0] + 1j * ref_xy[j[hit], 1])[None, :]
        a_new, b_new = _similarity(src_m, dst_m, mirror)
        a, b = a_new[0], b_new[0]
    return a, b


def _to_wcs(a, b, mirror, s0, center, cx, cy, shape):
    """The TAN WCS of a similarity transform from (pixel - centre) * s0 to standard coordinates."""
    # w = a * z' + b with z = (dx + i dy) * s0, z' = conj(z) when mirrored
    ar, ai = a.real, a.imag
    if mirror:
        matrix = np.array([[ar, ai], [ai, -ar]])
    else:
        matrix = np.array([[ar, -ai], [ai, ar]])
    matrix = matrix * s0 / 3600.0
    # the frame centre is at standard coordinates b: move the tangent point there
    ref = WCS(naxis=2)
    ref.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    ref.wcs.crval = [center.ra.deg, center.dec.deg]
    ref.wcs.crpix = [0.0, 0.0]
    ref.wcs.cd = np.eye(2) / 3600.0
    ra, dec = ref.wcs_pix2world([[b.real, b.imag]], 0)[0]
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [cx + 1.0, cy + 1.0]
    wcs.wcs.cd = matrix
    wcs.pixel_shape = (shape[1], shape[0])
    return wcs
