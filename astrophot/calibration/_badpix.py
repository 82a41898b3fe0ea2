# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Bad-pixel maps from master darks, flats and user regions; bad columns and rows of a frame."""

import logging
import math
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.nddata import CCDData
from scipy.ndimage import median_filter

from astrophot.calibration._kernel import MAD_TO_STD
from astrophot.calibration._regions import BadPixelRegions
from astrophot.exceptions import AstrophotUserWarning, CalibrationError, FrameMismatchError, FrameTypeError
from astrophot.frames import BadPixelMap, DQFlag
from astrophot.provenance import start_step

__all__ = ["clipped_std", "find_bad_columns", "find_bad_pixels", "robust_spread"]

log = logging.getLogger(__name__)

#: Header cards copied from the dark to the bad-pixel map (for matching it later).
_COPY_CARDS = (
    "TELESCOP",
    "INSTRUME",
    "SET-TEMP",
    "CCD-TEMP",
    "XPIXSZ",
    "YPIXSZ",
    "XBINNING",
    "YBINNING",
    "XORGSUBF",
    "YORGSUBF",
    "SITELAT",
    "SITELONG",
    "DATE-OBS",
    "EXPTIME",
    "EXPOSURE",
)


def robust_spread(values, centre=None):
    """
    A robust standard deviation: 1.4826 x the median absolute deviation.

    Safe when more than half the values are equal (MAD zero): then the mean
    absolute deviation (times sqrt(pi/2)) is used, and when that is zero too,
    the smallest positive spacing of the values, so that any deviation
    counts.

    Parameters
    ----------
    values : numpy.ndarray
        Finite values.
    centre : float, optional
        The median, when already known.

    Returns
    -------
    float
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if not values.size:
        return np.nan
    if centre is None:
        centre = float(np.median(values))
    dev = np.abs(values - centre)
    spread = float(np.median(dev)) * MAD_TO_STD
    if spread > 0:
        return spread
    spread = float(np.mean(dev)) * math.sqrt(math.pi / 2)
    if spread > 0:
        return spread
    return float(np.finfo(np.float32).eps * max(1.0, abs(centre)))


def clipped_std(values, centre, spread, *, n_sigma=5.0, iterations=3):
    """
    Standard deviation of the values within ``n_sigma`` x ``spread`` of ``centre``.

    Iterated, corrected for the clipping of a Gaussian; unlike the median
    absolute deviation it is not biased by quantised values (the average of
    N integer frames lives on a 1/N grid). Returns ``spread`` when too few
    values are left.
    """
    from astrophot.calibration._readnoise import _truncation_factor

    values = np.asarray(values, dtype=np.float64).ravel()
    for _ in range(iterations):
        kept = values[np.abs(values - centre) <= n_sigma * spread]
        if kept.size < 10:
            return spread
        new = float(np.std(kept, ddof=1)) / _truncation_factor(n_sigma)
        if not new > 0 or abs(new - spread) <= 1e-6 * spread:
            return new if new > 0 else spread
        spread = new
    return spread


def _frame(value, role):
    if isinstance(value, (str, Path)):
        from astrophot.io import read_frame

        return read_frame(value)
    if not isinstance(value, CCDData):
        raise FrameTypeError(f"{role} must be a frame or a path, not {type(value).__name__}")
    return value


def _name(frame):
    return getattr(frame, "name", None) or "<in-memory frame>"


def _valid_values(frame):
    data = np.asarray(frame.data, dtype=np.float32)
    valid = np.isfinite(data)
    if frame.mask is not None:
        valid &= ~np.asarray(frame.mask, dtype=bool)
    return data, valid


def _block_background(data, valid, box):
    """Median of ``box`` x ``box`` blocks, interpolated bilinearly back to every pixel."""
    ny, nx = data.shape
    by, bx = -(-ny // box), -(-nx // box)
    padded = np.full((by * box, bx * box), np.nan, dtype=np.float32)
    padded[:ny, :nx] = np.where(valid, data, np.nan)
    blocks = padded.reshape(by, box, bx, box).transpose(0, 2, 1, 3).reshape(by, bx, box * box)
    if np.isnan(blocks).any():
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            grid = np.nanmedian(blocks, axis=2)
        if np.isnan(grid).any():
            grid = np.where(np.isnan(grid), np.nanmedian(grid), grid)
    else:
        grid = np.median(blocks, axis=2)

    def axis(n, nb):
        pos = np.clip((np.arange(n) - (box - 1) / 2.0) / box, 0, nb - 1)
        i0 = np.floor(pos).astype(np.intp)
        i1 = np.minimum(i0 + 1, nb - 1)
        return i0, i1, (pos - i0).astype(np.float32)

    x0, x1, wx = axis(nx, bx)
    y0, y1, wy = axis(ny, by)
    rows = grid[:, x0] * (1 - wx) + grid[:, x1] * wx
    return (rows[y0] * (1 - wy)[:, None] + rows[y1] * wy[:, None]).astype(np.float32)


def _regions(user_regions):
    if user_regions is None or isinstance(user_regions, BadPixelRegions):
        return user_regions
    return BadPixelRegions.from_yaml(user_regions)


def _profiles(data, valid):
    """Median of each column, then median of each row of what is left (NaN where no data)."""
    if valid.all():
        columns = np.median(data, axis=0)
        rows = np.median(data - columns[None, :], axis=1)
        return columns, rows
    import warnings

    masked = np.where(valid, data, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        columns = np.nanmedian(masked, axis=0)
        rows = np.nanmedian(masked - np.nan_to_num(columns, nan=0.0)[None, :], axis=1)
    return columns, rows


def _check_options(n_sigma, line_n_sigma, dead_fraction, flat_box, line_window):
    """Refuse impossible options; returns ``line_window`` as an int."""
    if not n_sigma > 0 or not line_n_sigma > 0:
        raise ValueError(f"n_sigma and line_n_sigma must be positive, not {n_sigma!r}, {line_n_sigma!r}")
    if not 0 < dead_fraction < 1:
        raise ValueError(f"dead_fraction must be between 0 and 1, not {dead_fraction!r}")
    if int(flat_box) < 2:
        raise ValueError(f"flat_box must be at least 2 pixels, not {flat_box!r}")
    line_window = int(line_window)
    if line_window < 3 or line_window % 2 == 0:
        raise ValueError(f"line_window must be an odd number >= 3, not {line_window}")
    return line_window


def _hot_and_cold(data, valid, column_level, row_level, line_rows, line_columns, n_sigma):
    """HOT, COLD and NO_DATA flags from the residual of the column and row levels; and the spread."""
    residual = data - np.nan_to_num(column_level, nan=0.0)[None, :]
    residual -= np.nan_to_num(row_level, nan=0.0)[:, None]
    # pixels of bad lines are flagged as such, not judged one by one
    judged = valid.copy()
    judged[:, line_columns] = False
    judged[line_rows, :] = False
    values = residual[judged] if judged.any() else residual[valid]
    centre = float(np.median(values))
    spread = clipped_std(values, centre, robust_spread(values, centre))
    flags = np.zeros(data.shape, dtype=np.uint32)
    with np.errstate(invalid="ignore"):
        flags[judged & (residual > centre + n_sigma * spread)] |= np.uint32(DQFlag.HOT)
        flags[judged & (residual < centre - n_sigma * spread)] |= np.uint32(DQFlag.COLD)
    flags[~valid] |= np.uint32(DQFlag.NO_DATA)
    return flags, spread


def _dead_pixels(flat_frame, dark, shape, dead_fraction, flat_box):
    """Pixels of the flat not positive or below ``dead_fraction`` of their surroundings."""
    if flat_frame.data.shape != shape:
        raise FrameMismatchError(
            f"{_name(flat_frame)}: the flat is {flat_frame.data.shape} but the dark {_name(dark)} is "
            f"{shape} (rows x columns)"
        )
    fdata, fvalid = _valid_values(flat_frame)
    background = _block_background(fdata, fvalid, flat_box)
    with np.errstate(invalid="ignore", divide="ignore"):
        response = fdata / background
        return fvalid & ((fdata <= 0) | (response < dead_fraction))


def find_bad_pixels(
    master_dark,
    *,
    n_sigma=4.0,
    user_regions=None,
    flat=None,
    dead_fraction=0.5,
    flat_box=32,
    line_n_sigma=5.0,
    line_window=11,
):
    """
    Make a bad-pixel map from a master dark, optionally a flat and user regions.

    Parameters
    ----------
    master_dark : `~astrophot.MasterDark` (or a master bias) or path-like
        Hot and cold pixels are those further than ``n_sigma`` standard
        deviations above or below the level of their column and row (so the
        column pattern of a dark that still holds the bias does not count).
        The standard deviation is that of the pixels within 5 robust sigma
        (median absolute deviation) of the median, corrected for the
        clipping.
    n_sigma : float, optional
        Default 4.
    user_regions : `BadPixelRegions`, path-like or YAML text, optional
        Columns, rows and rectangles marked by the user (flag ``USER``; whole
        columns and rows also ``BAD_COLUMN``/``BAD_ROW``).
    flat : `~astrophot.MasterFlat` or path-like, optional
        Pixels whose response is below ``dead_fraction`` of the median of
        their ``flat_box`` x ``flat_box`` surroundings (or not positive) are
        ``DEAD``.
    dead_fraction : float, optional
        Default 0.5.
    flat_box : int, optional
        Default 32 pixels.
    line_n_sigma, line_window : float, int, optional
        Whole columns and rows of the dark whose median stands out from the
        running median of ``line_window`` neighbours by more than
        ``line_n_sigma`` robust standard deviations are ``BAD_COLUMN`` and
        ``BAD_ROW`` (as `find_bad_columns`); defaults 5 and 11.

    Returns
    -------
    `~astrophot.BadPixelMap`
        `~astrophot.DQFlag` bits (``HOT``, ``COLD``, ``DEAD``, ``USER``,
        ``BAD_COLUMN``, ``BAD_ROW``, ``NO_DATA``); ``IMAGETYP='Bad Pixel
        Map'``, the dark's telescope, binning and temperature cards,
        ``NBADAUTO`` and ``NBADUSER``.

    Raises
    ------
    astrophot.exceptions.FrameMismatchError
        The flat's shape differs from the dark's.
    astrophot.exceptions.UserRegionsError
        The user YAML is malformed (file, line and reason given).
    astrophot.exceptions.CalibrationError
        The dark has no valid pixel.

    Warns
    -----
    astrophot.exceptions.AstrophotUserWarning
        User regions outside the image.

    See Also
    --------
    make_master_dark : The input.
    find_bad_columns : Bad columns and rows of a calibrated frame, for the user regions.
    BadPixelRegions : The user regions.

    Examples
    --------
    >>> from astrophot.datasets import make_dark_stack
    >>> from astrophot.calibration import find_bad_pixels, make_master_dark
    >>> from astrophot import DQFlag
    >>> darks, truth = make_dark_stack(5, shape=(100, 120), hot_pixels=[(10, 20, 40.0)], bad_columns=[],
    ...                                bad_rows=[], seed=6)
    >>> bpm = find_bad_pixels(make_master_dark(darks), user_regions="bad_columns: [3]")
    >>> bool(bpm.data[20, 10] & DQFlag.HOT), bpm.count(DQFlag.BAD_COLUMN)
    (True, 100)
    """
    dark = _frame(master_dark, "master_dark")
    flat_frame = _frame(flat, "flat") if flat is not None else None
    regions = _regions(user_regions)
    line_window = _check_options(n_sigma, line_n_sigma, dead_fraction, flat_box, line_window)
    parameters = {
        "n_sigma": float(n_sigma),
        "user_regions": None if regions is None else (regions.source or "<regions>"),
        "dead_fraction": float(dead_fraction),
        "flat_box": int(flat_box),
        "line_n_sigma": float(line_n_sigma),
        "line_window": line_window,
    }
    rec = start_step("find_bad_pixels", parameters=parameters, inputs={"dark": dark, "flat": flat_frame})
    data, valid = _valid_values(dark)
    if not valid.any():
        raise CalibrationError(f"{_name(dark)}: no valid pixel")
    column_level, row_level = _profiles(data, valid)
    column_floor, row_floor = _line_floors(data, valid, column_level)
    line_columns, _ = _profile_outliers(column_level, line_n_sigma, line_window, floor=column_floor)
    line_rows, _ = _profile_outliers(row_level, line_n_sigma, line_window, floor=row_floor)
    flags, spread = _hot_and_cold(data, valid, column_level, row_level, line_rows, line_columns, n_sigma)
    if flat_frame is not None:
        flags[_dead_pixels(flat_frame, dark, data.shape, dead_fraction, int(flat_box))] |= np.uint32(
            DQFlag.DEAD
        )
    flags[:, line_columns] |= np.uint32(DQFlag.BAD_COLUMN)
    flags[line_rows, :] |= np.uint32(DQFlag.BAD_ROW)
    automatic = (flags & np.uint32(DQFlag.bad_bits() & ~DQFlag.NO_DATA)) != 0
    n_user = 0
    if regions is not None:
        user = regions.to_flags(data.shape)
        n_user = int(np.count_nonzero(user))
        flags |= user
    header = fits.Header()
    header["IMAGETYP"] = ("Bad Pixel Map", "astrophot find_bad_pixels")
    for key in _COPY_CARDS:
        if key in dark.meta:
            header[key] = dark.meta[key]
    header["NBADAUTO"] = (int(np.count_nonzero(automatic)), "pixels flagged from the dark (and flat)")
    header["NBADUSER"] = (n_user, "pixels flagged from user regions")
    bpm = BadPixelMap(flags, meta=header)
    _warn_if_implausible(dark, flags, line_rows, line_columns)
    outcome = {
        "n_hot": int(np.count_nonzero(flags & np.uint32(DQFlag.HOT))),
        "n_cold": int(np.count_nonzero(flags & np.uint32(DQFlag.COLD))),
        "n_dead": int(np.count_nonzero(flags & np.uint32(DQFlag.DEAD))),
        "n_user": n_user,
        "bad_columns": [int(c) + 1 for c in line_columns],
        "bad_rows": [int(r) + 1 for r in line_rows],
        "dark_spread": round(spread, 6),
    }
    log.info(
        "%s: %d hot, %d cold, %d dead, %d user pixels; bad columns %s, rows %s (1-based)",
        _name(dark),
        outcome["n_hot"],
        outcome["n_cold"],
        outcome["n_dead"],
        n_user,
        outcome["bad_columns"],
        outcome["bad_rows"],
    )
    return rec.finish(bpm, outcome=outcome)


#: More than this fraction of the rows (or columns, or pixels) flagged is not a plausible detector.
IMPLAUSIBLE_FRACTION = 0.05


def _line_floors(data, valid, column_level):
    """
    The smallest spread a column's and a row's median can have: pixel noise and quantisation.

    The median of ``n`` pixels of robust spread ``s`` scatters by ``1.2533 s /
    sqrt(n)``. A master made of few integer frames has medians on a grid of
    ``q`` (1 ADU for one frame, 1/2 or 1/3 for two or three averaged): most
    profile residuals are then exactly 0, their MAD collapses, and a one-step
    deviation looked like a bad line (627 of 1336 rows of a 3-dark master).
    The floor adds the grid's ``q / sqrt(12)``.
    """
    step = max(1, int(np.sqrt(data.size / 250_000)))
    sample = (data - np.nan_to_num(column_level, nan=0.0)[None, :])[::step, ::step]
    sample = sample[valid[::step, ::step]]
    if sample.size < 16:
        return 0.0, 0.0
    pixel = robust_spread(sample)
    values = np.unique(data[::step, ::step][valid[::step, ::step]])
    gaps = np.diff(values)
    gaps = gaps[gaps > 0]
    quantum = float(np.median(gaps[: max(1, gaps.size // 2)])) if gaps.size else 0.0
    n_rows, n_columns = max(1, int(valid.sum(axis=0).max())), max(1, int(valid.sum(axis=1).max()))
    grid = quantum / math.sqrt(12.0) if quantum < pixel else 0.0
    column_floor = math.hypot(1.2533 * pixel / math.sqrt(n_rows), grid)
    row_floor = math.hypot(1.2533 * pixel / math.sqrt(n_columns), grid)
    return column_floor, row_floor


def _warn_if_implausible(dark, flags, rows, columns):
    ny, nx = flags.shape
    if min(ny, nx) < 50:  # too few pixels to call a fraction implausible
        return
    fraction = np.count_nonzero(flags & np.uint32(DQFlag.bad_bits())) / flags.size
    problems = []
    if len(rows) > IMPLAUSIBLE_FRACTION * ny:
        problems.append(f"{len(rows)} of {ny} rows BAD_ROW")
    if len(columns) > IMPLAUSIBLE_FRACTION * nx:
        problems.append(f"{len(columns)} of {nx} columns BAD_COLUMN")
    if fraction > IMPLAUSIBLE_FRACTION:
        problems.append(f"{100 * fraction:.1f}% of the pixels")
    if problems:
        warnings.warn(
            f"{_name(dark)}: the bad-pixel map flags {', '.join(problems)}; more than "
            f"{100 * IMPLAUSIBLE_FRACTION:g}% is not a plausible detector: check the master "
            "(enough frames? the right exposure?) and line_n_sigma / n_sigma",
            AstrophotUserWarning,
            stacklevel=3,
        )


def _profile_outliers(profile, n_sigma, window, *, floor=0.0):
    """
    Indices of profile elements deviating from a running median; and their deviations in sigma.

    ``floor``: the least spread the profile can have (`_line_floors`).
    """
    finite = np.isfinite(profile)
    if finite.sum() < 3:
        return np.empty(0, dtype=np.intp), np.empty(0)
    filled = np.where(finite, profile, np.median(profile[finite]))
    trend = median_filter(filled, size=window, mode="nearest")
    residual = filled - trend
    spread = max(robust_spread(residual[finite]), floor)
    score = np.where(finite, residual / spread, 0.0)
    index = np.flatnonzero(np.abs(score) >= n_sigma)
    return index, score[index]


def find_bad_columns(frame, *, n_sigma=5.0, window=11):
    """
    Find whole bad columns and rows of a (calibrated) frame.

    The median of each column (and row) is compared with the running median
    of its ``window`` neighbours; elements more than ``n_sigma`` robust
    standard deviations (of all the differences) away are bad.

    Parameters
    ----------
    frame : frame or path-like
        Usually a calibrated light frame, where bad columns show after dark
        subtraction.
    n_sigma : float, optional
        Default 5.
    window : int, optional
        Odd number of neighbouring columns (rows) for the running median;
        default 11.

    Returns
    -------
    `BadPixelRegions`
        1-based columns and rows, each with a comment giving its deviation;
        ``to_yaml()`` can be pasted into the user file.

    Raises
    ------
    ValueError
        ``window`` is not an odd number >= 3.

    See Also
    --------
    find_bad_pixels : Turns the regions into a `~astrophot.BadPixelMap`.

    Notes
    -----
    The spread is 1.4826 x the median absolute deviation of the differences;
    when that is zero (many equal values) the mean absolute deviation is
    used, so a flat profile never divides by zero.

    Examples
    --------
    >>> import numpy as np
    >>> from astrophot.calibration import find_bad_columns
    >>> from astrophot import CalibratedFrame
    >>> data = np.random.default_rng(0).normal(100, 5, (200, 300)).astype(np.float32)
    >>> data[:, 41] += 20
    >>> find_bad_columns(CalibratedFrame(data)).columns
    (42,)
    """
    image = _frame(frame, "frame")
    window = int(window)
    if window < 3 or window % 2 == 0:
        raise ValueError(f"window must be an odd number >= 3, not {window}")
    if not n_sigma > 0:
        raise ValueError(f"n_sigma must be positive, not {n_sigma!r}")
    data, valid = _valid_values(image)
    if valid.all():
        columns = np.median(data, axis=0)
        rows = np.median(data, axis=1)
    else:
        import warnings

        masked = np.where(valid, data, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            columns = np.nanmedian(masked, axis=0)
            rows = np.nanmedian(masked, axis=1)
    bad_columns, column_scores = _profile_outliers(columns, n_sigma, window)
    bad_rows, row_scores = _profile_outliers(rows, n_sigma, window)
    comments = {("bad_columns", int(c) + 1): f"{s:+.1f} sigma" for c, s in zip(bad_columns, column_scores)}
    comments.update({("bad_rows", int(r) + 1): f"{s:+.1f} sigma" for r, s in zip(bad_rows, row_scores)})
    name = _name(image)
    short = Path(name).name if "<" not in name else name
    header = [
        f"find_bad_columns: {short} (n_sigma={n_sigma:g}, window={window})",
        f"{len(bad_columns)} bad column(s), {len(bad_rows)} bad row(s); numbers are 1-based as in ds9",
    ]
    log.info("%s: %d bad columns, %d bad rows", name, len(bad_columns), len(bad_rows))
    return BadPixelRegions(
        columns=[int(c) + 1 for c in bad_columns],
        rows=[int(r) + 1 for r in bad_rows],
        comments=comments,
        header=header,
        source=name,
    )
