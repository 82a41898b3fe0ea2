# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The combination driver shared by `~astrophot.stack_frames` and `~astrophot.make_mosaic`.

Frames are resampled onto one output grid and combined **band by band** over the output
rows: for each band, every frame that reaches it is resampled (`._core.pixel_map` and
`._core.resample_band` on the part of the input the band needs) into a band buffer of
``n_frames x band_rows x nx`` values, normalised, and combined with
`._reject.combine_stack`. Only the inputs, the output planes and one band buffer per
thread are ever in memory, never all the resampled frames.

Internal API (stable for the other combination modules)
-------------------------------------------------------
``prepare_inputs(frames, wcs, shape)`` -> list of `StackInput`
    Checks each frame (a celestial WCS, electrons or electrons per second, an exposure
    time when in electrons) and finds the output rows its footprint reaches (``rows``,
    None when it misses the grid). Raises `~astrophot.exceptions.CombinationError` or
    `~astrophot.exceptions.FrameMismatchError` naming the files.

``resample_rates(inputs, wcs, shape, rows, *, cols=None, kernel, projection_error, min_weight)``
    ``(values, variances)``: float32 arrays ``(n_frames, band_rows, band_cols)`` of every frame
    resampled onto the output rows ``rows`` (a slice; ``cols`` a slice of the columns, default
    all), in **electrons per second**, NaN
    where a frame does not cover a pixel (``variances`` NaN for a frame without an
    uncertainty). The building block for statistics on the overlaps (normalisation,
    background matching).

``sample_rates(inputs, wcs, shape, *, max_values=SAMPLE_VALUES, min_rows=32, **resample_options)``
    ``(values, variances, bands)``: `resample_rates` on up to four bands of at least
    ``min_rows`` rows spread over the grid (about ``max_values`` values in all: with many
    frames only a central window of the columns), concatenated along the rows
    (``(n_frames, n_rows, n_cols)``), and the row slices sampled: samples for robust
    per-frame statistics (whole stars for the scales).

``combine_frames(inputs, wcs, shape, *, factor=None, offset=None, weights=None, background=None, ...)``
    -> `CombineResult`. Per frame ``k`` and output pixel ``(y, x)`` the value combined is::

        value = factor[k] * (rate_k(y, x) - background_k(y, x)) + offset[k]

    with ``rate`` in electrons per second and the variance scaled by ``factor[k]**2``.
    ``background`` (the hook `make_mosaic` uses for background matching) is one of:

    * None: no background model;
    * an array ``(n_frames,)`` of offsets, or ``(n_frames, 3)`` of plane coefficients
      ``(a, p, q)``: ``background_k = a + p * x + q * y`` with ``x, y`` the 0-based
      **output** pixel coordinates (what `._background.solve_backgrounds` returns);
    * a callable ``background(k, rows) -> array`` broadcastable to ``(band_rows, nx)``
      (or a number), in the frame's electrons per second on the output rows ``rows``.

    ``weights`` are per-frame (default equal; all positive). Rejection options are those
    of `combine_stack` (``rejection``, ``sigma``, ``center`` and ``reject_options``).
