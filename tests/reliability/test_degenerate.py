# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Issue 11, finding 8: degenerate data (all NaN, all zero, divided by zero) warns or errors with the numbers."""

import warnings

import numpy as np
import pytest

from astrophot import calibrate_frame
from astrophot.analysis import image_arithmetic
from astrophot.calibration import make_master_bias
from astrophot.datasets import make_bias_stack, make_raw_frame
from astrophot.exceptions import AstrophotUserWarning

SHAPE = (40, 60)


@pytest.fixture(scope="module")
def sim():
    biases, _ = make_bias_stack(3, shape=SHAPE, seed=8)
    raw, _ = make_raw_frame(shape=SHAPE, seed=8)
    return raw, make_master_bias(biases)


def _calibrate(raw, bias):
    return calibrate_frame(raw, bias=bias, gain=1.5, read_noise=10.0)


def test_a_good_light_gives_no_warning(sim):
    raw, bias = sim
    with warnings.catch_warnings():
        warnings.simplefilter("error", AstrophotUserWarning)
        product = _calibrate(raw, bias)
    assert np.median(product.data) > 0


def test_an_all_zero_raw_frame_is_below_its_bias_and_warns_with_the_numbers(sim):
    raw, bias = sim
    blank = raw.copy()
    blank.data = np.zeros_like(raw.data)
    with pytest.warns(AstrophotUserWarning, match=r"median is -1\d{3}, \d+ sigma below zero") as record:
        product = _calibrate(blank, bias)
    assert "not physical" in str(record[0].message)
    # the numbers are the product's: bias level ~1000 ADU x 1.5 e-/ADU below zero
    assert np.median(product.data) == pytest.approx(-1.5 * np.median(bias.data), rel=0.05)


def test_an_all_nan_raw_frame_warns(sim):
    raw, bias = sim
    empty = raw.copy()
    empty.data = np.full(raw.data.shape, np.nan)
    with pytest.warns(AstrophotUserWarning, match="100% of its pixels are NaN or infinite"):
        _calibrate(empty, bias)


def test_division_by_the_number_zero_is_refused(sim):
    raw, bias = sim
    product = _calibrate(raw, bias)
    with pytest.raises(ValueError, match="division by zero"):
        image_arithmetic(product, "/", 0)
    with pytest.raises(ValueError, match="division by zero"):
        image_arithmetic(product, "div", 0.0)


def test_division_by_a_frame_of_zeros_warns(sim):
    raw, bias = sim
    product = _calibrate(raw, bias)
    zeros = product.copy()
    zeros.data = np.zeros_like(product.data)
    with pytest.warns(AstrophotUserWarning, match="100% of its pixels are NaN or infinite"):
        result = image_arithmetic(product, "/", zeros)
    assert result.mask.all()


def test_a_mostly_saturated_light_warns_that_the_product_is_mostly_masked(sim):
    raw, bias = sim
    bright = raw.copy()
    bright.data = np.full(raw.data.shape, 65535, dtype=raw.data.dtype)
    bright.data[:8] = raw.data[:8]  # 20% of the rows usable
    with pytest.warns(AstrophotUserWarning, match="80% of its pixels are masked"):
        product = _calibrate(bright, bias)
    assert product.mask.mean() == pytest.approx(0.8, abs=0.01)


def test_arithmetic_does_not_repeat_what_its_inputs_already_are(sim):
    raw, bias = sim
    product = _calibrate(raw, bias)
    masked = product.copy()
    masked.mask = np.ones(product.data.shape, bool)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AstrophotUserWarning)
        image_arithmetic(masked, "*", 2.0)  # the input was already masked: nothing new to say
