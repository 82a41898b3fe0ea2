# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Apply master calibration frames to a raw light frame."""

import hashlib
import itertools
import logging
import math
import threading
import time
import warnings
from collections import OrderedDict

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.nddata import StdDevUncertainty

from astrophot._concurrency import resolve_threads, thread_map
from astrophot._saturation import datamax_is_saturation
from astrophot.exceptions import (
    AstrophotUserWarning,
    CalibrationError,
    FrameMismatchError,
    MissingKeywordError,
)
from astrophot.frames import (
    BadPixelMap,
    CalibratedFrame,
    DQFlag,
    MasterBias,
    MasterDark,
    MasterFlat,
    RawFrame,
)
from astrophot.frames._validate import warn_if_degenerate
from astrophot.provenance import start_step
from astrophot.reduction._common import (
    as_frame,
    check_compatible,
    header_float,
    parse_section,
    quantity_value,
    telescope_fact,
)

__all__ = ["CalibrationPlan", "calibrate_frame", "prepare_calibration"]

log = logging.getLogger(__name__)

#: Header keywords read for the read noise (electrons), first preferred.
READ_NOISE_KEYS = ("RDNOISE", "READNOIS", "RON", "READNOISE")
#: Header keywords read for the saturation level (raw ADU), first preferred.
SATURATION_KEYS = ("SATURATE", "SATLEVEL", "DATAMAX")

_BLOCK_PIXELS = 1 << 17  # pixels per block of the kernel (fits the CPU caches)
#: The masters' flags are set by index when at most 1 pixel in this many is flagged.
_SPARSE_FRACTION = 16
#: Threads beyond which the kernel (bound by memory bandwidth) gains nothing.
_MAX_THREADS = 2


def _unit_of(unit):
    unit = u.Unit(unit)
    if unit == u.electron:
        return u.electron
    if unit == u.adu:
        return u.adu
    raise ValueError(f"unit must be 'electron' or 'adu', not {unit}")


def _resolve_gain(raw, gain):
    if gain is not None:
        value = quantity_value(gain, u.electron / u.adu, what="gain")
        if not value > 0:
            raise ValueError(f"gain must be positive, got {gain}")
        return value, "argument"
    if raw.gain is not None:
        key = "GAIN" if header_float(raw.header, "GAIN")[0] == "GAIN" else "EGAIN"
        return float(raw.gain.to_value(u.electron / u.adu)), f"header {key}"
    value = telescope_fact(raw, "gain")
    if value is not None:
        return float(u.Quantity(value, u.electron / u.adu).value), f"telescope table ({raw.telescope})"
    return None, None


def _resolve_read_noise(raw, bias, read_noise, gain):
    if read_noise is not None:
        if isinstance(read_noise, u.Quantity) and read_noise.unit == u.adu:
            return float(read_noise.value) * gain, "argument"
        value = quantity_value(read_noise, u.electron, what="read_noise")
        if value < 0:
            raise ValueError(f"read_noise must not be negative, got {read_noise}")
        return value, "argument"
    for frame, where in ((raw, "header"), (bias, "bias header")):
        if frame is None:
            continue
        key, value = header_float(frame.header, *READ_NOISE_KEYS)
        if key is not None and value >= 0:
            return value, f"{where} {key}"
    value = telescope_fact(raw, "read_noise")
    if value is not None:
        return float(u.Quantity(value, u.electron).value), f"telescope table ({raw.telescope})"
    return None, None


def _resolve_saturation(raw, saturation):
    if saturation is not None:
        return quantity_value(saturation, u.adu, what="saturation"), "argument"
    key, value = header_float(raw.header, *SATURATION_KEYS[:-1])
    if key is not None and value > 0:
        return value, f"header {key}"
    value = telescope_fact(raw, "saturation")
    if value is not None:
        return float(u.Quantity(value, u.adu).value), f"telescope table ({raw.telescope})"
    # archives write the frame's own maximum as DATAMAX: believed only at an
    # ADC ceiling or with pixels piled up at it (astrophot._saturation)
    key, value = header_float(raw.header, SATURATION_KEYS[-1])
    if key is not None and datamax_is_saturation(value, raw.data):
        return value, f"header {key}"
    if raw.data.dtype == np.uint16:
        return 65535.0, "16-bit data"
    return None, None


def _uncertainty_array(frame):
    if frame is None or frame.uncertainty is None:
        return None
    uncert = frame.uncertainty
    if not isinstance(uncert, StdDevUncertainty):
        uncert = uncert.represent_as(StdDevUncertainty)
    array = np.asarray(uncert.array)
    if array.shape != frame.data.shape:
        return None
    return array


class _Master:
    """A master's data, uncertainty and flags, trimmed like the light."""

    def __init__(self, frame, role, light, *, full_shape, trim, overscan):
        self.frame = frame
        self.role = role
        data = np.asarray(frame.data)
        uncert = _uncertainty_array(frame)
        flags = frame.flags
        self.overscan_level = 0.0
        shape = tuple(data.shape)
        if trim is not None and shape == tuple(full_shape) and shape != _trimmed_shape(trim, full_shape):
            if overscan and role in ("bias", "dark") and frame.header.get("BIASSEC"):
                section = parse_section(frame.header["BIASSEC"], shape, keyword="BIASSEC", source=frame.name)
                self.overscan_level = float(np.median(data[section]))
            data = data[trim]
            uncert = None if uncert is None else uncert[trim]
            flags = None if flags is None else flags[trim]
            check_compatible(
                light, _ShapeOnly(frame, data.shape), role, shape=_trimmed_shape(trim, full_shape)
            )
        else:
            check_compatible(light, frame, role, shape=_trimmed_shape(trim, full_shape))
        self.data = data  # converted once, in _prepare
        self.uncertainty = uncert
        self.flags = flags


class _ShapeOnly:
    """A stand-in frame with another shape, for the compatibility check."""

    def __init__(self, frame, shape):
        self._frame = frame
        self.data = np.empty(shape, dtype=np.uint8)

    def __getattr__(self, name):
        return getattr(self._frame, name)


