# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Cosmic-ray rejection with L.A.Cosmic (astroscrappy), tuned from the frame itself."""

import logging

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.nddata import StdDevUncertainty
from scipy import ndimage

from astrophot._morphology import grow
from astrophot.frames import CalibratedFrame, DQFlag, flags_to_mask
from astrophot.provenance import start_step
from astrophot.reduction._common import as_frame, header_float, quantity_value

__all__ = ["estimate_fwhm", "reject_cosmic_rays"]

log = logging.getLogger(__name__)

#: How far (pixels) a changed input pixel can change one L.A.Cosmic
#: iteration's cosmic-ray mask: a 7-pixel median of a 7-pixel-median-normalised
#: Laplacian (6), or a 9-pixel median of a 5-pixel median (6), then two 3x3
#: dilations (8). The same bound keeps a filter's treatment of the border
#: from pixels 8 or more inside it. (The replacement values, a 5x5 mean that
#: leaves out the detections, reach two pixels further: `_meanmask` computes
#: them from the whole frame.)
_REACH = 8
#: Width (pixels) of the mirrored border the frame is searched with.
_PAD = 10
#: Search the whole frame instead when the packed boxes would hold more than
#: this fraction of its pixels (astroscrappy's time goes with the pixels it is given).
_MAX_LOCAL_FRACTION = 0.75


def _robust_sky(data, usable):
    sample = data[::3, ::3][usable[::3, ::3]]
    if sample.size < 16:
        sample = data[usable]
    if sample.size == 0:
        return 0.0, 1.0
    median = float(np.median(sample))
    mad = float(np.median(np.abs(sample - median))) * 1.4826
    return median, mad if mad > 0 else max(float(np.std(sample)), 1e-6)


