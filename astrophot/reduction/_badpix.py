# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Replace flagged pixels from their good neighbours."""

import logging

import numpy as np
from astropy.io import fits
from astropy.nddata import StdDevUncertainty

from astrophot.exceptions import FrameMismatchError
from astrophot.frames import BadPixelMap, CalibratedFrame, DQFlag, flags_to_mask
from astrophot.provenance import start_step
from astrophot.reduction._common import as_frame

__all__ = ["REPAIRABLE", "fix_bad_pixels"]

log = logging.getLogger(__name__)

#: Bits `fix_bad_pixels` repairs by default: detector defects, user regions,
#: cosmic rays, pixels the flat could not correct and non-finite values.
#: Saturated pixels and pixels without data are left alone: no neighbour can
#: tell what a saturated star core held.
REPAIRABLE = (
    DQFlag.HOT
    | DQFlag.COLD
    | DQFlag.BAD_COLUMN
    | DQFlag.BAD_ROW
    | DQFlag.USER
    | DQFlag.COSMIC_RAY
    | DQFlag.LOW_RESPONSE
    | DQFlag.DEAD
    | DQFlag.NONFINITE
)

_CHUNK = 200_000  # bad pixels handled at once (bounds the (n, box**2) work array)


def _box_median(data, usable, rows, cols, half, min_good):
    """Median and count of the usable pixels in a box around each (row, col)."""
    ny, nx = data.shape
    offsets = [(dy, dx) for dy in range(-half, half + 1) for dx in range(-half, half + 1) if dy or dx]
    medians = np.full(rows.size, np.nan, dtype=np.float64)
    counts = np.zeros(rows.size, dtype=np.int64)
    for start in range(0, rows.size, _CHUNK):
        r = rows[start : start + _CHUNK]
        c = cols[start : start + _CHUNK]
        values = np.full((r.size, len(offsets)), np.nan, dtype=np.float64)
        for k, (dy, dx) in enumerate(offsets):
            rr = r + dy
            cc = c + dx
            inside = (rr >= 0) & (rr < ny) & (cc >= 0) & (cc < nx)
            idx = np.flatnonzero(inside)
            ok = usable[rr[idx], cc[idx]]
            idx = idx[ok]
            values[idx, k] = data[rr[idx], cc[idx]]
        n = np.count_nonzero(~np.isnan(values), axis=1)
        enough = n >= min_good
        if np.any(enough):
            medians[start : start + r.size][enough] = np.nanmedian(values[enough], axis=1)
        counts[start : start + r.size] = n
    return medians, counts


def _row_interpolation(data, usable, rows, cols, max_distance):
    """Linear interpolation along the row between the nearest usable pixels."""
    ny, nx = data.shape
    left = np.full(rows.size, -1, dtype=np.int64)
    right = np.full(rows.size, -1, dtype=np.int64)
    for distance in range(1, max_distance + 1):
        todo = left < 0
        cc = cols - distance
        hit = todo & (cc >= 0)
        hit[hit] = usable[rows[hit], cc[hit]]
        left[hit] = cc[hit]
        todo = right < 0
        cc = cols + distance
        hit = todo & (cc < nx)
        hit[hit] = usable[rows[hit], cc[hit]]
        right[hit] = cc[hit]
    values = np.full(rows.size, np.nan, dtype=np.float64)
    both = (left >= 0) & (right >= 0)
    if np.any(both):
        lv = data[rows[both], left[both]].astype(np.float64)
        rv = data[rows[both], right[both]].astype(np.float64)
        weight = (cols[both] - left[both]) / (right[both] - left[both])
        values[both] = lv + weight * (rv - lv)
    return values


def _combined_flags(frame, bad_pixels):
    """The frame's flags (a copy) OR-ed with the map's; a map of another shape is refused."""
    shape = frame.data.shape
    flags = np.zeros(shape, dtype=np.uint32) if frame.flags is None else frame.flags.copy()
    if bad_pixels is not None:
        if bad_pixels.data.shape != shape:
            raise FrameMismatchError(
                f"the bad-pixel map {bad_pixels.name} "
                f"({bad_pixels.data.shape[1]}x{bad_pixels.data.shape[0]}) "
                f"does not match {frame.name} ({shape[1]}x{shape[0]})"
            )
        flags |= bad_pixels.data.astype(np.uint32)
    return flags