def _trimmed_shape(trim, full_shape):
    if trim is None:
        return tuple(full_shape)
    return tuple(len(range(*s.indices(n))) for s, n in zip(trim, full_shape))


def _check_unit(frame, role, expected):
    if frame.unit is not None and frame.unit not in expected:
        raise FrameMismatchError(
            f"the {role} {frame.name} is in {frame.unit}; expected {' or '.join(str(e) for e in expected)}"
        )


def _median_response(flat, good):
    sample = flat[::4, ::4]
    ok = np.isfinite(sample) & (sample > 0)
    if good is not None:
        ok &= good[::4, ::4]
    values = sample[ok]
    if values.size < 16:
        ok = np.isfinite(flat) & (flat > 0)
        values = flat[ok]
    if values.size == 0:
        return None
    return float(np.median(values))


_SAT_BIT = np.uint32(DQFlag.SATURATED)
_LOW_BIT = np.uint32(DQFlag.LOW_RESPONSE)
_NONFINITE_BIT = np.uint32(DQFlag.NONFINITE)
_BAD_BITS = np.uint32(DQFlag.bad_bits())
_REPAIRED_BIT = np.uint32(DQFlag.REPAIRED)


def _saturation_threshold(level, dtype):
    """
    The saturation level to compare raw values of ``dtype`` with (same result, faster).

    Integer raw data are compared with the integer ``ceil(level)`` in their own
    dtype (``x >= level`` if and only if ``x >= ceil(level)`` for an integer
    ``x``), which is several times faster than a comparison through float64.
    ``None`` when no value of the dtype can reach the level.
    """
    if level is None or dtype.kind not in "ui" or not math.isfinite(level):
        return level
    info = np.iinfo(dtype)
    threshold = math.ceil(level)
    if threshold > info.max:
        return None
    if threshold <= info.min:
        return level
    return dtype.type(threshold)


def _run_blocks(kernel, blocks, digest, *, n_threads=1, before=None):
    """
    Run ``kernel`` on every block of rows on ``n_threads`` threads, and feed the
    finished blocks to ``digest`` in order as they come.

    Whichever thread finishes a block hashes the finished blocks that follow
    the last hashed one (one thread at a time, never waiting for the other):
    the checksum costs as much CPU as half the kernel and is spread over the
    threads. ``before`` (the raw frame's checksum) runs first on one of them.
    The threads live for this call only (`astrophot._concurrency.thread_map`).
    Returns the kernel's counts, block by block.
    """
    n = len(blocks)
    counts = [None] * n
    done = [False] * n
    tickets = itertools.count()  # next() is atomic under the GIL
    cursor = [0]
    hash_lock = threading.Lock()
    failed = []

    def advance():
        while hash_lock.acquire(blocking=False):
            try:
                while cursor[0] < n and done[cursor[0]]:
                    digest.update(blocks[cursor[0]])
                    cursor[0] += 1
            finally:
                hash_lock.release()
            # a block finished while the lock was held is hashed here
            if not (cursor[0] < n and done[cursor[0]]):
                return

    def work(index):
        if index == 0 and before is not None:
            before()
        for i in tickets:
            if i >= n or failed:
                return
            try:
                counts[i] = kernel(blocks[i])
            except BaseException:
                failed.append(True)
                raise
            done[i] = True
            advance()

    thread_map(work, range(max(1, min(n_threads, n))), n_threads=n_threads)
    advance()
    if cursor[0] != n:  # pragma: no cover - guards the hand-over above
        raise RuntimeError(f"calibrate_frame: {cursor[0]} of {n} blocks hashed")
    return counts


class _StreamingChecksum:
    """`~astrophot.frames.data_checksum` of a C-ordered array, fed block of rows by block."""

    def __init__(self, array):
        canonical = array.dtype.newbyteorder("<")
        if array.dtype != canonical or not array.flags.c_contiguous:
            raise ValueError("streaming checksums need C-ordered little-endian arrays")
        self.array = array
        self.hash = hashlib.sha256()
        self.hash.update(f"{canonical.str}{array.shape}".encode())

    def update(self, rows):
        self.hash.update(self.array[rows].reshape(-1).view(np.uint8).data)

    def hexdigest(self):
        return self.hash.hexdigest()


class _Prepared:
    """Arrays derived from the masters alone (see `_prepare`)."""

    def __init__(self, **values):
        self.__dict__.update(values)


def _subtracted(b, d, bias_coefficient, ratio):
    """``c_b * bias + r * dark`` (ADU, float32), None when nothing is subtracted."""
    subtract = None
    if b is not None and bias_coefficient != 0.0:
        subtract = np.multiply(b.data, np.float32(bias_coefficient), dtype=np.float32)
    if d is not None and ratio != 0.0:
        dark_part = np.multiply(d.data, np.float32(ratio), dtype=np.float32)
        subtract = dark_part if subtract is None else np.add(subtract, dark_part, out=subtract)
    return subtract


def _masters_variance(b, d, bias_coefficient, ratio, rn_adu2):
    """``read_noise**2 + c_b**2 sigma_bias**2 + r**2 sigma_dark**2`` (ADU**2; a number when it is one)."""
    variance = np.float32(rn_adu2)
    if b is not None and b.uncertainty is not None and bias_coefficient != 0.0:
        variance = np.square(b.uncertainty, dtype=np.float32)
        variance *= np.float32(bias_coefficient**2)
        variance += np.float32(rn_adu2)
    if d is not None and d.uncertainty is not None and ratio != 0.0:
        dark_var = np.square(d.uncertainty, dtype=np.float32)
        dark_var *= np.float32(ratio**2)
        if np.ndim(variance):
            variance += dark_var
        else:
            dark_var += variance
            variance = dark_var
    return variance


def _merged_flags(b, d, f, bpm):
    """The OR of the bad-pixel map and the masters' flags (uint32), None when there are none."""
    flags = None
    sources = [np.asarray(bpm.data)] if bpm is not None else []
    sources += [m.flags for m in (b, d, f) if m is not None and m.flags is not None]
    for source in sources:
        if flags is None:
            flags = np.array(source, dtype=np.uint32)
        else:
            np.bitwise_or(flags, source, out=flags, casting="unsafe")
    return flags


