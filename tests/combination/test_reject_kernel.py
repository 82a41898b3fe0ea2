# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The compiled per-pixel loops of the rejection against direct per-pixel references."""

import numpy as np
import pytest

from astrophot.calibration._kernel import MAD_TO_STD
from astrophot.combination import _reject_kernel as ck
from astrophot.combination._reject import _Kept, combine_stack, sort_stack


def _stack(n, m, seed, ties=False):
    rng = np.random.default_rng(seed)
    v = rng.normal(100.0, 5.0, (n, m))
    if ties:
        v = np.round(v / 3.0)
    v[rng.random((n, m)) < 0.2] = np.nan
    v[rng.random((n, m)) < 0.01] = np.inf
    v[:, :3] = np.nan  # no values
    v[1:, 3:6] = np.nan  # one value
    v[2:, 6:9] = np.nan  # two values
    return v


def _kept_values(v, lo, hi):
    s = np.sort(np.where(np.isfinite(v), v, np.inf), axis=0)
    return [s[lo[j] : hi[j], j] for j in range(v.shape[1])]


@pytest.mark.parametrize("n", [1, 2, 5, 17, 20, 33])
@pytest.mark.parametrize("ties", [False, True])
def test_sort_and_statistics_equal_direct_per_pixel(n, ties):
    v = _stack(n, 300, n, ties)
    s, index, n_valid = sort_stack(v)
    finite = np.isfinite(v)
    assert np.array_equal(n_valid, finite.sum(axis=0))
    assert np.array_equal(s, np.sort(np.where(finite, v, np.inf), axis=0))
    # each frame once per pixel, carrying its value
    assert np.array_equal(np.sort(index, axis=0), np.broadcast_to(np.arange(n)[:, None], index.shape))
    assert np.array_equal(np.take_along_axis(np.where(finite, v, np.inf), index.astype(np.intp), 0), s)
    kept = _Kept(s, n_valid)
    rng = np.random.default_rng(n)
    kept.lo = np.minimum(rng.integers(0, 3, v.shape[1]), n_valid)
    kept.hi = np.maximum(n_valid - rng.integers(0, 3, v.shape[1]), kept.lo)
    med = kept.median()
    mean, std = kept.mean_std(ddof=1)
    mad = kept.mad_std(med)
    p16 = kept.percentile(15.865525393145708)
    for j, x in enumerate(_kept_values(v, kept.lo, kept.hi)):
        if not x.size:
            assert np.isnan(med[j]) and np.isnan(mean[j]) and mad[j] == np.inf
            continue
        assert med[j] == np.median(x)
        assert mean[j] == pytest.approx(x.mean(), rel=1e-14)
        assert mad[j] == pytest.approx(MAD_TO_STD * np.median(np.abs(x - med[j])), rel=1e-14)
        assert p16[j] == pytest.approx(np.percentile(x, 15.865525393145708), rel=1e-14)
        if x.size > 1:
            assert std[j] == pytest.approx(x.std(ddof=1), rel=1e-10, abs=1e-12)


def test_clip_and_tally_equal_direct_per_pixel():
    v = _stack(12, 400, 3, ties=True)
    s, index, n_valid = sort_stack(v)
    kept = _Kept(s, n_valid)
    med = kept.median()
    lower, upper = med - 3.0, med + 2.0
    kept.clip_to(lower, upper)
    finite = np.isfinite(v)
    inside = finite & (v >= lower) & (v <= upper)
    has = np.isfinite(lower)
    assert np.array_equal(kept.count[has], inside.sum(axis=0)[has])
    assert np.array_equal(kept.count[~has], n_valid[~has])
    rejected, present, mask = ck.tally(index, kept.lo, kept.hi, n_valid, True)
    assert np.array_equal(mask[:, has], inside[:, has])
    assert np.array_equal(present, finite.sum(axis=1))
    assert np.array_equal(rejected, (finite & ~mask).sum(axis=1))


@pytest.mark.parametrize("center", ["mean", "median"])
def test_combination_equals_direct_per_pixel(center):
    rng = np.random.default_rng(7)
    v = _stack(9, 200, 7)
    w = rng.uniform(0.5, 2.0, v.shape)
    var = np.where(np.isfinite(v), rng.uniform(1.0, 3.0, v.shape), np.nan).astype(np.float32)
    for variances in (None, var):
        r = combine_stack(v, rejection="none", weights=w, variances=variances, center=center)
        for j in range(v.shape[1]):
            ok = np.isfinite(v[:, j])
            x, wj = v[ok, j], w[ok, j]
            if not x.size:
                assert np.isnan(r.value[j]) and np.isnan(r.variance[j]) and r.weight[j] == 0
                continue
            mean = np.sum(wj * x) / wj.sum()
            assert r.value[j] == pytest.approx(np.median(x) if center == "median" else mean, rel=1e-13)
            if variances is not None:
                expected = np.sum(wj * wj * var[ok, j]) / wj.sum() ** 2
            elif x.size < 2:
                assert np.isnan(r.variance[j])
                continue
            else:
                spread = np.sum(wj * (x - mean) ** 2) / wj.sum() * x.size / (x.size - 1)
                expected = spread * np.sum(wj * wj) / wj.sum() ** 2
            factor = np.pi / 2 if center == "median" else 1.0
            assert r.variance[j] == pytest.approx(expected * factor, rel=1e-10)
