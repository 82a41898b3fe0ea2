# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The sky-background kernel: robust statistics on a coarse mesh, stars masked,
and a bicubic-spline map.

The image is first binned (``b`` x ``b`` pixels, masked pixels left out) and
every statistic works on the bins, which makes the kernel about as fast as
``sep.Background`` while it masks the stars in a second pass:

1. per mesh box, sigma-clipped median of the bin means (the level) and the
   median within-bin variance (the pixel RMS, corrected for the chi-square
   bias of a median), from the sorted values of each box at once;
2. bins that stand out from that first model (or whose spread is far too
   large) are marked as stars, the marks dilated, and the statistics redone;
3. boxes with too few usable bins are filled from their neighbours, the mesh
   is median filtered, and a natural bicubic spline through the box centres
   gives the full-resolution map as two small matrix products.
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.interpolate import CubicSpline
from scipy.stats import chi2, norm

from astrophot.exceptions import AnalysisError

__all__ = []

#: Largest binning factor used for the statistics.
MAX_BIN = 8


def auto_box_size(shape, fwhm=None):
    """
    A mesh box size for an image of ``shape``.

    About 24 boxes across the short side, at least 32 and at most 128 pixels
    (a multiple of 16), and at least ten times the FWHM when it is known.
    """
    short = min(shape)
    box = int(round(short / 24.0 / 16.0)) * 16
    box = max(32, min(128, box))
    if fwhm is not None and math.isfinite(fwhm):
        box = max(box, int(math.ceil(10 * fwhm / 16.0)) * 16)
    return min(box, max(8, int(2 ** math.floor(math.log2(max(short, 8))))))