def _flat_factor(f, bpm, shape, out_gain, flat_threshold):
    """The flat's factor, ``(sigma_flat / flat)**2`` (or None), its median response and its too-low pixels."""
    flat = np.asarray(f.data, dtype=np.float32)
    good = None if bpm is None else (np.asarray(bpm.data) == 0)
    flat_median = _median_response(flat, good)
    if flat_median is None:
        raise CalibrationError(f"the flat {f.frame.name} has no positive, finite pixel")
    ok = np.greater(flat, np.float32(flat_threshold * flat_median))  # False for NaN
    low = ~ok
    factor = np.full(shape, np.float32(out_gain), dtype=np.float32)
    flat_relvar = None
    with np.errstate(invalid="ignore", divide="ignore"):
        np.divide(np.float32(out_gain * flat_median), flat, out=factor, where=ok)
        if f.uncertainty is not None:
            flat_relvar = np.divide(np.asarray(f.uncertainty, dtype=np.float32), flat, dtype=np.float32)
            np.square(flat_relvar, out=flat_relvar)
            flat_relvar[low] = 0
    return factor, flat_relvar, flat_median, low


def _sparse_flags(flags):
    """The flagged pixels' flat indices and flags when few are flagged (else None, None)."""
    # few flagged pixels (the usual case): the kernel sets them by index in zeroed
    # flag and mask planes instead of copying the whole plane for every light
    flag_index = flag_values = None
    if flags is not None:
        flag_index = np.flatnonzero(flags)
        if flag_index.size <= flags.size // _SPARSE_FRACTION:
            flag_values = flags.reshape(-1)[flag_index]
        else:
            flag_index = None
    return flag_index, flag_values


def _prepare(b, d, f, bpm, *, shape, trim, bias_coefficient, ratio, rn_adu2, out_gain, flat_threshold):
    """
    Combine the masters into the arrays the kernel needs, once per night.

    ``subtract = c_b * bias + r * dark`` (ADU), ``variance = read_noise**2 +
    c_b**2 sigma_bias**2 + r**2 sigma_dark**2`` (ADU**2), the flat's factor
    ``gain * median / flat`` (``gain`` where the flat is too low) and
    ``(sigma_flat / flat)**2``, and the flags of the bad-pixel map and the
    masters with ``LOW_RESPONSE``. A light calibrated with the same masters,
    exposure ratio, read noise and gain reuses them: a night's frames pay for
    them once (`CalibrationPlan` keeps them).
    """
    frames = [m.frame for m in (b, d, f, bpm) if m is not None]
    # the Poisson term counts every electron of the raw frame, dark current included:
    # it is taken from the light less the bias only
    bias_only = None if b is None else np.asarray(b.data, dtype=np.float32)
    bias_finite = bias_only is None or bool(np.isfinite(bias_only).all())
    subtract = _subtracted(b, d, bias_coefficient, ratio)
    variance = _masters_variance(b, d, bias_coefficient, ratio, rn_adu2)
    finite = subtract is None or bool(np.isfinite(subtract).all())
    if np.ndim(variance):
        finite &= bool(np.isfinite(variance).all())
    flags = _merged_flags(b, d, f, bpm)
    factor = flat_relvar = flat_median = None
    n_low = 0
    if f is not None:
        factor, flat_relvar, flat_median, low = _flat_factor(f, bpm, shape, out_gain, flat_threshold)
        if flat_relvar is not None:
            finite &= bool(np.isfinite(flat_relvar).all())
        finite &= bool(np.isfinite(factor).all())
        n_low = int(np.count_nonzero(low))
        if n_low:
            if flags is None:
                flags = np.zeros(shape, dtype=np.uint32)
            flags[low] |= _LOW_BIT
    plain_mask = flags is None or not np.any(flags & ~_BAD_BITS)
    flag_index, flag_values = _sparse_flags(flags)
    prepared = _Prepared(
        bias=bias_only,
        bias_finite=bias_finite,
        subtract=subtract,
        variance=variance,
        factor=factor,
        flat_relvar=flat_relvar,
        flags=flags,
        flag_index=flag_index,
        flag_values=flag_values,
        plain_mask=plain_mask,
        finite=finite,
        flat_median=flat_median,
        n_low=n_low,
        frames=frames,
    )
    return prepared


