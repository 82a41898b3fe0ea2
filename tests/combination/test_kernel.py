# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The compiled tap sums (`astrophot.combination._kernel`) against a direct double loop written
here from the documented rules, on a small random frame with masked and non-finite pixels, a
variance plane and edges: every kernel, point-sampled and anti-aliased, float64 and float32.
"""

import numpy as np
import pytest

from astrophot.combination import _core, _kernel

SNAP = 1e-8
STEPS = 4096


def _keys(d, a=-0.5):
    d = abs(d)
    if d <= 1:
        return (a + 2) * d**3 - (a + 3) * d**2 + 1
    if d < 2:
        return a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a
    return 0.0


def _taps_1d(kernel, v):
    """(first tap, weights) along one axis for coordinate v, by the rules of `._core`."""
    if kernel == "nearest":
        return int(np.floor(v + 0.5 + SNAP)), [1.0]
    base = np.floor(v + SNAP)
    f = v - base
    if abs(f) < SNAP:
        f = 0.0
    base = int(base)
    if kernel == "bilinear":
        return base, [1 - f, f]
    if kernel == "bicubic":
        return base - 1, [_keys(t - f) for t in (-1, 0, 1, 2)]
    a = _core.KERNELS[kernel]
    fq = np.floor(f * STEPS + 0.5) / STEPS  # the table's nearest fraction
    w = [float(np.sinc(m - fq) * np.sinc((m - fq) / a)) for m in range(-a + 1, a + 1)]
    return base - a + 1, [x / sum(w) for x in w]


def _reference(data, variance, bad, x, y, kernel, n, min_weight):
    """Renormalised kernel sums over the n x n samples of each output pixel, one tap at a time."""
    ny, nx = data.shape
    dxdr, dxdc = np.gradient(x)
    dydr, dydc = np.gradient(y)
    steps = (np.arange(n) + 0.5) / n - 0.5
    out, out_var, weight = (np.full(x.shape, np.nan) for _ in range(3))
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            s_wd = s_w = s_wv = s_good = s_abs = 0.0
            for dr in steps if n > 1 else [0.0]:
                for dc in steps if n > 1 else [0.0]:
                    px, py = x[i, j], y[i, j]
                    if n > 1:
                        px += dxdc[i, j] * dc + dxdr[i, j] * dr
                        py += dydc[i, j] * dc + dydr[i, j] * dr
                    if not (np.isfinite(px) and np.isfinite(py)):
                        s_abs += 1.0  # nowhere: a whole kernel's mass, none of it good
                        continue
                    ix0, wx = _taps_1d(kernel, px)
                    iy0, wy = _taps_1d(kernel, py)
                    for a, w_row in enumerate(wy):
                        for b, w_col in enumerate(wx):
                            w = w_row * w_col
                            s_abs += abs(w)
                            iy, ix = iy0 + a, ix0 + b
                            if not (0 <= iy < ny and 0 <= ix < nx):
                                continue
                            good = np.isfinite(data[iy, ix]) and not bad[iy, ix]
                            good = good and np.isfinite(variance[iy, ix])
                            if good:
                                s_wd += w * data[iy, ix]
                                s_w += w
                                s_wv += w * w * variance[iy, ix]
                                s_good += abs(w)
            weight[i, j] = s_good / s_abs
            if weight[i, j] >= min_weight:
                out[i, j] = s_wd / s_w
                out_var[i, j] = s_wv / s_w**2
    return out, out_var, weight


def _frame(dtype, seed=3):
    rng = np.random.default_rng(seed)
    shape = (23, 31)
    data = rng.normal(100.0, 10.0, shape).astype(dtype)
    variance = rng.uniform(5.0, 20.0, shape).astype(dtype)
    bad = rng.random(shape) < 0.03
    data[rng.integers(0, shape[0], 4), rng.integers(0, shape[1], 4)] = np.nan
    variance[rng.integers(0, shape[0], 3), rng.integers(0, shape[1], 3)] = np.inf
    bad[:, 17] = True  # a bad column
    return data, variance, bad


def _map(shape, scale, rotation=23.0, shift=(-2.3, -1.7)):
    """A rotated, scaled, shifted grid whose edges leave the input."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    th = np.radians(rotation)
    x = scale * (np.cos(th) * cols - np.sin(th) * rows) + shift[0] + 6.0
    y = scale * (np.sin(th) * cols + np.cos(th) * rows) + shift[1]
    return x, y


