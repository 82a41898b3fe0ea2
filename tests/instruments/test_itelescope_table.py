# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The telescope and site table, checked against the reference spec and real headers."""

import dataclasses
import math
import re

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import EarthLocation
from astropy.io import fits
from hypothesis import given
from hypothesis import strategies as st

from astrophot.exceptions import AstrophotError, MissingKeywordError
from astrophot.instruments import itelescope
from astrophot.instruments.itelescope import (
    SITES,
    TELESCOPES,
    Site,
    UnknownSiteError,
    UnknownTelescopeError,
    get_site,
    get_telescope,
    parse_filename,
    parse_sexagesimal,
    site_from_header,
)

# Site table of the reference spec, section 4: code -> (lat, lon, elevation m, telescopes)
SPEC_SITES = {
    "H06": ((32, 54, 11.91), (-105, 31, 43.32), 2222, "T02 T05 T11 T14 T20 T21 T68"),
    "Q62": ((-31, 16, 24), (149, 4, 11), 1118, "T08 T09 T12 T17 T30 T31 T32 T33"),
    "I89": ((38, 9, 56), (-2, 19, 37), 1607, "T07 T16 T18"),
    "U69": ((37, 4, 13), (-119, 24, 47), 1403, "T24"),
}

RAW_T31 = "raw-T31-davestrickland-webb-20211229-024225-Green-BIN1-W-300-001.hdr.txt"
CAL_T33 = "calibrated-T33-m17-SII-300s.hdr.txt"
PREMIUM = "Calibrated-iTelescope-Whale_Galaxy_NGC_55-900s-Red-5.hdr.txt"


def _degrees(d, m, s):
    sign = -1 if d < 0 else 1
    return sign * (abs(d) + m / 60 + s / 3600)


def _header(shared_data, name):
    """Read a header dump; drop the lines that are wrapped comment tails, not cards."""
    lines = (shared_data / "itelescope_headers" / name).read_text().splitlines()
    cards = [line for line in lines if re.match(r"^([A-Z0-9_-]{1,8} *=|HISTORY|COMMENT|HIERARCH|END)", line)]
    return fits.Header.fromstring("\n".join(cards), sep="\n")


def test_every_required_telescope_is_on_its_site():
    required = "T02 T05 T07 T08 T09 T11 T12 T14 T16 T17 T18 T20 T21 T24 T30 T31 T32 T33 T68".split()
    assert set(required) <= set(TELESCOPES)
    for code, (_, _, _, telescopes) in SPEC_SITES.items():
        for tel_id in telescopes.split():
            assert TELESCOPES[tel_id].site is SITES[code]
            assert TELESCOPES[tel_id].id == tel_id


@pytest.mark.parametrize("code", sorted(SPEC_SITES))
def test_site_coordinates_match_the_spec(code):
    lat, lon, elevation, _ = SPEC_SITES[code]
    site = SITES[code]
    assert site.mpc_code == code
    assert site.latitude.deg == pytest.approx(_degrees(*lat), abs=1e-9)
    assert site.longitude.deg == pytest.approx(_degrees(*lon), abs=1e-9)
    assert site.elevation == elevation * u.m
    assert site.timezone is not None
    for key in ("latitude", "longitude", "elevation", "mpc_code"):
        assert "spec" in site.sources[key]


@pytest.mark.parametrize("code", sorted(SPEC_SITES))
def test_earth_location_offline_matches_wgs84(code):
    """Geocentric position from the WGS84 formulas, computed here independently."""
    site = SITES[code]
    location = site.earth_location
    assert isinstance(location, EarthLocation)
    a = 6378137.0
    f = 1 / 298.257223563
    e2 = f * (2 - f)
    phi = math.radians(site.latitude.deg)
    lam = math.radians(site.longitude.deg)
    h = site.elevation.to_value(u.m)
    n = a / math.sqrt(1 - e2 * math.sin(phi) ** 2)
    expected = (
        (n + h) * math.cos(phi) * math.cos(lam),
        (n + h) * math.cos(phi) * math.sin(lam),
        (n * (1 - e2) + h) * math.sin(phi),
    )
    got = [c.to_value(u.m) for c in (location.x, location.y, location.z)]
    np.testing.assert_allclose(got, expected, atol=1e-3)