class _Kernel:
    """The per-light arithmetic of `calibrate_frame` on one block of rows."""

    def __init__(self, **values):
        self.__dict__.update(values)

    def __call__(self, rows):
        prep = self.prep
        n = rows.stop - rows.start
        nx = self.data.shape[1]
        tmp = np.empty((n, nx), dtype=np.float32)
        sel = np.empty((n, nx), dtype=bool)
        dat, vr, flg, msk = self.data[rows], self.var[rows], self.flags[rows], self.mask[rows]
        counts = [0, 0, 0]
        # sparse: flg and msk arrive zeroed; the flagged pixels' flat indices in the block
        # are collected in `touched` and only those are set
        touched = []
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            self._masters_flags(rows, nx, flg, touched)
            counts[0] = self._raw_values(rows, dat, sel, flg, touched)
            self._variance_before_flat(rows, dat, vr, sel)
            if prep.factor is not None:
                self._flat_field(rows, dat, vr, tmp)
            elif self.out_gain != 1.0:
                dat *= np.float32(self.out_gain)
                vr *= np.float32(self.out_gain * self.out_gain)
            np.sqrt(vr, out=vr)
            if self.check_finite:
                np.add(dat, vr, out=tmp)
                np.isfinite(tmp, out=sel)
                np.logical_not(sel, out=sel)
                counts[1] = np.count_nonzero(sel)
                if counts[1]:
                    self._flag(flg, sel, _NONFINITE_BIT, touched)
            counts[2] = self._mask(flg, msk, tmp, sel, touched)
        return counts

    def _masters_flags(self, rows, nx, flg, touched):
        """Put the masters' flags of the block in ``flg`` (by index when sparse)."""
        prep = self.prep
        if not self.sparse:
            np.copyto(flg, prep.flags[rows])
        elif prep.flag_index is not None:
            lo, hi = self.flag_bounds[rows.start]
            if hi > lo:
                index = prep.flag_index[lo:hi] - rows.start * nx
                flg.reshape(-1)[index] = prep.flag_values[lo:hi]
                touched.append(index)

    def _raw_values(self, rows, dat, sel, flg, touched):
        """The raw block less the overscan level in ``dat``, saturation flagged; returns the count."""
        rawb = self.raw[rows]
        np.copyto(dat, rawb, casting="unsafe")
        n_saturated = 0
        if self.sat_level is not None:
            np.greater_equal(rawb, self.sat_level, out=sel)  # in the raw dtype when it is integer
            n_saturated = np.count_nonzero(sel)
            if n_saturated:
                self._flag(flg, sel, _SAT_BIT, touched)
        if self.offset:
            dat -= np.float32(self.offset)
        return n_saturated

    def _variance_before_flat(self, rows, dat, vr, sel):
        """Subtract the bias and dark from ``dat``; the variance in ADU**2 before the flat in ``vr``."""
        prep = self.prep
        # variance in ADU**2 before the flat: Poisson (light less bias) ...
        if prep.bias is not None:
            np.subtract(dat, prep.bias[rows], out=vr)
            positive = vr
        else:
            positive = dat
        if self.finite_poisson:
            # max(x, 0) for finite x, twice as fast as np.maximum: x * (x > 0) (-0.0 for x < 0,
            # which the read-noise term added next turns into +0.0)
            np.greater(positive, 0, out=sel)
            np.multiply(positive, sel, out=vr)
        else:
            np.maximum(positive, 0, out=vr)
        if prep.subtract is not None:
            dat -= prep.subtract[rows]
        vr *= np.float32(1.0 / self.gain)
        # ... plus read noise and the masters' variance
        vr += prep.variance[rows] if np.ndim(prep.variance) else prep.variance

    def _flat_field(self, rows, dat, vr, tmp):
        """Divide by the flat (the prepared factor); the variance follows."""
        prep = self.prep
        factor = prep.factor[rows]
        dat *= factor
        # squared here rather than read from a prepared plane: the kernel is bound by
        # memory bandwidth, and the block of the factor is still in the cache
        np.square(factor, out=tmp)
        vr *= tmp
        if prep.flat_relvar is not None:
            # (value * sigma_flat / flat)**2
            np.square(dat, out=tmp)
            tmp *= prep.flat_relvar[rows]
            vr += tmp

    def _mask(self, flg, msk, tmp, sel, touched):
        """Mask the pixels with a bad flag not repaired; returns the count masked."""
        if self.sparse:
            if not touched:
                return 0
            index = touched[0] if len(touched) == 1 else np.unique(np.concatenate(touched))
            values = flg.reshape(-1)[index]
            masked = ((values & _BAD_BITS) != 0) & ((values & _REPAIRED_BIT) == 0)
            msk.reshape(-1)[index] = masked
            return np.count_nonzero(masked)
        if self.prep.plain_mask:
            # every bit set is a bad bit: masked wherever a flag is set
            np.not_equal(flg, 0, out=msk)
        else:
            np.bitwise_and(flg, _BAD_BITS, out=tmp.view(np.uint32))
            np.not_equal(tmp.view(np.uint32), 0, out=msk)
            np.bitwise_and(flg, _REPAIRED_BIT, out=tmp.view(np.uint32))
            np.equal(tmp.view(np.uint32), 0, out=sel)
            msk &= sel
        return np.count_nonzero(msk)

    def _flag(self, flg, sel, bit, touched):
        if self.sparse:
            index = np.flatnonzero(sel)
            flg.reshape(-1)[index] |= bit
            touched.append(index)
        else:
            np.bitwise_or(flg, bit, out=flg, where=sel)


#: calibrate_frame's options and their defaults: what a `CalibrationPlan` holds besides the masters.
_OPTIONS = {
    "gain": None,
    "read_noise": None,
    "unit": "electron",
    "saturation": None,
    "overscan": True,
    "dark_includes_bias": None,
    "flat_threshold": 0.1,
    "max_dark_ratio": 2.0,
    "temperature_tolerance": 1.0 * u.K,
}
#: The masters: keyword, frame class, role in messages.
_MASTERS = (
    ("bias", MasterBias, "bias"),
    ("dark", MasterDark, "dark"),
    ("flat", MasterFlat, "flat"),
    ("bad_pixels", BadPixelMap, "bad-pixel map"),
)
#: Prepared arrays a plan keeps (one per light geometry, exposure ratio, read noise and gain).
_PLAN_CACHE_SIZE = 2


