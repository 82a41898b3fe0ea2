# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Real iTelescope and MaxIm DL headers read with the right values."""

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits

from astrophot import RawFrame, read_frame
from astrophot.io import read_header_text


def _frame_from_header_text(path):
    header = read_header_text(path)
    return RawFrame(np.zeros((2, 2), dtype=np.uint16), meta=header, source_path=str(path))


def test_t31_raw_header(shared_data):
    frame = _frame_from_header_text(
        shared_data
        / "itelescope_headers"
        / "raw-T31-davestrickland-webb-20211229-024225-Green-BIN1-W-300-001.hdr.txt"
    )
    assert frame.exposure_time == 300 * u.s
    assert frame.gain is None
    # the header time, not the file-name stamp (02:42:25)
    assert frame.date_obs.isot == "2021-12-29T15:42:46.530"
    assert frame.binning == (1, 1)
    assert frame.set_temperature == -25 * u.deg_C
    assert frame.ccd_temperature == -25 * u.deg_C
    assert frame.filter == "Green"
    assert frame.coordinates is None


def test_t33_calibrated_header(shared_data):
    frame = _frame_from_header_text(
        shared_data / "itelescope_headers" / "calibrated-T33-m17-SII-300s.hdr.txt"
    )
    assert frame.exposure_time == 300 * u.s
    assert frame.date_obs.isot == "2018-07-04T14:03:03.000"
    assert frame.set_temperature == -35 * u.deg_C
    assert frame.ccd_temperature.value == pytest.approx(-34.99380225)
    assert frame.filter == "SII"
    assert frame.target == "m17"
    assert frame.telescope == "iTelescope 33"
    coord = frame.coordinates
    assert coord.ra.deg == pytest.approx(275.2005, abs=1e-4)
    assert coord.dec.deg == pytest.approx(-16.183, abs=1e-3)


def test_premium_header(shared_data):
    frame = _frame_from_header_text(
        shared_data / "itelescope_headers" / "Calibrated-iTelescope-Whale_Galaxy_NGC_55-900s-Red-5.hdr.txt"
    )
    assert frame.exposure_time == 900 * u.s
    assert frame.gain == 1.31 * u.electron / u.adu
    assert frame.filter == "Red"
    assert frame.target == "Whale Galaxy NGC 55"
    assert frame.date_obs is None


def test_maximdl_files(shared_data):
    folder = shared_data / "maximdl_headers"
    neon = read_frame(folder / "neon-on-dome-10-sec-high-res-though-scope.fit")
    assert neon.exposure_time == 10 * u.s  # EXPTIME only
    assert neon.gain == 1.74 * u.electron / u.adu  # EGAIN
    raw_values = fits.getdata(folder / "neon-on-dome-10-sec-high-res-though-scope.fit")
    np.testing.assert_allclose(neon.data, raw_values.astype(np.float64) - 100)  # PEDESTAL = -100 added
    assert "PEDESTAL" not in neon.header
    assert neon.date_obs.isot == "2013-01-28T03:08:12.000"

    light = read_frame(folder / "maximdl_6_18_header.fit")
    assert light.exposure_time == 90 * u.s
    assert light.date_obs.isot == "2018-08-23T08:49:30.000"
    assert light.set_temperature == -20 * u.deg_C
    coord = light.coordinates
    assert coord.ra.deg == pytest.approx((20 + 57 / 60 + 4.40 / 3600) * 15)
    assert coord.dec.deg == pytest.approx(31 + 39 / 60 + 39.6 / 3600)
    assert light.wcs is not None and light.wcs.has_celestial

    u16 = read_frame(folder / "uint16.fit")
    assert u16.data.dtype == np.uint16
    np.testing.assert_array_equal(u16.data, fits.getdata(folder / "uint16.fit"))

    flat = read_frame(folder / "aspen_trimmed.fit")
    assert flat.image_type == "flat"
    assert flat.filter == "R"


def test_panoptes_and_dss(shared_data):
    solved = read_frame(shared_data / "panoptes" / "solved.fits.fz")
    assert solved.wcs is not None
    center = solved.wcs.pixel_to_world(*(np.array(solved.data.shape[::-1]) / 2))
    assert center.ra.deg == pytest.approx(303.21, abs=0.1)
    assert center.dec.deg == pytest.approx(46.02, abs=0.1)
    unsolved = read_frame(shared_data / "panoptes" / "unsolved.fits")
    assert unsolved.exposure_time == 120.4 * u.s  # EXPTIME as written by the camera
    assert unsolved.wcs is None
    dss = read_frame(shared_data / "dss" / "dss_test1.fits")
    assert dss.data.shape == (177, 177)
