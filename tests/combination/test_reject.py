# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The rejection rules of the stack against astropy's sigma_clip and the NIST GESD example."""

import numpy as np
import pytest
from astropy.stats import sigma_clip

from astrophot.combination._reject import REJECTIONS, auto_rejection, combine_stack, sort_stack


def _stack(seed=1, n=12, m=4000, outliers=0.05, missing=0.1):
    rng = np.random.default_rng(seed)
    values = rng.normal(100.0, 5.0, (n, m))
    out = rng.random((n, m)) < outliers
    values[out] += rng.choice([-1, 1], out.sum()) * rng.uniform(20, 200, out.sum())
    values[rng.random((n, m)) < missing] = np.nan
    return values


def _winsorized_std_1d(x):
    """Plain reference of the winsorized standard deviation (one pixel's values)."""
    x = x[np.isfinite(x)]
    if x.size < 2:
        return np.nan
    centre = np.median(x)
    sigma = np.std(x, ddof=1)
    for _ in range(10):
        if not sigma > 0:
            break
        new = 1.134 * np.std(np.clip(x, centre - 1.5 * sigma, centre + 1.5 * sigma), ddof=1)
        done = abs(new - sigma) <= 5e-4 * sigma
        sigma = new
        if done:
            break
    return sigma


def _winsorized_std(data, axis=None):
    return np.apply_along_axis(_winsorized_std_1d, 0, np.asarray(data))


def _pooled(stdfunc):
    def func(data, axis=None):
        spread = stdfunc(data, axis=axis)
        return np.maximum(spread, np.nanmedian(spread))

    return func


def _nanstd(data, axis=None):
    return np.nanstd(data, axis=axis)


