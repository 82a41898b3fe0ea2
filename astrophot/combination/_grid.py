# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Target grids: parsing a ``target`` and `find_optimal_wcs`."""

import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from astrophot.exceptions import CombinationError, FrameReadError, FrameTypeError

__all__ = ["celestial_wcs", "find_optimal_wcs", "footprint_points", "parse_target", "sky_to_pixel"]

#: Default upper limit of an output grid (pixels): 400 Mpx is 1.6 GB per float32 plane.
MAX_PIXELS = 400_000_000


def _name(item):
    return getattr(item, "name", None) or type(item).__name__


def celestial_wcs(item, what="frame"):
    """The celestial WCS and array shape of a frame, WCS, header, (wcs, shape) or header file."""
    shape = None
    if isinstance(item, tuple) and len(item) == 2 and not isinstance(item[0], (int, np.integer)):
        item, shape = item
        shape = tuple(int(n) for n in shape)
    name = _name(item)
    if isinstance(item, (str, Path)):
        name = str(item)
        item = _read_header(item)
    if isinstance(item, fits.Header):
        header = item
        wcs = WCS(header, relax=True)
        if shape is None and "NAXIS1" in header and "NAXIS2" in header:
            shape = (int(header["NAXIS2"]), int(header["NAXIS1"]))
    elif isinstance(item, WCS):
        wcs = item
    elif hasattr(item, "wcs") and hasattr(item, "data"):
        wcs = item.wcs
        if shape is None:
            shape = tuple(np.shape(item.data))
    else:
        raise FrameTypeError(
            f"{name}: cannot use a {type(item).__name__} as a {what} (expected a frame, WCS or header)"
        )
    if wcs is None or not wcs.has_celestial:
        raise FrameTypeError(f"{name}: has no celestial WCS (solve it first with astrophot.solve_astrometry)")
    if wcs.naxis != 2 or wcs.wcs.spec >= 0:
        raise FrameTypeError(
            f"{name}: the WCS has {wcs.naxis} axes (spectral or cube): expected a 2-D celestial WCS"
        )
    if shape is None and wcs.array_shape is not None:
        shape = tuple(int(n) for n in wcs.array_shape)
    return wcs, shape, name


def _read_header(path):
    path = Path(path)
    if not path.is_file():
        raise FrameReadError(f"{path}: no such header or FITS file")
    try:
        with fits.open(path) as hdul:
            for hdu in hdul:
                if hdu.header.get("NAXIS", 0) >= 2 or "CTYPE1" in hdu.header:
                    return hdu.header.copy()
            return hdul[0].header.copy()
    except OSError:
        pass
    try:
        return fits.Header.fromtextfile(str(path))
    except Exception as exc:
        raise FrameReadError(f"{path}: neither a FITS file nor a text header ({exc})") from exc


def parse_target(target, shape=None):
    """``(wcs, shape)`` of a target: a WCS, header, header file, frame or ``(wcs, shape)``."""
    wcs, target_shape, name = celestial_wcs(target, what="target")
    if shape is not None:
        target_shape = tuple(int(n) for n in shape)
    if target_shape is None:
        raise CombinationError(f"{name}: the target has no shape: give shape=(ny, nx)")
    return wcs, target_shape