def test_unknown_elevation_gives_height_zero():
    site = Site(name="somewhere", mpc_code=None, latitude=10 * u.deg, longitude=20 * u.deg)
    assert site.elevation is None
    assert site.earth_location.height.to_value(u.m) == pytest.approx(0, abs=1e-6)


def test_t31_plate_scale_from_pixel_size_and_focal_length():
    t31 = get_telescope("T31")
    assert t31.pixel_size == 12 * u.um
    assert t31.focal_length == 2259 * u.mm
    expected = 0.012 / 2259 * 180 / math.pi * 3600  # arcsec per pixel
    assert t31.plate_scale.unit == u.arcsec / u.pix
    assert t31.plate_scale.value == pytest.approx(expected, rel=1e-12)
    assert round(t31.plate_scale.value, 3) == 1.096  # the value quoted by the spec
    # the spec's "0.93 deg square" field of view
    height, width = t31.field_of_view
    assert height.to_value(u.deg) == pytest.approx(3056 * expected / 3600, rel=1e-12)
    assert round(width.to_value(u.deg), 2) == 0.93


# iTelescope's published T7 page (stored copy):
# https://support.itelescope.net/support/solutions/articles/231908-telescope-7
T07_PAGE_SCALE = 0.63  # 'Resolution: 0.63 arc-secs/pixel'
T07_PAGE_FOV = (28.2, 42.3)  # 'FOV: 28.2 x 42.3 arc-mins'


def test_t07_optics_reproduce_the_published_scale_and_field():
    t07 = get_telescope("T7")
    assert t07.site is SITES["I89"]
    # 206265 * 9e-3 mm / 2929 mm, rounded as the page rounds it
    assert t07.plate_scale.to_value(u.arcsec / u.pix) == pytest.approx(T07_PAGE_SCALE, abs=0.005)
    height, width = (side.to_value(u.arcmin) for side in t07.field_of_view)
    assert height == pytest.approx(T07_PAGE_FOV[0], abs=0.1)
    assert width == pytest.approx(T07_PAGE_FOV[1], abs=0.1)
    assert t07.shape_for_binning(2) == (1336, 2004)
    for name in ("pixel_size", "focal_length", "aperture", "shape", "gain", "full_well"):
        assert "231908-telescope-7" in t07.sources[name], name
    # the page's "~50,000e-" is a nominal figure, marked as the model's typical value
    assert "typical for camera model" in t07.sources["full_well"]
    assert t07.gain == 2.2 * u.electron / u.adu  # 'A/D Gain: 2.2e-/ADU'
    assert t07.read_noise is None and t07.saturation is None


def test_facts_agree_with_the_real_t31_header(shared_data):
    header = _header(shared_data, RAW_T31)
    t31 = get_telescope("T31")
    assert t31.pixel_size.to_value(u.um) == header["XPIXSZ"]
    assert t31.focal_length.to_value(u.mm) == header["FOCALLEN"]
    assert t31.aperture.to_value(u.mm) == header["APTDIA"]
    assert t31.shape == (header["NAXIS2"], header["NAXIS1"])
    assert t31.set_temperature.to_value(u.deg_C) == header["SET-TEMP"]
    assert header["INSTRUME"].strip() == t31.camera
    assert header["FILTER"].strip() in t31.filters


def test_facts_agree_with_the_real_t33_header(shared_data):
    header = _header(shared_data, CAL_T33)
    t33 = get_telescope(header["TELESCOP"])  # 'iTelescope 33'
    assert t33.id == "T33"
    assert t33.pixel_size.to_value(u.um) == pytest.approx(header["XPIXSZ"])
    assert t33.focal_length.to_value(u.mm) == header["FOCALLEN"]
    assert t33.aperture.to_value(u.mm) == header["APTDIA"]
    assert t33.shape == (header["NAXIS2"], header["NAXIS1"])
    assert t33.set_temperature.to_value(u.deg_C) == header["SET-TEMP"]
    assert t33.camera == header["INSTRUME"]
    # iTelescope's own plate scale (PinPoint) agrees with ours to 0.5%
    assert t33.plate_scale.value == pytest.approx(float(header["iTelescopePlateScaleH"]), rel=5e-3)
    # 16-bit unsigned data: BZERO + 2**15 - 1
    assert t33.saturation.to_value(u.adu) == header["BZERO"] + 2**15 - 1


