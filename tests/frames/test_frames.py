# Licensed under a 3-clause BSD style license - see LICENSE.rst
import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty

from astrophot import (
    BadPixelMap,
    CalibratedFrame,
    DQFlag,
    MasterBias,
    MasterDark,
    MasterFlat,
    RawFrame,
    SolvedFrame,
)
from astrophot.exceptions import MissingKeywordError
from astrophot.frames import flags_to_mask
from astrophot.provenance import start_step

ALL_TYPES = [RawFrame, MasterBias, MasterDark, MasterFlat, BadPixelMap, CalibratedFrame, SolvedFrame]


def _frame(cls, shape=(6, 7)):
    data = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    if cls is BadPixelMap:
        data = (data % 3 == 0).astype(np.uint32) * int(DQFlag.HOT)
    return cls(data, meta={"EXPTIME": 12.5, "FILTER": "Ha "})


@pytest.mark.parametrize("cls", ALL_TYPES)
def test_default_units_and_registry_coercion(cls):
    frame = _frame(cls)
    expected = {
        RawFrame: u.adu,
        MasterBias: u.adu,
        MasterDark: u.adu,
        MasterFlat: u.dimensionless_unscaled,
        BadPixelMap: u.dimensionless_unscaled,
        CalibratedFrame: u.electron,
        SolvedFrame: u.electron,
    }[cls]
    assert frame.unit == expected
    # astropy's I/O registry converts with cls(ccddata, copy=False)
    plain = CCDData(np.ones((3, 3)), unit=expected)
    converted = cls(plain, copy=False)
    assert type(converted) is cls
    assert converted.unit == expected


@pytest.mark.parametrize("cls", ALL_TYPES)
def test_copy_and_slice_keep_provenance_and_flags(cls):
    frame = _frame(cls)
    if cls is not BadPixelMap:
        frame.flags = np.full(frame.data.shape, int(DQFlag.HOT), dtype=np.uint32)
    rec = start_step("test_step", parameters={"a": 1})
    frame = rec.finish(frame)
    copied = frame.copy()
    assert type(copied) is cls
    assert copied.provenance == frame.provenance
    assert copied.data is not frame.data
    sliced = frame[1:4, 2:5]
    assert type(sliced) is cls
    assert sliced.provenance == frame.provenance
    assert sliced.data.shape == (3, 3)
    if cls is not BadPixelMap:
        assert sliced.flags.shape == (3, 3)
        assert np.all(sliced.flags == int(DQFlag.HOT))


@pytest.mark.parametrize("cls", ALL_TYPES)
def test_arithmetic_never_returns_a_mislabelled_frame(cls):
    frame = _frame(cls)
    for result in (frame.subtract(frame), frame.add(1 * frame.unit), frame.multiply(2), frame.divide(2)):
        assert type(result) is CCDData
    assert type(frame.sum()) is CCDData
    raw = _frame(RawFrame)
    result = raw.subtract(raw)
    assert not isinstance(result, RawFrame)
    np.testing.assert_array_equal(result.data, 0)


def test_header_attributes():
    header = fits.Header()
    header["EXPOSURE"] = 300.0
    header["EGAIN"] = "1.52"
    header["DATE-OBS"] = "2021-12-29T15:42:46.53"
    header["XBINNING"] = 2
    header["YBINNING"] = 2
    header["SET-TEMP"] = -25.0
    header["CCD-TEMP"] = -24.9
    header["FILTER"] = "Green   "
    header["OBJCTRA"] = "18 20 48.12"
    header["OBJCTDEC"] = "-16 10 58.8"
    raw = RawFrame(np.zeros((2, 2), dtype=np.uint16), meta=header)
    assert raw.exposure_time == 300 * u.s
    assert raw.gain == 1.52 * u.electron / u.adu
    assert raw.date_obs.isot == "2021-12-29T15:42:46.530"
    assert raw.binning == (2, 2)
    assert raw.set_temperature == -25 * u.deg_C
    assert raw.ccd_temperature.value == pytest.approx(-24.9)
    assert raw.filter == "Green"
    coord = raw.coordinates
    assert coord.ra.deg == pytest.approx((18 + 20 / 60 + 48.12 / 3600) * 15)
    assert coord.dec.deg == pytest.approx(-(16 + 10 / 60 + 58.8 / 3600))


def test_old_style_date_and_exptime_alternative():
    header = fits.Header({"EXPTIME": 60, "DATE": "04/07/18", "TIME-OBS": "14:03:03"})
    frame = RawFrame(np.zeros((2, 2)), meta=header)
    assert frame.exposure_time == 60 * u.s
    assert frame.date_obs.isot == "2018-07-04T14:03:03.000"


def test_missing_keyword_names_file_keyword_and_alternatives():
    frame = RawFrame(np.zeros((2, 2)), meta={}, source_path="/data/raw-x.fit")
    assert frame.exposure_time is None
    with pytest.raises(MissingKeywordError) as info:
        frame.require("exposure_time", purpose="dark scaling")
    text = str(info.value)
    assert "/data/raw-x.fit" in text
    assert "EXPOSURE" in text and "EXPTIME" in text
    assert "dark scaling" in text
    assert isinstance(info.value, KeyError)


def test_dqflags_and_mask():
    flags = np.array([0, DQFlag.HOT, DQFlag.HOT | DQFlag.REPAIRED, DQFlag.COSMIC_RAY], dtype=np.uint32)
    np.testing.assert_array_equal(flags_to_mask(flags), [False, True, False, True])
    for name in ("HOT", "COLD", "BAD_COLUMN", "USER", "SATURATED", "COSMIC_RAY", "REPAIRED", "NO_DATA"):
        assert hasattr(DQFlag, name)
    values = [int(m) for m in DQFlag]
    assert len(values) == len(set(values))
    assert all(v & (v - 1) == 0 for v in values)  # single bits


def test_calibrated_frame_mask_from_flags():
    flags = np.zeros((3, 3), dtype=np.uint32)
    flags[0, 0] = DQFlag.SATURATED
    flags[1, 1] = DQFlag.HOT | DQFlag.REPAIRED
    frame = CalibratedFrame(np.ones((3, 3)), uncertainty=StdDevUncertainty(np.ones((3, 3))), flags=flags)
    assert frame.mask.dtype == bool
    assert frame.mask.sum() == 1 and frame.mask[0, 0]


def test_master_dark_calstat():
    assert MasterDark(np.zeros((2, 2)), meta={"CALSTAT": "BM"}).bias_subtracted is True
    assert MasterDark(np.zeros((2, 2)), meta={"CALSTAT": "M"}).bias_subtracted is False
    assert MasterDark(np.zeros((2, 2))).bias_subtracted is None


def test_flags_shape_is_checked():
    with pytest.raises(ValueError, match="flags shape"):
        CalibratedFrame(np.ones((3, 3)), flags=np.zeros((2, 2), dtype=np.uint32))


def test_new_pixels_drop_the_cached_checksum():
    """Assigning ``frame.data`` must not leave the old pixels' checksum cached (provenance would lie)."""
    import numpy as np

    from astrophot import CalibratedFrame
    from astrophot.frames import data_checksum

    frame = CalibratedFrame(np.zeros((4, 5), np.float32), unit="electron")
    before = frame.checksum()
    frame.data = np.ones((4, 5), np.float32)
    assert frame.checksum() != before
    assert frame.checksum() == data_checksum(np.ones((4, 5), np.float32))