def _check_against(values, rule, stdfunc, spread, sigma=(3.0, 2.5)):
    result = combine_stack(
        values, rejection=rule, sigma=sigma, max_iterations=10, spread=spread, keep_mask=True
    )
    with pytest.warns(Warning, match="invalid values"):
        ref = sigma_clip(
            values,
            sigma_lower=sigma[0],
            sigma_upper=sigma[1],
            maxiters=10,
            cenfunc="median",
            stdfunc=stdfunc,
            axis=0,
            masked=True,
        )
    keep = ~ref.mask & np.isfinite(values)
    np.testing.assert_array_equal(result.kept, keep)
    expected = np.ma.masked_array(values, ~keep).mean(axis=0).filled(np.nan)
    np.testing.assert_allclose(result.value, expected, rtol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(result.coverage, keep.sum(axis=0))
    np.testing.assert_array_equal(result.n_input, np.isfinite(values).sum(axis=0))
    assert np.all(result.n_low + result.n_high + result.coverage == result.n_input)
    # a real test: something was rejected, low and high
    assert result.n_low.sum() > 0 and result.n_high.sum() > 0


@pytest.mark.parametrize(
    ("rule", "stdfunc", "spread"),
    [
        ("sigma", "std", "pixel"),
        ("mad", "mad_std", "pixel"),
        ("winsorized", _winsorized_std, "pixel"),
        ("sigma", _pooled(_nanstd), "pooled"),
        ("winsorized", _pooled(_winsorized_std), "pooled"),
    ],
)
def test_equals_astropy_sigma_clip(rule, stdfunc, spread):
    m = 400 if rule == "winsorized" else 4000
    _check_against(_stack(m=m), rule, stdfunc, spread)


# NIST/SEMATECH e-Handbook of Statistical Methods, 1.3.5.17.3 (Rosner 1983), 54 values
ROSNER = [
    -0.25, 0.68, 0.94, 1.15, 1.20, 1.26, 1.26,
    1.34, 1.38, 1.43, 1.49, 1.49, 1.55, 1.56,
    1.58, 1.65, 1.69, 1.70, 1.76, 1.77, 1.81,
    1.91, 1.94, 1.96, 1.99, 2.06, 2.09, 2.10,
    2.14, 2.15, 2.23, 2.24, 2.26, 2.35, 2.37,
    2.40, 2.47, 2.54, 2.62, 2.64, 2.90, 2.92,
    2.92, 2.93, 3.21, 3.26, 3.30, 3.59, 3.68,
    4.30, 4.64, 5.34, 5.42, 6.01,
]  # fmt: skip
# the handbook's table: test statistic R_i and critical value lambda_i, i = 1..10
NIST_R = [3.118, 2.942, 3.179, 2.810, 2.815, 2.848, 2.279, 2.310, 2.101, 2.067]
NIST_LAMBDA = [3.158, 3.151, 3.144, 3.136, 3.128, 3.120, 3.111, 3.103, 3.094, 3.085]


def test_gesd_nist_rosner():
    from astrophot.combination._reject import _Kept, gesd_statistics

    values = np.array(ROSNER)[:, None]
    assert values.shape == (54, 1)
    rng = np.random.default_rng(3)
    shuffled = values[rng.permutation(54)]
    kept = _Kept(*sort_stack(shuffled)[::2])
    stat, crit, _ = gesd_statistics(kept, alpha=0.05, max_outliers=10 / 54)
    # the handbook truncates to three decimals
    np.testing.assert_array_equal(
        np.floor(stat[:, 0] * 1000 + 1e-9).astype(int), np.round(np.array(NIST_R) * 1000)
    )
    np.testing.assert_allclose(crit[:, 0], NIST_LAMBDA, atol=1e-3)
    result = combine_stack(shuffled, rejection="gesd", alpha=0.05, max_outliers=10 / 54, keep_mask=True)
    assert result.n_high[0] == 3 and result.n_low[0] == 0
    assert sorted(shuffled[~result.kept[:, 0], 0]) == [5.34, 5.42, 6.01]


@pytest.mark.parametrize(("n", "rule"), [(8, "auto"), (20, "auto"), (8, "sigma"), (20, "sigma"), (20, "mad")])
def test_pure_noise_rejection_rate(n, rule):
    values = np.random.default_rng(5).normal(0.0, 1.0, (n, 40000))
    result = combine_stack(values, rejection=rule, sigma=3.0)
    rate = (result.n_low.sum() + result.n_high.sum()) / values.size
    assert rate < 0.005
    if rule == "mad":
        return  # the spread of values clipped at 3 MAD-sigma under-estimates the variance
    # the variance of an equal-weight mean of n values of unit variance is 1/n
    assert np.nanmean(result.variance) == pytest.approx(1 / n, rel=0.03)
    assert np.var(result.value) == pytest.approx(1 / n, rel=0.03)


@pytest.mark.parametrize("rule", ["percentile", "winsorized", "linear_fit", "gesd", "sigma", "mad"])
def test_outliers_rejected(rule):
    rng = np.random.default_rng(7)
    n, m = 16, 3000
    values = rng.normal(0.0, 1.0, (n, m))
    hit = np.zeros((n, m), dtype=bool)
    hit[rng.integers(0, n, m), np.arange(m)] = True
    values[hit] += 50.0
    result = combine_stack(values, rejection=rule, sigma=3.0, keep_mask=True)
    assert np.count_nonzero(result.kept[hit]) <= 0.01 * m
    assert abs(np.mean(result.value)) < 0.05


def test_minmax_weights_variances_and_missing():
    rng = np.random.default_rng(9)
    n, m = 6, 500
    values = rng.normal(10.0, 1.0, (n, m))
    values[0, :100] = np.nan
    weights = np.arange(1.0, n + 1)
    variances = np.full((n, m), 4.0)
    r = combine_stack(values, rejection="minmax", n_low=1, n_high=2, weights=weights, variances=variances)
    s = np.sort(values, axis=0)  # NaN last
    order = np.argsort(values, axis=0)
    for j in (0, 150):
        c = np.count_nonzero(np.isfinite(values[:, j]))
        keep_idx = order[1 : c - 2, j]
        w = weights[keep_idx]
        assert r.value[j] == pytest.approx(np.average(values[keep_idx, j], weights=w))
        assert r.variance[j] == pytest.approx(np.sum(w**2 * 4.0) / np.sum(w) ** 2)
        assert r.weight[j] == pytest.approx(w.sum())
        assert r.coverage[j] == c - 3 and r.n_low[j] == 1 and r.n_high[j] == 2
        assert s[0, j] == pytest.approx(np.nanmin(values[:, j]))
    assert r.present_per_frame.tolist() == [400, 500, 500, 500, 500, 500]
    assert r.rejected_per_frame.sum() == r.n_low.sum() + r.n_high.sum()


def test_nothing_covers_and_median():
    values = np.array([[1.0, np.nan], [3.0, np.nan], [2.0, np.nan]])
    r = combine_stack(values, rejection="none", center="median")
    assert r.value[0] == 2.0 and np.isnan(r.value[1])
    assert r.coverage.tolist() == [3, 0] and r.weight[1] == 0


def test_auto_rule_and_bad_options():
    assert [auto_rejection(n) for n in (1, 2, 3, 6, 7, 14, 15)] == [
        "none", "none", "percentile", "percentile", "winsorized", "winsorized", "linear_fit",
    ]  # fmt: skip
    assert set(REJECTIONS) >= {
        "none",
        "minmax",
        "percentile",
        "sigma",
        "mad",
        "winsorized",
        "linear_fit",
        "gesd",
    }
    with pytest.raises(ValueError, match="rejection must be one of"):
        combine_stack(np.zeros((3, 3)), rejection="clip")
    with pytest.raises(ValueError, match="sigma limits"):
        combine_stack(np.zeros((3, 3)), rejection="sigma", sigma=(-1, 3))


@pytest.mark.parametrize("rule", ["percentile", "sigma", "mad", "winsorized", "linear_fit", "gesd"])
@pytest.mark.parametrize("n", [4, 5, 8, 20])
def test_every_rule_keeps_pure_noise_with_few_frames(n, rule):
    """< 0.5 % of good values lost at 3 sigma, whatever the rule and the number of frames."""
    values = np.random.default_rng(11 + n).normal(0.0, 1.0, (n, 20000))
    values[np.random.default_rng(n).random(values.shape) < 0.05] = np.nan  # a varying count per pixel
    result = combine_stack(values, rejection=rule, sigma=3.0)
    rate = (result.n_low.sum() + result.n_high.sum()) / np.isfinite(values).sum()
    assert rate < 0.005


def test_consistency_makes_the_pooled_spreads_unbiased():
    from astrophot.combination._reject import _Kept, _percentile_spread, consistency

    # the MAD of three values is the smaller of two deviations: its median is far below sigma
    assert consistency("mad", 3) < 0.6 and consistency("percentile", 5) < 0.75
    for rule in ("percentile", "mad", "linear_fit"):
        assert consistency(rule, 100) == pytest.approx(1.0, abs=0.04)
    # an independent simulation: corrected, the band's median spread is sigma within 2 %
    rng = np.random.default_rng(99)
    for n in (4, 6, 9):
        values = 2.5 * rng.standard_normal((n, 20000))
        kept = _Kept(*sort_stack(values)[::2])
        assert np.median(_percentile_spread(kept)) / consistency("percentile", n) == pytest.approx(
            2.5, rel=0.02
        )