@pytest.mark.parametrize("kernel", list(_core.KERNELS))
@pytest.mark.parametrize("given_near_bad", [False, True])
def test_point_sampled_matches_double_loop(kernel, given_near_bad):
    data, variance, bad = _frame(np.float64)
    x, y = _map((20, 26), 1.07)
    x[3, 4] = np.nan  # an undefined map position
    near_bad = None
    if given_near_bad:
        every_bad = bad | ~np.isfinite(data) | ~np.isfinite(variance)
        near_bad = _core.bad_reach(every_bad, kernel)
    out, out_var, weight, flags = _core.resample_band(
        data, variance, bad, None, x, y, kernel=kernel, near_bad=near_bad, antialias=False
    )
    ref, ref_var, ref_weight = _reference(data, variance, bad, x, y, kernel, 1, 0.5)
    np.testing.assert_allclose(weight, ref_weight, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(out, ref, rtol=1e-10, equal_nan=True)
    np.testing.assert_allclose(out_var, ref_var, rtol=1e-10, equal_nan=True)
    assert np.array_equal(np.isnan(out), ref_weight < 0.5)
    # the case mix the test is there for: clean pixels, renormalised ones, and no data
    assert (ref_weight == 1).sum() > 20
    assert kernel == "nearest" or ((ref_weight > 0.5) & (ref_weight < 1)).sum() > 10
    assert (ref_weight == 0).sum() > 5
    assert np.all(flags[np.isnan(out)] & _core._NO_DATA)


@pytest.mark.parametrize("kernel", ["nearest", "bilinear", "bicubic", "lanczos3"])
def test_antialiased_matches_double_loop(kernel):
    data, variance, bad = _frame(np.float64, seed=5)
    x, y = _map((11, 14), 1.9, shift=(-1.0, -0.5))
    out, _, weight, _ = _core.resample_band(data, variance, bad, None, x, y, kernel=kernel, antialias=True)
    n = int(np.ceil(1.5 * 1.9))
    ref, _, ref_weight = _reference(data, variance, bad, x, y, kernel, n, 0.5)
    np.testing.assert_allclose(weight, ref_weight, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(out, ref, rtol=1e-10, equal_nan=True)
    assert np.isfinite(out).sum() > 40


@pytest.mark.parametrize("kernel", ["bilinear", "lanczos3"])
def test_float32_agrees_with_float64_to_float_rounding(kernel):
    data, variance, bad = _frame(np.float64, seed=7)
    x, y = _map((20, 26), 0.93)
    out64, var64, w64, _ = _core.resample_band(data, variance, bad, None, x, y, kernel=kernel)
    out32, var32, w32, _ = _core.resample_band(
        data.astype(np.float32), variance.astype(np.float32), bad, None, x, y, kernel=kernel
    )
    assert out32.dtype == np.float32 and var32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=2e-6, equal_nan=True)
    np.testing.assert_allclose(var32, var64, rtol=2e-6, equal_nan=True)
    np.testing.assert_array_equal(w32, w64)


def test_spline_grid_is_the_sparse_product():
    rng = np.random.default_rng(1)
    reduced = rng.normal(size=(5, 9))
    dense = np.zeros((7, 9))
    for j in range(7):
        dense[j, j : j + 3] = rng.normal(size=3)
    indptr = np.arange(0, 22, 3, dtype=np.intp)
    indices = np.concatenate([np.arange(j, j + 3) for j in range(7)]).astype(np.intp)
    values = np.concatenate([dense[j, j : j + 3] for j in range(7)])
    np.testing.assert_allclose(_kernel.spline_grid(reduced, indptr, indices, values), reduced @ dense.T)
    with pytest.raises(ValueError, match="outside the coefficients"):
        _kernel.spline_grid(reduced, indptr, indices + 7, values)
