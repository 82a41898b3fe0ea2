# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Simulated frames with known truth for the reduction tests (from astrophot.datasets)."""

from types import SimpleNamespace

import numpy as np
import pytest

SHAPE = (200, 300)
SEED = 3


@pytest.fixture(scope="session")
def sim():
    """
    Masters made by astrophot.calibration from simulated stacks, a raw light and its truth.

    The same seed gives the same camera in every maker, so the masters
    calibrate the light.
    """
    from astrophot.calibration import find_bad_pixels, make_master_bias, make_master_dark, make_master_flat
    from astrophot.datasets import make_bias_stack, make_dark_stack, make_flat_stack, make_raw_frame

    biases, _ = make_bias_stack(9, shape=SHAPE, seed=SEED)
    darks, _ = make_dark_stack(9, shape=SHAPE, seed=SEED, exposure=300.0)
    flats, _ = make_flat_stack(9, shape=SHAPE, seed=SEED, filter="Red")
    raw, truth = make_raw_frame(shape=SHAPE, seed=SEED, exposure=300.0, filter="Red")
    bias = make_master_bias(biases)
    dark_bm = make_master_dark(darks, bias=bias)  # CALSTAT 'BM'
    dark_m = make_master_dark(darks)  # CALSTAT 'M'
    flat = make_master_flat(flats, bias=bias, dark=dark_bm)
    bad_pixels = find_bad_pixels(dark_bm)
    detector = truth.detector
    true_flat = detector.flats["Red"]
    # electrons a perfect calibration gives: sky + stars, times the flat's normalisation
    # (calibrate_frame divides by flat / median(flat))
    sky_and_stars = (truth.noiseless - detector.dark_current * 300.0) / true_flat
    true_electrons = sky_and_stars * np.median(true_flat)
    return SimpleNamespace(
        raw=raw,
        truth=truth,
        bias=bias,
        dark_bm=dark_bm,
        dark_m=dark_m,
        flat=flat,
        bad_pixels=bad_pixels,
        true_flat=true_flat,
        true_electrons=true_electrons,
        gain=detector.gain,
        read_noise=detector.read_noise,
    )


@pytest.fixture(scope="session")
def calibrated(sim):
    """The simulated light calibrated with the 'BM' dark."""
    from astrophot import calibrate_frame

    return calibrate_frame(
        sim.raw,
        bias=sim.bias,
        dark=sim.dark_bm,
        flat=sim.flat,
        bad_pixels=sim.bad_pixels,
        gain=sim.gain,
        read_noise=sim.read_noise,
    )
