# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``write_frame(..., compress=True)``: lossless tile compression, read back bit for bit."""

import numpy as np
import pytest
from astropy.io import fits

from astrophot import calibrate_frame, read_frame, write_frame
from astrophot.io import is_up_to_date


@pytest.fixture(scope="module")
def calibrated():
    from astrophot.datasets import make_raw_frame

    raw, _ = make_raw_frame(shape=(200, 300), seed=4)
    frame = calibrate_frame(raw, gain=1.5, read_noise=10.0)
    frame.flags[5, 7] |= 1 << 9  # a bit above uint8: DQ stored as uint16
    frame.mask[0, 0] = True  # a mask that differs from the flags: MASK stored too
    return frame


def test_compressed_frame_reads_back_bit_for_bit_and_is_smaller(calibrated, tmp_path):
    plain = write_frame(calibrated, tmp_path / "plain.fits")
    packed = write_frame(calibrated, tmp_path / "packed.fits", compress=True)
    with fits.open(packed) as hdul:
        kinds = {hdu.name: type(hdu).__name__ for hdu in hdul}
        assert hdul[0].header["APFRAME"] == "CalibratedFrame"  # the cards stay in the primary header
    assert kinds == {
        "PRIMARY": "PrimaryHDU",
        "IMAGE": "CompImageHDU",
        "UNCERT": "CompImageHDU",
        "MASK": "CompImageHDU",
        "DQ": "CompImageHDU",
    }
    a, b = read_frame(plain), read_frame(packed)
    assert type(b) is type(a)
    for left, right in (
        (a.data, b.data),
        (a.uncertainty.array, b.uncertainty.array),
        (a.flags, b.flags),
        (a.mask, b.mask),
    ):
        assert left.dtype == right.dtype
        np.testing.assert_array_equal(left, right)
    assert b.checksum() == calibrated.checksum()
    assert list(b.header.items()) == list(a.header.items())
    assert packed.stat().st_size < 0.6 * plain.stat().st_size
    # a compressed product is a product like any other: up to date, and rewritten either way exactly
    assert is_up_to_date(packed, function="calibrate_frame")
    again = read_frame(write_frame(b, tmp_path / "again.fits"))
    np.testing.assert_array_equal(again.data, a.data)
    assert list(again.header.items()) == list(a.header.items())


def test_compressed_solved_frame_keeps_wcs_and_stars(tmp_path):
    from astrophot.datasets import make_raw_frame
    from astrophot.frames import SolvedFrame

    raw, truth = make_raw_frame(shape=(100, 150), seed=2)
    frame = calibrate_frame(raw, gain=1.5, read_noise=10.0)
    solved = SolvedFrame(frame, wcs=truth[0].wcs)
    path = write_frame(solved, tmp_path / "nav.fits", compress=True)
    back = read_frame(path)
    assert isinstance(back, SolvedFrame)
    np.testing.assert_array_equal(back.data, solved.data)
    x, y = 40.3, 70.8
    assert np.allclose(
        back.wcs.pixel_to_world_values(x, y), solved.wcs.pixel_to_world_values(x, y), rtol=0, atol=1e-12
    )
