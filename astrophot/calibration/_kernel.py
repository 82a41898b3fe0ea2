# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The band-by-band combining kernel.

Every input is read once, a band of rows at a time, into a small buffer.
Within a band the values of each pixel are sorted along the frame axis by a
sorting network applied to whole rows at once (each comparator is one
``np.minimum`` and one ``np.maximum`` over the band), so the work is a few
hundred vectorised passes over a buffer that stays in the CPU cache. On
sorted values:

- min/max rejection by count keeps the index range ``[n_low, n_valid - n_high)``;
- sigma clipping keeps a contiguous index range as well: the median is read
  at the middle of the range, the absolute deviations from it form a
  V-shaped (bitonic) sequence that a bitonic merger sorts, giving the median
  absolute deviation, and the new range follows from counting the values
  below and above the limits;
- the median, mean, weighted mean and the spread of the kept values follow
  from the final range.

The checksums of file inputs are computed from the same bytes (each file is
read once), by a helper thread while the worker threads sort. The number of
threads follows `astrophot._concurrency`: ``workers`` is its ``parallel``, the
automatic count is at most `_MAX_AUTO_WORKERS`, and with one thread (as inside
a Dask worker) everything runs in the calling thread.
"""

import contextlib
import functools
import logging
import math
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from astrophot._concurrency import resolve_threads
from astrophot.exceptions import CalibrationError, FrameMismatchError

__all__ = ["MAD_TO_STD", "bitonic_merger", "combine_sources", "sorting_network"]

log = logging.getLogger(__name__)

#: Converts a median absolute deviation to a Gaussian standard deviation.
MAD_TO_STD = 1.482602218505602

#: Target size of the per-band working set (bytes); keeps the band in cache.
_BAND_TARGET_BYTES = 5 * 2**19

_METHODS = ("average", "median")

#: Combining threads of the automatic choice (the kernel is bound by memory bandwidth beyond it).
_MAX_AUTO_WORKERS = 2


def _pow2(n):
    p = 1
    while p < n:
        p *= 2
    return p


@functools.cache
def sorting_network(n):
    """
    Comparators of Batcher's odd-even merge sort for ``n`` elements.

    Parameters
    ----------
    n : int

    Returns
    -------
    tuple of (int, int)
        Pairs ``(i, j)``, ``i < j``: put the smaller value at ``i``. Applied in
        order they sort any ``n`` values. Built for the next power of two and
        restricted to ``j < n`` (the missing elements act as +inf).
    """
    p = _pow2(n)
    pairs = []
    t = 1
    while t < p:
        k = t
        while k >= 1:
            j = k % t
            while j <= p - 1 - k:
                for i in range(min(k, p - j - k)):
                    a, b = i + j, i + j + k
                    if a // (2 * t) == b // (2 * t) and b < n:
                        pairs.append((a, b))
                j += 2 * k
            k //= 2
        t *= 2
    return tuple(pairs)


@functools.cache
def bitonic_merger(n):
    """
    Comparators that sort a bitonic sequence of ``n`` elements.

    The sequence may be padded with +inf at either end (a "V" of absolute
    deviations with rejected values set to +inf is such a sequence).

    Parameters
    ----------
    n : int

    Returns
    -------
    tuple of (int, int)
    """
    p = _pow2(n)
    pairs = []
    half = p // 2
    while half >= 1:
        for start in range(0, p, 2 * half):
            for i in range(start, start + half):
                if i + half < n:
                    pairs.append((i, i + half))
        half //= 2
    return tuple(pairs)


def prune(pairs, outputs):
    """
    Keep only the comparators of a network that can change ``outputs``.

    Parameters
    ----------
    pairs : sequence of (int, int)
    outputs : iterable of int
        Positions whose final values are needed.

    Returns
    -------
    tuple of (int, int)
    """
    needed = set(outputs)
    kept = []
    for a, b in reversed(pairs):
        if a in needed or b in needed:
            kept.append((a, b))
            needed.update((a, b))
    return tuple(reversed(kept))


@functools.cache
def _median_merger(n, count):
    """Bitonic merger pruned to the two middle ranks of ``count`` values."""
    return prune(bitonic_merger(n), {(count - 1) // 2, count // 2})


def _apply(rows, pairs, tmp, payload=None, ptmp=None):
    """Apply comparators to a list of equal-length 1-D arrays (in place, by rebinding)."""
    if payload is None:
        for a, b in pairs:
            ra, rb = rows[a], rows[b]
            np.minimum(ra, rb, out=tmp)
            np.maximum(ra, rb, out=rb)
            rows[a], tmp = tmp, ra
        return tmp, None
    swap = None
    for a, b in pairs:
        ra, rb = rows[a], rows[b]
        swap = np.greater(ra, rb, out=swap)
        np.minimum(ra, rb, out=tmp)
        np.maximum(ra, rb, out=rb)
        rows[a], tmp = tmp, ra
        pa, pb = payload[a], payload[b]
        np.copyto(ptmp, pa)
        np.copyto(pa, pb, where=swap)
        np.copyto(pb, ptmp, where=swap)
    return tmp, ptmp


class _Band:
    """Buffers for one chunk of a band (reused from band to band)."""

    def __init__(self, n, m, work_dtype, weights):
        self.n = n
        self.work = np.empty((n, m), dtype=work_dtype)
        self.tmp = np.empty(m, dtype=work_dtype)
        self.diff = np.empty((n, m), dtype=np.float32)
        self.dev = np.empty((n, m), dtype=np.float32)
        self.ftmp = np.empty(m, dtype=np.float32)
        self.weights = None if weights is None else np.empty((n, m), dtype=np.float32)
        self.wtmp = None if weights is None else np.empty(m, dtype=np.float32)
        self.rank = np.arange(n, dtype=np.intp)[:, None]


class _Ranges:
    """
    The kept index range ``[lo, hi)`` of every pixel of a sorted band.

    Most pixels share one range (``lo``, ``hi``); the few that lost a value
    to rejection or had invalid inputs are exceptions (``idx`` with their own
    ``plo``, ``phi``), handled on a small dense subset.
    """

    def __init__(self, m, n, n_low, n_high, nvalid=None):
        self.m = m
        self.lo = int(n_low)
        self.hi = max(int(n) - int(n_high), self.lo)
        self.idx = np.empty(0, dtype=np.intp)
        self.plo = self.idx
        self.phi = self.idx
        if nvalid is not None:
            top = np.asarray(nvalid, dtype=np.intp) - int(n_high)
            idx = np.flatnonzero(top < self.hi)
            self.idx = idx
            self.plo = np.full(idx.size, self.lo, dtype=np.intp)
            self.phi = np.maximum(top[idx], self.lo)

    def lo_of(self, idx):
        """Lower bounds of pixels ``idx`` (array)."""
        out = np.full(idx.size, self.lo, dtype=np.intp)
        if self.idx.size:
            pos = np.searchsorted(self.idx, idx)
            pos = np.minimum(pos, self.idx.size - 1)
            hit = self.idx[pos] == idx
            out[hit] = self.plo[pos[hit]]
        return out

    def hi_of(self, idx):
        """Upper bounds of pixels ``idx`` (array)."""
        out = np.full(idx.size, self.hi, dtype=np.intp)
        if self.idx.size:
            pos = np.searchsorted(self.idx, idx)
            pos = np.minimum(pos, self.idx.size - 1)
            hit = self.idx[pos] == idx
            out[hit] = self.phi[pos[hit]]
        return out

    def update(self, idx, lo, hi):
        """Set the ranges of pixels ``idx`` (sorted, unique)."""
        if not idx.size:
            return
        merged = np.union1d(self.idx, idx)
        plo = self.lo_of(merged)
        phi = self.hi_of(merged)
        pos = np.searchsorted(merged, idx)
        plo[pos] = lo
        phi[pos] = hi
        self.idx, self.plo, self.phi = merged, plo, phi

    def counts(self):
        """Number of kept values per pixel (intp array of length m)."""
        count = np.full(self.m, self.hi - self.lo, dtype=np.intp)
        count[self.idx] = self.phi - self.plo
        return count


def _dense_keep(rank, lo, hi):
    """(n, p) boolean: rank within [lo, hi) per column."""
    return (rank >= lo) & (rank < hi)


def _median_dense(sub, lo, hi):
    """Median of ``sub[lo:hi, j]`` per column of sorted values (float32; NaN when empty)."""
    p = sub.shape[1]
    cols = np.arange(p)
    i1 = np.maximum((lo + hi - 1) >> 1, 0)
    i2 = np.maximum((lo + hi) >> 1, 0)
    out = sub[i1, cols].astype(np.float32)
    out += sub[i2, cols]
    out *= np.float32(0.5)
    out[hi <= lo] = np.nan
    return out


def _subset(s, idx):
    """The values of pixels ``idx`` of the sorted rows ``s``, as an (n, len(idx)) array."""
    return np.stack([row[idx] for row in s])


def _median(s, ranges, m):
    """Median of the kept sorted values of every pixel (float32); ``s`` is a list of rows."""
    lo, hi = ranges.lo, ranges.hi
    if hi > lo:
        out = s[(lo + hi - 1) >> 1].astype(np.float32)
        out += s[(lo + hi) >> 1]
        out *= np.float32(0.5)
    else:
        out = np.full(m, np.nan, dtype=np.float32)
    if ranges.idx.size:
        out[ranges.idx] = _median_dense(_subset(s, ranges.idx), ranges.plo, ranges.phi)
    return out


def _differences(band, s, ref, m):
    """``s - ref`` for every row, in the band's float32 buffer."""
    diff = band.diff[: len(s), :m]
    for k, row in enumerate(s):
        np.subtract(row, ref, out=diff[k], casting="unsafe")
    return diff


