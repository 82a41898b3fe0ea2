# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Normalisation, weights and rejection on simulated frames of one pixel grid (known truth)."""

import numpy as np
import pytest
from astropy.table import Table

from astrophot.combination._normalize import frame_statistics, frame_weights, normalization
from astrophot.combination._reject import combine_stack
from astrophot.datasets import make_dithered_frames


def _field(seed=0, m=40000):
    rng = np.random.default_rng(seed)
    signal = np.where(rng.random(m) < 0.05, rng.uniform(50, 2000, m), 0.0)
    return signal, rng


def test_statistics_and_normalisation_recover_truth():
    signal, rng = _field()
    loc = np.array([100.0, 140.0, 80.0])
    scale = np.array([1.0, 0.8, 1.2])
    noise = np.array([5.0, 6.0, 4.0])
    samples = np.stack([loc[i] + scale[i] * signal + rng.normal(0, noise[i], signal.size) for i in range(3)])
    samples[2, :5000] = np.nan  # a frame that covers less
    location, sky_noise, found = frame_statistics(samples)
    np.testing.assert_allclose(location, loc, atol=0.2)
    np.testing.assert_allclose(sky_noise, noise, rtol=0.03)
    np.testing.assert_allclose(found, scale, rtol=0.01)
    for method in ("additive", "multiplicative", "additive_scale", "none"):
        factor, offset = normalization(location, found, method)
        normed = factor[:, None] * samples + offset[:, None]
        level = np.nanmedian(normed[:, signal == 0], axis=1)
        if method in ("additive", "additive_scale"):
            np.testing.assert_allclose(level, loc[0], atol=0.3)
        if method == "additive_scale":
            bright = signal > 500
            ratio = np.nanmedian((normed[:, bright] - level[:, None]) / signal[bright], axis=1)
            np.testing.assert_allclose(ratio, 1.0, rtol=0.01)
        if method == "none":
            np.testing.assert_array_equal(normed, samples)
    with pytest.raises(ValueError, match="normalize must be one of"):
        normalization(location, found, "median")


def test_weights():
    w, reasons = frame_weights("noise", noise=[1.0, 2.0], factor=[1.0, 1.0])
    assert w.tolist() == [1.0, 0.25] and reasons == ["", ""]
    w, _ = frame_weights("psf", noise=[1.0, 1.0], factor=[1.0, 0.5], fwhm=[2.0, 2.0])
    assert w.tolist() == [0.25, 1.0]
    w, _ = frame_weights("exptime", exposure=[30.0, 60.0])
    assert w.tolist() == [0.5, 1.0]
    w, _ = frame_weights([2.0, 1.0, 0.0])
    assert w.tolist() == [1.0, 0.5, 0.0]
    table = Table(
        {
            "file": ["a/f1.fits", "a/f2.fits"],
            "accepted": [True, False],
            "reason": ["", "fwhm 5 > 3"],
            "weight": [0.5, 0.0],
        }
    )
    w, reasons = frame_weights("quality", quality=table, names=["f1.fits", "f2.fits"])
    assert w.tolist() == [1.0, 0.0] and "fwhm 5 > 3" in reasons[1]
    with pytest.raises(ValueError, match="rejected every frame"):
        frame_weights("quality", quality=table[1:], names=["f2.fits"])
    with pytest.raises(ValueError, match="weights must be one of"):
        frame_weights("snr", noise=[1.0])


