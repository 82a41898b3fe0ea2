# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Atomic writes, no silent overwrites, raw data never written over, clear read errors."""

import bz2
import gzip
import shutil

import numpy as np
import pytest
from astropy.io import fits

import astrophot.io._fits as fits_module
from astrophot import CalibratedFrame, RawFrame, read_frame, write_frame
from astrophot.exceptions import FrameReadError, FrameWriteError
from astrophot.provenance import start_step


def _calibrated():
    return start_step("t").finish(CalibratedFrame(np.ones((4, 4), dtype=np.float32)))


def test_failure_halfway_leaves_neither_file(tmp_path, monkeypatch):
    def broken_sidecar(*args, **kwargs):
        raise OSError("disk full (injected)")

    monkeypatch.setattr(fits_module, "write_sidecar", broken_sidecar)
    with pytest.raises(FrameWriteError, match="injected"):
        write_frame(_calibrated(), tmp_path / "out.fits")
    assert list(tmp_path.iterdir()) == []


def test_failure_at_final_rename_leaves_neither_file(tmp_path, monkeypatch):
    # the FITS file is published first (a link for a new name), then the sidecar (issue 11, finding 2)
    def broken_publish(src, dst, *, overwrite):
        raise OSError("rename failed (injected)")

    monkeypatch.setattr(fits_module, "publish", broken_publish)
    with pytest.raises(FrameWriteError, match="injected"):
        write_frame(_calibrated(), tmp_path / "out.fits")
    assert list(tmp_path.iterdir()) == []


def test_no_overwrite_without_permission(tmp_path):
    path = tmp_path / "out.fits"
    write_frame(_calibrated(), path)
    before = path.read_bytes()
    with pytest.raises(FrameWriteError, match="already exists"):
        write_frame(_calibrated(), path)
    assert path.read_bytes() == before
    write_frame(_calibrated(), path, overwrite=True)
    assert read_frame(path).frame_type == "CalibratedFrame"


def test_raw_data_is_never_overwritten(tmp_path):
    raw_path = tmp_path / "raw-T20-user-M31-20240101-220000-Ha-BIN2-E-300-001.fits"
    fits.PrimaryHDU(
        np.arange(16, dtype=np.uint16).reshape(4, 4), header=fits.Header({"EXPTIME": 5.0})
    ).writeto(raw_path)
    original = raw_path.read_bytes()
    raw = read_frame(raw_path)
    assert isinstance(raw, RawFrame)
    with pytest.raises(FrameWriteError, match="raw data"):
        write_frame(raw, raw_path, overwrite=True)
    derived = start_step("t", inputs={"raw": raw}).finish(CalibratedFrame(raw.data.astype("f4")), primary=raw)
    with pytest.raises(FrameWriteError, match="raw data"):
        write_frame(derived, raw_path, overwrite=True)
    # a foreign file is not an astrophot product: never overwritten
    foreign = tmp_path / "foreign.fits"
    shutil.copy(raw_path, foreign)
    with pytest.raises(FrameWriteError, match="not written by astrophot"):
        write_frame(_calibrated(), foreign, overwrite=True)
    assert raw_path.read_bytes() == original


def test_corrupt_and_truncated_files_name_the_file(tmp_path):
    bad = tmp_path / "garbage.fits"
    bad.write_bytes(b"this is not FITS at all" * 200)
    with pytest.raises(FrameReadError, match="garbage.fits"):
        read_frame(bad)
    good = tmp_path / "good.fits"
    fits.PrimaryHDU(np.ones((100, 100), dtype=np.float32)).writeto(good)
    truncated = tmp_path / "truncated.fits"
    truncated.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(FrameReadError, match="truncated.fits"):
        read_frame(truncated)
    with pytest.raises(FrameReadError, match="no such file"):
        read_frame(tmp_path / "missing.fits")
    empty = tmp_path / "header_only.fits"
    fits.PrimaryHDU().writeto(empty)
    with pytest.raises(FrameReadError, match="no image"):
        read_frame(empty)
    cube = tmp_path / "cube.fits"
    fits.PrimaryHDU(np.zeros((2, 3, 3))).writeto(cube)
    with pytest.raises(FrameReadError, match="3-D"):
        read_frame(cube)