def _mad(band, diff, ranges, m):
    """Median absolute deviation from the median of the kept values of every pixel (float32)."""
    n = len(diff)
    dev = band.dev[:, :m]
    np.abs(diff, out=dev)
    lo, hi = ranges.lo, ranges.hi
    count = hi - lo
    special = None
    if ranges.idx.size:
        special = dev[:, ranges.idx]
        special[~_dense_keep(band.rank, ranges.plo, ranges.phi)] = np.inf
        special.sort(axis=0)
    dev[:lo] = np.inf
    dev[hi:] = np.inf
    if count > 0:
        rows = list(dev)
        _apply(rows, _median_merger(n, count), band.ftmp[:m])
        mad = rows[(count - 1) // 2].astype(np.float32)
        mad += rows[count // 2]
        mad *= np.float32(0.5)
    else:
        mad = np.full(m, np.nan, dtype=np.float32)
    if special is not None:
        c = ranges.phi - ranges.plo
        mad[ranges.idx] = _median_dense(special, np.zeros_like(c), c)
    return mad


def _kept_ends(s, ranges, m):
    """The smallest and the largest kept sorted value of every pixel (float32; NaN when none)."""
    n = len(s)
    lo, hi = ranges.lo, ranges.hi
    if hi > lo:
        first = s[lo].astype(np.float32)
        last = s[hi - 1].astype(np.float32)
    else:
        first = np.full(m, np.nan, dtype=np.float32)
        last = first.copy()
    if ranges.idx.size:
        cols = ranges.idx
        sub = _subset(s, cols)
        at = np.arange(cols.size)
        has = ranges.phi > ranges.plo
        first[cols] = np.where(has, sub[np.minimum(ranges.plo, n - 1), at], np.nan)
        last[cols] = np.where(has, sub[np.maximum(ranges.phi - 1, 0), at], np.nan)
    return first, last


def _narrow(s, ranges, cand, lower, upper):
    """Drop the values of pixels ``cand`` beyond the limits from their kept ranges."""
    sub = _subset(s, cand)
    new_lo = ranges.lo_of(cand)
    new_hi = ranges.hi_of(cand)
    if lower is not None:
        new_lo = np.maximum(new_lo, np.count_nonzero(sub < lower[cand], axis=0))
    if upper is not None:
        new_hi = np.minimum(new_hi, np.count_nonzero(sub <= upper[cand], axis=0))
    ranges.update(cand, new_lo, np.maximum(new_hi, new_lo))


def _clip(band, s, ranges, n_sigma_low, n_sigma_high, m, pooled=False):
    """
    One sigma-clipping iteration on sorted values; updates ``ranges``.

    Returns ``(changed, diff, med)``: the differences from the median of this
    iteration, reused for the final statistics.
    """
    med = _median(s, ranges, m)
    diff = _differences(band, s, med, m)
    std = _mad(band, diff, ranges, m)
    std *= np.float32(MAD_TO_STD)
    if pooled:
        finite = std[np.isfinite(std)]
        if finite.size:
            np.maximum(std, np.float32(np.median(finite)), out=std)
    lower = None if n_sigma_low is None else med - np.float32(n_sigma_low) * std
    upper = None if n_sigma_high is None else med + np.float32(n_sigma_high) * std
    # only pixels whose smallest or largest kept value is beyond a limit change
    first, last = _kept_ends(s, ranges, m)
    beyond = np.zeros(m, dtype=bool)
    if lower is not None:
        beyond |= first < lower
    if upper is not None:
        beyond |= last > upper
    cand = np.flatnonzero(beyond)
    if not cand.size:
        return False, diff, med
    _narrow(s, ranges, cand, lower, upper)
    return True, diff, med


def _combine_band(band, s, w, ranges, options, m):
    """
    Rejection and combination of one sorted band (``s``: list of sorted rows).

    Returns ``(value, std_of_value, count)``.
    """
    diff = ref = None
    if options["sigma_clip"]:
        for _ in range(options["max_iterations"]):
            limits = options["n_sigma_low"], options["n_sigma_high"]
            changed, diff, ref = _clip(band, s, ranges, *limits, m, pooled=options["clip_spread"] == "pooled")
            if not changed:
                break
    centre = _median(s, ranges, m)
    if diff is None:
        ref = centre
        diff = _differences(band, s, ref, m)
    lo, hi = ranges.lo, ranges.hi
    xs = diff[lo:hi]
    if w is None:
        total = xs.sum(axis=0)
        squares = np.einsum("ij,ij->j", xs, xs)
    else:
        ws = w[lo:hi]
        wsum = ws.sum(axis=0)
        total = np.einsum("ij,ij->j", ws, xs)
        squares = np.einsum("ij,ij,ij->j", ws, xs, xs)
        w2sum = np.einsum("ij,ij->j", ws, ws)
    count = ranges.counts()
    if ranges.idx.size:
        cols = ranges.idx
        keep = _dense_keep(band.rank, ranges.plo, ranges.phi)
        sub = np.where(keep, diff[:, cols], np.float32(0))
        if w is None:
            total[cols] = sub.sum(axis=0)
            squares[cols] = np.einsum("ij,ij->j", sub, sub)
        else:
            wsub = np.where(keep, w[:, cols], np.float32(0))
            wsum[cols] = wsub.sum(axis=0)
            total[cols] = np.einsum("ij,ij->j", wsub, sub)
            squares[cols] = np.einsum("ij,ij,ij->j", wsub, sub, sub)
            w2sum[cols] = np.einsum("ij,ij->j", wsub, wsub)
    fcount = count.astype(np.float32)
    # sums of the differences from ``ref`` give the mean and the spread of the kept values
    if w is None:
        mean_offset = total / fcount
        squares -= total * mean_offset
        np.maximum(squares, 0, out=squares)
        squares /= fcount - 1
        squares /= fcount
        std_of_value = np.sqrt(squares, out=squares)
    else:
        mean_offset = total / wsum
        squares -= total * mean_offset
        np.maximum(squares, 0, out=squares)
        var = squares / wsum * fcount / (fcount - 1)
        neff = wsum * wsum / w2sum
        std_of_value = np.sqrt(var / neff)
    if options["method"] == "median":
        value = centre
        std_of_value *= np.float32(math.sqrt(math.pi / 2))
    else:
        value = ref + mean_offset
    value[count == 0] = np.nan
    std_of_value[count < 2] = np.nan
    return value, std_of_value, count


def _rows_per_band(n, nx, ny, work_itemsize, canon_bytes, budget, workers=1):
    per_row = nx * (2 * n * (2 * work_itemsize + 4 + 4 + 1) + 2 * canon_bytes + 128)
    rows = max(1, workers * _BAND_TARGET_BYTES // (4 * n * nx))
    if budget is not None:
        if budget < per_row:
            return 0, per_row
        rows = min(rows, budget // per_row)
    return int(min(rows, ny)), per_row


def _checked_inputs(sources, method, n_low, n_high, weights, scales, offsets):
    """Check the sources and the options; returns ``n_low, n_high, weights, scales, offsets`` converted."""
    n = len(sources)
    if n == 0:
        raise CalibrationError("nothing to combine: no input frames")
    if n > 65535:
        raise CalibrationError(f"cannot combine {n} frames at once (at most 65535); combine them in groups")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, not {method!r}")
    shape = sources[0].shape
    odd = [s.name for s in sources if s.shape != shape]
    if odd:
        raise FrameMismatchError(f"frames differ in shape from {sources[0].name} {shape}: {', '.join(odd)}")
    n_low, n_high = int(n_low), int(n_high)
    if n_low < 0 or n_high < 0 or n_low + n_high >= n:
        raise ValueError(
            f"n_low={n_low} and n_high={n_high} must be >= 0 and leave at least one of {n} frames"
        )
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float32)
        if weights.shape != (n,) or not np.all(np.isfinite(weights)) or np.any(weights <= 0):
            raise ValueError(f"weights must be {n} positive numbers, one per frame")
        if method != "average":
            raise ValueError("weights apply to method='average' only")
    if scales is not None:
        scales = np.asarray(scales, dtype=np.float64)
        if scales.shape != (n,) or not np.all(np.isfinite(scales)) or np.any(scales == 0):
            raise ValueError(f"scales must be {n} finite non-zero numbers, one per frame")
    offsets = [(np.asarray(arr), np.asarray(coef, dtype=np.float64)) for arr, coef in offsets]
    for arr, coef in offsets:
        if arr.shape != shape or coef.shape != (n,):
            raise FrameMismatchError(
                f"an offset frame of shape {arr.shape} does not match the frames {shape}"
            )
    return n_low, n_high, weights, scales, offsets


def _work_dtype(canon_dtypes, transform, invalid_possible):
    """The dtype the values are sorted in and whether invalid values must be looked for."""
    same = len(set(canon_dtypes)) == 1
    if (
        same
        and not transform
        and not invalid_possible
        and canon_dtypes[0].kind in "ui"
        and canon_dtypes[0].itemsize <= 2
    ):
        return canon_dtypes[0], invalid_possible
    return np.dtype(np.float32), True


def _band_rows(sources, offsets, work_dtype, canon_dtypes, memory_limit, rows_per_band, workers):
    """Rows per band within ``memory_limit``; raises `CalibrationError` when even one row does not fit."""
    n = len(sources)
    ny, nx = sources[0].shape
    resident = sum(s.resident_bytes for s in sources) + sum(a.nbytes for a, _ in offsets)
    output_bytes = ny * nx * (4 + 4 + 2 + 1)
    budget = None if memory_limit is None else int(memory_limit) - resident - output_bytes
    canon_bytes = sum(dt.itemsize for dt in canon_dtypes)
    auto_rows, per_row = _rows_per_band(n, nx, ny, work_dtype.itemsize, canon_bytes, budget, workers)
    if auto_rows == 0:
        need = (resident + output_bytes + per_row) / 2**20
        raise CalibrationError(
            f"memory_limit of {int(memory_limit) / 2**20:.0f} MiB is too small to combine {n} frames of "
            f"{ny}x{nx}: need at least {need:.0f} MiB (inputs held in memory: {resident / 2**20:.0f} MiB, "
            f"result: {output_bytes / 2**20:.0f} MiB); raise memory_limit or decompress the inputs"
        )
    return auto_rows if rows_per_band is None else max(1, min(int(rows_per_band), ny))


def _make_job(sources, options, transform, invalid_possible, offsets, scales, weights):
    """What every chunk needs: the sources, the options and the sorting network."""
    n = len(sources)
    network = sorting_network(n)
    # Batcher's network starts with the disjoint pairs (0, 1), (2, 3), ...: when
    # no conversion is needed they read the input rows and write the work rows,
    # which saves a copy and leaves the input rows intact for the checksums.
    first = tuple(p for p in network[: n // 2] if p[1] == p[0] + 1 and p[0] % 2 == 0)
    direct = not transform and not invalid_possible and weights is None and len(first) == n // 2
    return {
        "n": n,
        "nx": sources[0].shape[1],
        "sources": sources,
        "options": options,
        "network": network[len(first) :] if direct else network,
        "first": first if direct else None,
        "transform": transform,
        "offsets": offsets,
        "scales": scales,
        "weights": weights,
        "invalid_possible": invalid_possible,
    }


def _combine_threads(workers):
    """Combining threads for ``workers`` (``parallel=`` of `~astrophot._concurrency.resolve_threads`)."""
    n_threads = resolve_threads(workers)
    if workers is None:
        n_threads = min(n_threads, _MAX_AUTO_WORKERS)
    return n_threads


class _InCallingThread:
    """Stands for an executor when there is one thread: runs each task at once, in the calling thread."""

    def submit(self, function, *args):
        """Run ``function(*args)``; returns its (done) future."""
        future = Future()
        future.set_result(function(*args))
        return future


def _executors(workers):
    """Context managers of the checksum and the combining executors (threads only when ``workers > 1``)."""
    if workers == 1:
        serial = _InCallingThread()
        return contextlib.nullcontext(serial), contextlib.nullcontext(serial)
    return (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="astrophot-checksum"),
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="astrophot-combine"),
    )


def _run_bands(job, rows, workers, work_dtype, canon_dtypes, outputs):
    """Read, hash and combine the sources band by band (two bands in flight); returns the band count."""
    sources, n, nx = job["sources"], job["n"], job["nx"]
    ny = sources[0].shape[0]
    m_max = rows * nx
    chunk = -(-m_max // workers)
    canon = [[np.empty(m_max, dtype=dt) for dt in canon_dtypes] for _ in range(2)]
    buffers = [[_Band(n, chunk, work_dtype, job["weights"]) for _ in range(workers)] for _ in range(2)]
    hashed = [i for i, src in enumerate(sources) if src.needs_checksum]
    pending = [[], []]
    n_bands = 0
    hashing, combining = _executors(workers)
    with hashing as hasher, combining as pool, np.errstate(invalid="ignore", divide="ignore"):
        for src in sources:
            src.open()
        try:
            for r0 in range(0, ny, rows):
                r1 = min(ny, r0 + rows)
                m = (r1 - r0) * nx
                slot = n_bands % 2
                for future in pending[slot]:
                    future.result()
                rows_in = [buf[:m] for buf in canon[slot]]
                for i, src in enumerate(sources):
                    src.read_rows(r0, r1, rows_in[i])
                futures = []
                if hashed:
                    futures.append(
                        hasher.submit(_hash_band, [sources[i] for i in hashed], [rows_in[i] for i in hashed])
                    )
                step = -(-m // workers)
                for w, c0 in enumerate(range(0, m, step)):
                    c1 = min(m, c0 + step)
                    futures.append(
                        pool.submit(_process_chunk, job, buffers[slot][w], rows_in, r0, r1, c0, c1, outputs)
                    )
                pending[slot] = futures
                n_bands += 1
            for futures in pending:
                for future in futures:
                    future.result()
        finally:
            for futures in pending:
                for future in futures:
                    future.cancel()
            for src in sources:
                src.close()
    return n_bands


def combine_sources(
    sources,
    *,
    method="average",
    sigma_clip=True,
    n_sigma_low=5.0,
    n_sigma_high=5.0,
    max_iterations=1,
    clip_spread="pixel",
    n_low=0,
    n_high=0,
    scales=None,
    weights=None,
    offsets=(),
    memory_limit=None,
    rows_per_band=None,
    workers=None,
):
    """
    Combine sources (see `astrophot.calibration._sources`) band by band.

    Returns
    -------
    dict
        ``data`` (float32), ``uncertainty`` (float32 standard deviation of
        the combined value), ``n_rejected`` (uint16: inputs not used per
        pixel), ``mask`` (no input left), ``n_bands``, ``rows_per_band``.
    """
    n_low, n_high, weights, scales, offsets = _checked_inputs(
        sources, method, n_low, n_high, weights, scales, offsets
    )
    n = len(sources)
    shape = sources[0].shape
    ny, nx = shape
    if max_iterations is None:
        max_iterations = n
    canon_dtypes = [np.dtype(s.dtype) for s in sources]
    transform = scales is not None or bool(offsets)
    work_dtype, invalid_possible = _work_dtype(
        canon_dtypes, transform, any(s.may_be_invalid for s in sources)
    )
    workers = _combine_threads(workers)
    rows = _band_rows(sources, offsets, work_dtype, canon_dtypes, memory_limit, rows_per_band, workers)
    options = {
        "method": method,
        "sigma_clip": bool(sigma_clip) and (n_sigma_low is not None or n_sigma_high is not None),
        "n_sigma_low": n_sigma_low,
        "n_sigma_high": n_sigma_high,
        "clip_spread": clip_spread,
        "max_iterations": int(max_iterations),
        "n_low": n_low,
        "n_high": n_high,
    }
    job = _make_job(sources, options, transform, invalid_possible, offsets, scales, weights)
    data = np.empty(shape, dtype=np.float32)
    uncertainty = np.empty(shape, dtype=np.float32)
    n_used = np.empty(shape, dtype=np.uint16)
    outputs = (data.reshape(-1), uncertainty.reshape(-1), n_used.reshape(-1))
    log.debug(
        "combining %d frames of %dx%d in bands of %d rows, %d worker(s) (work dtype %s)",
        n,
        ny,
        nx,
        rows,
        workers,
        work_dtype,
    )
    n_bands = _run_bands(job, rows, workers, work_dtype, canon_dtypes, outputs)
    mask = n_used == 0
    n_rejected = np.subtract(np.uint16(n), n_used, dtype=np.uint16)
    return {
        "data": data,
        "uncertainty": uncertainty,
        "n_rejected": n_rejected,
        "mask": mask,
        "n_bands": n_bands,
        "rows_per_band": rows,
        "workers": workers,
    }


def _process_chunk(job, band, rows_in, r0, r1, c0, c1, outputs):
    """Sort, reject and combine the pixels ``c0:c1`` of the band ``r0:r1`` (flattened)."""
    # numpy's error state is per thread
    with np.errstate(invalid="ignore", divide="ignore"):
        _chunk(job, band, rows_in, r0, r1, c0, c1, outputs)


def _chunk(job, band, rows_in, r0, r1, c0, c1, outputs):
    n, nx = job["n"], job["nx"]
    m = c1 - c0
    canon = [row[c0:c1] for row in rows_in]
    work = band.work[:, :m]
    nvalid = None
    if job["first"] is not None:
        for a, b in job["first"]:
            np.minimum(canon[a], canon[b], out=work[a])
            np.maximum(canon[a], canon[b], out=work[b])
        if n % 2:
            np.copyto(work[n - 1], canon[n - 1])
    else:
        base = r0 * nx
        for i, src in enumerate(job["sources"]):
            row = work[i]
            np.copyto(row, canon[i], casting="unsafe")
            for arr, coef in job["offsets"]:
                if coef[i] != 0:
                    part = arr.reshape(-1)[base + c0 : base + c1]
                    row -= part if coef[i] == 1 else np.float32(coef[i]) * part
            if job["scales"] is not None:
                row *= np.float32(job["scales"][i])
            if job["invalid_possible"]:
                bad = ~np.isfinite(row)
                extra = src.invalid_rows(r0, r1)
                if extra is not None:
                    bad |= extra[c0:c1]
                if bad.any():
                    row[bad] = np.inf
                    nvalid = (np.full(m, n, dtype=np.intp) if nvalid is None else nvalid) - bad
    rows_list = list(work)
    wrows = None
    if job["weights"] is not None:
        wbuf = band.weights[:, :m]
        wbuf[:] = job["weights"][:, None]
        wrows = list(wbuf)
    _apply(rows_list, job["network"], band.tmp[:m], wrows, None if wrows is None else band.wtmp[:m])
    w = None if wrows is None else np.stack(wrows)
    ranges = _Ranges(m, n, job["options"]["n_low"], job["options"]["n_high"], nvalid)
    value, std, count = _combine_band(band, rows_list, w, ranges, job["options"], m)
    start = r0 * nx + c0
    data, uncertainty, n_used = outputs
    data[start : start + m] = value
    uncertainty[start : start + m] = std
    n_used[start : start + m] = count


def _hash_band(sources, values):
    for src, vals in zip(sources, values):
        src.update_checksum(vals)
