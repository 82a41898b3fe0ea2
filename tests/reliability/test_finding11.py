# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Issue 11, finding 11: a one-frame master, a corrupt master in a library, pixels edited after writing."""

import logging

import numpy as np
import pytest
from astropy.io import fits

from astrophot.calibration import CalibrationLibrary, make_master_bias
from astrophot.datasets import make_bias_stack, make_raw_frame
from astrophot.exceptions import AstrophotUserWarning, CalibrationError
from astrophot.frames import RawFrame
from astrophot.io import read_frame, write_frame


def test_a_master_of_one_frame_warns():
    biases, _ = make_bias_stack(1, shape=(16, 24), seed=1)
    with pytest.warns(AstrophotUserWarning, match="a master bias made of one frame .*nothing is rejected"):
        master = make_master_bias(biases)
    assert master.header["NCOMBINE"] == 1


def _library_with_a_corrupt_bias(tmp_path):
    folder = tmp_path / "T20" / "Masters" / "Bias" / "20210310"
    folder.mkdir(parents=True)
    good = fits.Header({"IMAGETYP": "Master Bias", "XBINNING": 2, "YBINNING": 2, "SET-TEMP": -15.0})
    fits.PrimaryHDU(np.zeros((16, 24), np.float32), header=good).writeto(folder / "Master_Bias_2x2_other.fit")
    corrupt = folder / "Master_Bias_1x1.fit"
    corrupt.write_bytes(b"SIMPLE  =                    T" + b"\0" * 100)  # truncated, not FITS
    return tmp_path, corrupt


def test_a_corrupt_master_in_a_library_is_reported_not_hidden(tmp_path, caplog):
    root, corrupt = _library_with_a_corrupt_bias(tmp_path)
    with caplog.at_level(logging.WARNING, logger="astrophot"):
        lib = CalibrationLibrary(root)
    assert f"{corrupt}: not indexed, unreadable" in caplog.text  # was at DEBUG only
    assert "unreadable" in lib.summary() and corrupt.name in lib.summary()
    light = RawFrame(
        np.zeros((16, 24), np.uint16),
        meta={"IMAGETYP": "Light Frame", "XBINNING": 1, "YBINNING": 1, "SET-TEMP": -15.0, "EXPTIME": 60.0},
        source_path="light.fit",
    )
    with pytest.raises(CalibrationError) as info:
        lib.select(light, require=("bias",))
    # "holds 1 bias master(s)" alone hid the cause: the unreadable one is named with its reason
    assert "1 file(s) in it could not be read: Master_Bias_1x1.fit" in str(info.value)


def test_pixels_edited_after_writing_are_noticed(tmp_path):
    raw, _ = make_raw_frame(shape=(20, 30), seed=2)
    from astrophot import calibrate_frame

    path = write_frame(calibrate_frame(raw, gain=1.5, read_noise=10.0), tmp_path / "cal.fits")
    read_frame(path).checksum()  # untouched: no warning (warnings are errors in this suite)
    with fits.open(path, mode="update") as hdul:
        hdul[0].data[5, 5] += 100.0
    edited = read_frame(path)
    with pytest.warns(
        AstrophotUserWarning, match="cal.fits: its pixels differ from the checksum its provenance"
    ):
        edited.checksum()