def test_unsigned_pedestal_compressed_and_extension(tmp_path):
    data = np.array([[0, 100, 65535]], dtype=np.uint16)
    header = fits.Header({"PEDESTAL": -100, "EXPTIME": 1.0, "IMAGETYP": "Light Frame"})
    path = tmp_path / "ped.fit"
    fits.PrimaryHDU(data, header=header).writeto(path)
    assert fits.getheader(path)["BZERO"] == 32768
    raw = read_frame(path)
    np.testing.assert_array_equal(raw.data, [[-100, 0, 65435]])
    assert "PEDESTAL" not in raw.header
    # no pedestal: unsigned integers come back exactly
    path2 = tmp_path / "u16.fts"
    fits.PrimaryHDU(data, header=fits.Header({"EXPTIME": 1.0})).writeto(path2)
    raw2 = read_frame(path2)
    assert raw2.data.dtype == np.uint16
    np.testing.assert_array_equal(raw2.data, data)
    # gzip and bzip2
    for opener, suffix in ((gzip.open, ".fits.gz"), (bz2.open, ".fits.bz2")):
        packed = tmp_path / f"packed{suffix}"
        with opener(packed, "wb") as fh:
            fh.write(path2.read_bytes())
        np.testing.assert_array_equal(read_frame(packed).data, data)
    # tile-compressed image in the first extension
    fz = tmp_path / "comp.fits.fz"
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(np.arange(64, dtype=np.int16).reshape(8, 8))]).writeto(
        fz
    )
    np.testing.assert_array_equal(read_frame(fz).data, np.arange(64).reshape(8, 8))
    # image in the first image extension of an ordinary file
    ext = tmp_path / "ext.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((3, 4)))]).writeto(ext)
    assert read_frame(ext).data.shape == (3, 4)


def test_frame_type_from_imagetyp_and_master_names(tmp_path):
    cases = {
        "light.fits": ("Light Frame", "RawFrame"),
        "bias.fits": ("Bias Frame", "RawFrame"),
        "mdark.fits": ("MASTER DARK", "MasterDark"),
        "mflat.fits": ("MASTER FLAT", "MasterFlat"),
        "Master_Dark_2_2004x1336_Bin2x2_Temp-15C_ExpTime900s.fit": ("Dark Frame", "MasterDark"),
        "Master_Bias_1_2184x1472_Bin1x1_Temp-10C_ExpTime0ms.fit": ("", "MasterBias"),
        "Master_Flat_Ha_1_Ha_2184x1472_Bin1x1_Temp-10C_ExpTime46s.fit": ("Flat Field", "MasterFlat"),
        "cal.fits": ("Light Frame", "CalibratedFrame"),
    }
    for name, (imagetyp, expected) in cases.items():
        header = fits.Header({"IMAGETYP": imagetyp})
        if name == "cal.fits":
            header["CALSTAT"] = "BDF"
        fits.PrimaryHDU(np.ones((2, 2), dtype=np.float32), header=header).writeto(tmp_path / name)
        assert read_frame(tmp_path / name).frame_type == expected, name
    assert read_frame(tmp_path / "light.fits", frame_type="MasterBias").frame_type == "MasterBias"
    with pytest.raises(ValueError, match="unknown frame type"):
        read_frame(tmp_path / "light.fits", frame_type="Nope")


def test_write_refuses_other_suffixes(tmp_path):
    with pytest.raises(FrameWriteError, match=".fits"):
        write_frame(_calibrated(), tmp_path / "out.png")


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    from astrophot.io._atomic import atomic_path, write_text_atomic

    target = tmp_path / "x.txt"
    write_text_atomic(target, "first")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]
