# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Background matching of a mosaic: per-frame sky planes on the output grid.

The steps (Montage's ``mBgModel`` idea, on sky models rather than pixels):

1. Each frame's smooth sky model, stars masked and ``protect`` regions left
   out (the model is interpolated under them), as `~astrophot.analysis.estimate_background`
   computes it, evaluated on a coarse copy of the frame.
2. Every sky model sampled on a *binned* copy of the output grid (one point
   per ``bin_size`` x ``bin_size`` output pixels): the memory is that of a few
   small planes per frame, whatever the size of the mosaic.
3. In each pairwise overlap the difference of the two sky models (protected
   points left out) is fitted by a plane or an offset (`fit_overlap`,
   sigma-clipped least squares).
4. One global least-squares solution of all overlaps (``solve_backgrounds``)
   per connected group of frames, a reference frame or a zero mean fixing the
   free constant (and plane) of each group.

What comes back is a `BackgroundMatch`: per-frame planes ``a + p x + q y`` in
*output* pixel coordinates (subtract them), the residual of every overlap before
and after the correction (in data units and in sky-noise sigma), the frames that
overlap no other frame, and a seam map (the spread of the corrected sky models
where frames overlap) for the report.
"""

import math
import warnings
from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.wcs.utils import proj_plane_pixel_scales
from scipy import ndimage

from astrophot._concurrency import PerThread, resolve_threads, thread_map
from astrophot.analysis._mesh import _box_centres, spline_matrix
from astrophot.combination import _core
from astrophot.combination._background import fit_overlap, solve_backgrounds
from astrophot.combination._grid import celestial_wcs
from astrophot.exceptions import AstrophotUserWarning, CombinationError, FrameMismatchError

__all__ = ["BackgroundMatch", "footprint_counts", "match_backgrounds"]

_MODELS = ("plane", "offset")
#: Fewest coarse points an overlap needs to be fitted.
MIN_POINTS = 6


@dataclass(repr=False)
class BackgroundMatch:
    """
    The result of `match_backgrounds`.

    Attributes
    ----------
    names : list of str
        The frames, in input order.
    model : str
        ``"plane"`` or ``"offset"``.
    planes : ndarray (``n_frames, 3``)
        ``(a, p, q)`` of each frame: subtract ``a + p x + q y`` (``x``, ``y``
        0-based output pixel coordinates, in the frames' units times ``scales``).
    reference : int or None
        The frame whose model is zero (None: zero mean per group).
    overlaps : list of dict
        One per overlapping pair: ``i``, ``j``, ``frames`` (names), ``n_points``
        (coarse points), ``before`` and ``after`` (RMS of the sky-model
        difference over the overlap, uncorrected and corrected, data units),
        ``sigma`` (the pair's sky noise per pixel), ``after_sigma``
        (``after / sigma``), ``residual`` (the global solution's misfit of this
        overlap's own fit) and ``used`` (False: clipped as an outlier).
    groups : list of list of int
        Frames connected through overlaps; each group is matched on its own.
    unconnected : list of str
        Frames that overlap no other frame (their model is zero).
    sky_rms : ndarray
        Median sky noise per pixel of each frame.
    bin_size : int
        Output pixels per coarse point along each axis.
    x, y : ndarray
        Output pixel coordinates of the coarse grid's columns and rows.
    seams, seams_before : ndarray
        On the coarse grid: the spread (max - min) of the corrected (or
        uncorrected) sky models of the frames covering each point, NaN where
        fewer than two frames cover it.
    protected : ndarray of bool or None
        Coarse points left out of the overlap fits (``protect``).
    scales : ndarray
        The factors the frames' values were multiplied by (``scales=``).
    """

    names: list
    model: str
    planes: np.ndarray
    reference: object
    overlaps: list
    groups: list
    unconnected: list
    sky_rms: np.ndarray
    bin_size: int
    x: np.ndarray
    y: np.ndarray
    seams: np.ndarray
    seams_before: np.ndarray
    protected: np.ndarray = field(default=None)
    scales: np.ndarray = field(default=None)

    def __repr__(self):
        worst = self.worst_seam()
        return (
            f"<BackgroundMatch {len(self.names)} frames, {len(self.overlaps)} overlaps, model={self.model}, "
            f"worst seam {worst:.3g} sigma, unconnected={self.unconnected}>"
        )

    def background(self, index, x, y):
        """The background model of frame ``index`` at output pixel coordinates ``x``, ``y``."""
        a, p, q = self.planes[index]
        return a + p * np.asarray(x, dtype=float) + q * np.asarray(y, dtype=float)

    def seam_map(self, corrected=True):
        """The coarse seam map (see `seams`); ``corrected=False`` gives the one before matching."""
        return self.seams if corrected else self.seams_before

    def worst_seam(self, corrected=True):
        """Largest ``after_sigma`` (or the uncorrected ratio) over the used overlaps (0 for none)."""
        key = "after" if corrected else "before"
        values = [o[key] / o["sigma"] for o in self.overlaps if o["used"] and o["sigma"] > 0]
        return float(max(values)) if values else 0.0

    def as_record(self):
        """A YAML-safe summary for the provenance: per-frame planes and per-overlap residuals."""
        return {
            "model": self.model,
            "reference": self.reference,
            "bin_size": int(self.bin_size),
            "scales": None if self.scales is None else [float(v) for v in self.scales],
            "frames": [
                {"name": n, "a": float(p[0]), "p": float(p[1]), "q": float(p[2]), "sky_rms": float(s)}
                for n, p, s in zip(self.names, self.planes, self.sky_rms)
            ],
            "overlaps": [
                {
                    "frames": list(o["frames"]),
                    "n_points": int(o["n_points"]),
                    "before": _rounded(o["before"]),
                    "after": _rounded(o["after"]),
                    "after_sigma": _rounded(o["after_sigma"]),
                    "residual": _rounded(o["residual"]),
                    "used": bool(o["used"]),
                }
                for o in self.overlaps
            ],
            "unconnected": list(self.unconnected),
            "groups": [[self.names[k] for k in g] for g in self.groups],
        }


def _rounded(value, digits=6):
    value = float(value)
    return round(value, digits) if math.isfinite(value) else str(value)


# ----------------------------------------------------------------------
# sky models of the frames, on the coarse output grid
def _default_bin(frames):
    """16 output pixels per point, fewer for small frames (at least 32 points across a frame)."""
    short = min(min(np.shape(f.data)) for f in frames)
    return int(max(1, min(16, short // 32)))


def _coarse_axes(shape, bin_size):
    ny, nx = shape
    h = bin_size // 2
    return slice(h, ny, bin_size), slice(h, nx, bin_size)


def _sky_on_frame(frame, protect_mask, box_size):
    """A coarse copy of the frame's sky model (star-masked, protect left out) and its median RMS."""
    from astrophot.analysis.background import _model

    _, _, mesh = _model(
        frame,
        box_size=box_size,
        filter_size=1,
        mask=None,
        protect=protect_mask,
        n_sigma=3.0,
        mask_stars=True,
        estimator="median",
    )
    ny, nx = mesh.shape
    step = max(1, mesh.box_size // 4)
    my, mx = max(2, math.ceil((ny - 1) / step) + 1), max(2, math.ceil((nx - 1) / step) + 1)
    ypos, xpos = np.linspace(0, ny - 1, my), np.linspace(0, nx - 1, mx)
    nmy, nmx = mesh.level.shape
    wy = spline_matrix(_box_centres(ny, mesh.box_size, nmy), ypos)
    wx = spline_matrix(_box_centres(nx, mesh.box_size, nmx), xpos)
    coarse = wy.astype(np.float64) @ mesh.level.astype(np.float64) @ wx.T.astype(np.float64) + mesh.offset
    return coarse, mesh.median_rms


def footprint_counts(frames, wcs, shape, *, bin_size=None):
    """
    How many frames cover each point of the binned output grid (``bin_size`` as `match_backgrounds`).

    Returns
    -------
    counts : ndarray of int
        On the coarse grid (one point per ``bin_size`` x ``bin_size`` output pixels).
    """
    shape = tuple(int(n) for n in shape)
    axes = _coarse_axes(shape, int(bin_size) if bin_size else _default_bin(frames))
    counts = 0
    for frame in frames:
        wcs_in, in_shape, _ = celestial_wcs(frame)
        counts = counts + _inside(*_core.pixel_map(wcs_in, wcs, shape, rows=axes[0], cols=axes[1]), in_shape)
    return np.asarray(counts, dtype=int)


def _inside(x_in, y_in, in_shape):
    ny, nx = in_shape
    inside = np.isfinite(x_in) & np.isfinite(y_in)
    return inside & (x_in >= -0.5) & (x_in <= nx - 0.5) & (y_in >= -0.5) & (y_in <= ny - 0.5)


def _sample(frame, coarse, wcs_out, shape, axes):
    """The frame's coarse sky model at the coarse output points (NaN outside the frame)."""
    wcs_in, in_shape, _ = celestial_wcs(frame)
    x_in, y_in = _core.pixel_map(wcs_in, wcs_out, shape, rows=axes[0], cols=axes[1])
    ny, nx = in_shape
    inside = _inside(x_in, y_in, in_shape)
    my, mx = coarse.shape
    cy = np.clip(np.where(inside, y_in, 0.0), 0, ny - 1) * (my - 1) / max(ny - 1, 1)
    cx = np.clip(np.where(inside, x_in, 0.0), 0, nx - 1) * (mx - 1) / max(nx - 1, 1)
    values = ndimage.map_coordinates(coarse, [cy, cx], order=1, mode="nearest")
    return np.where(inside, values, np.nan), x_in, y_in, inside


# ----------------------------------------------------------------------
# protected regions
def _circle_list(protect):
    """``protect`` as a list of (SkyCoord, Quantity radius), or None when it is not sky circles."""
    if isinstance(protect, tuple) and len(protect) == 2 and isinstance(protect[0], SkyCoord):
        protect = [protect]
    if (
        isinstance(protect, list)
        and protect
        and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], SkyCoord) for p in protect)
    ):
        return [(c, u.Quantity(r, u.arcsec)) for c, r in protect]
    return None


def _disk(shape, wcs, circles):
    ny, nx = shape
    scale = float(np.mean(proj_plane_pixel_scales(wcs.celestial))) * 3600.0
    yy, xx = np.ogrid[0:ny, 0:nx]
    out = np.zeros(shape, dtype=bool)
    for centre, radius in circles:
        cx, cy = wcs.celestial.world_to_pixel(centre)
        r = radius.to_value(u.arcsec) / scale
        if np.isfinite(cx) and np.isfinite(cy):
            out |= (xx - float(cx)) ** 2 + (yy - float(cy)) ** 2 <= r * r
    return out


def _protect_per_frame(protect, frames, wcs_out, shape):
    """Per-frame protect masks (or None each) and the protected coarse output points' source."""
    n = len(frames)
    if protect is None:
        return [None] * n
    circles = _circle_list(protect)
    if circles is not None:
        return [_disk(np.shape(f.data), celestial_wcs(f)[0], circles) for f in frames]
    if isinstance(protect, np.ndarray) and protect.ndim == 2:
        if protect.shape != tuple(shape):
            raise FrameMismatchError(
                f"protect: a mask of shape {protect.shape} must be on the output grid {tuple(shape)} "
                "(or give one mask per frame, or sky circles (SkyCoord, radius))"
            )
        return [_output_mask_on_frame(protect.astype(bool), f, wcs_out, shape) for f in frames]
    masks = list(protect)
    if len(masks) != n:
        raise FrameMismatchError(f"protect: {len(masks)} masks for {n} frames (give one per frame, or None)")
    return masks


def _output_mask_on_frame(mask, frame, wcs_out, shape):
    """An output-grid mask carried to the frame's pixels (nearest output pixel of each frame pixel)."""
    wcs_in, in_shape, _ = celestial_wcs(frame)
    x_out, y_out = _core.pixel_map(wcs_out, wcs_in, in_shape)
    ny, nx = shape
    ix, iy = (
        np.rint(np.nan_to_num(x_out, nan=-1)).astype(int),
        np.rint(np.nan_to_num(y_out, nan=-1)).astype(int),
    )
    inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    out = np.zeros(in_shape, dtype=bool)
    out[inside] = mask[iy[inside], ix[inside]]
    return out if out.any() else None


def _protected_points(masks, samples):
    """Coarse output points inside any frame's protect mask."""
    out = None
    for mask, (_, x_in, y_in, inside) in zip(masks, samples):
        if mask is None:
            continue
        mask = np.asarray(mask, dtype=bool)
        ny, nx = mask.shape
        grown = ndimage.binary_dilation(mask, iterations=2)
        ix = np.clip(np.rint(np.where(inside, x_in, 0)).astype(int), 0, nx - 1)
        iy = np.clip(np.rint(np.where(inside, y_in, 0)).astype(int), 0, ny - 1)
        hit = inside & grown[iy, ix]
        out = hit if out is None else (out | hit)
    return out


# ----------------------------------------------------------------------
# overlaps and the global solution
def _pair_overlaps(skies, protected, xs, ys, model):
    """Fit the sky-model difference of every overlapping pair."""
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    fits_ = []
    n = len(skies)
    for i in range(n):
        for j in range(i + 1, n):
            both = np.isfinite(skies[i]) & np.isfinite(skies[j])
            if protected is not None:
                both &= ~protected
            if np.count_nonzero(both) < MIN_POINTS:
                continue
            x, y = xx[both], yy[both]
            if model == "plane" and (np.unique(x).size < 3 or np.unique(y).size < 3):
                continue  # too thin to constrain a plane
            diff = skies[i][both] - skies[j][both]
            coef, _, _, cov = fit_overlap(diff, x, y, model=model)
            fits_.append({"i": i, "j": j, "coefficients": coef, "covariance": cov, "x": x, "y": y, "d": diff})
    return fits_


def _groups(n, overlaps):
    parent = list(range(n))

    def root(k):
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for o in overlaps:
        parent[root(o["i"])] = root(o["j"])
    groups = {}
    for k in range(n):
        groups.setdefault(root(k), []).append(k)
    return sorted(groups.values())


def _solve_groups(n, overlaps, groups, model, reference, clip):
    planes = np.zeros((n, 3))
    residual = [np.nan] * len(overlaps)
    used = [False] * len(overlaps)
    for group in groups:
        if len(group) < 2:
            continue
        local = {k: m for m, k in enumerate(group)}
        members = [t for t, o in enumerate(overlaps) if o["i"] in local]
        sub = [{**overlaps[t], "i": local[overlaps[t]["i"]], "j": local[overlaps[t]["j"]]} for t in members]
        ref = local.get(reference) if reference is not None else None
        models, res, ok = solve_backgrounds(len(group), sub, model=model, reference=ref, clip=clip)
        # exactly zero for the reference (or exactly zero mean): the differences are unchanged
        planes[group] = models - (models[ref] if ref is not None else models.mean(axis=0))
        for t, r, k in zip(members, res, ok):
            residual[t], used[t] = r, k
    return planes, residual, used


def _seams(skies, planes, xs, ys):
    """Spread of the (corrected) sky models over the frames covering each coarse point."""
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    out = []
    for correct in (True, False):
        low = np.full(yy.shape, np.inf)
        high = np.full(yy.shape, -np.inf)
        count = np.zeros(yy.shape, dtype=int)
        for k, sky in enumerate(skies):
            value = sky - (planes[k, 0] + planes[k, 1] * xx + planes[k, 2] * yy) if correct else sky
            ok = np.isfinite(value)
            low = np.where(ok, np.minimum(low, value), low)
            high = np.where(ok, np.maximum(high, value), high)
            count += ok
        out.append(np.where(count >= 2, high - low, np.nan))
    return out


def _overlap_report(fits_, planes, residual, used, sky_rms, names):
    report = []
    for o, r, ok in zip(fits_, residual, used):
        i, j = o["i"], o["j"]
        pi, pj = planes[i], planes[j]
        corrected = o["d"] - ((pi[0] - pj[0]) + (pi[1] - pj[1]) * o["x"] + (pi[2] - pj[2]) * o["y"])
        sigma = float(0.5 * (sky_rms[i] + sky_rms[j]))
        after = float(np.sqrt(np.mean(corrected**2)))
        report.append(
            {
                "i": i,
                "j": j,
                "frames": (names[i], names[j]),
                "n_points": int(o["d"].size),
                "before": float(np.sqrt(np.mean(o["d"] ** 2))),
                "after": after,
                "sigma": sigma,
                "after_sigma": after / sigma if sigma > 0 else np.nan,
                "residual": float(r),
                "used": bool(ok),
            }
        )
    return report


def _check_options(frames, model, reference, scales):
    if model not in _MODELS:
        raise ValueError(f"match_backgrounds: model must be one of {_MODELS}, not {model!r}")
    n = len(frames)
    if n == 0:
        raise CombinationError("match_backgrounds: no frames given")
    if reference is not None and not (isinstance(reference, (int, np.integer)) and 0 <= reference < n):
        raise ValueError(f"match_backgrounds: reference must be a frame index 0..{n - 1}, not {reference!r}")
    if scales is None:
        return np.ones(n)
    scales = np.broadcast_to(np.asarray(scales, dtype=float), (n,)).copy()
    if not np.all(np.isfinite(scales) & (scales > 0)):
        raise ValueError(f"match_backgrounds: scales must be positive numbers, not {scales!r}")
    return scales


def _warn_unconnected(names, groups):
    lonely = [names[g[0]] for g in groups if len(g) == 1]
    if lonely:
        warnings.warn(
            f"match_backgrounds: {', '.join(lonely)} overlap(s) no other frame: background not matched "
            "(model zero)",
            AstrophotUserWarning,
            stacklevel=3,
        )
    big = [g for g in groups if len(g) > 1]
    if len(big) > 1:
        listing = "; ".join("[" + ", ".join(names[k] for k in g) + "]" for g in big)
        warnings.warn(
            f"match_backgrounds: the frames form {len(big)} unconnected groups ({listing}): "
            "each group is matched on its own (zero mean or its reference)",
            AstrophotUserWarning,
            stacklevel=3,
        )
    return lonely


def match_backgrounds(
    frames,
    wcs,
    shape,
    *,
    model="plane",
    protect=None,
    reference=None,
    bin_size=None,
    box_size=None,
    scales=None,
    clip=5.0,
    parallel=None,
):
    """
    Per-frame background planes that make the frames of a mosaic agree in their overlaps.

    Parameters
    ----------
    frames : sequence of `~astrophot.SolvedFrame`
        Frames with a celestial WCS, in one unit.
    wcs : `~astropy.wcs.WCS`
        The output grid (e.g. from `~astrophot.find_optimal_wcs`).
    shape : tuple of int
        ``(ny, nx)`` of the output grid.
    model : {"plane", "offset"}
        What each frame's background correction may be.
    protect : optional
        Regions that are not sky (a nebula in an overlap): a boolean mask on the
        output grid, one mask per frame (arrays, FITS or ds9 region files, or None;
        as `~astrophot.analysis.estimate_background` takes them), or sky circles
        ``(SkyCoord, radius)`` (one tuple or a list). They are left out of each
        frame's sky model (interpolated under) and out of the overlap fits.
    reference : int, optional
        The frame whose correction is zero; by default the corrections of each
        connected group of frames have zero mean.
    bin_size : int, optional
        Output pixels per coarse point along each axis (default about 16).
    box_size : int, optional
        Mesh box of the sky models (default: `~astrophot.analysis.estimate_background`'s).
    scales : float or sequence, optional
        Multiply each frame's values by this before matching (e.g. ``1 / exposure``
        to match in electrons per second); the planes are in the scaled unit.
    clip : float
        Overlaps whose misfit is ``clip`` times the median are dropped (``solve_backgrounds``).
    parallel : None, bool or int
        Threads for the sky models (see `astrophot._concurrency`).

    Returns
    -------
    `BackgroundMatch`

    Raises
    ------
    astrophot.exceptions.CombinationError
        No frames.
    astrophot.exceptions.FrameMismatchError
        ``protect`` does not match the output grid or the number of frames.

    Warns
    -----
    astrophot.exceptions.AstrophotUserWarning
        Frames that overlap no other frame, or groups of frames unconnected to each other.

    See Also
    --------
    astrophot.find_optimal_wcs, astrophot.make_mosaic

    Examples
    --------
    >>> from astrophot import find_optimal_wcs
    >>> from astrophot.combination._match import match_backgrounds
    >>> from astrophot.datasets import make_mosaic_frames
    >>> frames, truth = make_mosaic_frames(shape=(60, 80), nebula=False, seed=1)
    >>> wcs, shape = find_optimal_wcs(frames)
    >>> match = match_backgrounds(frames, wcs, shape)
    >>> len(match.overlaps), bool(match.worst_seam() < 0.5 < match.worst_seam(corrected=False))
    (6, True)
    """
    scales = _check_options(frames, model, reference, scales)
    names = [getattr(f, "name", None) or f"frame {k}" for k, f in enumerate(frames)]
    shape = tuple(int(n) for n in shape)
    bin_size = int(bin_size) if bin_size else _default_bin(frames)
    axes = _coarse_axes(shape, bin_size)
    masks = _protect_per_frame(protect, frames, wcs, shape)

    n_threads = resolve_threads(parallel)
    private = PerThread(wcs, n_threads=min(n_threads, len(frames)))

    def one(k):
        coarse, rms = _sky_on_frame(frames[k], masks[k], box_size)
        return _sample(frames[k], coarse * scales[k], private.get(), shape, axes), rms * scales[k]

    results = thread_map(one, range(len(frames)), n_threads=n_threads)
    samples = [r[0] for r in results]
    sky_rms = np.array([r[1] for r in results])
    skies = [s[0] for s in samples]
    protected = _protected_points(masks, samples)
    xs = np.arange(shape[1])[axes[1]].astype(float)
    ys = np.arange(shape[0])[axes[0]].astype(float)
    fits_ = _pair_overlaps(skies, protected, xs, ys, model)
    groups = _groups(len(frames), fits_)
    unconnected = _warn_unconnected(names, groups)
    planes, residual, used = _solve_groups(len(frames), fits_, groups, model, reference, clip)
    seams, seams_before = _seams(skies, planes, xs, ys)
    return BackgroundMatch(
        names=names,
        model=model,
        planes=planes,
        reference=reference,
        overlaps=_overlap_report(fits_, planes, residual, used, sky_rms, names),
        groups=groups,
        unconnected=unconnected,
        sky_rms=sky_rms,
        bin_size=bin_size,
        x=xs,
        y=ys,
        seams=seams,
        seams_before=seams_before,
        protected=protected,
        scales=scales,
    )
