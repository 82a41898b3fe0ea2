# Licensed under a 3-clause BSD style license - see LICENSE.rst
# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""
The compiled per-pixel loops of the resampling engine (`astrophot.combination._core`).

``layout``
    Per output pixel of a tile: whether every tap of every sample is inside the input, whether
    any tap touches it, and the input pixel nearest to the centre (`tap_sums` does the same
    itself when the caller needs none of it).
``spline_grid``
    A tensor-product spline on a grid of rows x columns from its row-reduced coefficients and
    the columns' sparse B-spline design matrix.
``tap_sums``
    Per output pixel of a tile: the kernel sums over its samples, plain where every tap is good
    (``fast``), renormalised over the good taps elsewhere (``slow``), with the weight (good kernel
    mass / total absolute mass) and the variance summed with the squared weights.

Positions, fractions and weights follow `astrophot.combination._core`'s rules: a coordinate
within ``snap`` of a whole pixel is whole, lanczos weights come from the table at the nearest
of its ``steps`` fractions per pixel, bicubic is Keys' a = -0.5. Sums are taken in double
precision. The loops release the GIL, so the band threads of a resampling run in parallel.
"""

cimport numpy as cnp
from libc.math cimport fabs, isfinite

import numpy as np

cnp.import_array()

ctypedef fused real:
    float
    double

#: Kernel kinds (the ``kind`` argument).
NEAREST, BILINEAR, BICUBIC, LANCZOS = 0, 1, 2, 3
cdef enum:
    MAX_TAPS = 8


cdef struct Kernel:
    int kind
    int taps            # taps per axis
    int off             # first tap = floor - off
    double shift        # added before the floor (nearest: 0.5 + snap, else snap)
    double snap
    double steps        # table steps per pixel
    const double *table  # taps rows of (steps + 1) weights
    Py_ssize_t stride   # steps + 1


cdef inline double _floor(double v) noexcept nogil:
    """floor(v) for finite |v| < 2**62 without a libm call (x86-64 before SSE4.1 has no rounding instruction)."""
    cdef double t = <double>(<long long>v)
    return t - 1.0 if t > v else t


cdef inline Py_ssize_t _split(const Kernel *k, double v, double *frac) noexcept nogil:
    """The first tap of coordinate v; its fraction (0 within snap of a whole pixel)."""
    cdef double base
    if not fabs(v) < 4503599627370496.0:  # 2**52 and beyond: whole, and far outside any input
        frac[0] = 0.0
        return -(<Py_ssize_t>1 << 40)
    base = _floor(v + k.shift)
    cdef double f = v - base
    if fabs(f) < k.snap:
        f = 0.0
    frac[0] = f
    return <Py_ssize_t>base - k.off


cdef inline double _inner(double d) noexcept nogil:
    return (1.5 * d - 2.5) * d * d + 1.0


cdef inline double _outer(double d) noexcept nogil:
    return ((-0.5 * d + 2.5) * d - 4.0) * d + 2.0


cdef inline void _weights(const Kernel *k, double f, double *w) noexcept nogil:
    cdef Py_ssize_t index, t
    if k.kind == 0:
        w[0] = 1.0
    elif k.kind == 1:
        w[0] = 1.0 - f
        w[1] = f
    elif k.kind == 2:
        w[0] = _outer(1.0 + f)
        w[1] = _inner(f)
        w[2] = _inner(1.0 - f)
        w[3] = _outer(2.0 - f)
    else:
        index = <Py_ssize_t>(f * k.steps + 0.5)
        for t in range(k.taps):
            w[t] = k.table[t * k.stride + index]


cdef Kernel _kernel(int kind, int half, const double[:, ::1] table, double snap, int steps):
    cdef Kernel k
    k.kind = kind
    k.snap = snap
    k.steps = steps
    k.stride = steps + 1
    k.table = NULL
    if kind == 0:
        k.taps, k.off, k.shift = 1, 0, 0.5 + snap
    else:
        k.taps, k.off, k.shift = 2 * half, half - 1, snap
    if kind == 3:
        if table.shape[0] != k.taps or table.shape[1] != k.stride:
            raise ValueError("the lanczos table does not fit the kernel")
        k.table = &table[0, 0]
    if k.taps > MAX_TAPS:
        raise ValueError("kernel too wide")
    return k


cdef struct Pixel:
    double x, y              # the map at the output pixel's centre
    double dxdc, dxdr, dydc, dydr  # its derivatives (n > 1)
    int n                    # samples per axis


cdef inline Pixel _pixel(
    const double[:, :] x, const double[:, :] y, const double[:, :, :] d, int n, Py_ssize_t i, Py_ssize_t j
) noexcept nogil:
    cdef Pixel p
    p.x, p.y, p.n = x[i, j], y[i, j], n
    if n > 1:
        p.dxdc, p.dxdr, p.dydc, p.dydr = d[0, i, j], d[1, i, j], d[2, i, j], d[3, i, j]
    else:
        p.dxdc = p.dxdr = p.dydc = p.dydr = 0.0
    return p


cdef inline void _sample(const Pixel *p, int s, double *px, double *py) noexcept nogil:
    """Position of sample s (row-major over the n x n grid) of the output pixel p."""
    cdef double dr, dc
    if p.n == 1:
        px[0], py[0] = p.x, p.y
        return
    dr = (s // p.n + 0.5) / p.n - 0.5
    dc = (s % p.n + 0.5) / p.n - 0.5
    px[0] = p.x + p.dxdc * dc + p.dxdr * dr
    py[0] = p.y + p.dydc * dc + p.dydr * dr


cdef struct Bounds:
    double lo_in, hi_in, lo_touch, hi_touch  # position limits (shifted) in x; y uses the same with ny
    Py_ssize_t ny, nx


cdef struct Place:
    bint inside, touches
    Py_ssize_t xn, yn


cdef Bounds _bounds(int kind, int half, double snap, Py_ssize_t ny, Py_ssize_t nx):
    cdef Bounds b
    cdef double shift = 0.5 + snap if kind == 0 else snap
    cdef double lo_in = 0 if kind == 0 else half - 1, lo_touch = 0 if kind == 0 else -half
    cdef double hi_in = 0 if kind == 0 else -half, hi_touch = 0 if kind == 0 else half - 1
    b.lo_in, b.hi_in, b.lo_touch, b.hi_touch = lo_in - shift, hi_in - shift, lo_touch - shift, hi_touch - shift
    b.ny, b.nx = ny, nx
    return b


cdef inline Py_ssize_t _nearest(double v, Py_ssize_t size) noexcept nogil:
    """The nearest pixel of a finite coordinate, clipped to [0, size - 1]."""
    if fabs(v) < 4503599627370496.0:
        v = _floor(v + 0.5)
    return 0 if v < 0 else (size - 1 if v > size - 1 else <Py_ssize_t>v)


cdef inline Place _place(
    const Pixel *p, const Bounds *b, const cnp.npy_bool[:, :] near, bint has_near
) noexcept nogil:
    """Whether all taps of every sample are inside (and not near a bad pixel), any touches, the nearest pixel."""
    cdef Place out
    cdef int s
    cdef double px, py
    cdef bint finite
    out.inside, out.touches, out.xn, out.yn = True, False, 0, 0
    for s in range(p.n * p.n):
        _sample(p, s, &px, &py)
        finite = isfinite(px) and isfinite(py)
        if not (finite and px >= b.lo_in and px < b.nx + b.hi_in and py >= b.lo_in and py < b.ny + b.hi_in):
            out.inside = False
        if finite and px >= b.lo_touch and px < b.nx + b.hi_touch and py >= b.lo_touch and py < b.ny + b.hi_touch:
            out.touches = True
    if isfinite(p.x) and isfinite(p.y):
        out.xn, out.yn = _nearest(p.x, b.nx), _nearest(p.y, b.ny)
        if has_near and out.inside and near[out.yn, out.xn]:
            out.inside = False
    return out


def layout(
    const double[:, :] x,
    const double[:, :] y,
    const double[:, :, :] derivatives,
    int n,
    int kind,
    int half,
    double snap,
    Py_ssize_t ny,
    Py_ssize_t nx,
):
    """
    (inside, touches, x_nearest, y_nearest) of a tile of output pixels.

    ``inside``: every tap of every sample is inside the ``ny x nx`` input; ``touches``: a tap of some sample is; ``x_nearest, y_nearest``: the input pixel nearest to
    the output pixel's centre (clipped to the input; 0 where the position is not finite).
    ``derivatives`` is ``(dx/dcol, dx/drow, dy/dcol, dy/drow)`` of the map (used when ``n > 1``).
    """
    cdef Py_ssize_t rows = x.shape[0], cols = x.shape[1], i, j
    cdef Pixel pixel
    cdef Place place
    cdef Bounds bounds = _bounds(kind, half, snap, ny, nx)
    inside_a = np.empty((rows, cols), dtype=np.bool_)
    touches_a = np.empty((rows, cols), dtype=np.bool_)
    xn_a = np.empty((rows, cols), dtype=np.intp)
    yn_a = np.empty((rows, cols), dtype=np.intp)
    cdef cnp.npy_bool[:, ::1] inside = inside_a
    cdef cnp.npy_bool[:, ::1] touches = touches_a
    cdef Py_ssize_t[:, ::1] xn = xn_a
    cdef Py_ssize_t[:, ::1] yn = yn_a
    cdef const cnp.npy_bool[:, :] nowhere = inside_a
    _check_derivatives(derivatives, n, rows, cols)
    with nogil:
        for i in range(rows):
            for j in range(cols):
                pixel = _pixel(x, y, derivatives, n, i, j)
                place = _place(&pixel, &bounds, nowhere, False)
                inside[i, j], touches[i, j] = place.inside, place.touches
                xn[i, j], yn[i, j] = place.xn, place.yn
    return inside_a, touches_a, xn_a, yn_a


cdef _check_derivatives(const double[:, :, :] derivatives, int n, Py_ssize_t rows, Py_ssize_t cols):
    if n > 1 and (derivatives.shape[0] != 4 or derivatives.shape[1] != rows or derivatives.shape[2] != cols):
        raise ValueError("derivatives must be 4 planes of the tile's shape")


cdef inline double _dot(const real *line, Py_ssize_t nx, const double *wx, const double *wy, int taps) noexcept nogil:
    """sum_a wy[a] sum_b wx[b] line[a * nx + b] (inlined with a constant ``taps``: unrolled)."""
    cdef double total = 0.0, row
    cdef int a, b
    for a in range(taps):
        row = 0.0
        for b in range(taps):
            row += wx[b] * line[b]
        total += wy[a] * row
        line += nx
    return total


cdef inline double _sum(const real *line, Py_ssize_t nx, const double *wx, const double *wy, int taps) noexcept nogil:
    if taps == 2:
        return _dot(line, nx, wx, wy, 2)
    if taps == 4:
        return _dot(line, nx, wx, wy, 4)
    if taps == 6:
        return _dot(line, nx, wx, wy, 6)
    if taps == 8:
        return _dot(line, nx, wx, wy, 8)
    return _dot(line, nx, wx, wy, taps)


cdef inline void _fast(
    const Kernel *k, const real *data, const real *variance, Py_ssize_t nx, double px, double py,
    double *value, double *var
) noexcept nogil:
    """Plain kernel sums at (px, py), every tap inside and good (``variance`` NULL: none)."""
    cdef double wx[MAX_TAPS]
    cdef double wy[MAX_TAPS]
    cdef double fx, fy
    cdef Py_ssize_t ix0 = _split(k, px, &fx), iy0 = _split(k, py, &fy), offset
    cdef int b
    _weights(k, fx, wx)
    _weights(k, fy, wy)
    offset = iy0 * nx + ix0
    value[0] += _sum(data + offset, nx, wx, wy, k.taps)
    if variance != NULL:
        for b in range(k.taps):
            wx[b] *= wx[b]
            wy[b] *= wy[b]
        var[0] += _sum(variance + offset, nx, wx, wy, k.taps)


cdef inline void _slow(
    const Kernel *k, const real[:, ::1] data, const real[:, ::1] variance, bint has_var,
    const cnp.npy_bool[:, :] bad, bint has_bad, double px, double py, double *sums
) noexcept nogil:
    """Renormalisation sums at (px, py): sum w d, sum w, sum w^2 v, good |w|, all |w| (good taps only)."""
    cdef double wx[MAX_TAPS]
    cdef double wy[MAX_TAPS]
    cdef double fx, fy, w, value, v
    cdef Py_ssize_t ix0, iy0, ix, iy, a, b
    cdef Py_ssize_t ny = data.shape[0], nx = data.shape[1]
    if not (isfinite(px) and isfinite(py)):
        sums[4] += 1.0  # far outside: a whole kernel's mass, none of it good
        return
    ix0 = _split(k, px, &fx)
    iy0 = _split(k, py, &fy)
    _weights(k, fx, wx)
    _weights(k, fy, wy)
    for a in range(k.taps):
        iy = iy0 + a
        for b in range(k.taps):
            ix = ix0 + b
            w = wy[a] * wx[b]
            sums[4] += fabs(w)
            if iy < 0 or iy >= ny or ix < 0 or ix >= nx:
                continue
            value = data[iy, ix]
            if not isfinite(value) or (has_bad and bad[iy, ix]):
                continue
            if has_var:
                v = variance[iy, ix]
                if not isfinite(v):
                    continue
                sums[2] += w * w * v
            sums[0] += w * value
            sums[1] += w
            sums[3] += fabs(w)


def tap_sums(
    const real[:, ::1] data,
    variance,
    bad,
    flags,
    const double[:, :] x,
    const double[:, :] y,
    const double[:, :, :] derivatives,
    int n,
    placed,
    near_bad,
    int kind,
    int half,
    const double[:, ::1] table,
    double snap,
    int steps,
    double min_weight,
    double variance_factor,
    cnp.uint32_t no_data,
    real[:, :] out,
    out_var,
    float[:, :] weight,
    cnp.uint32_t[:, :] out_flags,
):
    """
    Fill ``out, out_var, weight, out_flags`` (a tile of output pixels, views allowed): the mean
    over the ``n x n`` samples of the kernel sums where every tap is inside and good (``fast``),
    the sums renormalised over the good taps elsewhere where a tap ``touches`` the input. ``placed``
    is ``(fast, touches, x_nearest, y_nearest)`` of `layout`, or None to place each pixel here
    as `layout` does (with ``near_bad``, input-shaped bool or None). NaN and the ``no_data``
    flag where the weight is below ``min_weight``. The variance is summed with the squared
    weights and multiplied by ``variance_factor``. ``out_flags`` carries ``flags`` (uint32, data's
    shape, or None) of the nearest input pixel where ``touches``. ``variance`` (data's shape and
    dtype) and ``bad`` (bool, data's shape) may be None, and ``out_var`` is None when
    ``variance`` is.
    """
    cdef Py_ssize_t rows = x.shape[0], cols = x.shape[1], i, j, ny = data.shape[0], nx = data.shape[1]
    cdef int s, samples = n * n
    cdef double px, py, value, var, inv = 1.0 / samples, w, nan = float("nan")
    cdef double sums[5]
    cdef Pixel pixel
    cdef Place place
    cdef Bounds bounds = _bounds(kind, half, snap, ny, nx)
    cdef Kernel k = _kernel(kind, half, table, snap, steps)
    cdef bint has_placed = placed is not None, has_near = near_bad is not None
    dummy_bool, dummy_index = np.zeros((1, 1), np.bool_), np.zeros((1, 1), np.intp)
    if has_placed and len(placed) != 4:
        raise ValueError("placed must be (fast, touches, x_nearest, y_nearest)")
    cdef const cnp.npy_bool[:, :] fast = placed[0] if has_placed else dummy_bool
    cdef const cnp.npy_bool[:, :] touches = placed[1] if has_placed else dummy_bool
    cdef const Py_ssize_t[:, :] x_nearest = placed[2] if has_placed else dummy_index
    cdef const Py_ssize_t[:, :] y_nearest = placed[3] if has_placed else dummy_index
    cdef const cnp.npy_bool[:, :] near = near_bad if has_near else dummy_bool
    cdef bint has_var = variance is not None, has_bad = bad is not None, has_flags = flags is not None
    cdef const real[:, ::1] var_in = variance if has_var else data
    cdef real[:, :] var_out = out_var if has_var else out
    cdef const cnp.npy_bool[:, :] bad_in = bad if has_bad else dummy_bool
    cdef const cnp.uint32_t[:, :] flags_in = flags if has_flags else out_flags
    cdef const real *data_p = NULL
    cdef const real *var_p = NULL
    if has_var != (out_var is not None):
        raise ValueError("out_var must be given exactly when variance is")
    if has_var and (var_in.shape[0] != ny or var_in.shape[1] != nx):
        raise ValueError("variance must have the data's shape")
    if has_bad and (bad_in.shape[0] != ny or bad_in.shape[1] != nx):
        raise ValueError("bad must have the data's shape")
    if has_flags and (flags_in.shape[0] != ny or flags_in.shape[1] != nx):
        raise ValueError("flags must have the data's shape")
    if has_near and (near.shape[0] != ny or near.shape[1] != nx):
        raise ValueError("near_bad must have the data's shape")
    _check_derivatives(derivatives, n, rows, cols)
    shapes = [
        (y.shape[0], y.shape[1]), (out.shape[0], out.shape[1]), (var_out.shape[0], var_out.shape[1]),
        (weight.shape[0], weight.shape[1]), (out_flags.shape[0], out_flags.shape[1]),
    ]
    if has_placed:
        shapes += [
            (fast.shape[0], fast.shape[1]), (touches.shape[0], touches.shape[1]),
            (x_nearest.shape[0], x_nearest.shape[1]), (y_nearest.shape[0], y_nearest.shape[1]),
        ]
    if any(shape != (rows, cols) for shape in shapes):
        raise ValueError("every plane of the tile must have x's shape")
    if ny > 0 and nx > 0:
        data_p = &data[0, 0]
        if has_var:
            var_p = &var_in[0, 0]
    with nogil:
        for i in range(rows):
            for j in range(cols):
                pixel = _pixel(x, y, derivatives, n, i, j)
                if has_placed:
                    place.inside, place.touches = fast[i, j], touches[i, j]
                    place.xn, place.yn = x_nearest[i, j], y_nearest[i, j]
                else:
                    place = _place(&pixel, &bounds, near, has_near)
                if place.inside:
                    value, var = 0.0, 0.0
                    for s in range(samples):
                        _sample(&pixel, s, &px, &py)
                        _fast(&k, data_p, var_p, nx, px, py, &value, &var)
                    value *= inv
                    var *= inv * inv
                    w = 1.0
                elif place.touches:
                    sums[0] = sums[1] = sums[2] = sums[3] = sums[4] = 0.0
                    for s in range(samples):
                        _sample(&pixel, s, &px, &py)
                        _slow(&k, data, var_in, has_var, bad_in, has_bad, px, py, sums)
                    value = sums[0] / sums[1]
                    var = sums[2] / (sums[1] * sums[1])
                    w = sums[3] / (sums[4] if sums[4] > 1e-300 else 1e-300)
                else:
                    value, var, w = 0.0, 0.0, 0.0
                weight[i, j] = <float>w
                out_flags[i, j] = 0
                if has_flags and place.touches:
                    out_flags[i, j] = flags_in[place.yn, place.xn]
                if not (<float>w >= <float>min_weight):
                    value, var = nan, nan
                    out_flags[i, j] |= no_data
                out[i, j] = <real>value
                if has_var:
                    var_out[i, j] = <real>(var * variance_factor)


def spline_grid(
    const double[:, ::1] reduced,
    const Py_ssize_t[::1] indptr,
    const Py_ssize_t[::1] indices,
    const double[::1] values,
):
    """
    ``reduced @ B.T`` for the CSR matrix ``B`` (``indptr, indices, values``; one row per output
    column): a ``(len(reduced), len(indptr) - 1)`` float64 array, C-contiguous.
    """
    cdef Py_ssize_t rows = reduced.shape[0], cols = indptr.shape[0] - 1, i, j, p
    cdef double acc
    out_a = np.empty((rows, cols), dtype=np.float64)
    cdef double[:, ::1] out = out_a
    if cols > 0 and (indptr[cols] > indices.shape[0] or indptr[cols] > values.shape[0]):
        raise ValueError("indptr does not fit indices and values")
    for j in range(cols):
        for p in range(indptr[j], indptr[j + 1]):
            if indices[p] < 0 or indices[p] >= reduced.shape[1]:
                raise ValueError("a column index is outside the coefficients")
    with nogil:
        for i in range(rows):
            for j in range(cols):
                acc = 0.0
                for p in range(indptr[j], indptr[j + 1]):
                    acc = acc + reduced[i, indices[p]] * values[p]
                out[i, j] = acc
    return out_a