"""

import logging
import math
import time
from dataclasses import dataclass, field, replace

import astropy.units as u
import numpy as np

from astrophot._concurrency import PerThread, resolve_threads, thread_map
from astrophot.combination import _core
from astrophot.combination._drizzle import REACH as DRIZZLE_REACH
from astrophot.combination._drizzle import drizzle_band, require_drizzle
from astrophot.combination._grid import celestial_wcs, footprint_points, sky_to_pixel
from astrophot.combination._reject import combine_stack
from astrophot.combination.resample import _row_range
from astrophot.exceptions import CombinationError, FrameMismatchError, FrameTypeError
from astrophot.frames import DQFlag, FrameBase, flags_to_mask

__all__ = [
    "BAND_VALUES",
    "SAMPLE_VALUES",
    "CombineResult",
    "StackInput",
    "combine_frames",
    "prepare_inputs",
    "resample_rates",
    "sample_rates",
]

log = logging.getLogger("astrophot.combination")

#: Values per band buffer (frames x band pixels): bounds the memory of one band.
BAND_VALUES = 1 << 21
#: Fewest output rows in a band.
MIN_BAND_ROWS = 8
#: Values (frames x pixels) `sample_rates` takes by default: bounds the statistics' memory.
SAMPLE_VALUES = 4_000_000

_NO_DATA = np.uint32(DQFlag.NO_DATA)
_PER_SECOND = u.electron / u.s


@dataclass
class StackInput:
    """
    One frame prepared for the driver.

    Attributes
    ----------
    frame : `~astrophot.frames.FrameBase`
    name : str
        The file name (or a description) errors and records use.
    wcs : `~astropy.wcs.WCS`
        The frame's celestial WCS.
    to_rate : float
        Multiplies the frame's data to give electrons per second (1 / exposure for electrons).
    exposure : float
        Seconds (0 when unknown and the data are already per second).
    rows : tuple of int or None
        Output rows ``(y0, y1)`` the footprint reaches, None when it misses the grid.
    cols : tuple of int or None
        Output columns ``(x0, x1)`` the footprint reaches (a mosaic's frame covers a part
        of each band: only that part is resampled).
    """

    frame: object
    name: str
    wcs: object
    to_rate: float
    exposure: float
    rows: tuple = None
    sigma: object = field(default=None, repr=False)
    cols: tuple = None


def _exposure(frame, name):
    try:
        value = frame.exposure_time
    except Exception as exc:  # a missing or invalid keyword: the reason is in the message
        raise CombinationError(f"{name}: no usable exposure time ({exc})") from None
    seconds = float(u.Quantity(value, u.s).value) if value is not None else math.nan
    return seconds


def _rate_factor(frame, name):
    """(to_rate, exposure) for a frame in electrons or electrons per second."""
    unit = u.Unit(frame.unit) if frame.unit is not None else u.dimensionless_unscaled
    seconds = _exposure(frame, name) if unit != _PER_SECOND else math.nan
    if unit == u.electron:
        if not (math.isfinite(seconds) and seconds > 0):
            raise CombinationError(f"{name}: data in electrons need a positive exposure time (EXPTIME)")
        return 1.0 / seconds, seconds
    if unit == _PER_SECOND:
        try:
            seconds = float(u.Quantity(frame.exposure_time, u.s).value)
        except Exception:
            seconds = 0.0
        return 1.0, seconds if math.isfinite(seconds) else 0.0
    raise FrameMismatchError(
        f"{name}: data in {unit.to_string() or 'dimensionless'}; combining needs electrons or electrons "
        "per second (calibrate the frame with its gain)"
    )


def _name(frame, index):
    name = getattr(frame, "name", None)
    return str(name) if name else f"frame {index}"


def _sigma_of(frame):
    unc = frame.uncertainty
    if unc is None:
        return None
    from astropy.nddata import StdDevUncertainty

    if not isinstance(unc, StdDevUncertainty):
        unc = unc.represent_as(StdDevUncertainty)
    return np.asarray(unc.array)


def prepare_inputs(frames, wcs, shape):
    """Check the frames and find their output rows (see the module documentation)."""
    inputs = []
    units = {}
    for index, frame in enumerate(frames):
        name = _name(frame, index)
        if not isinstance(frame, FrameBase):
            raise FrameTypeError(f"{name}: combining needs solved frames, not a {type(frame).__name__}")
        wcs_in, _, _ = celestial_wcs(frame)
        to_rate, seconds = _rate_factor(frame, name)
        units.setdefault(u.Unit(frame.unit).to_string(), []).append(name)
        rows = _row_range(wcs_in, frame.data.shape, wcs, shape)
        item = StackInput(frame, name, wcs_in, to_rate, seconds, rows, _sigma_of(frame))
        item.cols = _col_range(wcs_in, frame.data.shape, wcs, shape) if rows is not None else None
        inputs.append(item)
    if len(units) > 1:
        listing = "; ".join(f"{unit}: {', '.join(names)}" for unit, names in units.items())
        raise FrameMismatchError(f"frames in different units cannot be combined ({listing})")
    return inputs


# ----------------------------------------------------------------------
# resampling one band
def _span(values, reach, size):
    """Input index range ``[lo, hi)`` the taps at ``values`` reach: at least ``2 * reach`` wide."""
    lo = max(int(np.floor(values.min())) - reach, 0)
    hi = min(int(np.ceil(values.max())) + reach + 1, size)
    if hi <= lo:
        return None
    short = 2 * reach - (hi - lo)
    if short > 0:  # at the input's edge: the engine needs the kernel's taps in the crop
        lo, hi = max(lo - short, 0), min(hi + short, size)
    return slice(lo, hi)


def _crop(item, x_in, y_in, reach):
    """The input region the taps of a band reach, or None."""
    ny, nx = item.frame.data.shape
    finite = np.isfinite(x_in) & np.isfinite(y_in)
    if not finite.any():
        return None
    rows = _span(y_in[finite], reach, ny)
    cols = _span(x_in[finite], reach, nx)
    if rows is None or cols is None:
        return None
    return rows, cols


def _bad_of(frame, region, data):
    bad = ~np.isfinite(data)
    if frame.mask is not None:
        bad |= np.asarray(frame.mask[region], dtype=bool)
    if frame.flags is not None:
        bad |= flags_to_mask(np.asarray(frame.flags)[region])
    return bad


def _col_range(wcs_in, in_shape, wcs, shape):
    """Output columns ``(x0, x1)`` the input's footprint reaches (with a margin; all when unsure)."""
    x, _ = sky_to_pixel(wcs, footprint_points(wcs_in, in_shape, n_per_edge=16))
    nx = shape[1]
    if not np.all(np.isfinite(x)):
        return 0, nx
    return max(int(np.floor(x.min())) - 8, 0), max(min(int(np.ceil(x.max())) + 9, nx), 1)


