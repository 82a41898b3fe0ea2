# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""`astrophot._morphology.grow` against scipy's binary_dilation (the peer)."""

import numpy as np
import pytest
from scipy import ndimage

from astrophot._morphology import grow


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (7, 3), (40, 57), (3, 200)])
@pytest.mark.parametrize("reach", [0, 1, 2, 3, 4, 5, 8, 30])
def test_grow_equals_binary_dilation(shape, reach):
    rng = np.random.default_rng(hash((shape, reach)) % 2**32)
    for density in (0.0, 0.01, 0.2, 1.0):
        mask = rng.random(shape) < density
        expected = ndimage.binary_dilation(
            mask, structure=np.ones((2 * reach + 1, 2 * reach + 1), dtype=bool)
        )
        got = grow(mask, reach)
        assert got.dtype == bool and got.shape == shape
        np.testing.assert_array_equal(got, expected)
    assert not np.shares_memory(grow(mask, 0), mask)