def bin_factor(box_size):
    """The binning factor for a box size: a divisor of it, at most `MAX_BIN`, about 16 bins across."""
    for b in range(min(MAX_BIN, max(1, box_size // 14)), 0, -1):
        if box_size % b == 0:
            return b
    return 1


def _binsum_rows(arr, b, dtype=np.float32):
    """Sum ``b`` x ``b`` blocks of a 2-D array whose sides are multiples of ``b``."""
    if b == 1:
        return arr.astype(dtype)
    ny, nx = arr.shape
    rows = arr.reshape(ny // b, b, nx)
    acc = rows[:, 0, :].astype(dtype)
    for i in range(1, b):
        acc += rows[:, i, :]
    cols = acc.reshape(ny // b, nx // b, b)
    out = cols[:, :, 0].copy()
    for i in range(1, b):
        out += cols[:, :, i]
    return out


def _bin_sums(data, mask, b, offset, strip_bins=16):
    """
    Per ``b`` x ``b`` bin: sum and sum of squares of ``data - offset`` and the
    count of unmasked pixels (None when every bin is full), strip by strip so
    that the temporaries stay in the cache.
    """
    ny, nx = data.shape
    nby, nbx = -(-ny // b), -(-nx // b)
    nx_pad = nbx * b
    full = mask is None and ny % b == 0 and nx % b == 0
    total = np.empty((nby, nbx), dtype=np.float32)
    total2 = np.empty((nby, nbx), dtype=np.float32)
    count = None if full else np.empty((nby, nbx), dtype=np.float32)
    height = strip_bins * b
    buf = np.zeros((height, nx_pad), dtype=np.float32)
    square = np.empty_like(buf)
    good = None if full else np.zeros((height, nx_pad), dtype=np.float32)
    shift = np.float32(offset)
    for start in range(0, ny, height):
        stop = min(start + height, ny)
        h = stop - start
        hb = -(-h // b) * b
        rows = slice(start // b, start // b + hb // b)
        view = buf[:hb]
        np.subtract(data[start:stop], shift, out=view[:h, :nx])
        if hb > h:
            view[h:] = 0.0
        if good is not None:
            gview = good[:hb]
            gview[:] = 0.0
            if mask is None:
                gview[:h, :nx] = 1.0
            else:
                gview[:h, :nx] = ~mask[start:stop]
                view[:h, :nx] *= gview[:h, :nx]
            count[rows] = _binsum_rows(gview, b)
        total[rows] = _binsum_rows(view, b)
        sview = square[:hb]
        np.multiply(view, view, out=sview)
        total2[rows] = _binsum_rows(sview, b)
    return total, total2, count


def _sorted_rows(values):
    """Sort each row (NaN last); return sorted values and the finite counts."""
    ordered = np.sort(values, axis=1)
    counts = np.isfinite(ordered).sum(axis=1)
    return ordered, counts


def _take(ordered, index):
    index = np.clip(index, 0, ordered.shape[1] - 1)
    return np.take_along_axis(ordered, index[:, None], axis=1)[:, 0]


def _range_median(ordered, lo, hi):
    """Median of ``ordered[i, lo[i]:hi[i]]`` for every row (NaN when empty)."""
    n = hi - lo
    mid_lo = lo + (n - 1) // 2
    mid_hi = lo + n // 2
    out = 0.5 * (_take(ordered, mid_lo) + _take(ordered, mid_hi))
    out[n <= 0] = np.nan
    return out


def _clip_factor(n_sigma):
    """Standard deviation of a unit normal truncated at +-n_sigma."""
    if not math.isfinite(n_sigma) or n_sigma > 8:
        return 1.0
    k = float(n_sigma)
    inside = 2 * norm.cdf(k) - 1
    return math.sqrt(max(1e-6, 1 - 2 * k * norm.pdf(k) / inside))


def clipped_stats(values, *, n_sigma=3.0, max_iterations=5, estimator="median"):
    """
    Sigma-clipped centre and spread of every row of ``values`` (NaN ignored).

    Returns
    -------
    centre, sigma : ndarray
        Per row; NaN where a row has fewer than 3 finite values.
    lo, hi, ordered : ndarray
        The kept range ``ordered[i, lo[i]:hi[i]]`` of the sorted rows.
    """
    ordered, counts = _sorted_rows(values)
    lo = np.zeros(len(ordered), dtype=np.intp)
    hi = counts.astype(np.intp)
    # a robust first spread from the 16th-84th percentiles
    p16 = _take(ordered, (0.1587 * (counts - 1)).round().astype(np.intp))
    p84 = _take(ordered, (0.8413 * (counts - 1)).round().astype(np.intp))
    sigma = 0.5 * (p84 - p16)
    centre = _range_median(ordered, lo, hi)
    filled = np.where(np.isfinite(ordered), ordered, 0.0)
    csum = np.concatenate([np.zeros((len(ordered), 1)), np.cumsum(filled, axis=1, dtype=np.float64)], axis=1)
    csum2 = np.concatenate(
        [np.zeros((len(ordered), 1)), np.cumsum(filled.astype(np.float64) ** 2, axis=1)], axis=1
    )
    correction = _clip_factor(n_sigma)
    mean = centre
    for _ in range(max_iterations):
        low = centre - n_sigma * sigma
        high = centre + n_sigma * sigma
        new_lo = (ordered < low[:, None]).sum(axis=1)
        new_hi = (ordered <= high[:, None]).sum(axis=1)
        changed = np.any(new_lo != lo) or np.any(new_hi != hi)
        lo, hi = new_lo, new_hi
        n = np.maximum(hi - lo, 1)
        idx = np.arange(len(ordered))
        total = csum[idx, hi] - csum[idx, lo]
        total2 = csum2[idx, hi] - csum2[idx, lo]
        mean = total / n
        var = np.maximum(total2 / n - mean**2, 0.0) * n / np.maximum(n - 1, 1)
        sigma = np.sqrt(var) / correction
        centre = _range_median(ordered, lo, hi)
        if not changed:
            break
    if estimator == "mode":
        # Source Extractor's mode estimate where the distribution is not too skewed
        mode = 2.5 * centre - 1.5 * mean
        skewed = np.abs(mean - centre) > 0.3 * sigma
        centre = np.where(skewed, centre, mode)
    bad = (hi - lo) < 3
    centre = np.where(bad, np.nan, centre)
    sigma = np.where(bad, np.nan, sigma)
    return centre, sigma, lo, hi, ordered


def _row_median(values):
    ordered, counts = _sorted_rows(values)
    return _range_median(ordered, np.zeros(len(ordered), dtype=np.intp), counts.astype(np.intp))


def _fill_mesh(mesh):
    """
    Fill NaN cells: a plane fitted to the valid cells, plus their residuals
    spread from the neighbours (so a gradient continues under a hole).
    """
    mesh = np.array(mesh, dtype=float)
    bad = ~np.isfinite(mesh)
    if bad.all():
        return None
    if not bad.any():
        return mesh
    ny, nx = mesh.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    good = ~bad
    if good.sum() >= 3 and ny > 1 and nx > 1:
        design = np.column_stack([np.ones(good.sum()), yy[good], xx[good]])
        coeffs, *_ = np.linalg.lstsq(design, mesh[good], rcond=None)
        plane = coeffs[0] + coeffs[1] * yy + coeffs[2] * xx
    else:
        plane = np.full(mesh.shape, np.mean(mesh[good]))
    resid = np.where(bad, 0.0, mesh - plane)
    while bad.any():
        padded = np.pad(np.where(bad, 0.0, resid), 1)
        weight = np.pad((~bad).astype(float), 1)
        total = sum(
            padded[1 + dy : padded.shape[0] - 1 + dy, 1 + dx : padded.shape[1] - 1 + dx]
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
        )
        count = sum(
            weight[1 + dy : weight.shape[0] - 1 + dy, 1 + dx : weight.shape[1] - 1 + dx]
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
        )
        grow = bad & (count > 0)
        # residuals fade towards the plane deep inside a hole
        resid[grow] = 0.5 * total[grow] / count[grow]
        bad = bad & ~grow
    return plane + resid


def spline_matrix(centres, positions):
    """Weights (len(positions) x len(centres)) of a natural cubic spline through ``centres``."""
    centres = np.asarray(centres, dtype=float)
    positions = np.asarray(positions, dtype=float)
    if len(centres) == 1:
        return np.ones((len(positions), 1), dtype=np.float32)
    spline = CubicSpline(centres, np.eye(len(centres)), bc_type="natural", axis=0)
    return spline(positions).astype(np.float32)


def _box_centres(n_pixels, box, n_boxes):
    starts = np.arange(n_boxes) * box
    ends = np.minimum(starts + box, n_pixels)
    return 0.5 * (starts + ends - 1)


@dataclass
class MeshModel:
    """The coarse background model; `background_map`/`rms_map` give full-resolution maps."""

    level: np.ndarray
    rms: np.ndarray
    offset: float
    shape: tuple
    box_size: int
    bin_factor: int
    filter_size: int
    star_fraction: float
    wy: np.ndarray
    wx: np.ndarray

    def background_map(self):
        """The full-resolution background (float32)."""
        out = np.empty(self.shape, dtype=np.float32)
        np.matmul(self.wy, (self.level - 0).astype(np.float32) @ self.wx.T, out=out)
        out += np.float32(self.offset)
        return out

    def rms_map(self):
        """The full-resolution background RMS (float32, positive)."""
        out = np.empty(self.shape, dtype=np.float32)
        np.matmul(self.wy, self.rms.astype(np.float32) @ self.wx.T, out=out)
        np.maximum(out, np.float32(0.5 * np.min(self.rms)), out=out)
        return out

    @property
    def median_level(self):
        return float(np.median(self.level) + self.offset)

    @property
    def median_rms(self):
        return float(np.median(self.rms))

    def plane_gradient(self):
        """Slope (per pixel, along y and x) of a plane fitted to the mesh levels."""
        ny, nx = self.level.shape
        cy = _box_centres(self.shape[0], self.box_size, ny)
        cx = _box_centres(self.shape[1], self.box_size, nx)
        yy, xx = np.meshgrid(cy, cx, indexing="ij")
        design = np.column_stack([np.ones(yy.size), yy.ravel(), xx.ravel()])
        coeffs, *_ = np.linalg.lstsq(design, self.level.ravel().astype(float), rcond=None)
        return float(coeffs[1]), float(coeffs[2])


def _sky_offset(data, mask, name):
    """Median of a sparse sample of the unmasked finite pixels (keeps float32 sums well conditioned)."""
    stride = max(1, int(math.sqrt(data.size / 20000)))
    sample = data[::stride, ::stride]
    if mask is not None:
        sample = sample[~mask[::stride, ::stride]]
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        raise AnalysisError(f"{name}: no unmasked pixels to measure the background from")
    return float(np.median(sample))


def _bin_moments(data, mask, b, offset):
    """Per-bin mean, within-bin variance (None for b == 1), validity and pixel count."""
    total, total2, count = _bin_sums(data, mask, b, offset)
    if count is None:
        count = np.float32(b * b)
        mean = total / count
        var = (total2 - total * mean) / (b * b - 1) if b > 1 else None
        valid = np.ones(total.shape, dtype=bool)
    else:
        valid = count >= max(1.0, 0.5 * b * b)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / count
            var = (total2 - total * mean) / np.maximum(count - 1, 1) if b > 1 else None
        if b > 1:
            valid &= count >= 2
    mean = np.where(valid, mean, np.nan).astype(np.float32)
    if var is not None:
        var = np.where(valid, var, np.nan).astype(np.float32)
    return mean, var, valid, count


class _BoxStatistics:
    """Clipped level and pixel RMS of each mesh box from its bins."""

    def __init__(self, mesh_shape, k, b, *, n_sigma, estimator, min_fraction):
        self.nmy, self.nmx = mesh_shape
        self.k = k
        self.n_sigma = n_sigma
        self.estimator = estimator
        self.min_fraction = min_fraction
        # chi-square bias of the median of within-bin variances
        self.median_factor = chi2.median(b * b - 1) / (b * b - 1) if b > 1 else None

    def to_boxes(self, arr):
        nmy, nmx, k = self.nmy, self.nmx, self.k
        full = np.full((nmy * k, nmx * k), np.nan, dtype=np.float32)
        full[: arr.shape[0], : arr.shape[1]] = arr
        return full.reshape(nmy, k, nmx, k).transpose(0, 2, 1, 3).reshape(nmy * nmx, k * k)

    def __call__(self, mean_bins, var_bins):
        kk = self.k * self.k
        values = self.to_boxes(mean_bins)
        centre, sigma, lo, hi, ordered = clipped_stats(values, n_sigma=self.n_sigma, estimator=self.estimator)
        n_used = hi - lo
        if var_bins is not None:
            # pixel RMS: median within-bin variance of the bins kept by the clipping
            vals = self.to_boxes(var_bins)
            keep = np.isfinite(values)
            low = np.take_along_axis(ordered, np.clip(lo, 0, kk - 1)[:, None], axis=1)
            high = np.take_along_axis(ordered, np.clip(hi - 1, 0, kk - 1)[:, None], axis=1)
            keep &= (values >= low) & (values <= high)
            rms = np.sqrt(np.maximum(_row_median(np.where(keep, vals, np.nan)), 0) / self.median_factor)
        else:
            rms = sigma
        enough = n_used >= max(3, self.min_fraction * kk)
        shape = (self.nmy, self.nmx)
        return np.where(enough, centre, np.nan).reshape(shape), np.where(enough, rms, np.nan).reshape(shape)


def _star_bins(mean, var, count, level, rms, wy_bins, wx_bins, *, star_threshold, dilate, b, name):
    """Bins that hold stars: above the first model by ``star_threshold`` bin sigmas (or too variable), dilated."""
    level1 = _fill_mesh(level)
    rms1 = _fill_mesh(rms)
    if level1 is None:
        raise AnalysisError(f"{name}: no unmasked sky left to measure the background from")
    model = wy_bins @ level1.astype(np.float32) @ wx_bins.T
    noise = wy_bins @ rms1.astype(np.float32) @ wx_bins.T
    noise = np.maximum(noise, np.float32(np.nanmin(rms1)) * 0.5)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_bin = noise / np.sqrt(count if np.ndim(count) else np.full(mean.shape, count, np.float32))
        stars = (mean - model) > star_threshold * per_bin
        if var is not None:
            stars |= var > 4.0 * noise * noise
    if dilate is None:
        dilate = max(1, int(round(4.0 / b)))
    if dilate > 0 and stars.any():
        size = 2 * int(dilate) + 1
        stars = ndimage.maximum_filter(stars.view(np.uint8), size=size, mode="constant").astype(bool)
    return stars


def mesh_background(
    data,
    mask=None,
    *,
    box_size,
    filter_size=3,
    n_sigma=3.0,
    mask_stars=True,
    star_threshold=3.0,
    dilate=None,
    min_fraction=0.25,
    estimator="median",
    name="<image>",
):
    """
    Fit the background mesh of ``data`` (pixels where ``mask`` is True are ignored).

    Returns a `MeshModel`.
    """
    data = np.asarray(data)
    ny, nx = data.shape
    box = int(box_size)
    b = bin_factor(box)
    nmy = math.ceil(ny / box)
    nmx = math.ceil(nx / box)
    offset = _sky_offset(data, mask, name)
    mean, var, valid, count = _bin_moments(data, mask, b, offset)
    bins_shape = mean.shape
    statistics = _BoxStatistics(
        (nmy, nmx), box // b, b, n_sigma=n_sigma, estimator=estimator, min_fraction=min_fraction
    )
    level, rms = statistics(mean, var)
    star_fraction = 0.0
    wy_bins = spline_matrix(_box_centres(ny, box, nmy), (np.arange(bins_shape[0]) + 0.5) * b - 0.5)
    wx_bins = spline_matrix(_box_centres(nx, box, nmx), (np.arange(bins_shape[1]) + 0.5) * b - 0.5)
    if mask_stars:
        stars = _star_bins(
            mean,
            var,
            count,
            level,
            rms,
            wy_bins,
            wx_bins,
            star_threshold=star_threshold,
            dilate=dilate,
            b=b,
            name=name,
        )
        star_fraction = float(stars[valid].mean()) if np.any(valid) else 0.0
        mean = np.where(stars, np.nan, mean)
        if var is not None:
            var = np.where(stars, np.nan, var)
        level2, rms2 = statistics(mean, var)
        # boxes left with too few sky bins (a crowded field, a galaxy) keep
        # their clipped first estimate rather than a neighbour fill
        level = np.where(np.isfinite(level2), level2, level)
        rms = np.where(np.isfinite(rms2), rms2, rms)
    level = _fill_mesh(level)
    rms = _fill_mesh(rms)
    if level is None or rms is None:
        raise AnalysisError(f"{name}: no unmasked sky left to measure the background from")
    if filter_size and filter_size > 1:
        level = ndimage.median_filter(level, size=filter_size, mode="nearest")
        rms = ndimage.median_filter(rms, size=filter_size, mode="nearest")
    wy = spline_matrix(_box_centres(ny, box, nmy), np.arange(ny))
    wx = spline_matrix(_box_centres(nx, box, nmx), np.arange(nx))
    return MeshModel(
        level=level,
        rms=rms,
        offset=offset,
        shape=(ny, nx),
        box_size=box,
        bin_factor=b,
        filter_size=int(filter_size or 1),
        star_fraction=star_fraction,
        wy=wy,
        wx=wx,
    )