def test_t20_shapes_match_the_master_names():
    t20 = get_telescope("T20")
    for name in (
        "Master_Dark_1_4008x2672_Bin1x1_Temp-15C_ExpTime900s.fit",
        "Master_Dark_2_2004x1336_Bin2x2_Temp-15C_ExpTime900s.fit",
    ):
        master = parse_filename(name)
        assert t20.shape_for_binning(master.binning) == master.shape
        assert master.set_temperature == t20.set_temperature
        assert master.binning in t20.binning_modes
    t05 = get_telescope("T05")
    master = parse_filename("Master_Bias_1_2184x1472_Bin1x1_Temp-10C_ExpTime0ms.fit")
    assert t05.shape == master.shape
    assert t05.set_temperature == master.set_temperature
    with pytest.raises(ValueError, match="positive integer"):
        t20.shape_for_binning(0)
    assert get_telescope("T02").shape_for_binning(2) is None


def test_t20_has_what_the_simulator_needs_and_marks_typical_values():
    t20 = get_telescope("T20")
    for name in ("shape", "pixel_size", "focal_length", "gain", "read_noise", "saturation"):
        assert getattr(t20, name) is not None, name
    assert t20.gain.unit == u.electron / u.adu
    assert t20.read_noise.unit == u.electron
    assert 11 <= t20.read_noise.value <= 14
    for name in ("gain", "read_noise", "full_well"):
        assert "typical for camera model" in t20.sources[name]
    # the effective saturation is the full well in ADU when that is lower than the ADC ceiling
    assert t20.effective_saturation == min(t20.saturation, (t20.full_well / t20.gain).to(u.adu))


def test_every_known_fact_has_a_source_and_unknowns_are_none():
    for tel in TELESCOPES.values():
        for f in dataclasses.fields(tel):
            if f.name in ("id", "sources", "notes"):
                continue
            if getattr(tel, f.name) is not None:
                assert tel.sources.get(f.name), f"{tel.id}.{f.name} has no source"
    t02 = get_telescope("T02")
    assert t02.pixel_size is None and t02.gain is None and t02.camera is None
    assert t02.plate_scale is None and t02.field_of_view is None and t02.effective_saturation is None


def test_table_is_read_only():
    with pytest.raises(TypeError):
        TELESCOPES["T99"] = TELESCOPES["T20"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        TELESCOPES["T20"].gain = 2
    with pytest.raises(TypeError):
        TELESCOPES["T20"].sources["gain"] = "mine"
    assert len({*TELESCOPES.values(), *SITES.values()}) == len(TELESCOPES) + len(SITES)


@pytest.mark.parametrize(
    "name",
    [
        "T05",
        "t05",
        "T5",
        "iTelescope T05",
        "iTelescope.net T05",
        "ITELESCOPE.NET t05",
        "iTelescope 5",
        " T05 ",
    ],
)
def test_get_telescope_accepts_the_usual_spellings(name):
    assert get_telescope(name) is TELESCOPES["T05"]


def test_get_telescope_returns_a_telescope_unchanged():
    assert get_telescope(TELESCOPES["T20"]) is TELESCOPES["T20"]


@pytest.mark.parametrize("name", ["T99", "Keck", "", "T05x", "iTelescope", "05T"])
def test_unknown_telescope_error_lists_the_known_ones(name):
    with pytest.raises(UnknownTelescopeError) as info:
        get_telescope(name)
    assert isinstance(info.value, AstrophotError)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert repr(name) in message
    for tel_id in TELESCOPES:
        assert tel_id in message


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("H06", "H06"),
        ("q62", "Q62"),
        ("iTelescope Siding Spring", "Q62"),
        ("siding spring", "Q62"),
        ("iTelescope.net Nerpio", "I89"),
        ("Astrocamp", "I89"),
        ("New Mexico", "H06"),
        ("Sierra Remote", "U69"),
    ],
)
def test_get_site(name, code):
    assert get_site(name) is SITES[code]


def test_unknown_site():
    with pytest.raises(UnknownSiteError, match="H06.*Q62.*I89.*U69") as info:
        get_site("Mauna Kea")
    assert isinstance(info.value, ValueError)


