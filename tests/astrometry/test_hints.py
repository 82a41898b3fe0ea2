# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Hints from headers, the telescope table and the caller."""

import math
import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS

from astrophot.astrometry import hint_from_frame
from astrophot.frames import CalibratedFrame, RawFrame

ARCSEC_PIX = u.arcsec / u.pix


def _frame(cards, shape=(100, 150)):
    header = fits.Header()
    for key, value in cards.items():
        header[key] = value
    return RawFrame(np.zeros(shape, dtype=np.uint16), meta=header)


def _itelescope(shared_data, name):
    text = (shared_data / "itelescope_headers" / name).read_text()
    with warnings.catch_warnings():
        # the T33 file has a comment wrapped onto its own line ("the image"): astropy warns
        warnings.simplefilter("ignore", AstropyUserWarning)
        header = fits.Header.fromstring(text, sep="\n")
    ny, nx = header["NAXIS2"], header["NAXIS1"]
    for key in ("BZERO", "BSCALE"):
        header.remove(key, ignore_missing=True)
    return RawFrame(np.zeros((ny // 16, nx // 16), dtype=np.uint16), meta=header)


def test_scale_from_focal_length_and_pixel_size():
    # 9 um pixels at 530 mm: 206265 * 9e-3 / 530 arcsec
    hint = hint_from_frame(_frame({"FOCALLEN": 530.0, "XPIXSZ": 9.0, "YPIXSZ": 9.0}))
    expected = 206264.806 * 9e-3 / 530.0
    assert hint.scale.to_value(ARCSEC_PIX) == pytest.approx(expected, rel=1e-6)
    assert hint.scale_range_arcsec() == pytest.approx((0.8 * expected, 1.2 * expected))
    assert hint.sources["scale"] == "FOCALLEN/XPIXSZ"
    assert hint.center is None and hint.radius is None


def test_real_itelescope_headers(shared_data):
    # T33 (calibrated by iTelescope): OBJCTRA/OBJCTDEC and 7.4 um at 1425 mm
    t33 = _itelescope(shared_data, "calibrated-T33-m17-SII-300s.hdr.txt")
    hint = hint_from_frame(t33)
    assert hint.center.separation(SkyCoord("18h20m48.12s -16d10m58.8s")).to_value(u.arcsec) < 0.01
    assert hint.scale.to_value(ARCSEC_PIX) == pytest.approx(206264.806 * 7.4e-3 / 1425.0, rel=1e-6)
    # iTelescope's own plate scale agrees to 0.3%
    assert hint.scale.to_value(ARCSEC_PIX) == pytest.approx(
        float(t33.header["iTelescopePlateScaleH"]), rel=3e-3
    )
    # T31 raw: no coordinates at all (blind in position), 12 um at 2259 mm
    t31 = _itelescope(shared_data, "raw-T31-davestrickland-webb-20211229-024225-Green-BIN1-W-300-001.hdr.txt")
    hint = hint_from_frame(t31)
    assert hint.center is None
    assert hint.scale.to_value(ARCSEC_PIX) == pytest.approx(206264.806 * 12e-3 / 2259.0, rel=1e-6)


def test_scale_from_the_telescope_table_with_binning():
    from astrophot.instruments.itelescope import get_telescope

    frame = _frame({"TELESCOP": "iTelescope 33", "XBINNING": 2, "YBINNING": 2})
    hint = hint_from_frame(frame)
    expected = 2 * get_telescope("T33").plate_scale.to_value(ARCSEC_PIX)
    assert hint.scale.to_value(ARCSEC_PIX) == pytest.approx(expected, rel=1e-9)
    assert "T33" in hint.sources["scale"]


def test_t07_frame_without_optics_gets_the_published_scale_from_the_table():
    """A T7 frame whose header lacks FOCALLEN/XPIXSZ: 0.63 arcsec/px (iTelescope's T7 page) x bin 2."""
    from datetime import datetime

    from astrophot.datasets import make_raw_frame
    from astrophot.instruments.itelescope import make_raw_filename

    raw, _ = make_raw_frame(shape=(60, 90), telescope="T07", binning=2, scale=1.26, seed=3)
    header = raw.header.copy()
    for key in ("FOCALLEN", "XPIXSZ", "YPIXSZ"):
        del header[key]
    name = make_raw_filename(
        telescope="T07",
        user="someone",
        target="M1",
        local_time=datetime(2024, 1, 1, 22, 0, 0),
        filter="Luminance",
        binning=2,
        pier_side="E",
        exposure=300,
        sequence=1,
    )
    frame = RawFrame(raw.data, meta=header, source_path=f"/data/{name}")
    assert not header.get("TELESCOP", "").strip()  # the telescope comes from the file name
    assert frame.telescope == "T07" and frame.binning == (2, 2)
    hint = hint_from_frame(frame)
    # the page's 'Resolution: 0.63 arc-secs/pixel' at bin 1, twice that at bin 2
    assert hint.scale.to_value(ARCSEC_PIX) == pytest.approx(2 * 0.63, abs=0.01)
    assert hint.sources["scale"] == "telescope table (T07)"


def test_existing_wcs_and_mount_keywords():
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [75.5, 50.5]
    wcs.wcs.cd = np.diag([-2.0, 2.0]) / 3600
    frame = CalibratedFrame(np.zeros((100, 150)), wcs=wcs)
    hint = hint_from_frame(frame)
    assert hint.sources["center"] == "existing WCS"
    assert hint.center.separation(SkyCoord(150.0, 2.0, unit="deg")).to_value(u.arcsec) < 0.01
    assert hint.scale.to_value(ARCSEC_PIX) == pytest.approx(2.0, rel=1e-9)
    # PANOPTES writes only the mount position: a weak hint, three diagonals of radius
    hint = hint_from_frame(_frame({"RA-MNT": 301.56, "DEC-MNT": 44.46, "PIXSCALE": 10.3}))
    assert hint.sources["center"] == "RA-MNT/DEC-MNT"
    diagonal = math.hypot(100, 150) * 10.3 * 1.2 / 3600
    assert hint.radius.to_value(u.deg) == pytest.approx(max(3 * diagonal, 0.25))


def test_caller_overrides_and_forms():
    frame = _frame({"OBJCTRA": "00 42 44", "OBJCTDEC": "+41 16 08", "FOCALLEN": 530.0, "XPIXSZ": 9.0})
    hint = hint_from_frame(frame, hint=(10.0, 41.0), radius=0.3, scale=(3.0, 4.0))
    assert hint.center.ra.deg == pytest.approx(10.0) and hint.center.dec.deg == pytest.approx(41.0)
    assert hint.radius.to_value(u.deg) == pytest.approx(0.3)
    assert hint.scale_range_arcsec() == pytest.approx((3.0, 4.0))
    assert hint.sources == {"center": "argument", "scale": "argument", "radius": "argument"}
    hint = hint_from_frame(frame, hint={"ra": 10.0, "dec": 41.0, "radius": 1.5 * u.deg}, scale=2 * u.arcsec)
    assert hint.radius.to_value(u.deg) == pytest.approx(1.5)
    assert hint.scale.to_value(ARCSEC_PIX) == pytest.approx(2.0)
    hint = hint_from_frame(frame, hint="00h42m44s +41d16m08s")
    assert hint.center.ra.deg == pytest.approx(10.6833, abs=1e-3)
    hint = hint_from_frame(frame, hint=(10.0, 41.0, 0.2))
    assert hint.radius.to_value(u.deg) == pytest.approx(0.2)


def test_blind_ignores_the_header():
    frame = _frame({"OBJCTRA": "00 42 44", "OBJCTDEC": "+41 16 08", "FOCALLEN": 530.0, "XPIXSZ": 9.0})
    hint = hint_from_frame(frame, blind=True)
    assert not hint.has_position and not hint.has_scale
    hint = hint_from_frame(frame, blind=True, scale=3.5)
    assert not hint.has_position and hint.has_scale


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"blind": True, "hint": (1.0, 2.0)}, "blind"),
        ({"scale": -1.0}, "positive"),
        ({"scale": 3 * u.m}, "angle per pixel"),
        ({"hint": (1.0, 2.0), "radius": 0.0}, "positive"),
        ({"hint": {"ra": 1.0}}, "'ra' and 'dec'"),
        ({"hint": "not a position"}, "cannot read"),
        ({"scale_tolerance": 1.5}, "scale_tolerance"),
    ],
)
def test_bad_hints(kwargs, message):
    with pytest.raises(ValueError, match=message):
        hint_from_frame(_frame({}), **kwargs)
