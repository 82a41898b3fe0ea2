# Licensed under a 3-clause BSD style license - see LICENSE.rst
# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""
The compiled per-pixel loops of the pixel rejection (`astrophot.combination._reject`).

A band is an ``(n, m)`` array of ``n`` sorted values per pixel (+inf where missing) and the
kept rank range ``[lo, hi)`` of every pixel. Every function here is one pass over the pixels
of the band with the GIL released (the band threads of a stack run in parallel), computing
per pixel exactly what `astrophot.combination._reject`'s module notes state, in the same order
of operations as the numpy expressions they replaced (sums taken rank by rank, in double
precision), so the kept values of every pixel are the same:

``sort_band``
    The values sorted per pixel by the comparators of a sorting network (a value moves only
    when it is greater than the other, its frame index travelling with it), non-finite
    values as +inf.
``median``, ``mean_std``, ``mad_std``, ``percentile``, ``winsorized_std``, ``line``
    Statistics of the kept values of each pixel.
``clip``
    Narrows the kept ranges to the values within per-pixel limits.
``combine``
    The weighted mean (or median) of the kept values, its variance and the sum of weights.
``tally``
    Rejected and present values per frame, and the kept mask in frame order.
"""

cimport numpy as cnp
from libc.math cimport NAN, INFINITY, fabs, sqrt, floor, isfinite
from libc.stdlib cimport malloc, free

import numpy as np

cnp.import_array()

ctypedef fused real:
    float
    double

ctypedef Py_ssize_t isize

cdef enum:
    MAX_FRAMES = 2048
    BLOCK = 64  # pixels sorted together


cdef extern from *:
    """
    /* One comparator over a block of pixels: the smaller value (and its frame) to row a, where
       ``a > b`` exactly (equal values stay). Blended with a bit mask, without branches, which the
       compiler vectorises. */
    #include <stdint.h>
    #include <string.h>
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #endif
    static inline void _exchange(uint64_t *__restrict ua, uint64_t *__restrict ub, uint64_t *__restrict va,
                                 uint64_t *__restrict vb, Py_ssize_t width) {
        Py_ssize_t t = 0;
    #if defined(__SSE2__)
        for (; t + 2 <= width; t += 2) {
            __m128d x = _mm_loadu_pd((const double *)(ua + t)), y = _mm_loadu_pd((const double *)(ub + t));
            __m128d xi = _mm_loadu_pd((const double *)(va + t)), yi = _mm_loadu_pd((const double *)(vb + t));
            __m128d mask = _mm_cmpgt_pd(x, y);
            _mm_storeu_pd((double *)(ua + t), _mm_or_pd(_mm_and_pd(mask, y), _mm_andnot_pd(mask, x)));
            _mm_storeu_pd((double *)(ub + t), _mm_or_pd(_mm_and_pd(mask, x), _mm_andnot_pd(mask, y)));
            _mm_storeu_pd((double *)(va + t), _mm_or_pd(_mm_and_pd(mask, yi), _mm_andnot_pd(mask, xi)));
            _mm_storeu_pd((double *)(vb + t), _mm_or_pd(_mm_and_pd(mask, xi), _mm_andnot_pd(mask, yi)));
        }
    #endif
        for (; t < width; t++) {
            double a, b;
            uint64_t x = ua[t], y = ub[t], xi = va[t], yi = vb[t];
            memcpy(&a, &x, sizeof a);
            memcpy(&b, &y, sizeof b);
            uint64_t mask = -(uint64_t)(a > b);
            ua[t] = (y & mask) | (x & ~mask);
            ub[t] = (x & mask) | (y & ~mask);
            va[t] = (yi & mask) | (xi & ~mask);
            vb[t] = (xi & mask) | (yi & ~mask);
        }
    }
    static inline double _as_double(uint64_t bits) { double v; memcpy(&v, &bits, sizeof v); return v; }
    static inline uint64_t _as_bits(double value) { uint64_t v; memcpy(&v, &value, sizeof v); return v; }
    """
    ctypedef unsigned long long uint64_t
    void _exchange(uint64_t *ra, uint64_t *rb, uint64_t *qa, uint64_t *qb, Py_ssize_t width) noexcept nogil
    double _as_double(uint64_t bits) noexcept nogil
    uint64_t _as_bits(double value) noexcept nogil


cdef inline isize _clip_rank(isize pos, isize n) noexcept nogil:
    if pos < 0:
        return 0
    if pos > n - 1:
        return n - 1
    return pos


cdef inline isize _floordiv2(isize v) noexcept nogil:
    return v // 2 if v >= 0 else -((-v + 1) // 2)


cdef inline double _median_of(const double[:, ::1] s, isize j, isize lo, isize hi) noexcept nogil:
    cdef isize n = s.shape[0]
    if hi - lo <= 0:
        return NAN
    return 0.5 * (s[_clip_rank(_floordiv2(lo + hi - 1), n), j] + s[_clip_rank(_floordiv2(lo + hi), n), j])


def sort_band(const real[:, :] values, const isize[:, ::1] pairs):
    """
    Sort every pixel's values (``values[:, j]``) by a sorting network.

    Returns ``(sorted, index, n_valid)``: float64 sorted values (+inf where missing), the
    int16 frame index of each sorted value and the number of finite values of each pixel.
    The comparators are applied to blocks of pixels at once (bit-mask blends the compiler
    vectorises), the frame index carried alongside each value.
    """
    cdef isize n = values.shape[0], m = values.shape[1], p = pairs.shape[0]
    if n > 32767:
        raise ValueError(f"at most 32767 frames, not {n}")
    s_arr = np.empty((n, m), dtype=np.float64)
    i_arr = np.empty((n, m), dtype=np.int16)
    v_arr = np.zeros(m, dtype=np.intp)
    cdef double[:, ::1] s = s_arr
    cdef cnp.int16_t[:, ::1] index = i_arr
    cdef isize[::1] n_valid = v_arr
    cdef uint64_t *buf
    cdef uint64_t *ibuf
    cdef uint64_t *ra
    cdef uint64_t *qa
    cdef isize j0, width, k, c, t
    cdef double x
    cdef uint64_t inf_bits = _as_bits(INFINITY)
    buf = <uint64_t *>malloc(2 * n * BLOCK * sizeof(uint64_t))
    if buf == NULL:
        raise MemoryError()
    ibuf = buf + n * BLOCK
    with nogil:
        j0 = 0
        while j0 < m:
            width = BLOCK if m - j0 > BLOCK else m - j0
            for k in range(n):
                ra = buf + k * BLOCK
                qa = ibuf + k * BLOCK
                for t in range(width):
                    x = values[k, j0 + t]
                    if isfinite(x):
                        n_valid[j0 + t] += 1
                    else:
                        x = INFINITY
                    ra[t] = _as_bits(x)
                    qa[t] = <uint64_t>k
                for t in range(width, BLOCK):
                    ra[t] = inf_bits
                    qa[t] = <uint64_t>k
            for c in range(p):
                _exchange(buf + pairs[c, 0] * BLOCK, buf + pairs[c, 1] * BLOCK,
                          ibuf + pairs[c, 0] * BLOCK, ibuf + pairs[c, 1] * BLOCK, BLOCK)
            for k in range(n):
                ra = buf + k * BLOCK
                qa = ibuf + k * BLOCK
                for t in range(width):
                    s[k, j0 + t] = _as_double(ra[t])
                    index[k, j0 + t] = <cnp.int16_t>qa[t]
            j0 += BLOCK
    free(buf)
    return s_arr, i_arr, v_arr


def median(const double[:, ::1] s, const isize[::1] lo, const isize[::1] hi):
    """Median of the kept values of every pixel (NaN where none)."""
    cdef isize j, m = s.shape[1]
    out_arr = np.empty(m)
    cdef double[::1] out = out_arr
    with nogil:
        for j in range(m):
            out[j] = _median_of(s, j, lo[j], hi[j])
    return out_arr


def mean_std(const double[:, ::1] s, const isize[::1] lo, const isize[::1] hi, int ddof=0):
    """Mean and standard deviation (``ddof``) of the kept values of every pixel (NaN where undefined)."""
    cdef isize j, k, m = s.shape[1]
    mean_arr = np.empty(m)
    std_arr = np.empty(m)
    cdef double[::1] mean = mean_arr, std = std_arr
    cdef double total, mu, d, squares, count
    with nogil:
        for j in range(m):
            count = <double>(hi[j] - lo[j])
            total = 0.0
            for k in range(lo[j], hi[j]):
                total = total + s[k, j]
            mu = total / count
            squares = 0.0
            for k in range(lo[j], hi[j]):
                d = s[k, j] - mu
                squares = squares + d * d
            mean[j] = mu
            std[j] = sqrt(squares / (count - ddof))
    return mean_arr, std_arr


def mad_std(const double[:, ::1] s, const isize[::1] lo, const isize[::1] hi, const double[::1] centre,
            double factor):
    """``factor`` times the median absolute deviation of the kept values from ``centre`` (inf where none)."""
    cdef isize j, k, m = s.shape[1], left, right, c, rank, want
    cdef double med, a, b, dl, dr, pick, first
    out_arr = np.empty(m)
    cdef double[::1] out = out_arr
    with nogil:
        for j in range(m):
            c = hi[j] - lo[j]
            if c <= 0:
                out[j] = INFINITY
                continue
            med = centre[j]
            # the deviations below the centre grow downwards, those above it upwards: merge the two
            right = lo[j]
            while right < hi[j] and s[right, j] < med:
                right += 1
            left = right - 1
            want = c // 2
            first = 0.0
            pick = 0.0
            for rank in range(want + 1):
                dl = fabs(s[left, j] - med) if left >= lo[j] else INFINITY
                dr = fabs(s[right, j] - med) if right < hi[j] else INFINITY
                if dl < dr:
                    pick = dl
                    left -= 1
                else:
                    pick = dr
                    right += 1
                if rank == (c - 1) // 2:
                    first = pick
            out[j] = factor * (0.5 * (first + pick))
    return out_arr


def percentile(const double[:, ::1] s, const isize[::1] lo, const isize[::1] hi, double q):
    """The ``q``-th percentile (linear interpolation) of the kept values of every pixel."""
    cdef isize j, n = s.shape[0], m = s.shape[1], below, upper
    cdef double pos, frac, a, b, f = q / 100.0
    out_arr = np.empty(m)
    cdef double[::1] out = out_arr
    with nogil:
        for j in range(m):
            pos = <double>lo[j] + <double>(hi[j] - lo[j] - 1) * f
            below = <isize>floor(pos)
            frac = pos - <double>below
            upper = below + 1
            if upper > hi[j] - 1:
                upper = hi[j] - 1
            a = s[_clip_rank(below, n), j]
            b = s[_clip_rank(upper, n), j]
            out[j] = a + frac * (b - a)
    return out_arr


cdef inline double _std_from_sums(double total, double squares, double count) noexcept nogil:
    cdef double var = (squares - total * total / count) / (count - 1)
    if var < 0.0:
        var = 0.0
    return sqrt(var)


def winsorized_std(const double[:, ::1] s, const isize[::1] lo, const isize[::1] hi,
                   const isize[::1] n_valid, const double[::1] centre):
    """
    The winsorized standard deviation of the kept values of every pixel about ``centre``.

    Sums are taken about the median of the values present (``ref``) from running sums of the
    sorted values, as `astrophot.combination._reject` states.
    """
    cdef isize n = s.shape[0], m = s.shape[1], j, k, i0, i1, mid, n_lo, n_hi, a_lo, a_hi, it
    cdef double ref, x, count, sigma, old, low, high, c, total, squares
    cdef double p1[MAX_FRAMES + 1]
    cdef double p2[MAX_FRAMES + 1]
    cdef double d[MAX_FRAMES]
    out_arr = np.empty(m)
    cdef double[::1] out = out_arr
    with nogil:
        for j in range(m):
            mid = _clip_rank(_floordiv2(n_valid[j] - 1), n)
            ref = s[mid, j] if n_valid[j] > 0 else 0.0
            p1[0] = 0.0
            p2[0] = 0.0
            for k in range(n):
                x = s[k, j] - ref
                d[k] = x
                if not isfinite(x):
                    x = 0.0
                p1[k + 1] = p1[k] + x
                p2[k + 1] = p2[k] + x * x
            a_lo = lo[j]
            a_hi = hi[j]
            count = <double>(a_hi - a_lo)
            sigma = _std_from_sums(p1[a_hi] - p1[a_lo], p2[a_hi] - p2[a_lo], count)
            if isfinite(sigma) and sigma > 0:
                c = centre[j] - ref
                for it in range(10):
                    old = sigma
                    low = c - 1.5 * old
                    high = c + 1.5 * old
                    i0 = 0
                    i1 = 0
                    for k in range(n):
                        if d[k] < low:
                            i0 += 1
                        if d[k] <= high:
                            i1 += 1
                    if i0 < a_lo:
                        i0 = a_lo
                    if i0 > a_hi:
                        i0 = a_hi
                    if i1 < i0:
                        i1 = i0
                    if i1 > a_hi:
                        i1 = a_hi
                    n_lo = i0 - a_lo
                    n_hi = a_hi - i1
                    total = n_lo * low + n_hi * high + (p1[i1] - p1[i0])
                    squares = n_lo * low * low + n_hi * high * high + (p2[i1] - p2[i0])
                    sigma = 1.134 * _std_from_sums(total, squares, count)
                    if not fabs(sigma - old) > 5e-4 * old:
                        break
            out[j] = sigma
    return out_arr


def line(const double[:, ::1] s, const isize[::1] lo, const isize[::1] hi, const double[:, ::1] blom):
    """
    Location and slope of the least-squares line through the central kept values of every pixel.

    The kept values of rank ``i`` (1-based) among ``count`` are fitted against their Blom scores
    ``blom[count, i]``, those within +/-1 only.
    """
    cdef isize m = s.shape[1], j, k, cnt
    cdef double z, zs, ys, zm, ym, dz, num, den
    loc_arr = np.empty(m)
    slope_arr = np.empty(m)
    cdef double[::1] location = loc_arr, slope = slope_arr
    cdef const double *row
    with nogil:
        for j in range(m):
            row = &blom[hi[j] - lo[j], 0]
            cnt = 0
            zs = 0.0
            ys = 0.0
            for k in range(lo[j], hi[j]):
                z = row[k - lo[j] + 1]
                if fabs(z) <= 1.0:
                    cnt += 1
                    zs = zs + z
                    ys = ys + s[k, j]
            if cnt < 1:
                cnt = 1
            zm = zs / cnt
            ym = ys / cnt
            num = 0.0
            den = 0.0
            for k in range(lo[j], hi[j]):
                z = row[k - lo[j] + 1]
                if fabs(z) <= 1.0:
                    dz = z - zm
                    num = num + dz * (s[k, j] - ym)
                    den = den + dz * dz
            slope[j] = num / den
            location[j] = ym - slope[j] * zm
    return loc_arr, slope_arr


def clip(const double[:, ::1] s, isize[::1] lo, isize[::1] hi, const isize[::1] n_valid,
         const double[::1] lower, const double[::1] upper, bint has_lower, bint has_upper, bint clamp):
    """
    Keep the values within ``[lower, upper]`` of every pixel (in place); the pixels changed.

    With ``clamp`` the values already rejected stay rejected, without it every value present
    is tested. A pixel whose limit (``lower``, or ``upper`` without a lower limit) is not
    finite is left as it is.
    """
    cdef isize n = s.shape[0], m = s.shape[1], j, k, new_lo, new_hi, first, last, changed = 0
    cdef double lim
    with nogil:
        for j in range(m):
            lim = lower[j] if has_lower else upper[j]
            if not isfinite(lim):
                continue
            first = lo[j] if clamp else 0
            last = hi[j] if clamp else n_valid[j]
            new_lo = lo[j]
            new_hi = hi[j]
            if has_lower:
                new_lo = 0
                for k in range(n):
                    if s[k, j] < lower[j]:
                        new_lo += 1
                if new_lo < first:
                    new_lo = first
            if has_upper:
                new_hi = 0
                for k in range(n):
                    if s[k, j] <= upper[j]:
                        new_hi += 1
                if new_hi > last:
                    new_hi = last
            if new_hi < new_lo:
                new_hi = new_lo
            if new_lo != lo[j] or new_hi != hi[j]:
                changed += 1
                lo[j] = new_lo
                hi[j] = new_hi
    return changed


def combine(const double[:, ::1] s, const cnp.int16_t[:, ::1] index, const isize[::1] lo,
            const isize[::1] hi, const double[:, :] weights, const real[:, :] variances,
            bint has_variances, bint use_median):
    """
    The weighted mean (or median) of the kept values of every pixel, its variance and the weights' sum.

    ``weights[f, j]`` and ``variances[f, j]`` belong to frame ``f`` (per-frame values broadcast
    along the pixels); without variances the variance comes from the weighted spread of the
    kept values.
    """
    cdef isize m = s.shape[1], j, k, f, count
    cdef double w, wsum, wx, w2, wwv, mu, d, spread, variance
    cdef double half_pi = 1.5707963267948966
    mean_arr = np.empty(m)
    var_arr = np.empty(m)
    wsum_arr = np.empty(m)
    cdef double[::1] mean = mean_arr, var = var_arr, wsums = wsum_arr
    with nogil:
        for j in range(m):
            count = hi[j] - lo[j]
            wsum = 0.0
            wx = 0.0
            w2 = 0.0
            wwv = 0.0
            for k in range(lo[j], hi[j]):
                f = index[k, j]
                w = weights[f, j]
                wsum = wsum + w
                wx = wx + w * s[k, j]
                w2 = w2 + w * w
                if has_variances:
                    wwv = wwv + w * w * variances[f, j]
            mu = wx / wsum
            if has_variances:
                variance = wwv / (wsum * wsum)
            elif count < 2:
                variance = NAN
            else:
                spread = 0.0
                for k in range(lo[j], hi[j]):
                    d = s[k, j] - mu
                    spread = spread + weights[index[k, j], j] * d * d
                spread = spread / wsum * count / (count - 1)
                variance = spread * w2 / (wsum * wsum)
            if use_median:
                mu = _median_of(s, j, lo[j], hi[j])
                variance = variance * half_pi
            if count <= 0:
                mu = NAN
                variance = NAN
            mean[j] = mu
            var[j] = variance
            wsums[j] = wsum
    return mean_arr, var_arr, wsum_arr


def tally(const cnp.int16_t[:, ::1] index, const isize[::1] lo, const isize[::1] hi,
          const isize[::1] n_valid, bint want_mask):
    """
    Values of each frame rejected and present, and (``want_mask``) the kept mask in frame order.
    """
    cdef isize n = index.shape[0], m = index.shape[1], j, k, f
    rejected_arr = np.zeros(n, dtype=np.intp)
    present_arr = np.zeros(n, dtype=np.intp)
    cdef isize[::1] rejected = rejected_arr, present = present_arr
    mask_arr = np.zeros((n if want_mask else 0, m if want_mask else 0), dtype=bool)
    cdef cnp.uint8_t[:, ::1] mask = mask_arr.view(np.uint8)
    with nogil:
        for j in range(m):
            for k in range(n_valid[j]):
                f = index[k, j]
                present[f] += 1
                if k < lo[j] or k >= hi[j]:
                    rejected[f] += 1
                elif want_mask:
                    mask[f, j] = 1
    return rejected_arr, present_arr, (mask_arr if want_mask else None)