class CalibrationPlan:
    """
    The masters and options of `calibrate_frame`, prepared once for many lights.

    Made by `prepare_calibration`; pass it as ``calibrate_frame(raw, plan=plan)``.
    The masters are read (when given as paths) and hashed once, when the plan is
    made. What depends on the masters alone (the combined bias and dark, the
    flat's factor, the merged flags) is computed by the first light and kept in
    the plan for the next lights with the same geometry, exposure ratio, read
    noise and gain (the last two sets are kept).

    A plan is picklable (a night runner sends one per filter to its workers):
    the masters, their checksums and the options travel, the prepared arrays
    do not (each worker prepares them on its first light). A plan is safe to
    share between threads.

    Attributes
    ----------
    bias, dark, flat, bad_pixels : frame or None
        The masters (`~astrophot.MasterBias`, `~astrophot.MasterDark`,
        `~astrophot.MasterFlat`, `~astrophot.BadPixelMap`).
    options : dict
        `calibrate_frame`'s other options (``gain``, ``read_noise``, ``unit``,
        ``saturation``, ``overscan``, ``dark_includes_bias``,
        ``flat_threshold``, ``max_dark_ratio``, ``temperature_tolerance``).
    """

    def __init__(self, *, bias=None, dark=None, flat=None, bad_pixels=None, options=None):
        self.bias = bias
        self.dark = dark
        self.flat = flat
        self.bad_pixels = bad_pixels
        self.options = {**_OPTIONS, **(options or {})}
        self._cache = OrderedDict()
        self._lock = threading.Lock()

    @property
    def masters(self):
        """The masters by keyword (``bias``, ``dark``, ``flat``, ``bad_pixels``), None when absent."""
        return {name: getattr(self, name) for name, _, _ in _MASTERS}

    def __repr__(self):
        given = ", ".join(f"{name}={frame.name}" for name, frame in self.masters.items() if frame is not None)
        return f"<CalibrationPlan {given or 'no masters'}>"

    def __getstate__(self):
        state = self.__dict__.copy()
        del state["_cache"], state["_lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._cache = OrderedDict()
        self._lock = threading.Lock()

    def _prepared(self, key, build):
        """The prepared arrays for ``key``, built by ``build()`` the first time."""
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        prepared = build()
        with self._lock:
            self._cache[key] = prepared
            while len(self._cache) > _PLAN_CACHE_SIZE:
                self._cache.popitem(last=False)
        return prepared


def prepare_calibration(
    *,
    bias=None,
    dark=None,
    flat=None,
    bad_pixels=None,
    gain=None,
    read_noise=None,
    unit="electron",
    saturation=None,
    overscan=True,
    dark_includes_bias=None,
    flat_threshold=0.1,
    max_dark_ratio=2.0,
    temperature_tolerance=1.0 * u.K,
):
    """
    Read, check and hash a set of masters once, for `calibrate_frame` on many lights.

    Parameters
    ----------
    bias, dark, flat, bad_pixels : frame or path-like, optional
        The masters, as for `calibrate_frame` (a path is read with
        `~astrophot.read_frame`, once).
    gain, read_noise, unit, saturation, overscan, dark_includes_bias, flat_threshold, max_dark_ratio, temperature_tolerance : optional
        `calibrate_frame`'s options, applied to every light calibrated with the plan.

    Returns
    -------
    `CalibrationPlan`
        Picklable; give it as ``calibrate_frame(raw, plan=plan)``.

    Raises
    ------
    astrophot.exceptions.FrameTypeError
        A master is not of the expected frame type.
    astrophot.exceptions.FrameMismatchError
        The bias or dark is not in ADU.
    ValueError
        ``unit`` is neither electrons nor ADU.

    See Also
    --------
    calibrate_frame : applies the plan to a light.

    Examples
    --------
    >>> import numpy as np
    >>> from astrophot import MasterBias, RawFrame, calibrate_frame, prepare_calibration
    >>> plan = prepare_calibration(bias=MasterBias(np.full((4, 4), 100.0, dtype=np.float32)), read_noise=10.0)
    >>> lights = [RawFrame(np.full((4, 4), v, dtype=np.uint16), meta={"GAIN": 2.0}) for v in (1100, 1200)]
    >>> [float(calibrate_frame(raw, plan=plan).data[0, 0]) for raw in lights]
    [2000.0, 2200.0]
    """
    _unit_of(unit)
    given = {"bias": bias, "dark": dark, "flat": flat, "bad_pixels": bad_pixels}
    masters = {name: as_frame(given[name], cls, role) for name, cls, role in _MASTERS}
    for name in ("bias", "dark"):
        if masters[name] is not None:
            _check_unit(masters[name], name, (u.adu, u.dimensionless_unscaled))
    for frame in masters.values():
        if frame is not None:
            frame.checksum()  # once, for the provenance of every light
    options = {
        "gain": gain,
        "read_noise": read_noise,
        "unit": unit,
        "saturation": saturation,
        "overscan": overscan,
        "dark_includes_bias": dark_includes_bias,
        "flat_threshold": flat_threshold,
        "max_dark_ratio": max_dark_ratio,
        "temperature_tolerance": temperature_tolerance,
    }
    return CalibrationPlan(**masters, options=options)


def _is_default(name, value):
    default = _OPTIONS.get(name)
    if value is default:
        return True
    try:
        return bool(value == default)
    except (TypeError, ValueError, u.UnitsError):
        return False


def _plan_for(plan, given):
    """The plan ``calibrate_frame`` uses: ``plan``, or one made from the keywords."""
    if plan is None:
        return prepare_calibration(**given)
    if not isinstance(plan, CalibrationPlan):
        raise TypeError(
            f"plan must be a CalibrationPlan (from prepare_calibration), not {type(plan).__name__}"
        )
    extra = [
        name
        for name, value in given.items()
        if (value is not None if name not in _OPTIONS else not _is_default(name, value))
    ]
    if extra:
        raise ValueError(
            f"calibrate_frame: {', '.join(extra)} given with plan=; "
            "give the masters and options to prepare_calibration instead"
        )
    return plan


def _light_geometry(raw, overscan):
    """The light's pixels to calibrate, its overscan level and trim (None when untrimmed)."""
    full_shape = tuple(raw.data.shape)
    raw_data = np.asarray(raw.data)
    overscan_level = 0.0
    trim = None
    if overscan:
        if raw.header.get("BIASSEC"):
            section = parse_section(raw.header["BIASSEC"], full_shape, keyword="BIASSEC", source=raw.name)
            overscan_level = float(np.median(raw_data[section]))
        for key in ("TRIMSEC", "DATASEC"):
            if raw.header.get(key):
                trim = parse_section(raw.header[key], full_shape, keyword=key, source=raw.name)
                break
    if trim is not None:
        raw_data = raw_data[trim]
    return raw_data, overscan_level, trim, full_shape


def _electronics(raw, bias, options, out_unit):
    """Gain, read noise and saturation with where each came from."""
    gain_value, gain_source = _resolve_gain(raw, options["gain"])
    if gain_value is None:
        if out_unit == u.electron:
            raise MissingKeywordError(
                "GAIN",
                ("EGAIN",),
                source=raw.name,
                purpose="conversion to electrons; pass gain=, or unit='adu'",
            )
        warnings.warn(
            f"{raw.name}: no gain (GAIN/EGAIN, argument or telescope table); the Poisson "
            "part of the uncertainty assumes 1 electron/adu",
            AstrophotUserWarning,
            stacklevel=3,
        )
        gain_value, gain_source = 1.0, "assumed"
    rn_e, rn_source = _resolve_read_noise(raw, bias, options["read_noise"], gain_value)
    if rn_e is None:
        warnings.warn(
            f"{raw.name}: no read noise (argument, RDNOISE/READNOIS in the light or bias header, "
            "or telescope table); the uncertainty omits it",
            AstrophotUserWarning,
            stacklevel=3,
        )
        rn_e, rn_source = 0.0, "none"
    sat_level, sat_source = _resolve_saturation(raw, options["saturation"])
    return {
        "gain": gain_value,
        "gain_source": gain_source,
        "read_noise": rn_e,
        "read_noise_source": rn_source,
        "saturation": sat_level,
        "saturation_source": sat_source,
    }


def _check_temperature(raw, dark, tolerance):
    t_raw, t_drk = raw.set_temperature, dark.set_temperature
    if t_raw is None or t_drk is None:
        return
    difference = abs(t_raw.to_value(u.deg_C) - t_drk.to_value(u.deg_C))
    if difference > u.Quantity(tolerance, u.K).value:
        warnings.warn(
            f"{raw.name}: set temperature {t_raw.value:g} C differs from the dark "
            f"{dark.name}'s {t_drk.value:g} C by {difference:g} K",
            AstrophotUserWarning,
            stacklevel=4,
        )


def _dark_scaling(raw, dark, bias, options):
    """``(ratio, bias_coefficient, includes_bias)`` of the dark for this light."""
    if dark is None:
        return 0.0, 1.0, False
    t_light = raw.require("exposure_time", purpose="scaling the dark").to_value(u.s)
    t_dark = dark.require("exposure_time", purpose="scaling the dark").to_value(u.s)
    if t_dark <= 0:
        raise CalibrationError(f"the dark {dark.name} has exposure time {t_dark} s; cannot scale it")
    ratio = t_light / t_dark
    if ratio > options["max_dark_ratio"]:
        warnings.warn(
            f"{raw.name}: the dark {dark.name} ({t_dark:g} s) is extrapolated {ratio:.2f}x "
            f"to the light's {t_light:g} s (more than {options['max_dark_ratio']:g}x)",
            AstrophotUserWarning,
            stacklevel=3,
        )
    _check_temperature(raw, dark, options["temperature_tolerance"])
    includes_bias = options["dark_includes_bias"]
    if includes_bias is None:
        known = dark.bias_subtracted
        if known is None:
            log.info("%s: the dark has no CALSTAT; taking it as bias-subtracted", dark.name)
        includes_bias = known is False
    if not includes_bias:
        return ratio, 1.0, False
    if bias is None:
        raise CalibrationError(
            f"the dark {dark.name} still contains the bias (CALSTAT {dark.header.get('CALSTAT')!r}); "
            "pass the matching bias too"
        )
    return ratio, 1.0 - ratio, True


def _check_filter(raw, flat):
    if flat is None or not raw.filter or not flat.filter:
        return
    if raw.filter.strip().lower() != flat.filter.strip().lower():
        warnings.warn(
            f"{raw.name}: filter {raw.filter!r} differs from the flat {flat.name}'s {flat.filter!r}",
            AstrophotUserWarning,
            stacklevel=3,
        )


def _apply(prep, raw, raw_data, *, offset, sat_level, gain, out_gain, n_threads):
    """The kernel over the light, block by block: the product's planes, counts and checksum."""
    shape = raw_data.shape
    ny, nx = shape
    data = np.empty(shape, dtype=np.float32)
    var = np.empty(shape, dtype=np.float32)
    sparse = prep.flags is None or prep.flag_index is not None
    flags = (np.zeros if sparse else np.empty)(shape, dtype=np.uint32)
    mask = (np.zeros if sparse else np.empty)(shape, dtype=bool)
    integer_raw = raw_data.dtype.kind in "ui"
    kernel = _Kernel(
        prep=prep,
        raw=raw_data,
        data=data,
        var=var,
        flags=flags,
        mask=mask,
        sat_level=_saturation_threshold(sat_level, raw_data.dtype),
        offset=offset,
        gain=gain,
        out_gain=out_gain,
        check_finite=not (prep.finite and integer_raw),
        finite_poisson=prep.bias_finite and integer_raw,
        sparse=sparse,
    )
    step = max(1, _BLOCK_PIXELS // max(nx, 1))
    blocks = [slice(start, min(start + step, ny)) for start in range(0, ny, step)]
    if prep.flag_index is not None:
        # where each block's flagged pixels are in the sorted flat indices
        edges = np.searchsorted(prep.flag_index, [rows.start * nx for rows in blocks] + [ny * nx]).tolist()
        kernel.flag_bounds = {rows.start: (edges[i], edges[i + 1]) for i, rows in enumerate(blocks)}
    digest = _StreamingChecksum(data)
    # the raw frame's checksum (for the provenance) is computed by one of the threads first
    counts = _run_blocks(kernel, blocks, digest, n_threads=n_threads, before=raw.checksum)
    totals = [int(sum(c[i] for c in counts)) for i in range(3)]
    return (data, var, flags, mask), totals, digest.hexdigest()


def _product_header(raw, plan, *, trim, out_unit, gain_value, rn_e):
    header = fits.Header(raw.header).copy()
    for key in ("BZERO", "BSCALE", "BLANK", "PEDESTAL", "EGAIN", "CHECKSUM", "DATASUM"):
        header.remove(key, ignore_missing=True, remove_all=True)
    if trim is not None:
        for key in ("BIASSEC", "TRIMSEC", "DATASEC"):
            header.remove(key, ignore_missing=True, remove_all=True)
    header["BUNIT"] = (out_unit.to_string(), "physical unit of the data")
    steps = "".join(
        code for code, name in (("B", "bias"), ("D", "dark"), ("F", "flat")) if getattr(plan, name)
    )
    if steps:
        header["CALSTAT"] = (steps, "calibrations applied: B bias, D dark, F flat")
    header["GAIN"] = (gain_value if out_unit == u.adu else 1.0, "[e-/data unit] gain of the calibrated data")
    header["CALGAIN"] = (gain_value, "[e-/adu] gain applied by calibrate_frame")
    header["RDNOISE"] = (rn_e / (1.0 if out_unit == u.electron else gain_value), f"[{out_unit}] read noise")
    return header


def calibrate_frame(
    raw,
    *,
    plan=None,
    bias=None,
    dark=None,
    flat=None,
    bad_pixels=None,
    gain=None,
    read_noise=None,
    unit="electron",
    saturation=None,
    overscan=True,
    dark_includes_bias=None,
    flat_threshold=0.1,
    max_dark_ratio=2.0,
    temperature_tolerance=1.0 * u.K,
    parallel=None,
):
    """
    Calibrate a raw light frame: bias, dark, flat, gain, uncertainty and flags.

    Parameters
    ----------
    raw : `~astrophot.RawFrame` or path-like
        The light frame, in ADU as read (a path is read with `~astrophot.read_frame`).
    plan : `CalibrationPlan`, optional
        The masters and options, prepared once by `prepare_calibration` for
        many lights (masters given as paths are then read and hashed once).
        With a plan, give no master or option here.
    bias : `~astrophot.MasterBias` or path-like, optional
        Master bias (ADU).
    dark : `~astrophot.MasterDark` or path-like, optional
        Master dark (ADU), scaled by the ratio of exposure times.
    flat : `~astrophot.MasterFlat` or path-like, optional
        Master flat; normalised here by its median over good pixels.
    bad_pixels : `~astrophot.BadPixelMap` or path-like, optional
        Its `~astrophot.DQFlag` bits are copied into the output flags.
    gain : float or `~astropy.units.Quantity`, optional
        Electrons per ADU. Default: ``GAIN``/``EGAIN`` from the header, else the
        iTelescope telescope table.
    read_noise : float or `~astropy.units.Quantity`, optional
        Read noise in electrons (or a Quantity in adu). Default: ``RDNOISE``
        (or ``READNOIS``, ``RON``) from the light's header, then the bias's,
        then the telescope table.
    unit : {'electron', 'adu'}, optional
        Unit of the result (``BUNIT`` follows).
    saturation : float or `~astropy.units.Quantity`, optional
        Raw level (ADU) at and above which pixels are flagged ``SATURATED``.
        Default: ``SATURATE``/``SATLEVEL`` from the header, the camera table,
        ``DATAMAX`` when it is at an ADC ceiling or reached by 3 pixels or more
        (archives write the frame's maximum there), or 65535 for unsigned
        16-bit data.
    overscan : bool, optional
        Subtract the median of the ``BIASSEC`` region and trim to ``TRIMSEC``
        (or ``DATASEC``) when the header declares them.
    dark_includes_bias : bool, optional
        Whether the dark still holds the bias. Default: from the dark's
        ``CALSTAT`` (``'M'``: yes, ``'BM'``: no); when it has none, no.
    flat_threshold : float, optional
        Pixels where the normalised flat is at or below this (or not finite)
        are flagged ``LOW_RESPONSE`` and not divided by the flat.
    max_dark_ratio : float, optional
        Warn when the dark is scaled up by more than this factor.
    temperature_tolerance : `~astropy.units.Quantity`, optional
        Warn when the set temperatures of the dark and the light differ by more.
    parallel : None, bool or int, optional
        Threads for the per-light arithmetic and checksums (see
        `astrophot._concurrency`): None (default) uses up to two, one inside
        a Dask worker; False or 1 the calling thread only.

    Returns
    -------
    `~astrophot.CalibratedFrame`
        float32 data in ``unit``, a `~astropy.nddata.StdDevUncertainty`,
        `~astrophot.DQFlag` bits in ``flags`` and the mask derived from them.

    Raises
    ------
    astrophot.exceptions.FrameMismatchError
        A master's shape, binning or subframe origin differs from the light's
        (the message names both files), or a master is in the wrong unit.
    astrophot.exceptions.MissingKeywordError
        An exposure time needed to scale the dark is missing, or no gain is
        known while electrons are requested.
    astrophot.exceptions.CalibrationError
        The dark still holds the bias but no bias was given, or the flat has
        no positive pixel.
    astrophot.exceptions.FrameTypeError
        An input is not of the expected frame type.

    Warns
    -----
    astrophot.exceptions.AstrophotUserWarning
        The dark is extrapolated more than ``max_dark_ratio`` times its own
        exposure, its set temperature differs from the light's, the flat's
        filter differs from the light's, or no read noise is known.

    See Also
    --------
    astrophot.make_master_bias, astrophot.make_master_dark, astrophot.make_master_flat :
        the masters.
    fix_bad_pixels, reject_cosmic_rays, add_metadata : the next stages.

    Notes
    -----
    The steps, all in float32 (unsigned 16-bit input is converted before any
    subtraction):

    1. overscan: subtract the median of ``BIASSEC`` and trim to ``TRIMSEC``
       (1-based FITS sections). Masters of the untrimmed shape are trimmed the
       same way (and lose their own ``BIASSEC`` median);
    2. ``light - c_b * bias - r * dark`` with ``r = t_light / t_dark`` and
       ``c_b = 1 - r`` when the dark still holds the bias (it is removed from
       the dark first), else ``c_b = 1``;
    3. division by ``flat / median(flat)`` (median over good pixels). Where the
       normalised flat is at or below ``flat_threshold`` the value is left
       undivided and flagged ``LOW_RESPONSE`` (masked);
    4. multiplication by the gain when the result is in electrons.

    The variance is ``max(light - bias, 0) / gain + read_noise**2 + c_b**2
    sigma_bias**2 + r**2 sigma_dark**2`` (ADU; the Poisson term includes the
    dark current's electrons), divided by the flat squared, plus
    ``(value * sigma_flat / flat)**2``.

    Flags: the bad-pixel map's bits and any flags the masters carry,
    ``SATURATED`` where the raw value is at or above the saturation level,
    ``LOW_RESPONSE`` from the flat and ``NONFINITE`` where the result is not
    finite. The header gets ``BUNIT``, ``CALSTAT`` (``B``, ``D``, ``F`` as
    MaxIm DL writes them), ``GAIN`` (1 for electrons; the raw gain is kept
    in ``CALGAIN``) and ``RDNOISE`` in the output unit. The masters are
    referenced (with checksums) in the provenance, not in the header.

    What depends on the masters alone (the combined bias and dark, the flat's
    factor, the merged flags) is prepared once per `CalibrationPlan` and reused
    by its next lights; without ``plan=`` a plan is made for this call alone,
    so a night should call `prepare_calibration` once and pass the plan. The
    per-light arithmetic runs in blocks of rows on ``parallel`` threads (they
    live for the call), which also compute the checksums; the result does not
    depend on the number of threads.

    Examples
    --------
    >>> import numpy as np
    >>> from astrophot import MasterBias, RawFrame, calibrate_frame
    >>> raw = RawFrame(np.full((4, 4), 1100, dtype=np.uint16), meta={"EXPTIME": 10.0, "GAIN": 2.0})
    >>> bias = MasterBias(np.full((4, 4), 100.0, dtype=np.float32))
    >>> cal = calibrate_frame(raw, bias=bias, read_noise=10.0)
    >>> float(cal.data[0, 0]), cal.unit
    (2000.0, Unit("electron"))
    >>> round(float(cal.uncertainty.array[0, 0]), 3)  # sqrt(2000 + 10**2)
    45.826
    """
    t_start = time.perf_counter()
    raw = as_frame(raw, RawFrame, "light frame")
    given = {
        "bias": bias,
        "dark": dark,
        "flat": flat,
        "bad_pixels": bad_pixels,
        "gain": gain,
        "read_noise": read_noise,
        "unit": unit,
        "saturation": saturation,
        "overscan": overscan,
        "dark_includes_bias": dark_includes_bias,
        "flat_threshold": flat_threshold,
        "max_dark_ratio": max_dark_ratio,
        "temperature_tolerance": temperature_tolerance,
    }
    plan = _plan_for(plan, given)
    n_threads = resolve_threads(parallel)
    if parallel is None:
        n_threads = min(n_threads, _MAX_THREADS)
    options = plan.options
    out_unit = _unit_of(options["unit"])
    bias, dark, flat, bad_pixels = plan.bias, plan.dark, plan.flat, plan.bad_pixels

    raw_data, overscan_level, trim, full_shape = _light_geometry(raw, options["overscan"])
    masters = {}
    for name, _, role in _MASTERS:
        frame = getattr(plan, name)
        if frame is not None:
            masters[name] = _Master(
                frame, role, raw, full_shape=full_shape, trim=trim, overscan=options["overscan"]
            )
    outcome = _electronics(raw, bias, options, out_unit)
    gain_value, rn_e = outcome["gain"], outcome["read_noise"]
    ratio, bias_coefficient, includes_bias = _dark_scaling(raw, dark, bias, options)
    _check_filter(raw, flat)

    # what the masters contribute, prepared once per plan and light geometry
    b, d, f, bpm = (masters.get(name) for name in ("bias", "dark", "flat", "bad_pixels"))
    offset = overscan_level
    if b is not None:
        offset -= bias_coefficient * b.overscan_level
    if d is not None:
        offset -= ratio * d.overscan_level
    out_gain = gain_value if out_unit == u.electron else 1.0
    rn_adu2 = (rn_e / gain_value) ** 2
    shape = tuple(raw_data.shape)
    settings = {
        "shape": shape,
        "trim": trim,
        "bias_coefficient": bias_coefficient,
        "ratio": ratio,
        "rn_adu2": rn_adu2,
        "out_gain": out_gain,
        "flat_threshold": float(options["flat_threshold"]),
    }
    key = (shape, None if trim is None else tuple((s.start, s.stop) for s in trim), bias_coefficient, ratio)
    key += (rn_adu2, out_gain, settings["flat_threshold"])
    prep = plan._prepared(key, lambda: _prepare(b, d, f, bpm, **settings))

    planes, (n_sat, n_nonfinite, n_masked), product_checksum = _apply(
        prep,
        raw,
        raw_data,
        offset=offset,
        sat_level=outcome["saturation"],
        gain=gain_value,
        out_gain=out_gain,
        n_threads=n_threads,
    )
    data, var, flags, mask = planes
    header = _product_header(raw, plan, trim=trim, out_unit=out_unit, gain_value=gain_value, rn_e=rn_e)
    wcs = raw.wcs
    if wcs is not None and trim is not None:
        wcs = wcs[trim]
    out = CalibratedFrame(
        data,
        unit=out_unit,
        meta=header,
        uncertainty=StdDevUncertainty(var, copy=False),
        flags=flags,
        mask=mask,
        wcs=wcs,
    )
    warn_if_degenerate(out, raw.name, noise=rn_e * out_gain / gain_value if rn_e else None)
    outcome.update(
        overscan_level=overscan_level if overscan_level else None,
        trim=None if trim is None else [[s.start, s.stop] for s in trim],
        dark_ratio=ratio if dark is not None else None,
        dark_includes_bias=bool(includes_bias) if dark is not None else None,
        flat_median=prep.flat_median,
        n_saturated=n_sat,
        n_low_response=prep.n_low,
        n_nonfinite=n_nonfinite,
        n_masked=n_masked,
    )
    log.debug("%s: calibrated (%s)", raw.name, outcome)
    out._checksum = product_checksum
    parameters = dict(options, unit=out_unit.to_string())
    rec = start_step(
        "calibrate_frame",
        parameters=parameters,
        inputs={"raw": raw, "bias": bias, "dark": dark, "flat": flat, "bad_pixels": bad_pixels},
        started=t_start,  # the step began when the function did (checksums computed along the way)
    )
    return rec.finish(out, primary=raw, outcome=outcome)