def _region_data(item, region):
    """Data, variance (None without an uncertainty) and bad pixels of the input ``region``."""
    data = np.asarray(item.frame.data)[region]
    variance = None if item.sigma is None else np.square(item.sigma[region], dtype=np.float32)
    return data, variance, _bad_of(item.frame, region, data)


def _resample_one(item, wcs, shape, rows, options, cols=None):
    """(rate, variance, its columns within ``cols``) of one frame on one band, or None when it misses it."""
    if item.rows is None or rows.stop <= item.rows[0] or rows.start >= item.rows[1]:
        return None
    window = cols or slice(0, shape[1])
    x0, x1 = item.cols or (0, shape[1])
    x0, x1 = max(x0, window.start), min(x1, window.stop)
    if x1 <= x0:
        return None
    cols = slice(x0, x1)
    x_in, y_in = _core.pixel_map(
        item.wcs, wcs, shape, rows=rows, cols=cols, projection_error=options["projection_error"]
    )
    drizzle = options["kernel"] == "drizzle"
    reach = DRIZZLE_REACH if drizzle else _core.KERNELS[options["kernel"]] + 2
    region = _crop(item, x_in, y_in, reach)
    if region is None:
        return None
    data, variance, bad = _region_data(item, region)
    if drizzle:
        result = drizzle_band(item, wcs, rows, cols, region, (data, variance, bad), options)
        return None if result is None else (*result, slice(x0 - window.start, x1 - window.start))
    out, out_var, weight, _ = _core.resample_band(
        data,
        variance,
        bad,
        None,
        x_in - region[1].start,
        y_in - region[0].start,
        kernel=options["kernel"],
        min_weight=options["min_weight"],
    )
    if not (weight >= options["min_weight"]).any():
        return None
    rate = np.asarray(out, dtype=np.float32) * np.float32(item.to_rate)
    if out_var is not None:
        out_var = np.asarray(out_var, dtype=np.float32) * np.float32(item.to_rate**2)
    return rate, out_var, slice(x0 - window.start, x1 - window.start)