def sky_to_pixel(wcs, sky):
    """Pixel coordinates of sky positions; points where a SIP inversion diverges are NaN (no warning)."""
    from astropy.wcs.utils import wcs_to_celestial_frame

    sky = sky.transform_to(wcs_to_celestial_frame(wcs))
    lon, lat = sky.spherical.lon.deg, sky.spherical.lat.deg
    if getattr(wcs, "has_distortion", False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return wcs.all_world2pix(lon, lat, 0, quiet=True)
            except Exception:
                x, y = wcs.wcs_world2pix(lon, lat, 0)
                return np.full_like(x, np.nan), np.full_like(y, np.nan)
    return wcs.world_to_pixel_values(lon, lat)


def footprint_points(wcs, shape, n_per_edge=32):
    """Sky positions (ICRS `SkyCoord`) sampled along every edge of a frame (pixel edges, SIP included)."""
    ny, nx = shape
    t = np.linspace(0.0, 1.0, n_per_edge + 1)[:-1]
    xs = np.concatenate([-0.5 + t * nx, np.full_like(t, nx - 0.5), nx - 0.5 - t * nx, np.full_like(t, -0.5)])
    ys = np.concatenate([np.full_like(t, -0.5), -0.5 + t * ny, np.full_like(t, ny - 0.5), ny - 0.5 - t * ny])
    return wcs.pixel_to_world(xs, ys).icrs


def _position_angle(wcs):
    """Position angle (deg) of the +y axis of a WCS, east of north (as `make_wcs` defines it)."""
    cd = wcs.celestial.pixel_scale_matrix
    return float(np.degrees(np.arctan2(cd[0, 1], cd[1, 1])))


def _make_wcs(center, scale_deg, rotation_deg, projection):
    w = WCS(naxis=2)
    w.wcs.ctype = [f"RA---{projection}", f"DEC--{projection}"]
    w.wcs.crval = [center.ra.deg, center.dec.deg]
    w.wcs.crpix = [0.0, 0.0]
    th = np.radians(rotation_deg)
    w.wcs.cd = [
        [-scale_deg * np.cos(th), scale_deg * np.sin(th)],
        [scale_deg * np.sin(th), scale_deg * np.cos(th)],
    ]
    w.wcs.radesys = "ICRS"
    w.wcs.equinox = 2000.0
    w.wcs.set()
    return w


def _min_area_rotation(x, y):
    """Rotation (deg) of the minimum-area rectangle around points (rotating the hull's edges)."""
    from scipy.spatial import ConvexHull

    points = np.column_stack([x, y])
    hull = points[ConvexHull(points).vertices]
    edges = np.diff(np.vstack([hull, hull[:1]]), axis=0)
    best, best_angle = np.inf, 0.0
    for angle in np.arctan2(edges[:, 1], edges[:, 0]):
        c, s = np.cos(angle), np.sin(angle)
        u_, v_ = c * hull[:, 0] + s * hull[:, 1], -s * hull[:, 0] + c * hull[:, 1]
        area = np.ptp(u_) * np.ptp(v_)
        if area < best - 1e-12:
            best, best_angle = area, angle
    deg = np.degrees(best_angle) % 90.0
    return deg - 90.0 if deg > 45.0 else deg


def _union_center(points):
    xyz = np.concatenate([p.cartesian.xyz.value.T for p in points]).mean(axis=0)
    if np.linalg.norm(xyz) < 1e-6:
        raise CombinationError(
            "the frames cover the whole sky around their mean: no single tangent-plane grid fits"
        )
    return SkyCoord(*xyz, representation_type="cartesian", frame="icrs").spherical


def find_optimal_wcs(
    frames,
    *,
    scale=None,
    rotation="north",
    center=None,
    projection="TAN",
    shape_multiple=16,
    max_pixels=MAX_PIXELS,
):
    """
    One output grid (WCS and shape) covering a set of solved frames.

    The footprint is sampled along every edge of every frame through its full WCS
    (SIP included); the grid is centred on the union footprint. Use the same grid for
    every filter of a target, so that colour and continuum steps need no second resampling.

    Parameters
    ----------
    frames : sequence
        `~astrophot.SolvedFrame` objects, `~astropy.wcs.WCS` (with ``pixel_shape``),
        headers, header files or ``(wcs, shape)`` pairs.
    scale : `~astropy.units.Quantity`, optional
        Output pixel scale (angle per pixel). Default: the median of the inputs.
    rotation : {"north", "first", "auto"} or `~astropy.units.Quantity`
        North up (east left); the orientation of the first frame; the minimum-area
        rectangle; or a position angle of the +y axis east of north.
    center : `~astropy.coordinates.SkyCoord`, optional
        Tangent point. Default: the centre of the union footprint.
    projection : str
        FITS projection code (``TAN``, ``SIN``, ``CAR``, ...).
    shape_multiple : int
        Each output axis is a multiple of this (1 for the tightest grid).
    max_pixels : int
        Refuse larger grids.

    Returns
    -------
    wcs : `~astropy.wcs.WCS`
    shape : tuple of int
        ``(ny, nx)``.

    Raises
    ------
    astrophot.exceptions.CombinationError
        No frames, or a grid above ``max_pixels`` (the message gives the size and the sky span).
    astrophot.exceptions.FrameTypeError
        A frame without a celestial WCS.

    See Also
    --------
    astrophot.solve_astrometry, astrophot.resample_frame

    Examples
    --------
    >>> import astropy.units as u
    >>> from astrophot.datasets import make_solved_frame
    >>> from astrophot import find_optimal_wcs
    >>> a, _ = make_solved_frame(shape=(64, 80), seed=1)
    >>> b, _ = make_solved_frame(shape=(64, 80), seed=2, offset=(20.0, 10.0))
    >>> wcs, shape = find_optimal_wcs([a, b], scale=3.5 * u.arcsec)
    >>> shape
    (80, 112)
    """
    frames = list(frames)
    if not frames:
        raise CombinationError("find_optimal_wcs needs at least one frame")
    parsed = [celestial_wcs(f) for f in frames]
    for _wcs, shape, name in parsed:
        if shape is None:
            raise CombinationError(f"{name}: no array shape (give a (wcs, shape) pair)")
    points = [footprint_points(wcs, shape) for wcs, shape, _ in parsed]
    if scale is None:
        scale_deg = float(
            np.median([np.sqrt(np.prod(proj_plane_pixel_scales(w.celestial))) for w, _, _ in parsed])
        )
    else:
        scale_deg = u.Quantity(scale).to_value(u.deg)
    if center is None:
        center = _union_center(points)
        center = SkyCoord(center.lon, center.lat, frame="icrs")
    else:
        center = SkyCoord(center).icrs
    all_points = SkyCoord(
        np.concatenate([p.ra.deg for p in points]) * u.deg,
        np.concatenate([p.dec.deg for p in points]) * u.deg,
    )
    angle = _rotation(rotation, parsed, all_points, center, scale_deg, projection)
    wcs = _make_wcs(center, scale_deg, angle, projection)
    x, y = sky_to_pixel(wcs, all_points)
    return _fit_grid(wcs, x, y, shape_multiple, max_pixels, scale_deg)


def _rotation(rotation, parsed, points, center, scale_deg, projection):
    if isinstance(rotation, u.Quantity):
        return rotation.to_value(u.deg)
    if rotation == "north":
        return 0.0
    if rotation == "first":
        return _position_angle(parsed[0][0])
    if rotation == "auto":
        x, y = sky_to_pixel(_make_wcs(center, scale_deg, 0.0, projection), points)
        return -_min_area_rotation(x, y)
    raise ValueError(f"rotation must be 'north', 'first', 'auto' or an angle Quantity, not {rotation!r}")


def _fit_grid(wcs, x, y, shape_multiple, max_pixels, scale_deg):
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise CombinationError(
            "some frame corners do not project onto the tangent plane (frames more than 90 deg apart?)"
        )
    m = max(int(shape_multiple), 1)
    lo_x, hi_x, lo_y, hi_y = x.min(), x.max(), y.min(), y.max()
    nx = int(np.ceil((hi_x - lo_x) / m - 1e-9)) * m
    ny = int(np.ceil((hi_y - lo_y) / m - 1e-9)) * m
    nx, ny = max(nx, m), max(ny, m)
    if nx * ny > max_pixels:
        raise CombinationError(
            f"the output grid would be {ny} x {nx} = {nx * ny / 1e6:.1f} Mpx (limit {max_pixels / 1e6:.1f} Mpx): the "
            f"frames span {nx * scale_deg:.2f} x {ny * scale_deg:.2f} deg at {scale_deg * 3600:.3g} arcsec/px "
            "(a frame of another field? raise max_pixels or give scale=)"
        )
    # centre the footprint in the grid: pixel centre i sits at i; the footprint's middle goes to the grid's middle
    mid_x, mid_y = (lo_x + hi_x) / 2, (lo_y + hi_y) / 2
    wcs.wcs.crpix = [wcs.wcs.crpix[0] + (nx - 1) / 2 - mid_x, wcs.wcs.crpix[1] + (ny - 1) / 2 - mid_y]
    wcs.wcs.set()
    wcs.pixel_shape = (nx, ny)
    return wcs, (ny, nx)