def test_site_from_real_t31_header(shared_data):
    header = _header(shared_data, RAW_T31)
    site = site_from_header(header, source=RAW_T31)
    assert site.latitude.deg == pytest.approx(_degrees(-31, 16, 24), abs=1e-12)
    assert site.longitude.deg == pytest.approx(_degrees(149, 4, 11), abs=1e-12)
    assert site.elevation is None  # the raw header carries no elevation
    assert site.mpc_code is None
    # the same place as the Q62 table entry
    q62 = SITES["Q62"]
    assert site.latitude.deg == pytest.approx(q62.latitude.deg, abs=1e-12)
    assert site.longitude.deg == pytest.approx(q62.longitude.deg, abs=1e-12)
    assert isinstance(site.earth_location, EarthLocation)


def test_site_from_real_t33_header(shared_data):
    header = _header(shared_data, CAL_T33)
    site = site_from_header(header)
    assert site.name == header["OBSERVAT"]
    assert site.longitude.deg == pytest.approx(_degrees(149, 3, 52), abs=1e-12)
    assert site.elevation == header["ALT-OBS"] * u.m
    # the decimal LAT-OBS/LONG-OBS (written by iTelescope's post-processing) agree with the
    # MaxIm DL strings to 1 arcsec: LAT-OBS is -31 16 25.0, SITELAT '-31 16 24'
    assert site.latitude.deg == pytest.approx(header["LAT-OBS"], abs=1.01 / 3600)
    assert site.longitude.deg == pytest.approx(header["LONG-OBS"], abs=1e-6)
    # and are used when SITELAT/SITELONG are absent
    reduced = header.copy()
    del reduced["SITELAT"], reduced["SITELONG"]
    fallback = site_from_header(reduced)
    assert fallback.latitude.deg == header["LAT-OBS"]
    assert fallback.longitude.deg == header["LONG-OBS"]


def test_site_from_premium_header_names_the_missing_keyword(shared_data):
    with pytest.raises(MissingKeywordError) as info:
        site_from_header(_header(shared_data, PREMIUM), source=PREMIUM)
    assert "SITELAT" in str(info.value) and PREMIUM in str(info.value)


def test_site_from_header_with_sitelev_and_bad_values():
    header = fits.Header(
        {"SITELAT": "51 3 0.000", "SITELONG": "-3 43 0", "SITEELEV": 10, "SITENAME": "Ghent"}
    )
    site = site_from_header(header)
    assert site.name == "Ghent"
    assert site.elevation == 10 * u.m
    assert site.longitude.deg == pytest.approx(-(3 + 43 / 60))
    header["SITELAT"] = "north"
    with pytest.raises(ValueError, match="SITELAT"):
        site_from_header(header, source="x.fit")
    header["SITELAT"] = "95 00 00"
    with pytest.raises(ValueError, match="outside"):
        site_from_header(header)


@pytest.mark.parametrize(
    ("text", "degrees"),
    [
        ("-00 30 00", -0.5),
        ("+32 54 11.91", 32 + 54 / 60 + 11.91 / 3600),
        ("-105:31:43.32", -(105 + 31 / 60 + 43.32 / 3600)),
        ("149 04 11", 149 + 4 / 60 + 11 / 3600),
        ("31 16 24 S", -(31 + 16 / 60 + 24 / 3600)),
        ("2 19 37 W", -(2 + 19 / 60 + 37 / 3600)),
        ("12.5", 12.5),
        ("-7 30", -7.5),
        (42.25, 42.25),
    ],
)
def test_parse_sexagesimal(text, degrees):
    assert parse_sexagesimal(text) == pytest.approx(degrees, abs=1e-12)


@pytest.mark.parametrize(
    "text", ["", "abc", "12 60 00", "12 30 60", "1.5 30", "-12 30 00 S", "1 2 3 4", "nan"]
)
def test_parse_sexagesimal_rejects(text):
    with pytest.raises(ValueError):
        parse_sexagesimal(text)


@given(
    st.booleans(),
    st.integers(0, 179),
    st.integers(0, 59),
    st.decimals(0, "59.99", places=2).map(float),
)
def test_parse_sexagesimal_round_trip(negative, d, m, s):
    text = f"{'-' if negative else '+'}{d:02d} {m:02d} {s:05.2f}"
    value = (d + m / 60 + s / 3600) * (-1 if negative else 1)
    assert parse_sexagesimal(text) == pytest.approx(value, abs=1e-12)


def test_public_names():
    assert itelescope.__all__ == sorted(itelescope.__all__)
    for name in itelescope.__all__:
        assert hasattr(itelescope, name)