def _options(kernel="lanczos3", projection_error=0.001, min_weight=0.5, pixfrac=1.0):
    if kernel == "drizzle":
        require_drizzle()
        if not 0 < float(pixfrac) <= 1:
            raise ValueError(f"pixfrac must be in (0, 1], not {pixfrac!r}")
    else:
        _core.kernel_half_width(kernel)
    return {
        "kernel": kernel,
        "projection_error": float(projection_error),
        "min_weight": float(min_weight),
        "pixfrac": float(pixfrac),
    }


def resample_rates(inputs, wcs, shape, rows, *, cols=None, **options):
    """Every frame on the output rows ``rows`` in electrons per second (see the module documentation)."""
    options = _options(**options)
    n_rows = rows.stop - rows.start
    width = shape[1] if cols is None else cols.stop - cols.start
    values = np.full((len(inputs), n_rows, width), np.nan, dtype=np.float32)
    variances = np.full(values.shape, np.nan, dtype=np.float32)
    for k, item in enumerate(inputs):
        result = _resample_one(item, wcs, shape, rows, options, cols)
        if result is None:
            continue
        values[k][:, result[2]] = result[0]
        if result[1] is not None:
            variances[k][:, result[2]] = result[1]
    return values, variances


def band_slices(shape, n_frames, band_rows=None):
    """The output bands (row slices) for ``n_frames`` frames within `BAND_VALUES`."""
    ny, nx = shape
    if band_rows is None:
        band_rows = max(MIN_BAND_ROWS, BAND_VALUES // max(n_frames * nx, 1))
    band_rows = int(min(max(band_rows, 1), ny))
    return [slice(start, min(start + band_rows, ny)) for start in range(0, ny, band_rows)]


def _sample_shape(per_frame, ny, nx, min_rows):
    """Band height, width and count that fill ``per_frame`` pixels (full rows while they fit)."""
    if per_frame >= min_rows * nx:
        n_bands = int(min(4, per_frame // (min_rows * nx)))
        return int(min(ny, per_frame // (n_bands * nx))), nx, n_bands
    height = min(ny, min_rows)
    return height, int(min(nx, max(min_rows, per_frame // height))), 1


def sample_rates(inputs, wcs, shape, *, max_values=None, min_rows=32, **options):
    """Every frame on a few bands spread over the grid (see the module documentation)."""
    ny, nx = shape
    max_values = SAMPLE_VALUES if max_values is None else int(max_values)
    per_frame = max(1, max_values // max(len(inputs), 1))
    height, width, n_bands = _sample_shape(per_frame, ny, nx, min_rows)
    starts = np.unique(np.linspace(0, ny - height, n_bands).astype(int))
    bands = [slice(int(s), int(s) + height) for s in starts]
    x0 = (nx - width) // 2
    cols = slice(x0, x0 + width)
    parts = [resample_rates(inputs, wcs, shape, rows, cols=cols, **options) for rows in bands]
    values = np.concatenate([p[0] for p in parts], axis=1)
    variances = np.concatenate([p[1] for p in parts], axis=1)
    return values, variances, bands


# ----------------------------------------------------------------------
# combining
@dataclass
class CombineResult:
    """
    The planes and records of a combination (see `combine_frames`).

    Attributes
    ----------
    data, variance : ndarray (float32)
        Combined value (electrons per second, normalised) and its variance; NaN where nothing covers.
    coverage, rejected_low, rejected_high : ndarray (uint16)
        Frames kept, rejected low and rejected high at each pixel.
    exposure : ndarray (float32)
        Seconds of the kept frames at each pixel.
    weight : ndarray (float32)
        Sum of the weights of the kept frames.
    flags : ndarray (uint32)
        `~astrophot.DQFlag` ``NO_DATA`` where nothing covers.
    records : list of dict
        Per frame: ``file``, ``weight``, ``scale`` (the normalisation factor), ``offset``,
        ``exposure``, ``present`` and ``rejected`` (values) and ``rejected_fraction``.
    rejection : str
        The rule applied (``auto`` resolved).
    n_bands : int
    """

    data: np.ndarray
    variance: np.ndarray
    coverage: np.ndarray
    exposure: np.ndarray
    weight: np.ndarray
    rejected_low: np.ndarray
    rejected_high: np.ndarray
    flags: np.ndarray
    records: list
    rejection: str
    n_bands: int = 0


def _per_frame(values, n, default, what):
    if values is None:
        return np.full(n, float(default))
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} must be {n} finite numbers (one per frame), not {values!r}")
    return arr


def _background_band(background, k, rows, nx):
    """The background of frame ``k`` on the output rows ``rows`` (a number or an array)."""
    if background is None:
        return 0.0
    if callable(background):
        return background(k, rows)
    coef = np.atleast_1d(background[k])
    if coef.size == 1:
        return float(coef[0])
    y = np.arange(rows.start, rows.stop, dtype=np.float64)[:, None]
    x = np.arange(nx, dtype=np.float64)[None, :]
    return coef[0] + coef[1] * x + coef[2] * y


def _check_background(background, n):
    if background is None or callable(background):
        return background
    arr = np.asarray(background, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] not in (1, 3) or not np.all(np.isfinite(arr)):
        raise ValueError(
            f"background must be a callable, {n} offsets or {n} planes (a, p, q), "
            f"not shape {np.shape(background)}"
        )
    return arr


class _Planes:
    """The output planes, filled band by band."""

    def __init__(self, shape, n):
        self.data = np.full(shape, np.nan, dtype=np.float32)
        self.variance = np.full(shape, np.nan, dtype=np.float32)
        self.coverage = np.zeros(shape, dtype=np.uint16)
        self.exposure = np.zeros(shape, dtype=np.float32)
        self.weight = np.zeros(shape, dtype=np.float32)
        self.low = np.zeros(shape, dtype=np.uint16)
        self.high = np.zeros(shape, dtype=np.uint16)
        self.present = np.zeros(n, dtype=np.int64)
        self.rejected = np.zeros(n, dtype=np.int64)

    def store(self, rows, result, exposure):
        shape = (rows.stop - rows.start, self.data.shape[1])
        self.data[rows] = result.value.reshape(shape)
        self.variance[rows] = result.variance.reshape(shape)
        self.coverage[rows] = result.coverage.reshape(shape)
        self.weight[rows] = result.weight.reshape(shape)
        self.low[rows] = result.n_low.reshape(shape)
        self.high[rows] = result.n_high.reshape(shape)
        self.exposure[rows] = (exposure @ result.kept).reshape(shape)
        return result.present_per_frame, result.rejected_per_frame


def _normalise_band(values, variances, rows, plan):
    for k in range(values.shape[0]):
        bg = _background_band(plan["background"], k, rows, values.shape[2])
        if not np.isscalar(bg) or bg != 0.0:
            values[k] -= np.asarray(bg, dtype=np.float32)
        f = np.float32(plan["factor"][k])
        if f != 1:
            values[k] *= f
            variances[k] *= f * f
        if plan["offset"][k] != 0:
            values[k] += np.float32(plan["offset"][k])


def _copy_wcs(shared):
    """The inputs and the output WCS with WCS objects of their own (a thread's copy: `PerThread`)."""
    inputs, wcs = shared
    return [replace(item, wcs=item.wcs.deepcopy()) for item in inputs], wcs.deepcopy()


def _combine_band(inputs, wcs, shape, rows, plan, planes):
    values, variances = resample_rates(inputs, wcs, shape, rows, **plan["resample"])
    _normalise_band(values, variances, rows, plan)
    n = len(inputs)
    has_var = np.isfinite(variances) | ~np.isfinite(values)
    result = combine_stack(
        values.reshape(n, -1),
        rejection=plan["rejection"],
        sigma=plan["sigma"],
        weights=plan["weights"],
        variances=variances.reshape(n, -1) if has_var.all() else None,
        center=plan["center"],
        n_frames=n,
        keep_mask=True,
        **plan["reject_options"],
    )
    counts = planes.store(rows, result, plan["exposure"])
    if plan["progress"] is not None:
        plan["progress"](rows)
    return counts, result.rejection


def _records(inputs, plan, planes):
    records = []
    for k, item in enumerate(inputs):
        present, rejected = int(planes.present[k]), int(planes.rejected[k])
        records.append(
            {
                "file": item.name,
                "weight": float(plan["weights"][k]),
                "scale": float(plan["factor"][k]),
                "offset": float(plan["offset"][k]),
                "exposure": float(item.exposure),
                "present": present,
                "rejected": rejected,
                "rejected_fraction": rejected / present if present else 0.0,
            }
        )
    return records


def _plan(inputs, factor, offset, weights, background, options):
    n = len(inputs)
    weights = _per_frame(weights, n, 1.0, "weights")
    if np.any(weights <= 0):
        raise ValueError("every weight given to the combination must be positive (leave frames out instead)")
    return {
        "factor": _per_frame(factor, n, 1.0, "factor"),
        "offset": _per_frame(offset, n, 0.0, "offset"),
        "weights": weights,
        "background": _check_background(background, n),
        "exposure": np.array([item.exposure for item in inputs], dtype=np.float64),
        **options,
    }


def combine_frames(
    inputs,
    wcs,
    shape,
    *,
    factor=None,
    offset=None,
    weights=None,
    background=None,
    rejection="auto",
    sigma=(3.0, 3.0),
    center="mean",
    reject_options=None,
    kernel="lanczos3",
    projection_error=0.001,
    min_weight=0.5,
    pixfrac=1.0,
    band_rows=None,
    parallel=None,
    progress=None,
):
    """
    Resample and combine prepared frames band by band (see the module documentation).

    Parameters
    ----------
    inputs : list of `StackInput`
        From `prepare_inputs`.
    wcs : `~astropy.wcs.WCS`
    shape : tuple of int
        ``(ny, nx)`` of the output.
    factor, offset, weights : array-like (``n_frames``), optional
        Normalisation and weights of each frame (default 1, 0 and equal).
    background : None, array or callable
        Per-frame background on the output grid (see the module documentation).
    rejection, sigma, center : see `combine_stack`
    reject_options : dict, optional
        Other options of `combine_stack` (``spread``, ``n_low``, ``alpha`` ...).
    kernel, projection_error, min_weight : see `~astrophot.resample_frame`
        ``kernel="drizzle"`` drops the frames with the drizzle package (`._drizzle`).
    pixfrac : float
        The drizzle kernel's drop size (a share of an input pixel).
    band_rows : int, optional
        Output rows per band (default: `BAND_VALUES` values per band buffer).
    parallel : None, bool or int
        Threads over bands (see `astrophot._concurrency`).
    progress : callable, optional
        Called with each band's row slice when it is done (from the worker threads).

    Returns
    -------
    `CombineResult`
    """
    if not inputs:
        raise CombinationError("nothing to combine: no frames")
    started = time.perf_counter()
    options = {
        "rejection": rejection,
        "sigma": sigma,
        "center": center,
        "reject_options": dict(reject_options or {}),
        "resample": _options(kernel, projection_error, min_weight, pixfrac),
        "progress": progress,
    }
    plan = _plan(inputs, factor, offset, weights, background, options)
    planes = _Planes(shape, len(inputs))
    bands = band_slices(shape, len(inputs), band_rows)
    n_threads = resolve_threads(parallel)
    private = PerThread((inputs, wcs), _copy_wcs, n_threads=min(n_threads, len(bands)))
    done = thread_map(
        lambda rows: _combine_band(*private.get(), shape, rows, plan, planes),
        bands,
        n_threads=n_threads,
    )
    for (present, rejected), _ in done:
        planes.present += present
        planes.rejected += rejected
    flags = np.where(planes.coverage == 0, _NO_DATA, np.uint32(0)).astype(np.uint32)
    log.debug(
        "combined %d frames in %d bands in %.2f s", len(inputs), len(bands), time.perf_counter() - started
    )
    return CombineResult(
        data=planes.data,
        variance=planes.variance,
        coverage=planes.coverage,
        exposure=planes.exposure,
        weight=planes.weight,
        rejected_low=planes.low,
        rejected_high=planes.high,
        flags=flags,
        records=_records(inputs, plan, planes),
        rejection=done[0][1] if done else rejection,
        n_bands=len(bands),
    )
