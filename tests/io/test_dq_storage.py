# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""DQ flags are stored in the smallest unsigned integer type holding their bits, and read back exactly."""

import numpy as np
import pytest
from astropy.io import fits

from astrophot import CalibratedFrame, read_frame, write_frame
from astrophot.provenance import start_step


@pytest.mark.parametrize(("top", "bitpix"), [(0, 8), (255, 8), (256, 16), (1 << 15, 16), (1 << 20, 32)])
def test_dq_smallest_type_lossless(tmp_path, top, bitpix):
    rng = np.random.default_rng(top)
    flags = rng.integers(0, 4, (20, 30)).astype(np.uint32)
    flags[3, 4] = top
    frame = CalibratedFrame(rng.normal(size=(20, 30)).astype(np.float32), flags=flags, unit="electron")
    frame = start_step("calibrate_frame", parameters={}).finish(frame)
    path = write_frame(frame, tmp_path / "cal.fits")
    with fits.open(path) as hdul:
        assert hdul["DQ"].header["BITPIX"] == bitpix
    back = read_frame(path)
    assert back.flags.dtype == np.uint32
    np.testing.assert_array_equal(back.flags, flags)
    np.testing.assert_array_equal(back.data, frame.data)