def _repair_values(data, usable, flags, rows, cols, *, box, min_good, columns):
    """New values of the target pixels (NaN where too few usable neighbours)."""
    values = np.full(rows.size, np.nan, dtype=np.float64)
    if not rows.size:
        return values
    as_column = np.zeros(rows.size, dtype=bool)
    if columns == "interpolate":
        as_column = (flags[rows, cols] & int(DQFlag.BAD_COLUMN)) != 0
    if np.any(as_column):
        values[as_column] = _row_interpolation(data, usable, rows[as_column], cols[as_column], box)
    rest = ~as_column | np.isnan(values)
    if np.any(rest):
        med, _ = _box_median(data, usable, rows[rest], cols[rest], box // 2, min_good)
        values[rest] = med
    return values


def _repaired_uncertainty(uncertainty, usable, fr, fc, half):
    """A copy of the uncertainty with the repaired pixels' set from their usable neighbours."""
    if uncertainty is None:
        return None
    source = uncertainty
    if not isinstance(source, StdDevUncertainty):
        source = source.represent_as(StdDevUncertainty)
    unc = np.array(source.array, copy=True)
    if fr.size:
        unc_usable = usable & np.isfinite(unc)
        med_unc, _ = _box_median(unc, unc_usable, fr, fc, max(half, 1), 1)
        # neighbours' median uncertainty; where none is usable, the frame's median
        missing = np.isnan(med_unc)
        if missing.any():
            med_unc[missing] = float(np.median(unc[unc_usable])) if np.any(unc_usable) else np.nan
        unc[fr, fc] = med_unc
    return StdDevUncertainty(unc, copy=False)


def fix_bad_pixels(frame, *, bad_pixels=None, box=5, min_good=4, bits=REPAIRABLE, columns="interpolate"):
    """
    Replace flagged pixels by values from their good neighbours.

    Parameters
    ----------
    frame : `~astrophot.CalibratedFrame`, str or path-like
        The frame to repair (not modified).
    bad_pixels : `~astrophot.BadPixelMap` or path-like, optional
        More flags to apply first (OR-ed into the frame's flags).
    box : int, optional
        Width of the square box of neighbours (odd; 5 means +-2 pixels).
    min_good : int, optional
        Fewest usable neighbours in the box for a median repair.
    bits : int or `~astrophot.DQFlag`, optional
        Which flags to repair (default `REPAIRABLE`: everything but
        ``SATURATED`` and ``NO_DATA``).
    columns : {'interpolate', 'median'}, optional
        How to repair pixels flagged ``BAD_COLUMN``: linear interpolation along
        the row between the nearest usable pixels (at most ``box`` pixels
        away on each side), or the box median like any other pixel.

    Returns
    -------
    `~astrophot.CalibratedFrame`
        A new frame: repaired pixels get the ``REPAIRED`` bit (so they are no
        longer masked) and the median uncertainty of their usable neighbours;
        pixels that could not be repaired keep their flags without
        ``REPAIRED`` and stay masked.

    Raises
    ------
    astrophot.exceptions.FrameMismatchError
        The bad-pixel map has another shape than the frame.
    ValueError
        ``box`` is not an odd number of at least 3, or ``columns`` is unknown.

    See Also
    --------
    calibrate_frame : the previous stage (it copies a map's flags already).
    reject_cosmic_rays : the next stage.
    astrophot.find_bad_pixels : makes the bad-pixel map.

    Notes
    -----
    The usable neighbours are the pixels without any bad bit (repaired pixels
    of an earlier pass count as usable; those repaired in this pass do not).
    Each flagged pixel is repaired at once from the original values, so the
    result does not depend on the order of the pixels.

    Examples
    --------
    >>> import numpy as np
    >>> from astrophot import CalibratedFrame, DQFlag, fix_bad_pixels
    >>> data = np.arange(25, dtype=np.float32).reshape(5, 5)
    >>> flags = np.zeros((5, 5), dtype=np.uint32)
    >>> data[2, 2], flags[2, 2] = 1e6, DQFlag.HOT
    >>> fixed = fix_bad_pixels(CalibratedFrame(data, flags=flags))
    >>> float(fixed.data[2, 2]), DQFlag.describe(fixed.flags[2, 2])
    (12.0, ['HOT', 'REPAIRED'])
    """
    if not isinstance(frame, CalibratedFrame):
        frame = as_frame(frame, CalibratedFrame, "frame to repair")
    bad_pixels = as_frame(bad_pixels, BadPixelMap, "bad-pixel map")
    box = int(box)
    if box < 3 or box % 2 == 0:
        raise ValueError(f"box must be an odd number of at least 3, got {box}")
    if columns not in ("interpolate", "median"):
        raise ValueError(f"columns must be 'interpolate' or 'median', not {columns!r}")
    rec = start_step(
        "fix_bad_pixels",
        parameters={"box": box, "min_good": min_good, "bits": int(bits), "columns": columns},
        inputs={"frame": frame, "bad_pixels": bad_pixels},
    )
    shape = frame.data.shape
    flags = _combined_flags(frame, bad_pixels)
    data = np.array(frame.data, dtype=np.float32 if frame.data.dtype.kind != "f" else frame.data.dtype)
    bad_bits = int(DQFlag.bad_bits())
    repaired_bit = int(DQFlag.REPAIRED)
    masked = ((flags & bad_bits) != 0) & ((flags & repaired_bit) == 0)
    if frame.mask is not None and frame.mask.shape == shape:
        masked |= frame.mask
    usable = ~masked & np.isfinite(data)
    target = masked & ((flags & int(bits)) != 0)
    rows, cols = np.nonzero(target)
    half = box // 2
    values = _repair_values(data, usable, flags, rows, cols, box=box, min_good=int(min_good), columns=columns)
    fixed = ~np.isnan(values)
    fr, fc = rows[fixed], cols[fixed]
    data[fr, fc] = values[fixed]
    flags[fr, fc] |= repaired_bit
    uncertainty = _repaired_uncertainty(frame.uncertainty, usable, fr, fc, half)

    mask = flags_to_mask(flags)
    if frame.mask is not None and frame.mask.shape == shape:
        mask |= frame.mask & ((flags & repaired_bit) == 0)
    out = CalibratedFrame(
        data,
        unit=frame.unit,
        meta=fits.Header(frame.meta).copy(),
        uncertainty=uncertainty,
        flags=flags,
        mask=mask,
        wcs=frame.wcs,
    )
    n_target = int(rows.size)
    n_fixed = int(fixed.sum())
    out.meta["BPIXNBAD"] = (n_target, "pixels flagged for repair")
    out.meta["BPIXNFIX"] = (n_fixed, "pixels repaired from good neighbours")
    out.meta["BPIXNREM"] = (n_target - n_fixed, "flagged pixels left unrepaired (masked)")
    if n_target - n_fixed:
        log.info(
            "%s: %d of %d flagged pixels could not be repaired", frame.name, n_target - n_fixed, n_target
        )
    return rec.finish(
        out,
        primary=frame,
        outcome={"n_flagged": n_target, "n_repaired": n_fixed, "n_unrepaired": n_target - n_fixed},
    )
