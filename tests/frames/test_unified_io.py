# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The inherited CCDData.read/.write of astrophot frames go through read_frame/write_frame."""

import numpy as np
import pytest
from astropy.io import fits

from astrophot import CalibratedFrame, DQFlag, RawFrame, SolvedFrame, read_frame, write_frame
from astrophot.exceptions import FrameWriteError


def _raw_file(tmp_path):
    path = tmp_path / "raw.fits"
    data = np.arange(48, dtype=np.uint16).reshape(6, 8)
    fits.PrimaryHDU(data, header=fits.Header({"IMAGETYP": "Light Frame", "EXPTIME": 10.0})).writeto(path)
    return path, data


def test_write_over_the_raw_file_refused(tmp_path):
    path, data = _raw_file(tmp_path)
    raw = RawFrame.read(path)
    assert isinstance(raw, RawFrame) and raw.source_path
    with pytest.raises(FrameWriteError, match="raw data"):
        raw.write(path, overwrite=True)
    with pytest.raises(FrameWriteError, match="raw data"):
        raw.write(str(path), overwrite=True)
    assert np.array_equal(fits.getdata(path), data)  # untouched


def test_read_keeps_flags_provenance_and_type(tmp_path):
    flags = np.zeros((6, 8), dtype=np.uint32)
    flags[2, 3] = DQFlag.HOT
    frame = CalibratedFrame(np.ones((6, 8), dtype=np.float32), unit="electron", flags=flags)
    path = tmp_path / "cal.fits"
    frame.write(path)
    assert path.with_suffix(".asdf").exists()  # the sidecar was written
    back = CalibratedFrame.read(path)
    same = read_frame(path)
    assert type(back) is CalibratedFrame
    assert np.array_equal(back.flags, flags)
    assert back.provenance.id == same.provenance.id
    assert back.checksum() == frame.checksum()
    # the class asks for its type, as read_frame(path, frame_type=...) does
    assert type(SolvedFrame.read(path)) is type(read_frame(path, frame_type=SolvedFrame))


def test_write_of_another_format_refused(tmp_path):
    frame = CalibratedFrame(np.ones((6, 8), dtype=np.float32), unit="electron")
    with pytest.raises(Exception, match="ormat"):
        frame.write(tmp_path / "cal.txt")
    write_frame(frame, tmp_path / "ok.fits")
    with pytest.raises(FrameWriteError, match="already exists"):
        frame.write(tmp_path / "ok.fits")
