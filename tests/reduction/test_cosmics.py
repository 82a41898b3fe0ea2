# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""reject_cosmic_rays against the cosmic rays injected by the simulator."""

import numpy as np
import pytest
from astropy.nddata import StdDevUncertainty
from scipy import ndimage

from astrophot import CalibratedFrame, DQFlag, calibrate_frame, reject_cosmic_rays
from astrophot.reduction._cosmics import estimate_fwhm

from .conftest import SEED, SHAPE

EDGE = 5  # stars closer than this to the border are cut by it


@pytest.fixture(scope="module")
def cosmic(sim):
    """A light with many cosmic rays, calibrated with the session's masters, and its truth."""
    from astrophot.datasets import make_raw_frame

    raw, truth = make_raw_frame(
        shape=SHAPE, seed=SEED, exposure=300.0, filter="Red", cosmic_ray_rate=300.0, synthetic_density=12000.0
    )
    frame = calibrate_frame(
        raw,
        bias=sim.bias,
        dark=sim.dark_bm,
        flat=sim.flat,
        bad_pixels=sim.bad_pixels,
        gain=sim.gain,
        read_noise=sim.read_noise,
    )
    return frame, truth, reject_cosmic_rays(frame)


def _flagged(frame):
    return (frame.flags & DQFlag.COSMIC_RAY) != 0


def test_injected_cosmic_rays_found(cosmic):
    """At least 95% of the injected cosmic-ray pixels above 5 sigma are flagged."""
    frame, truth, cleaned = cosmic
    significance = truth.cosmic_ray_electrons / frame.uncertainty.array
    strong = truth.cosmic_rays & (significance > 5) & ~frame.mask
    assert strong.sum() > 100
    assert np.mean(_flagged(cleaned)[strong]) >= 0.95


def test_star_peaks_spared(cosmic):
    """Under 0.1% of the pixels within 2 pixels of bright star peaks are flagged."""
    frame, truth, cleaned = cosmic
    stars = truth.stars
    ny, nx = SHAPE
    bright = (stars["flux"] > 2000) & ~stars["saturated"]
    inside = (
        (stars["x"] > EDGE)
        & (stars["x"] < nx - 1 - EDGE)
        & (stars["y"] > EDGE)
        & (stars["y"] < ny - 1 - EDGE)
    )
    near = np.zeros(SHAPE, dtype=bool)
    for x, y in zip(stars["x"][bright & inside], stars["y"][bright & inside]):
        r, c = int(round(y)), int(round(x))
        near[r - 2 : r + 3, c - 2 : c + 3] = True
    # a cosmic ray on a star is rightly flagged: leave out pixels within 2 of a hit
    near &= ~ndimage.binary_dilation(truth.cosmic_rays, iterations=2) & ~frame.mask
    assert near.sum() > 2000
    assert np.mean(_flagged(cleaned)[near]) < 0.001


def test_flagged_pixels_replaced_and_repaired(cosmic):
    frame, truth, cleaned = cosmic
    flagged = _flagged(cleaned)
    assert np.all(cleaned.flags[flagged] & DQFlag.REPAIRED)
    assert not cleaned.mask[flagged].any()
    assert not (flagged & frame.mask).any()  # masked pixels are never flagged
    hit = flagged & truth.cosmic_rays
    # replaced values are back near what the pixel held without its cosmic ray
    residual = (cleaned.data - (frame.data - truth.cosmic_ray_electrons))[hit] / cleaned.uncertainty.array[
        hit
    ]
    assert np.median(np.abs(residual)) < 3
    assert cleaned.header["CR_NPIX"] == flagged.sum()
    unchanged = ~flagged
    assert np.array_equal(cleaned.data[unchanged], frame.data[unchanged])


def test_fast_flags_what_the_full_call_flags(cosmic):
    frame, _, cleaned = cosmic
    full = reject_cosmic_rays(frame, fast=False)
    fast_mask, full_mask = _flagged(cleaned), _flagged(full)
    assert full_mask.sum() > 100
    assert (fast_mask & full_mask).sum() >= 0.99 * full_mask.sum()


def test_fwhm_measured_from_the_frame(cosmic):
    frame, truth, cleaned = cosmic
    outcome = cleaned.provenance.steps[-1].outcome
    assert outcome["fwhm_source"] == "measured"
    assert outcome["fwhm"] == pytest.approx(truth.psf.fwhm, rel=0.1)
    assert outcome["read_noise_source"] == "header RDNOISE"


@pytest.mark.parametrize("fwhm", [2.0, 4.0])
def test_estimate_fwhm_gaussian(fwhm):
    """Pixel-integrated Gaussian stars of known FWHM."""
    from scipy.special import erf

    rng = np.random.default_rng(4)
    sigma = fwhm / (2 * np.sqrt(2 * np.log(2)))
    edges = np.arange(201, dtype=float)
    image = rng.normal(100.0, 3.0, (200, 200))
    for cy, cx in rng.uniform(15, 185, (12, 2)):
        px = np.diff(erf((edges - cx) / (np.sqrt(2) * sigma))) / 2
        py = np.diff(erf((edges - cy) / (np.sqrt(2) * sigma))) / 2
        image += 20000 * np.outer(py, px)
    image[50, 60] += 5000  # a cosmic ray is not a star
    assert estimate_fwhm(image) == pytest.approx(fwhm, rel=0.1)
    assert estimate_fwhm(rng.normal(100.0, 3.0, (50, 50))) is None


def test_frame_without_cosmic_rays():
    rng = np.random.default_rng(6)
    data = rng.poisson(200.0, (120, 150)).astype(np.float32)
    frame = CalibratedFrame(
        data,
        unit="electron",
        uncertainty=StdDevUncertainty(np.sqrt(data + 25.0)),
        meta={"RDNOISE": 5.0},
    )
    cleaned = reject_cosmic_rays(frame)
    assert cleaned.header["CR_NPIX"] == 0
    assert np.array_equal(cleaned.data, frame.data)
    outcome = cleaned.provenance.steps[-1].outcome
    assert outcome["fwhm_source"] == "default (no star found)"


def test_read_noise_from_uncertainty():
    rng = np.random.default_rng(7)
    data = rng.normal(300.0, np.sqrt(300 + 144), (100, 100)).astype(np.float32)
    frame = CalibratedFrame(
        data, unit="electron", uncertainty=StdDevUncertainty(np.full(data.shape, np.sqrt(444.0)))
    )
    outcome = reject_cosmic_rays(frame).provenance.steps[-1].outcome
    assert outcome["read_noise_source"] == "uncertainty"
    assert outcome["read_noise"] == pytest.approx(12.0, rel=0.1)


def test_frame_in_adu_uses_its_gain():
    """A frame left in ADU is searched in electrons through its GAIN."""
    rng = np.random.default_rng(8)
    electrons = rng.poisson(400.0, (100, 120)).astype(np.float32)
    electrons[40, 50] += 3000.0
    frame = CalibratedFrame(electrons / 2.0, unit="adu", meta={"GAIN": 2.0, "RDNOISE": 4.0})
    cleaned = reject_cosmic_rays(frame, fwhm=3.0)
    outcome = cleaned.provenance.steps[-1].outcome
    assert outcome["gain"] == 2.0 and outcome["read_noise"] == 4.0
    assert np.flatnonzero(_flagged(cleaned)).tolist() == [40 * 120 + 50]