def estimate_fwhm(data, *, mask=None, n_stars=40, n_sigma=20.0, region=1024):
    """
    A quick estimate of the stellar FWHM (pixels) of an image.

    Parameters
    ----------
    data : array-like
        The image (sky included or not).
    mask : array-like of bool, optional
        Pixels to ignore (bad, saturated).
    n_stars : int, optional
        How many of the brightest peaks to measure.
    n_sigma : float, optional
        Detection threshold above the sky, in units of its robust scatter.
    region : int, optional
        Only the central ``region`` x ``region`` pixels are searched.

    Returns
    -------
    float or None
        The median FWHM of the measured stars, or `None` when no star-like
        peak was found.

    Notes
    -----
    Peaks are local maxima of a 5x5 box above the threshold, away from the
    edges and from masked pixels. Sharp peaks whose faintest direct
    neighbour is below 20% of the peak (cosmic rays, hot pixels) are
    rejected. The FWHM of each star is the diameter of the circle whose area
    is that of the connected pixels above half the peak, less one pixel in
    quadrature for the pixelisation; it does not depend on the profile
    (Gaussian or Moffat) and is good to about 10% from 1.5 to 6 pixels.

    Examples
    --------
    >>> import numpy as np
    >>> y, x = np.mgrid[:64, :64]
    >>> sigma = 3.0 / 2.3548
    >>> image = 10 + 1000 * np.exp(-((x - 32.3) ** 2 + (y - 31.8) ** 2) / (2 * sigma**2))
    >>> round(estimate_fwhm(image, n_sigma=5), 1)
    3.0
    """
    data = np.asarray(data, dtype=np.float32)
    ny, nx = data.shape
    y0 = max(0, (ny - region) // 2)
    x0 = max(0, (nx - region) // 2)
    sub = data[y0 : y0 + region, x0 : x0 + region]
    bad = ~np.isfinite(sub)
    if mask is not None:
        bad |= np.asarray(mask)[y0 : y0 + region, x0 : x0 + region]
    sky, noise = _robust_sky(sub, ~bad)
    work = np.where(bad, sky, sub) - np.float32(sky)
    peaks = (work == ndimage.maximum_filter(work, size=5)) & (work > n_sigma * noise)
    peaks &= ~ndimage.binary_dilation(bad, iterations=3)
    half = 5
    peaks[:half, :] = peaks[-half:, :] = False
    peaks[:, :half] = peaks[:, -half:] = False
    rows, cols = np.nonzero(peaks)
    if rows.size == 0:
        return None
    order = np.argsort(work[rows, cols])[::-1]
    estimates = []
    for k in order:
        r, c = rows[k], cols[k]
        peak = work[r, c]
        neighbours = (work[r - 1, c], work[r + 1, c], work[r, c - 1], work[r, c + 1])
        if min(neighbours) < 0.2 * peak:
            continue  # too sharp for a star: a cosmic ray or a hot pixel
        box = work[r - half : r + half + 1, c - half : c + half + 1]
        labels, _ = ndimage.label(box > 0.5 * peak)
        area = np.count_nonzero(labels == labels[half, half])
        # the half-maximum area of a pixelated profile is about one pixel**2 too large
        width2 = 4.0 * area / np.pi
        estimates.append(float(np.sqrt(max(width2 - 1.0, 0.25 * width2))))
        if len(estimates) >= n_stars:
            break
    if not estimates:
        return None
    return float(np.median(estimates))


def _fill_masked(data, mask):
    """The data with masked pixels filled in from their unmasked neighbours.

    Linear interpolation along the row where the nearest unmasked pixels on
    both sides are within 4 pixels, else along the column, else the median
    of the unmasked 5x5 box. Left in, a bad column's values would hide the
    cosmic rays next to it; filled with a box median, a star on a bad column
    would get a dent that looks like a cosmic ray beside it.
    """
    if not mask.any():
        return data
    from astrophot.reduction._badpix import _box_median, _row_interpolation

    work = np.array(data, dtype=np.float32, copy=True)
    usable = ~mask
    rows, cols = np.nonzero(mask)
    values = _row_interpolation(work, usable, rows, cols, 4)
    todo = np.isnan(values)
    if todo.any():
        values[todo] = _row_interpolation(work.T, usable.T, cols[todo], rows[todo], 4)
    todo = np.isnan(values)
    if todo.any():
        values[todo], _ = _box_median(work, usable, rows[todo], cols[todo], 2, 1)
    todo = np.isnan(values)
    if todo.any():
        values[todo] = float(np.median(work[usable])) if usable.any() else 0.0
    work[rows, cols] = values
    return work


def _grow_tracks(data, clean, crmask, inmask, gain, read_noise_e, n_sigma, iterations=3):
    """
    Add the neighbours of detections that stand ``n_sigma`` above their local median.

    L.A.Cosmic's separable median filters let a track that runs exactly along
    a row or a column (or is cut by a masked line) keep some of its pixels;
    each pass adds the 8-connected neighbours of the detections whose value
    exceeds the median of their usable 5x5 box by ``n_sigma`` times the
    Poisson plus read noise of that median.
    """
    from astrophot.reduction._badpix import _box_median

    structure = np.ones((3, 3), dtype=bool)
    for _ in range(iterations):
        candidates = ndimage.binary_dilation(crmask, structure=structure) & ~crmask & ~inmask
        rows, cols = np.nonzero(candidates)
        if rows.size == 0:
            break
        usable = ~crmask & ~inmask
        median, _ = _box_median(data, usable, rows, cols, 2, 4)
        noise = np.sqrt(np.maximum(median * gain, 0) + read_noise_e**2) / gain
        new = np.isfinite(median) & (data[rows, cols] - median > n_sigma * noise)
        if not new.any():
            break
        crmask[rows[new], cols[new]] = True
        clean[rows[new], cols[new]] = median[new]
    return crmask, clean


def _read_noise(frame, data_unit_gain, read_noise):
    if read_noise is not None:
        return quantity_value(read_noise, frame.unit, what="read_noise", equivalent=u.electron), "argument"
    key, value = header_float(frame.header, "RDNOISE", "READNOIS", "RON")
    if key is not None:
        return value, f"header {key}"
    if frame.uncertainty is not None:
        unc = np.asarray(frame.uncertainty.represent_as(StdDevUncertainty).array, dtype=np.float64)
        data = np.asarray(frame.data, dtype=np.float64)
        ok = np.isfinite(unc) & np.isfinite(data)
        if frame.mask is not None:
            ok &= ~frame.mask
        ok = ok[::4, ::4]
        if np.any(ok):
            # variance = signal / gain + read noise**2 (+ small terms): the excess over Poisson
            excess = unc[::4, ::4][ok] ** 2 - np.maximum(data[::4, ::4][ok], 0) / data_unit_gain
            return float(np.sqrt(max(np.median(excess), 0.0))), "uncertainty"
    return 0.0, "none"


def _pack(cutouts, width):
    """Shelf-pack boxes (heights, widths) into a strip ``width`` wide; returns origins and shape."""
    order = sorted(range(len(cutouts)), key=lambda i: -cutouts[i][0])
    origins = [None] * len(cutouts)
    y = x = shelf = 0
    total_w = width
    for i in order:
        h, w = cutouts[i]
        total_w = max(total_w, w)
        if x + w > total_w:
            y += shelf
            x = shelf = 0
        origins[i] = (y, x)
        x += w
        shelf = max(shelf, h)
    return origins, (y + shelf, total_w)


def _median7_floor(a, axis):
    """
    A lower bound of the 7-pixel running median along ``axis`` (centres 3 to n-4).

    Four of the seven values are at least the smallest of the first four, and
    four at least the smallest of the last four: the median is at least the
    larger of the two.
    """
    m = np.moveaxis(a, axis, 0)
    pairs = np.minimum(m[:-1], m[1:])
    fours = np.minimum(pairs[:-2], pairs[2:])  # fours[i]: the smallest of m[i : i + 4]
    return np.moveaxis(np.maximum(fours[:-3], fours[3:]), 0, axis)


def _candidates(work, kwargs):
    """
    A superset of the pixels where L.A.Cosmic's Laplacian-to-noise ratio passes ``sigclip``.

    astroscrappy's ratio is ``L+ / (2 noise)``, ``L+`` the clipped Laplacian of
    the 2x2-subsampled image rebinned, ``noise`` the root of a separable 7x7
    median (rows, then columns) of the data plus the read noise squared; what
    it then compares with ``sigclip`` (the ratio less its own 7x7 median, never
    negative) is no larger. ``L+`` is computed here on the original grid (the
    same sums), the medians are bounded below (`_median7_floor`), and the
    comparison allows for float32 rounding: a pixel left out can be neither a
    seed nor one of the first neighbours L.A.Cosmic adds, so every detection
    is within one pixel of a candidate. The outer three rows and columns count
    as candidates.
    """
    gain = np.float32(kwargs["gain"])
    a = work * gain
    out = np.ones(a.shape, dtype=bool)
    if min(a.shape) < 7:
        return out
    centre = a[3:-3, 3:-3]
    twice = centre + centre
    up = twice - a[2:-4, 3:-3]
    down = twice - a[4:-2, 3:-3]
    left, right = a[3:-3, 2:-4], a[3:-3, 4:-2]
    lap = np.maximum(up - left, 0)
    lap += np.maximum(up - right, 0)
    lap += np.maximum(down - left, 0)
    lap += np.maximum(down - right, 0)
    lap *= np.float32(0.25)
    # float32 rounding here and in astroscrappy, bounded by the size of the terms (5x over)
    size = np.abs(a)
    scale = size[2:-4, 3:-3] + size[4:-2, 3:-3]
    scale += size[3:-3, 2:-4]
    scale += size[3:-3, 4:-2]
    scale += 2 * size[3:-3, 3:-3]
    scale *= np.float32(1e-5)
    lap += scale
    variance = _median7_floor(_median7_floor(a, 1)[:, :], 0)
    variance += np.float32(kwargs["readnoise"]) ** 2
    noise = np.sqrt(np.maximum(variance, np.float32(1e-5)))
    noise *= np.float32(2 * kwargs["sigclip"] * (1 - 1e-3))
    out[3:-3, 3:-3] = lap > noise
    return out


def _candidates_near(candidates, array, changed, kwargs):
    """``candidates`` updated for ``array`` where it changed (True in ``changed``)."""
    boxes = _boxes(grow(changed, 4), 4)
    if not boxes:
        return candidates
    candidates = candidates.copy()
    sizes, origins, shape = _packed_area(boxes, min(array.shape[1], 2048))
    packed = np.zeros(shape, dtype=np.float32)
    for (box, _), (py, px), (h, w) in zip(boxes, origins, sizes):
        packed[py : py + h, px : px + w] = array[box]
    found = _candidates(packed, kwargs)
    for (box, core), (py, px) in zip(boxes, origins):
        cy = slice(core[0].start - box[0].start + py, core[0].stop - box[0].start + py)
        cx = slice(core[1].start - box[1].start + px, core[1].stop - box[1].start + px)
        candidates[core] = found[cy, cx]
    return candidates


#: Groups of candidates this close (pixels) share one box: their contexts overlap.
_MERGE = 3
#: The largest side (pixels) of a box's core: larger regions are cut in cells of this size,
#: so that a long or diagonal chain of detections packs into small boxes.
_CELL = 64


def _boxes(need, reach, merge=0):
    """
    Boxes around the pixels of ``need``: (box, core) slice pairs.

    Each core is the bounding box of a group of ``need`` pixels (connected
    once dilated by ``merge``, so that near groups share their context; cut
    in `_CELL`-pixel cells when larger), its box the core widened by ``reach``
    and clipped to the array.
    """
    ny, nx = need.shape
    labels, n = ndimage.label(grow(need, merge) if merge else need, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return []
    if merge:
        labels[~need] = 0
    cores = []
    for k, (ys, xs) in enumerate(ndimage.find_objects(labels), start=1):
        h, w = ys.stop - ys.start, xs.stop - xs.start
        if h <= _CELL and w <= _CELL:
            cores.append((ys, xs))
            continue
        # a large group: the bounding box of its pixels in each cell of a grid on its own box
        cells = (
            (np.arange(h)[:, None] // _CELL) * ((w + _CELL - 1) // _CELL) + np.arange(w)[None, :] // _CELL + 1
        )
        cells[labels[ys, xs] != k] = 0
        for piece in ndimage.find_objects(cells):
            if piece is not None:
                cores.append(
                    (
                        slice(ys.start + piece[0].start, ys.start + piece[0].stop),
                        slice(xs.start + piece[1].start, xs.start + piece[1].stop),
                    )
                )
    out = []
    for ys, xs in cores:
        box = (
            slice(max(0, ys.start - reach), min(ny, ys.stop + reach)),
            slice(max(0, xs.start - reach), min(nx, xs.stop + reach)),
        )
        out.append((box, (ys, xs)))
    return out


def _packed_area(boxes, width):
    sizes = [(b[0].stop - b[0].start, b[1].stop - b[1].start) for b, _ in boxes]
    origins, shape = _pack(sizes, width)
    return sizes, origins, shape


def _run_packed(array, inmask, boxes, packing, kwargs):
    """
    One astroscrappy iteration on ``boxes`` packed into one array.

    Returns (core, cosmic-ray mask) for each box, on its core. The packing's
    gaps are masked zeros.
    """
    import astroscrappy

    sizes, origins, shape = packing
    packed = np.zeros(shape, dtype=np.float32)
    packed_mask = np.ones(shape, dtype=bool)
    for (box, _), (py, px), (h, w) in zip(boxes, origins, sizes):
        packed[py : py + h, px : px + w] = array[box]
        packed_mask[py : py + h, px : px + w] = inmask[box]
    mask2, _ = astroscrappy.detect_cosmics(packed, inmask=packed_mask, niter=1, **kwargs)
    out = []
    for (box, core), (py, px) in zip(boxes, origins):
        cy = slice(core[0].start - box[0].start + py, core[0].stop - box[0].start + py)
        cx = slice(core[1].start - box[1].start + px, core[1].stop - box[1].start + px)
        out.append((core, mask2[cy, cx]))
    return out


def _meanmask(array, crmask, inmask, kwargs, pixels=None):
    """
    astroscrappy's ``cleantype='meanmask'`` values for one iteration's detections ``crmask``.

    The float32 mean of the 5x5 box's pixels neither detected nor masked
    (``inmask`` grown by one pixel, as astroscrappy grows it), summed in
    astroscrappy's order and in electrons, so the values are its own bit for
    bit; a box with no such pixel takes astroscrappy's median of the frame's
    unmasked pixels. Only ``pixels`` (default: the detections) are computed,
    and none within two pixels of the border (astroscrappy leaves those).
    Returns the rows, columns and values.
    """
    ny, nx = array.shape
    if pixels is None:
        pixels = crmask
    inner = np.zeros(pixels.shape, dtype=bool)
    inner[2:-2, 2:-2] = pixels[2:-2, 2:-2]
    rows, cols = np.nonzero(inner)
    gain = np.float32(kwargs["gain"])
    grown = grow(inmask, 1)
    bad = crmask | grown
    total = np.zeros(rows.size, dtype=np.float32)
    count = np.zeros(rows.size, dtype=np.int64)
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            ok = ~bad[rows + dy, cols + dx]
            total += np.where(ok, array[rows + dy, cols + dx] * gain, np.float32(0))
            count += ok
    empty = count == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        values = (total.astype(np.float64) / count).astype(np.float32)
    if empty.any():
        from astroscrappy.utils import median

        good = np.ascontiguousarray(array[~grown] * gain, dtype=np.float32)
        values[empty] = median(good, good.size)
    values /= gain
    return rows, cols, values


def _first_iteration(work, inmask, kwargs):
    """
    One L.A.Cosmic iteration on the whole of ``work``, run where it can find something.

    Away from the candidates of `_candidates` (further than one pixel) it finds
    nothing, so it runs on boxes around them (with `_REACH` pixels of context)
    packed into one array, and on strips along the four edges (where
    astroscrappy's filters see the border); the detected pixels then get
    astroscrappy's replacement values from the whole frame (`_meanmask`).
    When the packed boxes would hold more than `_MAX_LOCAL_FRACTION` of the
    frame, the whole frame is searched instead. Returns the cosmic-ray mask,
    the cleaned data, the candidates and the pixels searched.
    """
    import astroscrappy

    ny, nx = work.shape
    candidates = _candidates(work, kwargs)
    edge = _REACH
    strip = 2 * _REACH
    need = grow(candidates, 1)
    need[:edge] = need[-edge:] = False
    need[:, :edge] = need[:, -edge:] = False
    boxes = _boxes(need, _REACH, merge=_MERGE)
    packing = _packed_area(boxes, min(nx, 2048))
    searched = packing[2][0] * packing[2][1] + 2 * strip * (nx + ny)
    if ny < 2 * strip or nx < 2 * strip or searched > _MAX_LOCAL_FRACTION * ny * nx:
        crmask, clean = astroscrappy.detect_cosmics(work, inmask=inmask, niter=1, **kwargs)
        return crmask.astype(bool), np.asarray(clean, dtype=np.float32), candidates, ny * nx
    crmask = np.zeros((ny, nx), dtype=bool)
    if boxes:
        for core, mask2 in _run_packed(work, inmask, boxes, packing, kwargs):
            crmask[core] = mask2
    # the edges: the strips hold the border itself, and reach far enough into the frame
    rows = np.concatenate([work[:strip], work[-strip:]])
    rows_mask = np.concatenate([inmask[:strip], inmask[-strip:]])
    mask2, _ = astroscrappy.detect_cosmics(rows, inmask=rows_mask, niter=1, **kwargs)
    crmask[:edge], crmask[-edge:] = mask2[:edge], mask2[-edge:]
    cols = np.concatenate([work[:, :strip], work[:, -strip:]], axis=1)
    cols_mask = np.concatenate([inmask[:, :strip], inmask[:, -strip:]], axis=1)
    mask2, _ = astroscrappy.detect_cosmics(cols, inmask=cols_mask, niter=1, **kwargs)
    crmask[:, :edge], crmask[:, -edge:] = mask2[:, :edge], mask2[:, -edge:]
    gain = np.float32(kwargs["gain"])
    clean = work * gain  # astroscrappy's round trip through electrons, for the pixels it leaves
    clean /= gain
    rows, cols, values = _meanmask(work, crmask, inmask, kwargs)
    clean[rows, cols] = values
    return crmask, clean, candidates, searched


def _local_iteration(clean, inmask, crmask, kwargs, candidates=None):
    """
    A second L.A.Cosmic iteration restricted to where it can differ from the first.

    Pixels further than `_REACH` from a first-pass detection see the same
    input in the second iteration and so give the same answer; of the others,
    only those within one pixel of a candidate (`_candidates` of the cleaned
    data) can be found. Boxes around them are searched again, packed into one
    array. ``candidates`` are those of the first iteration's input: only
    their neighbourhood of the detections is computed again. The new
    detections take the second iteration's replacement values (`_meanmask`),
    the first ones keep theirs.
    """
    ny, nx = clean.shape
    if not crmask.any():
        return crmask, clean, 0
    near = grow(crmask, _REACH)
    if candidates is None:
        candidates = _candidates(clean, kwargs)
    else:
        # they change only within 3 pixels (Laplacian and 7x7 windows) of a cleaned pixel
        candidates = _candidates_near(candidates, clean, crmask, kwargs)
    need = near & grow(candidates, 1)
    boxes = _boxes(need, _REACH)
    if not boxes:
        return crmask, clean, 0
    packing = _packed_area(boxes, min(nx, 2048))
    area = packing[2][0] * packing[2][1]
    clean = clean.copy()
    if area > _MAX_LOCAL_FRACTION * ny * nx:
        import astroscrappy

        mask2, clean2 = astroscrappy.detect_cosmics(clean, inmask=inmask, niter=1, **kwargs)
        new = mask2 & ~crmask
        clean[new] = clean2[new]
        return crmask | new, clean, ny * nx
    # the second iteration's detections: the first one's away from them, what the boxes find near
    mask2 = crmask & ~near
    for core, found in _run_packed(clean, inmask, boxes, packing, kwargs):
        mask2[core] = found
    new = mask2 & ~crmask
    rows, cols, values = _meanmask(clean, mask2, inmask, kwargs, pixels=new)
    clean[rows, cols] = values
    return crmask | new, clean, area


def _lacosmic(data, inmask, kwargs, *, fast, niter):
    """astroscrappy on the masked-filled, edge-mirrored frame: (cosmic-ray mask, cleaned data, pixels searched)."""
    import astroscrappy

    work = _fill_masked(data, inmask)
    # the filled pixels stand in for the masked ones: astroscrappy only skips non-finite ones
    # (its masked pixels break tracks and hide the cosmic rays next to them)
    scrappy_mask = ~np.isfinite(data)
    # mirror the edges: astroscrappy's filters treat the border poorly (stars there get
    # flagged, cosmic rays missed); a reflected border looks like more sky and stars
    pad = _PAD
    work = np.pad(work, pad, mode="reflect")
    scrappy_mask = np.pad(scrappy_mask, pad, mode="reflect")
    if fast:
        crmask, clean, candidates, searched = _first_iteration(work, scrappy_mask, kwargs)
        crmask, clean, searched2 = _local_iteration(clean, scrappy_mask, crmask, kwargs, candidates)
        searched += searched2
    else:
        crmask, clean = astroscrappy.detect_cosmics(work, inmask=scrappy_mask, niter=int(niter), **kwargs)
        crmask = crmask.astype(bool)
        searched = data.size
    crmask = crmask[pad:-pad, pad:-pad]
    clean = clean[pad:-pad, pad:-pad]
    crmask &= ~inmask
    return crmask, np.array(clean, dtype=np.float32, copy=True), searched


def _cleaned_frame(frame, data, crmask, clean, gain, rn):
    """The frame with cosmic-ray pixels replaced, flagged and given Poisson plus read noise."""
    out_data = np.array(data, copy=True)
    out_data[crmask] = clean[crmask]
    flags = np.zeros(data.shape, dtype=np.uint32) if frame.flags is None else frame.flags.copy()
    flags[crmask] |= np.uint32(DQFlag.COSMIC_RAY | DQFlag.REPAIRED)
    uncertainty = None
    if frame.uncertainty is not None:
        unc = np.array(frame.uncertainty.represent_as(StdDevUncertainty).array, dtype=np.float32, copy=True)
        values = np.maximum(out_data[crmask], 0) / gain + rn**2
        unc[crmask] = np.sqrt(values)
        uncertainty = StdDevUncertainty(unc, copy=False)
    mask = flags_to_mask(flags)
    if frame.mask is not None:
        mask |= frame.mask & ~crmask
    header = fits.Header(frame.meta).copy()
    header["CR_CLEAN"] = (True, "cosmic rays rejected (L.A.Cosmic, astroscrappy)")
    header["CR_NPIX"] = (int(np.count_nonzero(crmask)), "pixels flagged as cosmic rays and replaced")
    return CalibratedFrame(
        out_data,
        unit=frame.unit,
        meta=header,
        uncertainty=uncertainty,
        flags=flags,
        mask=mask,
        wcs=frame.wcs,
    )


def reject_cosmic_rays(
    frame,
    *,
    fast=True,
    sigclip=4.5,
    sigfrac=0.3,
    objlim=None,
    fwhm=None,
    read_noise=None,
    niter=4,
    grow=False,
):
    """
    Find cosmic rays with L.A.Cosmic (astroscrappy), flag and replace them.

    Parameters
    ----------
    frame : `~astrophot.CalibratedFrame`, str or path-like
        A calibrated frame (sky still in), in electrons or ADU.
    fast : bool, optional
        The fast default: one whole-frame iteration plus a second iteration
        only around the first one's detections (see Notes). ``False`` runs
        ``niter`` whole-frame iterations, as astroscrappy does by default.
    sigclip : float, optional
        Laplacian-to-noise detection limit.
    sigfrac : float, optional
        Fraction of ``sigclip`` for the neighbours of a detection.
    objlim : float, optional
        Contrast limit between the Laplacian and the fine-structure image.
        Default: 7 (astroscrappy's 5 flags the cores of faint blended stars
        in crowded fields), raised for undersampled images as
        ``7 * (2.5 / fwhm)**4`` when the FWHM is below 2.5 pixels, so that
        star cores are spared (cosmic rays are far sharper than that).
    fwhm : float, optional
        Stellar FWHM in pixels. Default: measured with `estimate_fwhm`.
    read_noise : float or `~astropy.units.Quantity`, optional
        In the frame's unit. Default: ``RDNOISE`` (written by
        `calibrate_frame`), else estimated from the frame's uncertainty.
    niter : int, optional
        Whole-frame iterations when ``fast=False``.
    grow : bool, optional
        Add bright neighbours of the detections afterwards (see Notes); off
        by default because it also eats into stars a cosmic ray touches.

    Returns
    -------
    `~astrophot.CalibratedFrame`
        A new frame: cosmic-ray pixels replaced by the masked 5x5 mean of
        their neighbours and flagged ``COSMIC_RAY | REPAIRED``; their
        uncertainty is the Poisson plus read noise of the replacement value.

    See Also
    --------
    calibrate_frame, fix_bad_pixels : the earlier stages.
    add_metadata : the next stage.
    estimate_fwhm : the FWHM used to tune ``objlim``.

    Notes
    -----
    The noise model is astroscrappy's (``gain`` 1 for frames in electrons,
    the header ``GAIN`` otherwise, and the read noise); masked pixels
    (bad, saturated) are excluded and never flagged, and their values are
    replaced by the median of their unmasked neighbours for the search, so
    a bad column does not hide the cosmic rays beside it.

    L.A.Cosmic finds nothing further than one pixel from where the clipped
    Laplacian of the data stands ``sigclip`` above twice the noise, and one
    iteration only changes its input near what it finds, so a second
    whole-frame iteration gives the same answer as the first one anywhere
    further than the filters' reach (8 pixels) from a detection. The fast
    mode runs the first iteration on boxes around the pixels where a
    conservative bound of that ratio passes (plus the frame's edges) and the
    second one on boxes around the detections, each box packed into one
    array with its 8 pixels of context; the detections and their replacement
    values are those of whole-frame iterations. When the boxes would hold
    more than 75% of the frame, that iteration runs on the whole frame.

    With ``grow=True``, up to three passes then add the neighbours of detections
    that stand ``sigclip + 0.5`` sigma above the median of their usable 5x5
    box: L.A.Cosmic's separable median filters miss parts of tracks that run
    exactly along a row or column, or that a masked line cuts.

    Examples
    --------
    >>> import numpy as np
    >>> from astrophot import CalibratedFrame, DQFlag, reject_cosmic_rays
    >>> rng = np.random.default_rng(1)
    >>> data = rng.poisson(100.0, (64, 64)).astype(np.float32)
    >>> data[20, 30] += 2000.0
    >>> frame = CalibratedFrame(data, unit="electron", meta={"RDNOISE": 5.0})
    >>> cleaned = reject_cosmic_rays(frame, fwhm=3.0)
    >>> DQFlag.describe(cleaned.flags[20, 30])
    ['COSMIC_RAY', 'REPAIRED']
    >>> bool(abs(cleaned.data[20, 30] - 100) < 30)
    True
    """
    if not isinstance(frame, CalibratedFrame):
        frame = as_frame(frame, CalibratedFrame, "frame to clean")
    rec = start_step(
        "reject_cosmic_rays",
        parameters={
            "fast": fast,
            "sigclip": sigclip,
            "sigfrac": sigfrac,
            "objlim": objlim,
            "fwhm": fwhm,
            "read_noise": read_noise,
            "niter": niter,
            "grow": grow,
        },
        inputs={"frame": frame},
        software=("astroscrappy",),
    )
    data = np.asarray(frame.data, dtype=np.float32)
    inmask = (
        np.zeros(data.shape, dtype=bool) if frame.mask is None else np.asarray(frame.mask, dtype=bool).copy()
    )
    inmask |= ~np.isfinite(data)
    if frame.unit == u.electron:
        gain = 1.0
    else:
        gain = frame.gain.to_value(u.electron / u.adu) if frame.gain is not None else 1.0
    rn, rn_source = _read_noise(frame, gain, read_noise)
    rn_e = rn * gain
    fwhm_source = "argument"
    if fwhm is None:
        fwhm = estimate_fwhm(data, mask=inmask)
        fwhm_source = "measured"
        if fwhm is None:
            fwhm, fwhm_source = 2.5, "default (no star found)"
    if objlim is None:
        objlim = 7.0 if fwhm >= 2.5 else 7.0 * (2.5 / fwhm) ** 4
    kwargs = dict(
        sigclip=float(sigclip),
        sigfrac=float(sigfrac),
        objlim=float(objlim),
        gain=float(gain),
        readnoise=float(rn_e),
        satlevel=1e30,
        sepmed=True,
        cleantype="meanmask",
        fsmode="median",
        psffwhm=float(fwhm),
    )
    crmask, clean, searched = _lacosmic(data, inmask, kwargs, fast=fast, niter=niter)
    if grow:
        crmask, clean = _grow_tracks(data, clean, crmask, inmask, gain, rn_e, float(sigclip) + 0.5)
    out = _cleaned_frame(frame, data, crmask, clean, gain, rn)
    n_cr = int(out.meta["CR_NPIX"])
    log.info(
        "%s: %d cosmic-ray pixels (FWHM %.2f px %s, objlim %.1f)", frame.name, n_cr, fwhm, fwhm_source, objlim
    )
    return rec.finish(
        out,
        primary=frame,
        outcome={
            "n_pixels": n_cr,
            "fwhm": fwhm,
            "fwhm_source": fwhm_source,
            "objlim": objlim,
            "read_noise": rn,
            "read_noise_source": rn_source,
            "gain": gain,
            "searched_pixels": searched,
        },
    )
