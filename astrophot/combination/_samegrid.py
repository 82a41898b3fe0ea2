# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Whether frames share one pixel grid, and putting one onto another's grid."""

import importlib

import numpy as np

from astrophot.analysis._common import frame_name
from astrophot.exceptions import FrameMismatchError

__all__ = []


def _celestial(obj):
    wcs = getattr(obj, "wcs", None)
    if wcs is None or not getattr(wcs, "has_celestial", False):
        return None
    return wcs.celestial


def _probe(shape):
    ny, nx = shape
    xs = np.array([0, nx - 1, 0, nx - 1, (nx - 1) / 2])
    ys = np.array([0, 0, ny - 1, ny - 1, (ny - 1) / 2])
    return xs, ys


def grid_offset(reference, other):
    """Largest pixel distance between where the two grids put the same sky points (inf when unknown)."""
    if reference.data.shape != other.data.shape:
        return np.inf
    wa, wb = _celestial(reference), _celestial(other)
    if wa is None and wb is None:
        return 0.0
    if wa is None or wb is None:
        return np.inf
    xs, ys = _probe(reference.data.shape)
    world = wa.pixel_to_world(xs, ys)
    x2, y2 = wb.world_to_pixel(world)
    return float(np.nanmax(np.hypot(x2 - xs, y2 - ys)))


def overlaps(reference, other):
    """Whether the footprint of ``other`` covers any of ``reference`` (from their WCS)."""
    wa, wb = _celestial(reference), _celestial(other)
    if wa is None or wb is None:
        return False
    ny, nx = reference.data.shape
    yy, xx = np.mgrid[0 : ny : max(ny // 16, 1), 0 : nx : max(nx // 16, 1)]
    x2, y2 = wb.world_to_pixel(wa.pixel_to_world(xx.ravel(), yy.ravel()))
    oy, ox = other.data.shape
    return bool(np.any((x2 > -0.5) & (x2 < ox - 0.5) & (y2 > -0.5) & (y2 < oy - 0.5)))


def _resampler():
    try:
        module = importlib.import_module("astrophot.combination")
        return getattr(module, "resample_frame", None)
    except ImportError:  # pragma: no cover
        return None


def _as_solved(frame):
    """``frame`` as a `SolvedFrame` sharing its planes (``resample_frame`` reads ``solution``), when it is not one."""
    from astrophot.frames import SolvedFrame

    if hasattr(frame, "solution"):
        return frame
    options = {"unit": frame.unit, "meta": frame.meta, "wcs": frame.wcs, "uncertainty": frame.uncertainty}
    options.update(mask=frame.mask, flags=getattr(frame, "flags", None), stars=None, solution=None)
    out = SolvedFrame(frame.data, **options)
    out.provenance = frame.provenance
    return out


def same_grid_or_resample(reference, other, *, resample, purpose, parallel=None, tolerance=0.01):
    """``other`` itself when it shares ``reference``'s grid, else ``other`` resampled onto it (or an error)."""
    offset = grid_offset(reference, other)
    if offset <= tolerance:
        return other
    names = f"{frame_name(reference)} and {frame_name(other)}"
    if _celestial(reference) is None or _celestial(other) is None:
        raise FrameMismatchError(
            f"{names}: {purpose} needs frames on one grid (shapes {reference.data.shape} and "
            f"{other.data.shape}) or both with a celestial WCS to resample them"
        )
    if not overlaps(reference, other):
        raise FrameMismatchError(f"{names}: the frames do not overlap on the sky")
    resample_frame = _resampler()
    if not resample or resample_frame is None:
        why = "resample=False" if not resample else "resample_frame is not available in this astrophot"
        raise FrameMismatchError(
            f"{names}: the frames are on different grids (up to {offset:.3g} px apart); resample them "
            f"onto one grid first with resample_frame(frame, target) ({why})"
        )
    return resample_frame(_as_solved(other), reference, parallel=parallel)