@pytest.fixture(scope="module")
def aligned():
    """Eight frames on one grid, mixed seeing, faint (sky-limited) stars, no cosmic rays or trail."""
    fwhm = [2.0, 2.0, 2.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    return make_dithered_frames(
        8,
        shape=(100, 120),
        dither=0.0,
        rotation=0.0,
        fwhm=fwhm,
        star_density=20000.0,
        mag_range=(17.0, 21.0),
        satellite=None,
        cosmic_rays=0.0,
        seed=4,
    )


@pytest.fixture(scope="module")
def night():
    """Eight frames on one grid, same seeing: cosmic rays in all, a trail in frame 0."""
    return make_dithered_frames(8, shape=(100, 120), dither=0.0, rotation=0.0, seed=5)


def _rates(frames, truth):
    values = np.stack(
        [np.asarray(f.data, dtype=np.float64).ravel() / t for f, t in zip(frames, truth.exposure)]
    )
    variances = np.stack(
        [
            (np.asarray(f.uncertainty.array, dtype=np.float64).ravel() / t) ** 2
            for f, t in zip(frames, truth.exposure)
        ]
    )
    return values, variances


def test_rejection_removes_trail_and_cosmic_rays(night):
    frames, truth = night
    values, variances = _rates(frames, truth)
    r = combine_stack(values, rejection="auto", sigma=3.0, variances=variances, keep_mask=True)
    assert r.rejection == "winsorized"
    expected = np.mean([e.ravel() / t for e, t in zip(truth.expected, truth.exposure)], axis=0)
    sigma = np.sqrt(r.variance)
    hits = [truth.trail[0].ravel()] + [c.ravel() for c in truth.cosmic_rays]
    assert all(h.sum() > 5 for h in hits)
    hit = np.any(hits, axis=0)
    ok = np.abs(r.value[hit] - expected[hit]) < 3 * sigma[hit]
    assert np.mean(ok) >= 0.99
    # the trail's values were rejected, high, in the frame that has it
    trail = truth.trail[0].ravel()
    assert np.mean(~r.kept[0, trail]) > 0.99 and np.all(r.n_high[trail] >= 1)
    # pixels without a hit lose few values (stars included)
    clean = ~np.any([c.ravel() for c in truth.cosmic_rays], axis=0) & ~trail
    assert np.mean(~r.kept[:, clean]) < 0.005


def _star_snr(value, variance, truth, frames, shape):
    x, y = frames[0].wcs.all_world2pix(truth.stars["ra"].value, truth.stars["dec"].value, 0)
    image, var = value.reshape(shape), variance.reshape(shape)
    snr = []
    for xi, yi, rate in zip(x, y, truth.stars["rate"]):
        ix, iy = int(round(xi)), int(round(yi))
        if not (5 <= ix < shape[1] - 5 and 5 <= iy < shape[0] - 5) or rate > 1000:
            continue
        # an aperture of about the FWHM (3x3 pixels): what PSF photometry and detection see
        box = np.s_[iy - 1 : iy + 2, ix - 1 : ix + 2]
        snr.append((image[box].sum() - 9 * 2.0) / np.sqrt(var[box].sum()))
    return np.array(snr)


def test_psf_weights_improve_star_snr(aligned):
    frames, truth = aligned
    values, variances = _rates(frames, truth)
    noise = [np.std(v[v < np.percentile(v, 50)]) for v in values]
    fwhm = [p.fwhm for p in truth.psf]
    w_psf, _ = frame_weights("psf", noise=noise, factor=np.ones(8), fwhm=fwhm)
    assert np.all(w_psf[:4] > 3 * w_psf[4:])  # better seeing weighs more
    shape = frames[0].shape
    snr = {}
    noiseless = np.stack([e.ravel() / t for e, t in zip(truth.expected, truth.exposure)])
    for name, w in (("psf", w_psf), ("none", None)):
        r = combine_stack(values, rejection="none", weights=w, variances=variances)
        signal = combine_stack(noiseless, rejection="none", weights=w).value
        # the SNR of the noiseless combined star over the propagated noise of the stack
        snr[name] = _star_snr(signal, r.variance, truth, frames, shape)
    assert len(snr["psf"]) >= 10
    # measured: +2.6 % (3x3 aperture; 1/FWHM**2 over-weights the sharp frames a little)
    assert np.median(snr["psf"] / snr["none"]) > 1.01
